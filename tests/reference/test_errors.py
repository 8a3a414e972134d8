"""Errors of the reference: every bad input is a ValueError that names the problem and the choices."""
from __future__ import annotations

import math

import numpy as np
import pytest

from optconform.reference import get_rule, rules, trajectory

W = np.array([1.0, -2.0])
G = [np.zeros(2)] * 3


def test_unknown_rule_lists_valid_rules():
    with pytest.raises(ValueError) as err:
        trajectory("adamx", W, G)
    msg = str(err.value)
    assert "adamx" in msg and "valid rules" in msg
    for name in rules():
        assert name in msg


def test_unknown_rule_in_derived_expression():
    with pytest.raises(ValueError, match="valid rules"):
        trajectory("adamx[decay=coupled]", W, G)


def test_unparsable_rule_expression():
    for expr in ("adam[", "adam]x", "1adam", ""):
        with pytest.raises(ValueError):
            get_rule(expr)
    with pytest.raises(ValueError, match="knob=value"):
        get_rule("adam[eps_placement]")


def test_unknown_hyper_parameter_lists_valid_names():
    with pytest.raises(ValueError) as err:
        trajectory("adam", W, G, beta3=0.5)
    msg = str(err.value)
    assert "beta3" in msg
    for name in ("lr", "beta1", "beta2", "eps", "eta"):
        assert name in msg


def test_several_unknown_hyper_parameters_all_named():
    with pytest.raises(ValueError) as err:
        trajectory("sgd", W, G, foo=1.0, bar=2.0)
    assert "foo" in str(err.value) and "bar" in str(err.value)


@pytest.mark.parametrize("rule", ["adam", "amsgrad", "adam_eps_hat", "nadam_no_schedule", "radam_eps_outside",
                                  "adamax_eps_outside"])
def test_weight_decay_rejected_by_rules_without_decay(rule):
    # decay = none: "the rule takes no weight_decay hyper-parameter" (spec/knobs.toml)
    assert get_rule(rule).knobs["decay"] == "none"
    with pytest.raises(ValueError, match="weight_decay"):
        trajectory(rule, W, G, weight_decay=0.1)
    with pytest.raises(ValueError, match="weight_decay"):
        trajectory(rule, W, G, weight_decay=0.0)   # even a zero: the name does not exist for this rule


def test_momentum_rejected_without_momentum_form():
    with pytest.raises(ValueError, match="momentum"):
        trajectory("sgd", W, G, momentum=0.9)


def test_shape_mismatch_names_tensor_and_shapes():
    with pytest.raises(ValueError) as err:
        trajectory("adam", {"dense/kernel": np.zeros(3)}, [{"dense/kernel": np.zeros(3)}, {"dense/kernel": np.zeros(2)}])
    msg = str(err.value)
    assert "dense/kernel" in msg and "(2,)" in msg and "(3,)" in msg and "grads[1]" in msg


def test_shape_mismatch_array_input():
    with pytest.raises(ValueError) as err:
        trajectory("sgd", np.zeros((2, 3)), [np.zeros((3, 2))])
    assert "(3, 2)" in str(err.value) and "(2, 3)" in str(err.value)


def test_tensor_name_mismatch():
    with pytest.raises(ValueError) as err:
        trajectory("sgd", {"a": np.zeros(2)}, [{"b": np.zeros(2)}])
    assert "'a'" in str(err.value) and "'b'" in str(err.value)


def test_dict_vs_array_mismatch():
    with pytest.raises(ValueError):
        trajectory("sgd", {"a": np.zeros(2)}, [np.zeros(2)])
    with pytest.raises(ValueError):
        trajectory("sgd", np.zeros(2), [{"a": np.zeros(2)}])


def test_grads_must_be_a_sequence():
    with pytest.raises(ValueError, match="sequence"):
        trajectory("sgd", W, np.zeros((3, 2)))


@pytest.mark.parametrize("name", ["lr", "eta"])
@pytest.mark.parametrize("n", [2, 4, 0])
def test_per_step_sequence_of_wrong_length(name, n):
    with pytest.raises(ValueError) as err:
        trajectory("adamw", W, G, **{name: [0.1] * n})
    msg = str(err.value)
    assert name in msg and str(n) in msg and "3" in msg


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, [0.1, math.nan, 0.1], [0.1, 0.1, math.inf]])
def test_non_finite_lr(bad):
    with pytest.raises(ValueError, match="lr"):
        trajectory("adam", W, G, lr=bad)


@pytest.mark.parametrize("bad", ["0.1", None, True, [0.1, "x", 0.1]])
def test_non_numeric_lr(bad):
    with pytest.raises(ValueError, match="lr"):
        trajectory("adam", W, G, lr=bad)


@pytest.mark.parametrize("name, bad", [("beta1", math.nan), ("eps", math.inf), ("weight_decay", math.nan),
                                       ("momentum", "0.9"), ("rescale_grad", None)])
def test_non_finite_or_non_numeric_hyper_parameters(name, bad):
    rule = "sgd_momentum" if name == "momentum" else "adamw"
    with pytest.raises(ValueError, match=name):
        trajectory(rule, W, G, **{name: bad})


def test_bool_hyper_parameter_must_be_bool():
    with pytest.raises(ValueError, match="nesterov"):
        trajectory("sgd_momentum", W, G, nesterov=1)


def test_weight_decay_exclude_must_be_a_list_of_strings():
    with pytest.raises(ValueError, match="weight_decay_exclude"):
        trajectory("adamw", W, G, weight_decay_exclude="bias")


def test_weight_decay_mask_must_be_a_dict():
    with pytest.raises(ValueError, match="weight_decay_mask"):
        trajectory("adamw", W, G, weight_decay_mask=[True])


def test_bad_derived_knob_lists_the_family_knobs():
    with pytest.raises(ValueError) as err:
        trajectory("adam[foo=bar]", W, G)
    msg = str(err.value)
    assert "foo" in msg
    for knob in ("decay", "eps_placement", "bias_correction", "amsgrad"):
        assert knob in msg


def test_bad_derived_value_lists_allowed_values():
    with pytest.raises(ValueError) as err:
        trajectory("adam[eps_placement=bogus]", W, G)
    msg = str(err.value)
    assert "bogus" in msg and "allowed" in msg
    for value in ("outside", "eps_hat", "inside"):
        assert value in msg


def test_knob_not_in_family():
    # momentum_form is an SGD/RMSprop knob, not an Adam one; inside_max is an Adamax value only
    with pytest.raises(ValueError, match="momentum_form"):
        get_rule("adam[momentum_form=lr_inside]")
    with pytest.raises(ValueError, match="inside_max"):
        get_rule("adam[eps_placement=inside_max]")


def test_empty_params_dict():
    with pytest.raises(ValueError, match="empty"):
        trajectory("sgd", {}, [{}])


def test_non_real_dtype():
    with pytest.raises(ValueError, match="dtype"):
        trajectory("sgd", np.array([1 + 1j]), [np.array([0j])])
