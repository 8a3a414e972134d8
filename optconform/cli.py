"""optconform command line: rules, golden, run, report, check, fingerprint.

Exit codes: 0 everything conforms (or is a registered deviation), 1 an unexpected nonconformance or
a failed check, 2 a usage error (a clear message names what is wrong).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Sequence

USAGE_ERROR = 2


class UsageError(Exception):
    """Bad command-line input; printed without a traceback, exit 2."""


def _cmd_rules(args) -> int:
    from optconform.reference import families, knobs, rules
    from optconform.reference.rules import applicable_knobs
    all_rules = rules()
    if args.json:
        doc = {"knobs": {k: {"doc": v.doc, "values": dict(v.values), "applies_when": dict(v.applies_when)}
                         for k, v in knobs().items()},
               "families": {k: {"doc": f.doc, "knobs": {n: list(vals) for n, vals in f.knobs.items()}}
                            for k, f in families().items()},
               "rules": {n: {"family": r.family, "doc": r.doc, "knobs": dict(r.knobs),
                             "defaults": {k: (list(v) if isinstance(v, tuple) else v) for k, v in r.defaults.items()},
                             "mirrors": list(r.mirrors), "cite": list(r.cite)} for n, r in all_rules.items()}}
        print(json.dumps(doc, indent=1, default=str))
        return 0
    for name, rule in all_rules.items():
        print(f"{name}  [{rule.family}]  {rule.doc}")
        print("    knobs: " + ", ".join(f"{k}={v}" for k, v in applicable_knobs(rule.knobs).items()))
        shown = {k: v for k, v in rule.defaults.items() if k not in ("eta", "rescale_grad", "clip_value", "clip_norm",
                                                                    "clip_global_norm", "weight_decay_mask")}
        print("    defaults: " + ", ".join(f"{k}={v!r}" for k, v in shown.items()))
        if rule.mirrors:
            print("    mirrors: " + "; ".join(rule.mirrors))
    return 0


def _cmd_golden(args) -> int:
    from optconform.golden import corpus
    if args.regenerate:
        written = corpus.regenerate()
        print(f"wrote {len(written)} golden files and {corpus.MANIFEST} to {corpus.corpus_dir()}")
    if args.check:
        problems, checked = corpus.check()
        for p in problems:
            print(f"golden check: {p}", file=sys.stderr)
        if problems:
            print(f"golden check FAILED: {len(problems)} problem(s) in {corpus.corpus_dir()}", file=sys.stderr)
            return 1
        print(f"golden check: {checked} files match the manifest and the reference")
    if args.audit:
        from optconform.golden import audit
        flips = audit.observability()
        print("Observability (every knob flip must move some golden case by >= "
              f"{audit.MIN_MARGIN:g} float32 tolerance units):")
        print(audit.format_observability(flips))
        print()
        print("float32 sanity (the reference's own maths in float32 vs the float64 goldens):")
        sanity = audit.float32_sanity()
        print(audit.format_sanity(sanity))
        if not all(f.caught for f in flips) or max(r.worst_units for r in sanity) >= 1.0:
            return 1
    if not (args.regenerate or args.check or args.audit):
        raise UsageError("golden: give --regenerate, --check and/or --audit")
    return 0


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _progress(enabled: bool):
    if not enabled:
        return None
    started = time.perf_counter()

    def show(done: int, total: int, label: str) -> None:
        width = 30
        filled = int(width * done / max(total, 1))
        text = f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {time.perf_counter() - started:5.1f}s {label[:50]:<50}"
        print(text, end="" if done < total else "\n", file=sys.stderr, flush=True)
    return show


def _cmd_run(args) -> int:
    from optconform import registry, report, results, runner
    from optconform.adapters.base import DTYPES
    known = registry.adapter_names()
    requested = _split(args.framework)
    required = set(_split(os.environ.get("OPTCONFORM_REQUIRE")) or [])
    for name in (requested or []) + sorted(required):
        if name not in known:
            raise UsageError(f"unknown framework {name!r}; known: {', '.join(known)}")
    frameworks = requested or known
    dtypes = _split(args.dtype)
    for d in dtypes or []:
        if d not in DTYPES:
            raise UsageError(f"unknown dtype {d!r}; choose from {', '.join(DTYPES)}")
    devices = None if args.device == "all" else [args.device]
    if args.html:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError("--html needs matplotlib (pip install 'optconform[report]')") from None
    started = time.perf_counter()
    rows, environments = [], []
    for name in frameworks:
        adapter = registry.load_adapter(name)
        progress = _progress(sys.stderr.isatty() and not args.quiet)
        res = runner.run_adapter(adapter, devices, dtypes, args.k, progress)
        if res and res[0].verdict == "unavailable" and not (requested or name in required):
            res[0].verdict = "not-installed"
        if res and res[0].verdict not in ("unavailable", "not-installed"):
            environments.append({"framework": name, "version": res[0].framework_version,
                                 "devices": {r.device: r.device_name for r in res},
                                 "gpu_driver": results.gpu_driver() if any(r.device == "cuda" for r in res) else ""})
        rows.extend(r.to_json() for r in res)
    doc = results.document(rows, environments, time.perf_counter() - started)
    print(report.matrix(rows))
    detail = report.details(rows)
    if detail:
        print()
        print(detail)
    print()
    print(report.summary(rows, doc["seconds"]))
    if args.json:
        results.write(args.json, doc)
    if args.html:
        from optconform import html
        with open(args.html, "w", encoding="utf-8") as fh:
            fh.write(html.render(doc))
    return 1 if any(r["verdict"] in report.FAILING for r in rows) else 0


def _cmd_report(args) -> int:
    from optconform import report, results
    try:
        docs = [results.read(p) for p in args.files]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    doc = results.merge(docs)
    rows = doc["results"]
    print(report.matrix(rows))
    detail = report.details(rows)
    if detail:
        print()
        print(detail)
    print()
    print(report.summary(rows, doc["seconds"]))
    if args.json:
        results.write(args.json, doc)
    if args.html:
        from optconform import html
        try:
            page = html.render(doc)
        except RuntimeError as exc:
            raise UsageError(str(exc)) from None
        with open(args.html, "w", encoding="utf-8") as fh:
            fh.write(page)
    return 1 if any(r["verdict"] in report.FAILING for r in rows) else 0


def _load_factory(spec: str):
    """MODULE:FUNC -> the callable (the current directory is importable, as for `python -m`)."""
    import importlib
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"--factory {spec!r}: write MODULE:FUNC, e.g. my_optim:make_adamw")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"--factory {spec!r}: cannot import module {module_name!r}: {exc}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"--factory {spec!r}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UsageError(f"--factory {spec!r}: {attr!r} is not callable")
    return obj


def _parse_hp(items: list[str] | None) -> dict:
    """NAME=VALUE pairs; values parsed as JSON (numbers, true/false, lists), else kept as strings."""
    out = {}
    for item in items or []:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--hp {item!r}: write NAME=VALUE, e.g. --hp weight_decay=0.01")
        try:
            out[name.strip()] = json.loads(raw)
        except ValueError:
            out[name.strip()] = raw
    return out


def _check_report(args, dtype: str):
    from optconform import registry
    from optconform.checking import check
    from optconform.reference import get_rule
    if args.framework not in registry.adapter_names():
        raise UsageError(f"unknown framework {args.framework!r}; known: {', '.join(registry.adapter_names())}")
    get_rule(args.rule)                          # a clear ValueError for an unknown rule
    factory = _load_factory(args.factory)
    return check(factory, args.rule, args.framework, dtype=dtype, device=args.device,
                 repro=getattr(args, "repro", None), **_parse_hp(args.hp))


def _cmd_check(args) -> int:
    report = _check_report(args, args.dtype)
    print(report)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report.to_json(), fh, indent=1, default=str)
    return 0 if report else 1


def _cmd_fingerprint(args) -> int:
    report = _check_report(args, args.dtype)
    fp = report.fingerprint
    if fp is None:
        print(f"no fingerprint: {report.error or 'no probe scenario could run'}", file=sys.stderr)
        return 1
    print(f"{report.factory} ({report.framework} {report.version}, {report.dtype}), probes of rule {report.rule!r}:")
    for name, value in fp.summary_knobs().items():
        print(f"  {name:18} {value}")
    print(f"  {fp.describe()}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"factory": report.factory, "framework": report.framework, "version": report.version,
                       "dtype": report.dtype, "probes_of": report.rule, **fp.to_json()}, fh, indent=1)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="optconform", description="Conformance of optimizer update rules "
                                     "across frameworks, against a float64 reference.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("rules", help="list the spec's rules (presets) with knobs and defaults")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_rules)
    p = sub.add_parser("golden", help="regenerate, check or audit the golden corpus")
    p.add_argument("--regenerate", action="store_true", help="rewrite every golden file (deterministic)")
    p.add_argument("--check", action="store_true", help="verify the manifest and recompute every case")
    p.add_argument("--audit", action="store_true", help="observability and float32-sanity tables")
    p.set_defaults(func=_cmd_golden)
    p = sub.add_parser("run", help="run the conformance matrix")
    p.add_argument("--framework", help="comma-separated adapters (default: all; missing ones are listed)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or all (default cpu)")
    p.add_argument("--dtype", help="comma-separated dtypes (default: every dtype each case supports)")
    p.add_argument("-k", help="only cases whose id contains this text (or matches this glob)")
    p.add_argument("--json", help="write the results JSON here")
    p.add_argument("--html", help="write a self-contained HTML report here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_run)
    for name, helptext, dtype in (("check", "check a user's optimizer factory against a rule (exit 0 conforms, 1 not)", "float32"),
                                  ("fingerprint", "infer the knob vector of a user's optimizer factory", "float64")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--framework", default="torch", help="adapter that runs the factory (default torch)")
        p.add_argument("--factory", required=True, help="MODULE:FUNC; torch: FUNC(params, **hp) -> optimizer")
        p.add_argument("--rule", default="adamw", help="rule to check against / whose probes to use (default adamw)")
        p.add_argument("--hp", action="append", metavar="NAME=VALUE", help="canonical hyper-parameter override")
        p.add_argument("--dtype", default=dtype, help=f"dtype of the run (default {dtype})")
        p.add_argument("--device", default="cpu")
        p.add_argument("--json", help="write the report as JSON here")
        if name == "check":
            p.add_argument("--repro", default="optconform_repro.py",
                           help="where to write a framework-native repro script on failure")
        p.set_defaults(func=_cmd_check if name == "check" else _cmd_fingerprint)
    p = sub.add_parser("report", help="merge results JSON files from several environments")
    p.add_argument("files", nargs="+")
    p.add_argument("--json", help="write the merged results JSON here")
    p.add_argument("--html", help="write a self-contained HTML report here")
    p.set_defaults(func=_cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"optconform {args.command}: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except ValueError as exc:      # bad rule / hyper-parameter / corrupt file, named by the message
        print(f"optconform {args.command}: error: {exc}", file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
