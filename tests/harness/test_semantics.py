"""The semantics axis (optconform.semantics) and the scalar-precision terms of the tolerance."""
from __future__ import annotations

import math

import numpy as np
import pytest

from optconform import compare, plan, semantics
from optconform.reference.precision import ALL, FLOAT32, Powers, ScalarPrecision
from optconform.reference.tolerance import power_conditioning, schedule_conditioning, tolerance


def _goldens(*names):
    return [g for g in plan.all_goldens() if g.name in names]


def _runs(rule, names):
    return [(g, compare.expected(rule, g)) for g in _goldens(*names)]


def test_separated_best_is_identified_even_out_of_tolerance():
    """6 units off the best rule and 7e4 x further from every other: the maths is named."""
    runs = _runs("adamw", ("adamw__first_steps",))
    sem = semantics.identify({"adamw": 6.0, "adam_l2": 4.2e5, "adamw_paper": 7e5}, "adamw", runs)
    assert sem.status == "identified" and sem.rule == "adamw" and sem.decay_kind == "decoupled x lr"
    assert sem.runner_up == "adam_l2" and sem.separation == pytest.approx(7e4)


def test_unseparated_best_is_unknown():
    runs = _runs("adamw", ("adamw__first_steps",))
    sem = semantics.identify({"adamw": 50.0, "adam_l2": 400.0}, "adamw", runs)
    assert sem.status == "unknown" and sem.decay_kind == "unknown" and sem.separation == pytest.approx(8.0)


def test_unseparated_rivals_with_one_decay_kind_keep_it():
    runs = _runs("adamw", ("adamw__first_steps",))
    sem = semantics.identify({"adamw": 50.0, "adamw_eps_hat": 400.0, "adam_l2": 1e9}, "adamw", runs)
    assert sem.status == "unknown" and sem.decay_kind == "decoupled x lr"


def test_coupled_equals_decoupled_times_lr_for_plain_sgd():
    """SGD without momentum: w - lr*(g + wd*w) == w - lr*wd*w - lr*g; the row says both."""
    names = [g.name for g in plan.all_goldens() if g.rule == "sgd"][:3]
    runs = _runs("sgd", names)
    assert semantics.equivalent("sgd", "sgd[decay=decoupled]", [g for g, _ in runs])
    sem = semantics.identify({"sgd": 0.2, "sgd[decay=decoupled]": 0.3, "sgd[decay=decoupled,decay_scaling=unscaled]": 1e6},
                             "sgd", runs)
    assert sem.status == "equivalent" and sem.equivalent_rules == ["sgd[decay=decoupled]"]
    assert sem.label() == "coupled (L2) = decoupled x lr (equivalent)"
    assert sem.runner_up == "sgd[decay=decoupled,decay_scaling=unscaled]"


def test_different_maths_are_not_equivalent():
    runs = _runs("adamw", ("adamw__first_steps", "adamw__large_decay"))
    assert not semantics.equivalent("adamw", "adam_l2", [g for g, _ in runs])


def test_power_conditioning_is_the_condition_number_of_one_minus_beta_power():
    knobs = {"bias_correction": "on"}
    kappa = power_conditioning(knobs, "adam", {"beta1": 0.9, "beta2": 0.999}, 3)
    t = np.arange(1, 4)
    ulp = lambda p: 2.0 * 2.0 ** np.floor(np.log2(p))     # noqa: E731  (ulp(p) in units of u)
    want = 0.5 * (ulp(0.9 ** t) / (1 - 0.9 ** t) + 0.5 * ulp(0.999 ** t) / (1 - 0.999 ** t))
    np.testing.assert_allclose(kappa, want)
    assert not power_conditioning({"bias_correction": "off"}, "adam", {"beta1": 0.9, "beta2": 0.999}, 3).any()
    assert not power_conditioning({}, "sgd", {}, 3).any()
    # a trust ratio cancels a common factor of the direction
    assert not power_conditioning({"bias_correction": "on", "trust_ratio": "on"}, "adam", {"beta2": 0.999}, 3).any()


def test_schedule_conditioning_only_with_the_dozat_schedule():
    assert not schedule_conditioning({"nadam_schedule": "none"}, {"beta1": 0.9}, 5).any()
    kappa = schedule_conditioning({"nadam_schedule": "dozat"}, {"beta1": 0.9, "momentum_decay": 1.0}, 5)
    assert (kappa > 0).all() and kappa.shape == (5,)


def test_conditioning_widens_only_the_update_term():
    golden = np.array([[1.0], [0.9], [0.8]])
    base = tolerance(golden, "float32", {"decay": "none"})
    wide = tolerance(golden, "float32", {"decay": "none"}, np.array([10.0, 0.0]))
    u = 2.0 ** -24
    np.testing.assert_allclose(wide[1] - base[1], u * 10.0 * 0.1)
    np.testing.assert_allclose(wide[2] - base[2], u * 10.0 * 0.1)


