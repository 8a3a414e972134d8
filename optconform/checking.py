"""Check any optimizer — a user's own included — against a rule of the spec, and fingerprint it.

    report = optconform.check(make_my_adamw, rule="adamw", framework="torch")
    if not report: print(report)        # first divergence, fingerprint, what differs from the rule

The factory receives the spec's canonical hyper-parameters by name (only those its signature takes):
torch `factory(params, **hp)` returning a torch.optim.Optimizer-like object (lr schedules are applied
by setting `param_groups[i]["lr"]` between steps); optax `factory(**hp)` returning a
GradientTransformation; Keras `factory(**hp)` returning an optimizer. It is run on the golden probe
scenarios of the rule (those whose hyper-parameters it can express) and compared with the reference.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping

from optconform.reference import get_rule

from . import compare, plan
from .check_explain import explain
from .check_factory import FACTORY_ALIASES, factory_case, factory_hp_map, prepare
from .check_probes import SENSITIVITY_PROBES, SENSITIVITY_STEPS, Prober, sensitivity_goldens
from .check_report import CheckReport
from .diagnose import ProbeOutcome, unseen_knobs
from .fingerprint import fingerprint
from .repro import repro_script
from optconform.golden.fsio import atomic_write

__all__ = ["FACTORY_ALIASES", "FAMILY_PROBES", "SENSITIVITY_PROBES", "SENSITIVITY_STEPS", "CheckReport",
           "check", "factory_case", "factory_hp_map", "fingerprint_any", "sensitivity_goldens"]


def check(factory: Callable, rule: str = "adamw", framework: str = "torch", *, dtype: str = "float32",
          device: str = "cpu", repro: str | Path | None = None, diagnose: bool = True, **hp) -> CheckReport:
    """Run `factory` on the probe scenarios of `rule` and compare with the reference.

    hp: canonical hyper-parameters that override the scenarios' values (for the optimizer and the
    reference alike), e.g. eps=1e-6 for an optimizer whose eps cannot be passed.
    repro: where to write a framework-native repro script when it does not conform (default: none).
    diagnose: look for patterns and built-in settings when it does not conform (optconform.diagnose).
    It conforms only when every probe that ran is within tolerance *and* those probes can see every
    knob of the rule (else the verdict is UNDECIDED).
    Raises ValueError, before any work, for an unknown rule, framework, dtype or device, a
    hyper-parameter that is unknown, mistyped or out of range (spec/hyperparameters.toml), a factory
    whose signature the adapter cannot call, or a repro path that cannot be written; AdapterUnavailable
    when the framework does not import.
    """
    rule_obj, hp, adapter, case = prepare(factory, rule, framework, dtype, device, repro, hp)
    report = CheckReport(factory=case.name, rule=rule_obj.name, framework=framework, version=adapter.version(),
                         device=device, dtype=dtype)
    prober = Prober(adapter, case, hp, device, dtype)
    goldens = [g for g in plan.all_goldens() if g.rule == plan.base_rule(rule)]
    ran = prober.runnable(report, goldens)
    outcomes = prober.run(report, ran)
    variants = sensitivity_goldens(case, ran, hp)
    every_outcome = outcomes + prober.run(report, variants)
    _decide(report, prober, outcomes)
    runs = [(o.golden, o.native) for o in every_outcome]
    if runs:
        report.fingerprint = fingerprint(runs, plan.base_rule(rule), dtype, case.precision, overrides=hp)
    if report.failed and runs:
        explain(report, prober, every_outcome, variants, diagnose)
    if report.failed and repro is not None and report.first is not None and framework == "torch":
        _write_repro(report, Path(repro), prober, [*goldens, *variants])
    return report


def _decide(report: CheckReport, prober: Prober, outcomes: list[ProbeOutcome]) -> None:
    """It conforms when some probe ran, none diverged, and the probes that ran see every knob of the rule."""
    report.conforms = bool(report.scenarios) and not report.failed
    if not report.scenarios:
        report.error = report.error or "the factory can express none of the rule's probe scenarios"
    if report.conforms:
        report.unseen = unseen_knobs(report.rule, [o.golden for o in outcomes], prober.dtype, prober.hp,
                                     prober.case.precision)
        report.conforms = not report.unseen


def _write_repro(report: CheckReport, path: Path, prober: Prober, goldens) -> None:
    """A framework-native script that reproduces the first divergence, at `path`."""
    golden = next(g for g in goldens if g.name == report.first.golden)
    atomic_write(path, repro_script(prober.case, golden, report.first,
                                    compare.reference_hp(report.rule, golden, prober.hp), report.rule))
    report.repro_path = str(path)


#: The preset whose probes stand for each family when `fingerprint` is given no rule: the one with the
#: most knobs switched on (decoupled decay, momentum), so that the probes exercise them.
FAMILY_PROBES: Mapping[str, str] = {"adam": "adamw", "sgd": "sgd_momentum", "adagrad": "adagrad",
                                    "rmsprop": "rmsprop_momentum", "nadam": "nadamw", "radam": "radamw",
                                    "adamax": "adamax", "lion": "lion", "muon": "muon", "adafactor": "adafactor",
                                    "schedule_free": "schedulefree_adamw"}


def fingerprint_any(factory: Callable, framework: str = "torch", *, dtype: str = "float64", device: str = "cpu",
                    **hp) -> tuple[CheckReport, list[str]]:
    """Fingerprint against every family's probes (FAMILY_PROBES); returns the report of the family that
    fits best (a fit first, then the smallest error), diagnosed, and one line per family tried.

    A family whose rule the factory's signature or the overrides `hp` do not fit is skipped (said so);
    hp: canonical overrides, each applied to the families whose rule takes it."""
    tried, scored = [], []
    for family, rule in FAMILY_PROBES.items():
        takes = {k: v for k, v in hp.items() if k in get_rule(rule).defaults}
        if len(takes) < len(hp):
            tried.append(f"{family} ({rule}): skipped, its rule takes no {', '.join(sorted(set(hp) - set(takes)))}")
            continue
        try:
            report = check(factory, rule, framework, dtype=dtype, device=device, diagnose=False, **takes)
        except ValueError as exc:
            tried.append(f"{family} ({rule}): skipped, {exc}")
            continue
        fp = report.fingerprint
        if fp is None:
            tried.append(f"{family} ({rule}): no probe ran ({report.error or 'none expressible'})")
            continue
        tried.append(f"{family} ({rule}): " + (f"fits within {fp.units:.3g} units" + (f" (= {fp.preset})" if fp.preset else "")
                                               if fp.fits else f"no fit (nearest {fp.units:.3g} units)"))
        scored.append(((not fp.fits, fp.units), rule, takes))
    if not scored:
        raise ValueError("the factory can run the probes of no family: " + "; ".join(tried))
    _, rule, takes = min(scored, key=lambda x: x[0])
    return check(factory, rule, framework, dtype=dtype, device=device, **takes), tried
