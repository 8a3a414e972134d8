"""Native vs expected trajectories, in tolerance units; and which rule a native run matches.

The expected trajectory of a case on a golden is the golden itself when the case claims the golden's
rule with exact hyper-parameters; otherwise (a candidate rule while matching, or hyper-parameters
the framework rounds to float32) it is the reference run on the golden's scenario.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from optconform.golden.format import Golden
from optconform.reference import get_rule, rules, trajectory
from optconform.reference.tolerance import error_units, power_conditioning, tolerance, ulps

from optconform.reference.precision import Powers, ScalarPrecision

from .plan import scenario_hp


@dataclass(frozen=True)
class Divergence:
    """The worst element of a comparison."""
    units: float             # error in tolerance units (<= 1 conforms)
    ulps: float
    golden: str
    step: int
    tensor: str
    index: tuple[int, ...]
    native: float
    expected: float

    def describe(self) -> str:
        where = f"[{', '.join(map(str, self.index))}]" if self.index else ""
        return (f"step {self.step}, tensor {self.tensor!r}{where}: native {self.native!r} vs expected "
                f"{self.expected!r} = {self.units:.3g} tolerance units ({self.ulps:.3g} ULPs)")


def reference_hp(rule_name: str, golden: Golden, overrides: Mapping[str, Any] | None = None,
                 precision: ScalarPrecision | None = None) -> dict[str, Any]:
    """Everything `trajectory` needs to run `rule_name` on the golden's scenario: the scenario's
    hyper-parameters as the rule takes them (optconform.plan.scenario_hp: names it lacks filled with
    its defaults, as the native case is fed), then `overrides`, then rounding where a framework stores
    hyper-parameters (`precision`)."""
    rule = get_rule(rule_name)
    hp = {**scenario_hp(rule_name, golden), **{k: v for k, v in (overrides or {}).items() if k in rule.defaults},
          "lr": list(golden.lr), "eta": list(golden.eta)}
    return precision.round_hp(hp) if precision else hp


#: Hyper-parameters raised to the power t in a bias correction (Muon's AdamW step for non-2-D tensors:
#: adam_beta1, adam_beta2).
POWER_HP = ("beta1", "beta2", "adam_beta1", "adam_beta2")


def power_betas(rule_name: str, golden: Golden, precision: ScalarPrecision | None,
                overrides: Mapping[str, Any] | None = None) -> dict[str, float] | None:
    """The betas of the bias-correction powers under `precision.powers` (already resolved for the
    run's dtype: ScalarPrecision.resolved): float32-rounded for FLOAT32, the unrounded hyper-parameters
    for EXACT; None (the moments' betas) for FLOAT64 or without powers."""
    powers = precision.powers if precision else None
    if powers in (None, Powers.FLOAT64):
        return None
    if powers is Powers.PARAM:
        raise ValueError("powers=param must be resolved for the run's dtype (ScalarPrecision.resolved)")
    raw = reference_hp(rule_name, golden, overrides)
    betas = {k: float(raw[k]) for k in POWER_HP if isinstance(raw.get(k), (int, float))}
    return {k: float(np.float32(v)) for k, v in betas.items()} if powers is Powers.FLOAT32 else betas


def conditioning(rule_name: str, golden: Golden, precision: ScalarPrecision | None,
                 overrides: Mapping[str, Any] | None = None) -> np.ndarray | None:
    """Per-step conditioning of the bias-correction scalars when the native run computes them in its
    parameter dtype (`powers=float32|float64`; optconform.reference.tolerance.power_conditioning), else None."""
    if precision is None or precision.powers not in (Powers.FLOAT32, Powers.FLOAT64):
        return None
    hp = reference_hp(rule_name, golden, overrides, precision)
    scalars = {**{k: hp[k] for k in (*POWER_HP, "momentum_decay") if k in hp},
               **(power_betas(rule_name, golden, precision, overrides) or {})}
    return power_conditioning(get_rule(rule_name).knobs, get_rule(rule_name).family, scalars, golden.steps)


#: Reference trajectories per (rule, golden, precision, overrides), shared by the runner, matching,
#: fingerprinting and `check`: they do not depend on the optimizer under test.
_CACHE: dict[tuple[str, str, ScalarPrecision | None, str], Mapping[str, np.ndarray] | None] = {}


def _key(rule_name: str, golden: Golden, precision: ScalarPrecision | None, overrides: Mapping[str, Any] | None):
    return rule_name, golden.name, precision, repr(sorted((overrides or {}).items()))


def expected(rule_name: str, golden: Golden, precision: ScalarPrecision | None = None,
             overrides: Mapping[str, Any] | None = None, dtype: str | None = None) -> Mapping[str, np.ndarray] | None:
    """The expected params trajectory of `rule_name` on `golden` (None if the rule cannot express the
    scenario's hyper-parameters): the stored golden when it is exactly that, else a cached reference run.
    `dtype` (the native run's) resolves `Powers.PARAM`."""
    precision = precision.resolved(dtype) if precision is not None and dtype else precision
    if precision and precision.powers is Powers.PARAM:     # not "cannot express": a caller's mistake
        raise ValueError("powers=param must be resolved for the run's dtype (pass dtype=)")
    if rule_name == golden.rule and precision is None and not overrides and golden.params:
        return golden.params          # (a sensitivity variant of a golden carries no trajectory)
    key = _key(rule_name, golden, precision, overrides)
    if key not in _CACHE:
        try:
            _CACHE[key] = trajectory(rule_name, dict(golden.params0), list(golden.grads),
                                     power_betas=power_betas(rule_name, golden, precision, overrides),
                                     iteration=precision.iteration if precision else None,
                                     **reference_hp(rule_name, golden, overrides, precision)).params
        except ValueError:
            _CACHE[key] = None
    return _CACHE[key]


#: The tolerances of the cached reference trajectories, per (expected's key, dtype): like them, they do
#: not depend on the optimizer under test.
_TOLERANCES: dict[tuple, dict[str, np.ndarray]] = {}


def _tolerances(rule_name: str, golden: Golden, precision: ScalarPrecision | None,
                overrides: Mapping[str, Any] | None, dtype: str, expect: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """tolerance() of every non-empty tensor of `expect` = expected(rule_name, golden, precision,
    overrides), with its conditioning; computed once per key and dtype."""
    key = (_key(rule_name, golden, precision, overrides), dtype)
    if key not in _TOLERANCES:
        knobs, cond = get_rule(rule_name).knobs, conditioning(rule_name, golden, precision, overrides)
        arrays = {name: np.asarray(expect[name], dtype=np.float64) for name in golden.tensors}
        _TOLERANCES[key] = {name: tolerance(exp, dtype, knobs, cond, golden.run_hp)
                            for name, exp in arrays.items() if exp.size}
    return _TOLERANCES[key]


def _units_per_tensor(native, expect, golden: Golden, dtype: str, knobs, cond=None, tolerances=None):
    """(tensor name, native, expected, error units) for every non-empty tensor (`tolerances`: each
    tensor's tolerance() already computed, e.g. by _tolerances)."""
    for name in golden.tensors:
        exp = np.asarray(expect[name], dtype=np.float64)
        if exp.size:
            nat = np.asarray(native[name], dtype=np.float64)
            tol = tolerances[name] if tolerances is not None else tolerance(exp, dtype, knobs, cond, golden.run_hp)
            yield name, nat, exp, error_units(nat, exp, tol)


def _divergence(golden: Golden, name: str, nat, exp, units, where, dtype: str) -> Divergence:
    return Divergence(float(units[where]), float(ulps(nat[where], exp[where], dtype)), golden.name, int(where[0]), name,
                      tuple(int(i) for i in where[1:]), float(nat[where]), float(exp[where]))


def compare(native: Mapping[str, np.ndarray], expect: Mapping[str, np.ndarray], golden: Golden, dtype: str,
            knobs: Mapping[str, str], cond: np.ndarray | None = None,
            tolerances: Mapping[str, np.ndarray] | None = None) -> Divergence:
    """The worst element of native vs expected over every tensor and step (`cond`: `conditioning`;
    `tolerances`: the tensors' tolerances when already computed, e.g. by _tolerances)."""
    worst = None
    for name, nat, exp, units in _units_per_tensor(native, expect, golden, dtype, knobs, cond, tolerances):
        where = np.unravel_index(int(np.argmax(units)), units.shape)
        if worst is None or float(units[where]) > worst.units:
            worst = _divergence(golden, name, nat, exp, units, where, dtype)
    return worst or Divergence(0.0, 0.0, golden.name, 0, golden.tensors[0], (), 0.0, 0.0)


def first_divergence(native: Mapping[str, np.ndarray], expect: Mapping[str, np.ndarray], golden: Golden,
                     dtype: str, knobs: Mapping[str, str], cond: np.ndarray | None = None) -> Divergence | None:
    """The earliest step at which some element leaves tolerance (None if none does)."""
    best = None
    for name, nat, exp, units in _units_per_tensor(native, expect, golden, dtype, knobs, cond):
        bad = np.argwhere(units > 1.0)
        if bad.size and (best is None or int(bad[0][0]) < best.step):
            best = _divergence(golden, name, nat, exp, units, tuple(bad[0]), dtype)
    return best


def worst_units(rule_name: str, runs, dtype: str, precision: ScalarPrecision | None = None,
                overrides: Mapping[str, Any] | None = None,
                stop: Callable[[float], bool] | None = None) -> float:
    """The worst error of the reference of `rule_name` against native `runs` ((golden, native params)
    pairs), in tolerance units; inf when the rule cannot express one of the scenarios.

    The worst error is a maximum, so the running worst after some runs is a lower bound of it. `stop`
    (a predicate on that bound, once true true for every larger value) ends the comparison early: the
    bound reached is returned, and no reference trajectory is computed for the runs left. A caller that
    only needs to know whether the worst error is past a threshold (a search keeping the best few, a
    does-it-fit test) gets the same answer as from the full maximum."""
    knobs = get_rule(rule_name).knobs
    precision = precision.resolved(dtype) if precision is not None else None
    worst = 0.0
    for golden, native in runs:
        if stop is not None and stop(worst):
            return worst
        exp = expected(rule_name, golden, precision, overrides)
        if exp is None:
            return float("inf")
        tolerances = _tolerances(rule_name, golden, precision, overrides, dtype, exp)
        worst = max(worst, compare(native, exp, golden, dtype, knobs, tolerances=tolerances).units)
    return worst


def candidates(claimed: str) -> list[str]:
    """Rules a native run of a `claimed`-rule case is matched against: the claimed rule and every
    preset of its family."""
    family = get_rule(claimed).family
    names = [claimed] + [n for n, r in rules().items() if r.family == family and n != claimed]
    return names


def per_golden(runs: list[tuple[Golden, Mapping[str, np.ndarray]]], claimed: str, dtype: str,
               precision: ScalarPrecision | None = None) -> dict[str, list[float]]:
    """Candidate -> its worst error on each run, in `runs` order (inf where it cannot express one)."""
    return {name: [worst_units(name, [run], dtype, precision) for run in runs] for name in candidates(claimed)}


def best_of(scores: Mapping[str, float], claimed: str) -> str:
    """The best candidate: any within 1 unit beats every other, the claimed rule first; else the nearest."""
    return min(scores, key=lambda n: (scores[n] > 1.0, scores[n] if scores[n] > 1.0 else 0.0, n != claimed))


def match(runs: list[tuple[Golden, Mapping[str, np.ndarray]]], claimed: str, dtype: str,
          precision: ScalarPrecision | None = None) -> tuple[str, float, dict[str, float]]:
    """The rule among `candidates(claimed)` whose reference is closest to the native runs.

    Returns (best rule, its worst error in tolerance units, worst error of every candidate). The
    claimed rule wins ties, so a conforming case is reported as matching its claim.
    """
    scores = {name: max(units, default=0.0) for name, units in per_golden(runs, claimed, dtype, precision).items()}
    best = best_of(scores, claimed)
    return best, scores[best], scores


def decay_kind(rule_name: str) -> str:
    """A short description of how a rule decays, e.g. 'decoupled x lr' or 'coupled (L2)'."""
    return decay_kind_of(get_rule(rule_name).knobs)


def decay_kind_of(knobs: Mapping[str, str]) -> str:
    """decay_kind for a knob vector (e.g. a rule's canonical relevant_knobs)."""
    decay = knobs.get("decay", "none")
    if decay == "none":
        return "none"
    if decay == "coupled":
        return "coupled (L2)" + (", clipped with g" if knobs.get("clip_scope") == "gradient_and_decay" else "")
    scaling = {"lr": "x lr", "schedule": "x eta", "unscaled": "unscaled", "corrected_lr": "x corrected lr",
               "lr_ratio": "x lr/lr0", "adjusted_lr": "x adjusted lr", "relative_step": "x relative step"}
    if "decay_at" in knobs:       # schedule-free: x lr, in the z step or as a shrink of y
        return "decoupled x lr, " + ("in the z step" if knobs["decay_at"] == "step" else "shrink of y")
    text = f"decoupled {scaling[knobs['decay_scaling']]}"
    if knobs.get("decay_order") == "after":
        text += ", after step"
    if knobs.get("trust_ratio") == "on" and knobs.get("trust_ratio_scope") == "with_decay" and "after" not in text:
        text += ", in trust ratio"
    return text
