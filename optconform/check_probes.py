"""Running a user's factory on probe goldens for `check`: which probes it can express (and why not the
others), the sensitivity variants of those it ran, and each run compared with the reference and
recorded in the CheckReport."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Mapping

from optconform.adapters.base import NEUTRAL_HP, Adapter, Case
from optconform.golden.format import Golden
from optconform.reference import get_rule

from . import compare, plan
from .check_report import CheckReport
from .diagnose import ProbeOutcome

#: Probes with at most this many steps are candidates for the sensitivity variants.
SENSITIVITY_STEPS = 10
#: Probes run again per perturbed hyper-parameter (the longest short probes).
SENSITIVITY_PROBES = 2


@dataclass(frozen=True)
class Prober:
    """Runs the factory of `case` through `adapter` on one device and dtype, with the canonical
    overrides `hp` (for the optimizer and the reference alike)."""
    adapter: Adapter
    case: Case
    hp: Mapping[str, Any]
    device: str
    dtype: str

    def runnable(self, report: CheckReport, goldens: list[Golden]) -> list[Golden]:
        """The goldens the factory can express; why not the others, in `report.skipped`."""
        ran = []
        for golden in goldens:
            if plan.runnable(self.case, golden, self.adapter.supports_eta):
                ran.append(golden)
            else:
                report.skipped[golden.name] = _why_not(self.case, golden)
        return ran

    def run(self, report: CheckReport, goldens: list[Golden]) -> list[ProbeOutcome]:
        """Run the factory on each golden, in order, recording each in the report; the outcomes of
        those that did not raise."""
        return [o for o in (self._run_one(report, g) for g in goldens) if o]

    def _run_one(self, report: CheckReport, golden: Golden) -> ProbeOutcome | None:
        """Run the factory on one golden; record it in the report; the outcome (None when it raised)."""
        inp = plan.run_input(self.case, golden, self.adapter.supports_eta)
        inp = type(inp)(inp.tensors, inp.params0, inp.grads, inp.lr, inp.eta,
                        {**inp.hp, **{k: v for k, v in self.hp.items() if k in self.case.hp_map}})
        report.scenarios.append(golden.name)
        try:
            native = self.adapter.run(self.case, inp, self.device, self.dtype).params
        except BaseException as exc:  # the user's optimizer raised (even SystemExit): a finding, not a crash
            if isinstance(exc, KeyboardInterrupt):
                raise
            report.error = report.error or f"{golden.name}: {type(exc).__name__}: {exc}"
            report.failed.append(golden.name)
            return None
        return self._compare(report, golden, native)

    def _compare(self, report: CheckReport, golden: Golden, native) -> ProbeOutcome:
        """Compare one run with the reference; the worst and first divergences into the report."""
        rule, precision = self.case.rule, self.case.precision
        knobs = get_rule(rule).knobs
        exp = compare.expected(rule, golden, precision, overrides=self.hp)
        cond = compare.conditioning(rule, golden, precision, self.hp)       # scalar precision (spec/tolerance.md)
        div = compare.compare(native, exp, golden, self.dtype, knobs, cond)
        if report.worst is None or div.units > report.worst.units:
            report.worst = div
        if div.units <= 1.0:
            return ProbeOutcome(golden, native, exp, None)
        report.failed.append(golden.name)
        first = compare.first_divergence(native, exp, golden, self.dtype, knobs, cond)
        if first is not None and report.first is None:
            report.first = first
        return ProbeOutcome(golden, native, exp, max(first.step, 1) if first is not None else golden.steps)


def _why_not(case: Case, golden: Golden) -> str:
    for name, value in plan.scenario_hp(case.rule, golden).items():
        if name in case.fixed_hp and value != case.fixed_hp[name]:
            return f"needs {name}={value!r}, which the factory does not take"
        if name not in case.fixed_hp and name not in case.hp_map and not plan.is_neutral(name, value):
            return f"needs {name}={value!r}, which the factory does not take"
    return "needs the schedule multiplier eta, which the framework does not take"


def _perturb(value: Any) -> float | None:
    """Another value of a hyper-parameter for a sensitivity variant: a decay rate in (0.5, 1) keeps its
    distance to 1 doubled (0.9 -> 0.8, 0.999 -> 0.998), any other non-zero number is doubled."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value == 0 or not math.isfinite(value):
        return None
    if 0.5 < value < 1.0:
        return 1.0 - 2.0 * (1.0 - value)
    return 2.0 * value


def sensitivity_goldens(case: Case, ran: list[Golden], overrides: Mapping[str, Any]) -> list[Golden]:
    """Variants of the probes `case` ran, with one hyper-parameter changed, for every numeric
    hyper-parameter the factory takes that has one value in all of them (the corpus keeps beta1,
    beta2 and momentum at their defaults): without these, an optimizer that accepts such a
    hyper-parameter and ignores it (kozistr/pytorch_optimizer#517 for weight_decay) would conform.
    The expected trajectories are reference runs with the changed value, like every check run; a
    variant's name is the probe's plus ``[name=value]``."""
    probes = sorted((g for g in ran if g.kind == "probe" and g.steps <= SENSITIVITY_STEPS),
                    key=lambda g: (-g.steps, g.name))[:SENSITIVITY_PROBES]
    out = []
    for name in sorted(case.hp_map):
        if name in ("lr", "eta") or name in NEUTRAL_HP or name in overrides:
            continue
        values = {repr(plan.scenario_hp(case.rule, g).get(name)) for g in ran}
        if len(values) != 1 or not probes:
            continue
        new = _perturb(plan.scenario_hp(case.rule, probes[0]).get(name))
        if new is None:
            continue
        for golden in probes:
            out.append(replace(golden, name=f"{golden.name}[{name}={new:g}]", variant=f"{name}={new:g}",
                               hp={**golden.hp, name: new}, params={}, state={}))
    return out
