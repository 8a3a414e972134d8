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

import inspect
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from optconform.reference.precision import ScalarPrecision
from optconform import registry
from optconform.adapters.base import NEUTRAL_HP, Arg, Case
from optconform.golden.format import Golden
from optconform.reference import get_rule
from optconform.reference.tolerance import TINY

from . import compare, plan, validate
from . import diagnose as _diagnose
from optconform.golden.fsio import atomic_write
from .fingerprint import Fingerprint, explain_difference, fingerprint
from .repro import repro_script


@dataclass
class CheckReport:
    """The outcome of `check`: truthy when the optimizer conforms; `str()` is the readable report."""
    factory: str
    rule: str
    framework: str
    version: str
    device: str
    dtype: str
    conforms: bool = False
    scenarios: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)      # golden -> why it could not run
    worst: compare.Divergence | None = None
    first: compare.Divergence | None = None
    fingerprint: Fingerprint | None = None
    differences: list[str] = field(default_factory=list)
    diagnosis: list[str] = field(default_factory=list)          # measured patterns (optconform.diagnose)
    unseen: list[str] = field(default_factory=list)             # knob=value flips no probe that ran can see
    error: str = ""
    repro_path: str = ""

    def __bool__(self) -> bool:
        return self.conforms

    @property
    def verdict(self) -> str:
        if self.conforms:
            return "CONFORMS"
        return "UNDECIDED" if self.unseen and not self.failed else "DOES NOT CONFORM"

    def __str__(self) -> str:
        head = (f"{self.factory} vs rule {self.rule!r} ({self.framework} {self.version}, {self.device}, {self.dtype}): "
                + self.verdict)
        lines = [head, f"  probe scenarios run: {len(self.scenarios)}, diverging: {len(self.failed)}"]
        if self.error:
            lines.append(f"  error: {self.error}")
        if self.first is not None:
            lines.append(f"  first divergence: {self.first.golden}: {self.first.describe()}")
        elif self.worst is not None:
            lines.append(f"  worst: {self.worst.golden}: {self.worst.describe()}")
        if self.unseen:
            lines.append(f"  the probes that ran cannot see {', '.join(self.unseen)}: an optimizer with that knob value "
                         f"would pass them too (make the factory take the hyper-parameters of the probes not run)")
        if self.fingerprint is not None:
            lines.append(f"  fingerprint: {self.fingerprint.describe()}")
        for diff in self.differences:
            lines.append("  " + diff)
        if self.diagnosis:
            lines.append("  diagnosis:")
            lines += [f"    - {line}" for line in self.diagnosis]
        if self.skipped:
            lines.append(f"  not run ({len(self.skipped)}): " + "; ".join(f"{g}: {why}" for g, why in self.skipped.items()))
        if self.repro_path:
            lines.append(f"  repro script: {self.repro_path}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        def div(d):
            return None if d is None else {"golden": d.golden, "step": d.step, "tensor": d.tensor, "index": list(d.index),
                                           "native": d.native, "expected": d.expected, "units": d.units}
        return {"factory": self.factory, "rule": self.rule, "framework": self.framework, "version": self.version,
                "device": self.device, "dtype": self.dtype, "conforms": self.conforms, "verdict": self.verdict,
                "scenarios": self.scenarios, "failed": self.failed, "skipped": self.skipped,
                "first_divergence": div(self.first), "worst": div(self.worst), "differences": self.differences,
                "diagnosis": self.diagnosis, "unseen_knobs": self.unseen, "error": self.error,
                "fingerprint": self.fingerprint.to_json() if self.fingerprint else None, "repro": self.repro_path}


#: Native names a factory may use instead of a canonical one, per factory style: torch's `betas`
#: tuple, Keras' `learning_rate` / `beta_1` / `epsilon`, optax's `b1` / `b2`. A class such as
#: torch.optim.AdamW is then a factory as it is.
FACTORY_ALIASES: Mapping[str, Mapping[str, tuple[Arg, ...]]] = {
    "params": {"beta1": (Arg("betas", 0),), "beta2": (Arg("betas", 1),)},
    "hp": {"lr": (Arg("learning_rate"),), "beta1": (Arg("beta_1"), Arg("b1")), "beta2": (Arg("beta_2"), Arg("b2")),
           "eps": (Arg("epsilon"),)},
}


def factory_hp_map(factory: Callable, style: str, rule_hp) -> dict[str, Arg]:
    """Canonical hyper-parameter -> the factory argument that receives it: its own name when the factory
    takes it, else a FACTORY_ALIASES name it takes (every hyper-parameter of the rule if it takes
    **kwargs)."""
    params = list(inspect.signature(factory).parameters.values())
    if style == "params" and params:
        params = params[1:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return {k: Arg(k) for k in rule_hp}
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    out = {k: Arg(k) for k in rule_hp if k in names}
    for canonical, aliases in FACTORY_ALIASES.get(style, {}).items():
        if canonical in rule_hp and canonical not in out:
            alias = next((a for a in aliases if a.name in names), None)
            if alias is not None:
                out[canonical] = alias
    return out


def accepted_hp(factory: Callable, style: str, rule_hp) -> set[str]:
    """The canonical hyper-parameters the factory takes (by name or alias)."""
    return set(factory_hp_map(factory, style, rule_hp))


def factory_case(factory: Callable, rule: str, framework: str, style: str, dtype: str,
                 precision: ScalarPrecision | None = None) -> Case:
    """A Case for a user's factory: hp_map from factory_hp_map; the rule's defaults fixed for the names
    it does not take (goldens that need another value for them cannot run)."""
    rule_obj = get_rule(rule)
    hp_map = factory_hp_map(factory, style, rule_obj.defaults)
    fixed = {k: (list(v) if isinstance(v, tuple) else v) for k, v in rule_obj.defaults.items()
             if k not in hp_map and k not in NEUTRAL_HP and k not in ("lr", "eta")}
    name = f"{getattr(factory, '__module__', '?')}:{getattr(factory, '__qualname__', repr(factory))}"
    return Case(framework=framework, name=name, native=name, rule=rule, variant="factory",
                hp_map=dict(sorted(hp_map.items())), fixed_hp=fixed, dtypes=(dtype,), factory=factory,
                precision=precision)


def _prepare(factory: Callable, rule: str, framework: str, dtype: str, device: str, repro, hp):
    """Everything validated before any work: (rule, overrides, adapter, case)."""
    rule_obj = get_rule(rule)
    hp = validate.hp_overrides(rule_obj, hp)
    if dtype not in TINY:
        raise ValueError(f"unknown dtype {dtype!r}; choose from {', '.join(TINY)}")
    if repro is not None:
        validate.output_path(repro, "repro")
    adapter = registry.load_adapter(framework)
    if not adapter.factory_style:
        raise ValueError(f"the {framework} adapter does not support user factories")
    adapter.load()
    if device not in adapter.devices():
        raise ValueError(f"device {device!r} is not available to {framework} here (available: "
                         f"{', '.join(adapter.devices())})")
    validate.factory_signature(factory, adapter.factory_style, rule_obj, FACTORY_ALIASES.get(adapter.factory_style))
    precision = adapter.factory_precision      # e.g. Keras: lr rounded to float32, powers=param
    case = factory_case(factory, rule, framework, adapter.factory_style, dtype,
                        precision.resolved(dtype) if precision is not None else None)
    return rule_obj, hp, adapter, case


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
    rule_obj, hp, adapter, case = _prepare(factory, rule, framework, dtype, device, repro, hp)
    report = CheckReport(factory=case.name, rule=rule_obj.name, framework=framework, version=adapter.version(),
                         device=device, dtype=dtype)
    goldens = [g for g in plan.all_goldens() if g.rule == plan.base_rule(rule)]
    ran = []
    for golden in goldens:
        if not plan.runnable(case, golden, adapter.supports_eta):
            report.skipped[golden.name] = _why_not(case, golden)
        else:
            ran.append(golden)
    outcomes = [o for o in (_run_one(report, adapter, case, g, hp, device, dtype) for g in ran) if o]
    variants = sensitivity_goldens(case, ran, hp)
    variant_outcomes = [o for o in (_run_one(report, adapter, case, g, hp, device, dtype) for g in variants) if o]
    report.conforms = bool(report.scenarios) and not report.failed
    if not report.scenarios:
        report.error = report.error or "the factory can express none of the rule's probe scenarios"
    if report.conforms:
        report.unseen = _diagnose.unseen_knobs(rule_obj.name, [o.golden for o in outcomes], dtype, hp, case.precision)
        report.conforms = not report.unseen
    runs = [(o.golden, o.native) for o in outcomes + variant_outcomes]
    if runs:
        report.fingerprint = fingerprint(runs, plan.base_rule(rule), dtype, case.precision, overrides=hp)
    if report.failed and runs:
        _explain(report, outcomes + variant_outcomes, runs, variants, rule_obj.name, hp, dtype, case, diagnose)
    if report.failed and repro is not None and report.first is not None and framework == "torch":
        golden = next(g for g in [*goldens, *variants] if g.name == report.first.golden)
        path = Path(repro)
        atomic_write(path, repro_script(case, golden, report.first, compare.reference_hp(rule_obj.name, golden, hp),
                                        rule_obj.name))
        report.repro_path = str(path)
    return report


def _run_one(report: CheckReport, adapter, case: Case, golden: Golden, hp, device: str,
             dtype: str) -> "_diagnose.ProbeOutcome | None":
    """Run the factory on one golden; record it in the report; the outcome (None when it raised)."""
    inp = plan.run_input(case, golden, adapter.supports_eta)
    inp = type(inp)(inp.tensors, inp.params0, inp.grads, inp.lr, inp.eta,
                    {**inp.hp, **{k: v for k, v in hp.items() if k in case.hp_map}})
    report.scenarios.append(golden.name)
    try:
        native = adapter.run(case, inp, device, dtype).params
    except BaseException as exc:  # the user's optimizer raised (even SystemExit): a finding, not a crash
        if isinstance(exc, KeyboardInterrupt):
            raise
        report.error = report.error or f"{golden.name}: {type(exc).__name__}: {exc}"
        report.failed.append(golden.name)
        return None
    knobs = get_rule(case.rule).knobs
    exp = compare.expected(case.rule, golden, case.precision, overrides=hp)
    cond = compare.conditioning(case.rule, golden, case.precision, hp)       # scalar precision (spec/tolerance.md)
    div = compare.compare(native, exp, golden, dtype, knobs, cond)
    if report.worst is None or div.units > report.worst.units:
        report.worst = div
    first = None
    if div.units > 1.0:
        report.failed.append(golden.name)
        first = compare.first_divergence(native, exp, golden, dtype, knobs, cond)
        if first is not None and report.first is None:
            report.first = first
    step = None if div.units <= 1.0 else (max(first.step, 1) if first is not None else golden.steps)
    return _diagnose.ProbeOutcome(golden, native, exp, step)


def _explain(report: CheckReport, outcomes, runs, variants, rule_name: str, hp, dtype: str, case: Case,
             diagnose: bool) -> None:
    """Why it does not conform: knob differences only when a knob vector fits (else nothing about knobs
    is established), NaN/Inf, ignored hyper-parameters, then the measured patterns."""
    fp = report.fingerprint
    if fp.fits:
        report.differences = explain_difference(fp.knobs, rule_name)
    report.differences += _nonfinite(outcomes) + _ignored_hp(runs, variants, rule_name, hp, dtype,
                                                             get_rule(rule_name).knobs, case.precision)
    if not diagnose:
        return
    report.diagnosis = _diagnose.patterns(outcomes, rule_name, dtype)
    report.diagnosis += _diagnose.verified_hints(runs, rule_name, dtype, hp, case.precision)
    bad = [(o.golden, o.native) for o in outcomes if o.first_step is not None]
    if not fp.fits and len(bad) < len(outcomes):
        sub = fingerprint(bad, plan.base_rule(rule_name), dtype, case.precision, overrides=hp)
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


#: Probes with at most this many steps are candidates for the sensitivity variants.
SENSITIVITY_STEPS = 10
#: Probes run again per perturbed hyper-parameter (the longest short probes).
SENSITIVITY_PROBES = 2


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


def _ignored_hp(runs, variants: list[Golden], rule_name: str, overrides, dtype: str, knobs,
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


def _why_not(case: Case, golden: Golden) -> str:
    for name, value in plan.scenario_hp(case.rule, golden).items():
        if name in case.fixed_hp and value != case.fixed_hp[name]:
            return f"needs {name}={value!r}, which the factory does not take"
        if name not in case.fixed_hp and name not in case.hp_map and not plan.is_neutral(name, value):
            return f"needs {name}={value!r}, which the factory does not take"
    return "needs the schedule multiplier eta, which the framework does not take"


#: The preset whose probes stand for each family when `fingerprint` is given no rule: the one with the
#: most knobs switched on (decoupled decay, momentum), so that the probes exercise them.
FAMILY_PROBES: Mapping[str, str] = {"adam": "adamw", "sgd": "sgd_momentum", "adagrad": "adagrad",
                                    "rmsprop": "rmsprop_momentum", "nadam": "nadamw", "radam": "radamw",
                                    "adamax": "adamax", "lion": "lion"}


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
