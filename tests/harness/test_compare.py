"""compare: the worst element and the first divergence of a synthetic perturbed trajectory; rule
matching (the claimed rule on an exact run, adam_l2 for coupled decay claimed as adamw); decay_kind."""
from __future__ import annotations

import numpy as np
import pytest

from optconform import compare, plan
from optconform.reference import get_rule, rules, trajectory
from optconform.reference.precision import FLOAT32
from optconform.reference.tolerance import tolerance

KNOBS = get_rule("adamw").knobs


def golden(name):
    return next(g for g in plan.all_goldens() if g.name == name)


def copy(params):
    return {k: np.array(v, copy=True) for k, v in params.items()}


def bump(native, g, tensor, where, units, dtype="float64"):
    """Move one element by `units` tolerance units."""
    tol = tolerance(g.params[tensor], dtype, KNOBS)
    native[tensor][where] = g.params[tensor][where] + units * tol[where]


def test_compare_identical_is_zero():
    g = golden("adamw__random_wide")
    d = compare.compare(g.params, g.params, g, "float64", KNOBS)
    assert d.units == 0.0 and d.ulps == 0.0 and d.golden == g.name


def test_compare_locates_worst_element():
    g = golden("adamw__random_wide")
    native = copy(g.params)
    bump(native, g, "layer/kernel", (7, 1, 2), 50.0)
    bump(native, g, "layer/bias", (3, 2), 5.0)
    bump(native, g, "scale", (90,), 0.5)
    d = compare.compare(native, g.params, g, "float64", KNOBS)
    assert (d.step, d.tensor, d.index) == (7, "layer/kernel", (1, 2))
    assert d.units == pytest.approx(50.0, rel=0.05)
    assert d.native == native["layer/kernel"][7, 1, 2] and d.expected == g.params["layer/kernel"][7, 1, 2]
    assert d.ulps > 0
    text = d.describe()
    assert "step 7, tensor 'layer/kernel'[1, 2]" in text and "tolerance units" in text and "ULPs" in text


def test_compare_scalar_tensor_and_empty_tensor():
    g = golden("adamw__mixed_shapes")
    native = copy(g.params)
    bump(native, g, "scalar", (2,), 3.0)
    d = compare.compare(native, g.params, g, "float64", KNOBS)
    assert (d.step, d.tensor, d.index) == (2, "scalar", ())
    assert "tensor 'scalar':" in d.describe()


def test_compare_nan_is_infinite_error():
    g = golden("adamw__first_steps")
    native = copy(g.params)
    native["w"][2, 3] = np.nan
    d = compare.compare(native, g.params, g, "float64", KNOBS)
    assert np.isinf(d.units) and (d.step, d.index) == (2, (3,))


def test_first_divergence_is_the_earliest_step_over_tensors():
    g = golden("adamw__random_wide")
    native = copy(g.params)
    bump(native, g, "layer/kernel", (40, 0, 0), 1e6)       # the worst, late
    bump(native, g, "scale", (12,), 2.0)                    # earliest out of tolerance
    bump(native, g, "layer/bias", (5, 1), 0.5)              # earlier but within tolerance
    first = compare.first_divergence(native, g.params, g, "float64", KNOBS)
    assert (first.step, first.tensor, first.index) == (12, "scale", ())
    assert first.units == pytest.approx(2.0, rel=0.05)
    worst = compare.compare(native, g.params, g, "float64", KNOBS)
    assert (worst.step, worst.tensor) == (40, "layer/kernel")
    assert compare.first_divergence(g.params, g.params, g, "float64", KNOBS) is None
    within = copy(g.params)
    bump(within, g, "layer/bias", (5, 1), 0.5)
    assert compare.first_divergence(within, g.params, g, "float64", KNOBS) is None


def test_expected_is_the_golden_for_the_claimed_rule():
    g = golden("adamw__first_steps")
    assert compare.expected("adamw", g) is g.params
    other = compare.expected("adam_l2", g)
    ref = trajectory("adam_l2", dict(g.params0), list(g.grads), **{k: v for k, v in g.run_hp.items()
                                                                    if k in get_rule("adam_l2").defaults})
    np.testing.assert_array_equal(other["w"], ref.params["w"])
    assert compare.expected("adam_l2", g) is other                       # cached
    rounded = compare.expected("adamw", g, FLOAT32)
    assert rounded is not g.params and not np.array_equal(rounded["w"], g.params["w"])


def test_candidates_are_the_family():
    cands = compare.candidates("adamw")
    assert cands[0] == "adamw" and len(cands) == len(set(cands))
    assert set(cands) == {n for n, r in rules().items() if r.family == "adam"}
    assert "sgd" not in cands


def _runs_of(rule, hp_rule="adamw"):
    """(golden, native) for every adamw golden, the native being the `rule` reference with the
    golden's hyper-parameters."""
    runs = []
    for g in plan.all_goldens():
        if g.rule != hp_rule:
            continue
        r = get_rule(rule)
        hp = {k: v for k, v in g.run_hp.items() if k in r.defaults}
        runs.append((g, trajectory(rule, dict(g.params0), list(g.grads), **hp).params))
    return runs


def test_match_exact_reference_picks_the_claim():
    runs = [(g, g.params) for g in plan.all_goldens() if g.rule == "adamw"]
    best, units, scores = compare.match(runs, "adamw", "float64")
    assert best == "adamw" and units == 0.0
    assert set(scores) == set(compare.candidates("adamw"))
    assert scores["adam_l2"] > 1.0


def test_match_names_adam_l2_when_adamw_couples_its_decay():
    runs = _runs_of("adam_l2")
    best, units, scores = compare.match(runs, "adamw", "float64")
    assert best == "adam_l2"
    assert units <= 1.0
    assert scores["adamw"] > 1e3
    # the same in float32 units
    best32, units32, _ = compare.match(runs, "adamw", "float32")
    assert best32 == "adam_l2" and units32 <= 1.0


def test_match_when_nothing_matches_reports_nearest_above_one():
    runs = _runs_of("adamw")
    g, native = runs[0]
    native = copy(native)
    native["w"][1:] *= 1.5
    best, units, scores = compare.match([(g, native)], "adamw", "float64")
    assert units > 1.0 and units == min(scores.values())


@pytest.mark.parametrize("rule,kind", [
    ("adam", "none"),
    ("adam_l2", "coupled (L2)"),
    ("adamw", "decoupled x lr"),
    ("adamw_paper", "decoupled x eta"),
    ("transformers_adamw", "decoupled x lr, after step"),
    ("lamb", "decoupled x lr, in trust ratio"),
    ("lamb_decay_outside", "decoupled x lr"),
    ("mxnet_adam", "coupled (L2), clipped with g"),
    ("mxnet_v07_adam", "decoupled x corrected lr, after step"),
    ("adamw[decay_scaling=unscaled]", "decoupled unscaled"),
])
def test_decay_kind(rule, kind):
    assert compare.decay_kind(rule) == kind


def test_decay_kind_defined_for_every_preset():
    for name in rules():
        assert compare.decay_kind(name)
