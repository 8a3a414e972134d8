"""The commands on a user's optimizer factory: `optconform check` (against a rule) and `optconform
fingerprint` (which knob vector of the spec it implements)."""
from __future__ import annotations

import json
import sys

from optconform.cli_common import NO_FIT, UsageError, check_outputs, require_known_frameworks, verify_corpus
from optconform.golden.fsio import atomic_write


def _factory_options(rule: dict, dtype: str) -> dict[str, dict]:
    """The options `check` and `fingerprint` share; `rule`: the --rule option, `dtype`: the default dtype."""
    return {
        "--framework": {"default": "torch", "help": "adapter that runs the factory (default torch; it must be "
                        "installed)"},
        "--factory": {"required": True, "help": "MODULE:FUNC (the current folder is importable); torch: "
                      "FUNC(params, **hp) -> optimizer, optax/Keras: FUNC(**hp); hp by canonical name"},
        "--rule": rule,
        "--hp": {"action": "append", "metavar": "NAME=VALUE", "help": "canonical hyper-parameter override for the "
                 "optimizer and the reference alike; repeatable; VALUE is JSON (see below)"},
        "--dtype": {"default": dtype, "help": f"dtype of the run (default {dtype})"},
        "--device": {"default": "cpu", "help": "device the framework runs on: cpu or cuda (default cpu)"},
        "--json": {"help": "write the report as JSON here (checked writable before the run)"},
    }


CHECK_OPTIONS: dict[str, dict] = {
    **_factory_options({"default": "adamw", "help": "rule to check against, a preset or preset[knob=value,...] "
                        "(default adamw)"}, "float32"),
    "--repro": {"default": None, "metavar": "PATH", "help": "write a framework-native repro script here when it "
                "does not conform (torch; default: none is written)"},
}

FINGERPRINT_OPTIONS: dict[str, dict] = _factory_options(
    {"default": None, "help": "rule whose probes to use, a preset or preset[knob=value,...] (default: every "
     "family's probes, the best fitting family is reported)"}, "float64")


def _load_factory(spec: str):
    """MODULE:FUNC -> the callable (the current directory is importable, as for `python -m`); any
    import failure (missing module, SyntaxError, an exception at import time) is a usage error."""
    from optconform import validate
    try:
        return validate.load_factory(spec)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _parse_hp(items: list[str] | None) -> dict:
    """NAME=VALUE pairs; values parsed as JSON (numbers, true/false, lists, null), else kept as strings
    (then rejected by the type check unless a string is valid). A name given twice is a usage error."""
    out = {}
    for item in items or []:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--hp {item!r}: write NAME=VALUE, e.g. --hp weight_decay=0.01")
        if name in out:
            raise UsageError(f"--hp {name}: given more than once")
        try:
            out[name] = json.loads(raw)
        except ValueError:
            out[name] = raw
    return out


def _overrides(args) -> dict:
    """--hp, validated: against --rule, or (fingerprint without --rule) by name, the rules per family."""
    from optconform import validate
    from optconform.reference import get_rule
    if args.rule is not None:
        return validate.hp_overrides(get_rule(args.rule), _parse_hp(args.hp))    # ValueError: exit 2
    hp = {name: validate.hp_value(name, value) for name, value in _parse_hp(args.hp).items()}
    if set(hp) & set(validate.SCHEDULES):
        raise UsageError("--hp lr / eta cannot be overridden: they are each probe's schedule")
    return hp


def _load_adapter(framework: str, device: str):
    """The installed adapter `framework`, which must see `device`."""
    from optconform import registry
    from optconform.adapters.base import AdapterUnavailable
    adapter = registry.load_adapter(framework)
    try:
        adapter.load()
    except AdapterUnavailable as exc:
        raise UsageError(f"--framework {framework}: not installed here ({exc})") from None
    if device not in adapter.devices():
        raise UsageError(f"device {device!r} is not available to {framework} here (available: "
                         f"{', '.join(adapter.devices())})")
    return adapter


def _check_report(args, dtype: str):
    """Validate everything (framework installed, rule, hyper-parameters, output paths, corpus, factory
    importable and callable) before running `check`."""
    from optconform.checking import check, fingerprint_any
    require_known_frameworks([args.framework])
    hp = _overrides(args)
    check_outputs(args, "json", "repro")
    verify_corpus()
    _load_adapter(args.framework, args.device)
    factory = _load_factory(args.factory)
    if args.rule is None:
        report, tried = fingerprint_any(factory, args.framework, dtype=dtype, device=args.device, **hp)
        print("families tried (their probes):\n" + "\n".join(f"  {line}" for line in tried))
        return report
    return check(factory, args.rule, args.framework, dtype=dtype, device=args.device,
                 repro=getattr(args, "repro", None), **hp)


def cmd_check(args) -> int:
    report = _check_report(args, args.dtype)
    print(report)
    if args.json:
        atomic_write(args.json, json.dumps(report.to_json(), indent=1, default=str))
    return 0 if report else 1


def _fingerprint_table(report, fp) -> list[str]:
    """The knob table: the fitted vector (knobs the probes cannot tell apart marked), or, when nothing
    fits, the nearest vector labelled as such; the same words as the summary line below it."""
    head = f"{report.factory} ({report.framework} {report.version}, {report.dtype}), probes of rule {report.rule!r}:"
    if not fp.fits:
        rows = [f"  no fit: no knob vector of the {fp.family!r} family reproduces it (nearest, {fp.units:.3g} "
                f"tolerance units off, not a finding:)"]
        rows += [f"    {name:18} {value}" for name, value in fp.summary_knobs().items()]
        return [head] + rows
    rows = []
    for name, value in fp.summary_knobs().items():
        alts = fp.ambiguous.get(name)
        rows.append(f"  {name:18} {value}" + (f"   (not told apart: {' | '.join(alts)})" if alts else ""))
    return [head] + rows


def cmd_fingerprint(args) -> int:
    report = _check_report(args, args.dtype)
    fp = report.fingerprint
    if fp is None:
        print(f"no fingerprint: {report.error or 'no probe scenario could run'}", file=sys.stderr)
        return 1
    print("\n".join(_fingerprint_table(report, fp)))
    print(f"  {fp.describe()}")
    for line in report.diagnosis if not fp.fits else []:
        print(f"  - {line}")
    if args.json:
        atomic_write(args.json, json.dumps({"factory": report.factory, "framework": report.framework,
                                            "version": report.version, "dtype": report.dtype,
                                            "probes_of": report.rule, **fp.to_json(),
                                            "diagnosis": report.diagnosis}, indent=1))
    return 0 if fp.fits else NO_FIT
