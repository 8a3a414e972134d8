"""Why a factory does not conform, for `check`: knob differences when a knob vector fits, NaN/Inf,
hyper-parameters it accepts and ignores, then the measured patterns (optconform.diagnose)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from optconform.golden.format import Golden
from optconform.reference.precision import ScalarPrecision

from . import compare, diagnose, plan
from .check_report import CheckReport
from .diagnose import ProbeOutcome
from .fingerprint import explain_difference, fingerprint

if TYPE_CHECKING:
    from .check_probes import Prober


def explain(report: CheckReport, prober: Prober, outcomes: list[ProbeOutcome], variants: list[Golden],
            with_diagnosis: bool) -> None:
    """Why it does not conform: knob differences only when a knob vector fits (else nothing about knobs
    is established), NaN/Inf, ignored hyper-parameters, then the measured patterns."""
    rule_name, hp, dtype, precision = report.rule, prober.hp, prober.dtype, prober.case.precision
    runs = [(o.golden, o.native) for o in outcomes]
    fp = report.fingerprint
    if fp.fits:
        report.differences = explain_difference(fp.knobs, rule_name)
    report.differences += _nonfinite(outcomes) + _ignored_hp(runs, variants, rule_name, hp, dtype, precision)
    if not with_diagnosis:
        return
    report.diagnosis = diagnose.patterns(outcomes, rule_name, dtype)
    report.diagnosis += diagnose.verified_hints(runs, rule_name, dtype, hp, precision)
    bad = [(o.golden, o.native) for o in outcomes if o.first_step is not None]
    if not fp.fits and len(bad) < len(outcomes):
        sub = fingerprint(bad, plan.base_rule(rule_name), dtype, precision, overrides=hp)
        if sub.fits:
            report.diagnosis.append(f"on the {len(bad)} diverging probe(s) alone it fits {sub.describe()}; "
                                    f"the conforming ones follow {rule_name!r}: it switches behaviour between them")


def _nonfinite(outcomes) -> list[str]:
    """The first NaN/Inf the optimizer produced where the rule's values are finite."""
    for o in outcomes:
        for name in o.golden.tensors:
            bad = ~np.isfinite(np.asarray(o.native[name], dtype=np.float64)) & np.isfinite(o.expected[name])
            if bad.any():
                step = int(np.argwhere(bad)[0][0])
                return [f"non-finite: the optimizer produced NaN/Inf in {o.golden.name} at step {step} "
                        f"(tensor {name!r}) where the rule's values are finite"]
    return []


def _ignored_hp(runs, variants: list[Golden], rule_name: str, overrides, dtype: str,
                precision: ScalarPrecision | None = None) -> list[str]:
    """A line per perturbed hyper-parameter whose variant follows the *unperturbed* reference: the
    optimizer accepts it and ignores it."""
    by_name = {g.name: native for g, native in runs}
    lines, seen = [], set()
    for golden in variants:
        name, _, value = golden.variant.partition("=")
        if name in seen or golden.name not in by_name:
            continue
        base_name = golden.name[: -len(f"[{golden.variant}]")]
        original = next((g for g, _ in runs if g.name == base_name), None)
        if original is None:
            continue
        native = by_name[golden.name]
        if compare.worst_units(rule_name, [(golden, native)], dtype, precision, overrides) <= 1.0:
            continue
        if compare.worst_units(rule_name, [(original, native)], dtype, precision, overrides) <= 1.0:
            seen.add(name)
            was = plan.scenario_hp(rule_name, original).get(name)
            lines.append(f"{name}: the optimizer ignores it: with {name}={value} it follows the {name}={was!r} "
                         f"trajectory ({golden.name})")
    return lines