def test_scalar_precision_renders_resolves_and_rounds():
    keras_tf = ScalarPrecision(("lr", "weight_decay"), Powers.FLOAT32)
    assert str(keras_tf) == "float32:lr,weight_decay;powers=float32"
    assert str(ScalarPrecision(powers=Powers.PARAM)) == "powers=param" and str(FLOAT32) == "float32"
    assert ScalarPrecision(("lr",), Powers.PARAM).resolved("float32") == ScalarPrecision(("lr",), Powers.FLOAT32)
    assert ScalarPrecision(powers=Powers.PARAM).resolved("float64").powers is Powers.FLOAT64
    with pytest.raises(ValueError, match="Powers member"):
        ScalarPrecision(powers="bfloat16")
    with pytest.raises(ValueError, match="hyper-parameter names"):
        ScalarPrecision(("lr,beta1",))
    with pytest.raises(ValueError, match="float32 and float64"):
        ScalarPrecision(powers=Powers.PARAM).resolved("bfloat16")
    assert ScalarPrecision(("lr",), Powers.FLOAT32).round_hp({"lr": 0.1, "beta1": 0.9}) == {"lr": float(np.float32(0.1)),
                                                                                           "beta1": 0.9}


def test_power_betas_change_only_the_bias_correction():
    """powers=float32: the reference's bias correction uses float32(beta), the moments the exact beta;
    powers=exact: the unrounded betas although the moments' are rounded (MXNet Adam)."""
    (golden,) = _goldens("adamw__first_steps")
    exact = compare.expected("adamw", golden)
    f32 = compare.expected("adamw", golden, ScalarPrecision(powers=Powers.FLOAT32))
    assert compare.power_betas("adamw", golden, ScalarPrecision(powers=Powers.FLOAT32)) == {"beta1": float(np.float32(0.9)),
                                                                      "beta2": float(np.float32(0.999))}
    diff = max(float(np.max(np.abs(f32[k] - exact[k]))) for k in golden.tensors)
    assert 0 < diff < 1e-5
    assert compare.power_betas("adamw", golden, ScalarPrecision(ALL, Powers.EXACT))["beta2"] == 0.999
    assert compare.power_betas("adamw", golden, ScalarPrecision(powers=Powers.FLOAT64)) is None
    assert compare.conditioning("adamw", golden, ScalarPrecision(powers=Powers.EXACT)) is None
    assert compare.conditioning("adamw", golden, ScalarPrecision(powers=Powers.FLOAT32)).shape == (golden.steps,)


def test_canonical_equivalence_of_plain_sgd_is_stated():
    """sgd's own canonical knobs are decoupled x lr (relevant_knobs folds plain SGD): the decay column
    says both instead of contradicting the fingerprint."""
    runs = _runs("sgd", [g.name for g in plan.all_goldens() if g.rule == "sgd"][:2])
    sem = semantics.identify({"sgd": 0.3, "sgd_momentum": 1e6}, "sgd", runs)
    assert sem.status == "equivalent" and sem.decay_kind == "coupled (L2)"
    assert sem.label() == "coupled (L2) = decoupled x lr (equivalent)"


def test_within_tolerance_but_not_separated_is_ambiguous():
    runs = _runs("adamw", ("adamw__first_steps",))
    sem = semantics.identify({"adamw": 0.5, "adamw_eps_hat": 9.0, "adam_l2": 1e6}, "adamw", runs)
    assert sem.status == "ambiguous" and sem.rule == "adamw" and sem.decay_kind == "decoupled x lr"


def test_unresolved_powers_param_is_an_error_not_a_missing_rule():
    (golden,) = _goldens("adamw__first_steps")
    with pytest.raises(ValueError, match="powers=param"):
        compare.expected("adamw", golden, ScalarPrecision(powers=Powers.PARAM))
    assert compare.expected("adamw", golden, ScalarPrecision(powers=Powers.PARAM), dtype="float32") is not None


def test_goldens_no_candidate_explains_are_left_out_of_the_semantics():
    """A NaN native output on one golden (every candidate infinitely off) or a golden all candidates
    miss alike says nothing about which maths the case implements: judged on the others."""
    runs = _runs("adamw", ("adamw__first_steps", "adamw__large_decay", "adamw__tiny_grad"))
    units = {"adamw": [0.3, math.inf, 50.0], "adam_l2": [4e5, math.inf, 60.0], "adamw_paper": [7e5, math.inf, 70.0]}
    assert semantics.informative(units) == [0]
    sem, left = semantics.identify_runs(units, "adamw", runs)
    assert sem.status == "identified" and sem.rule == "adamw" and left == [runs[1][0].name, runs[2][0].name]
    # nothing informative: judged on everything, unknown
    sem, left = semantics.identify_runs({"adamw": [math.inf], "adam_l2": [math.inf]}, "adamw", runs[:1])
    assert sem.status == "unknown" and left == [] and math.isnan(sem.separation)
