"""optconform command line: rules, golden, run, report, check, fingerprint, bench.

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
        scalar_flips = audit.observability(scalars=True)
        print("Observability under float32 bias-correction scalars (the tolerance of cases that declare "
              "powers=float32 or param; spec/tolerance.md, Scalar precision):")
        print(audit.format_observability(scalar_flips))
        flips = flips + scalar_flips
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
    from optconform import registry, results, runner
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
    if args.device not in ("cpu", "cuda", "all"):
        raise UsageError(f"unknown device {args.device!r}; choose cpu, cuda or all")
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
        if args.device == "cuda" and res and res[0].verdict not in ("unavailable", "not-installed") and not any(
                r.device == "cuda" for r in res):
            raise UsageError(f"--device cuda: {name} sees no CUDA device here")
        rows.extend(r.to_json() for r in res)
    if not rows or all(r["verdict"] == "not-installed" for r in rows):
        raise UsageError("nothing to run: no installed framework has a case matching the selection"
                         + (f" (-k {args.k!r})" if args.k else ""))
    if args.k and not any(r["verdict"] not in ("unavailable", "not-installed") for r in rows):
        raise UsageError(f"-k {args.k!r} selects no case")
    return _show(results.document(rows, environments, time.perf_counter() - started), args)


def _show(doc, args) -> int:
    """Print the matrix, details and summary of a results document; write --json/--html; exit code."""
    from optconform import report, results
    rows = doc["results"]
    print(report.matrix(rows))
    bert = report.bert_block(rows)
    if bert:
        print()
        print(bert)
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


def _cmd_report(args) -> int:
    from optconform import results
    try:
        docs = [results.read(p) for p in args.files]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return _show(results.merge(docs), args)


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


def _parse_sizes(value: str | None) -> list[float | None] | None:
    """'1e6,1e7' -> [1e6, 1e7]; 'full' = the layout's native size (BERT-base: 109,482,240)."""
    if not value:
        return None
    out: list[float | None] = []
    for item in _split(value) or []:
        if item == "full":
            out.append(None)
            continue
        try:
            n = float(item)
        except ValueError:
            raise UsageError(f"--sizes: {item!r} is not a number (e.g. 1e6,1e7 or full)") from None
        if not n >= 1:
            raise UsageError(f"--sizes: {item!r} must be >= 1 parameter")
        out.append(n)
    return out


def _cmd_bench(args) -> int:
    from optconform import bench, bench_layouts, registry
    from optconform.adapters.base import AdapterUnavailable
    explicit = _split(args.framework)
    frameworks = explicit or list(bench.STEPPERS)        # default: every framework with a stepper that imports
    for name in frameworks:
        if name not in registry.adapter_names():
            raise UsageError(f"unknown framework {name!r}; known: {', '.join(registry.adapter_names())}")
    if args.device not in ("cpu", "cuda"):
        raise UsageError(f"unknown device {args.device!r}; choose cpu or cuda")
    rules = _split(args.rule) or list(bench.DEFAULT_RULES[:1])
    table = bench.bandwidth_table()
    for rule in rules:
        if rule.split("[", 1)[0] not in table:
            raise UsageError(f"--rule {rule!r} has no bytes-per-param entry (spec/bandwidth.toml: {', '.join(table)})")
    layouts = _split(args.layout) or list(bench.DEFAULT_LAYOUTS)
    for layout in layouts:
        if layout not in bench_layouts.LAYOUTS:
            raise UsageError(f"unknown layout {layout!r}; choose from {', '.join(bench_layouts.LAYOUTS)}")
    if args.repeats < 3 or args.warmup < 0:
        raise UsageError("--repeats must be >= 3 and --warmup >= 0")
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError("--plot needs matplotlib (pip install 'optconform[report]')") from None
    try:
        cpus = sorted(os.sched_getaffinity(0))     # before a framework's OpenMP binds this thread
    except (AttributeError, OSError):
        cpus = None
    if args.device == "cpu" and not any(m in sys.modules for m in ("torch", "jax", "tensorflow", "mxnet")):
        os.environ.setdefault("OMP_PROC_BIND", "true")    # read when the framework's OpenMP starts
    docs = []
    for name in frameworks:
        config = bench.BenchConfig(framework=name, rules=rules, variants=_split(args.variant), device=args.device,
                                   sizes=_parse_sizes(args.sizes), layouts=layouts, repeats=args.repeats,
                                   warmup=args.warmup, threads=args.threads, overhead=not args.no_overhead,
                                   time_deviating=args.time_deviating, cpus=cpus)
        log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if not args.quiet else None
        try:
            docs.append(bench.run(config, log))
        except AdapterUnavailable as exc:
            if explicit:
                raise UsageError(str(exc)) from None
            print(f"optconform bench: skipping {name}: not installed ({exc})", file=sys.stderr)
        except LookupError as exc:
            raise UsageError(str(exc)) from None
    if not docs:
        raise UsageError("no framework with a benchmark stepper is installed here")
    doc = bench.merge(docs)
    print(bench.table(doc))
    if args.json:
        bench.write_json(doc, args.json)
    if args.plot:
        bench.plot(doc, args.plot)
    if not doc["rows"]:
        print("optconform bench: no configuration matched the selection", file=sys.stderr)
        return 1
    return 1 if any(r["gate"] not in bench.TIMED_VERDICTS or r["error"] for r in doc["rows"]) else 0


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
    p = sub.add_parser("bench", help="time native optimizer steps against the same-run memory roofline")
    p.add_argument("--framework", help="comma-separated frameworks with a benchmark stepper (default: every installed one)")
    p.add_argument("--rule", help="comma-separated rules (default adamw; also sgd_momentum, adam, adagrad, lamb, ...)")
    p.add_argument("--variant", help="comma-separated implementation variants (torch: forloop, foreach, fused, "
                   "compiled; default all)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--sizes", help="comma-separated parameter counts, e.g. 1e6,1e7; 'full' = the layout's own "
                   "size (default cpu 1e5,1e6,1e7,1e8; cuda adds 1e9)")
    p.add_argument("--layout", help="comma-separated: flat, bert-base (BERT-base's 199 tensors scaled to each size; "
                   "default both)")
    p.add_argument("--repeats", type=int, default=25, help="timed samples per configuration (default 25)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps after the first (default 5)")
    p.add_argument("--threads", type=int, help="CPU threads, pinned to the first N allowed CPUs (default all)")
    p.add_argument("--no-overhead", action="store_true", help="skip the harness-vs-bare-loop measurement")
    p.add_argument("--time-deviating", action="store_true", help="also time configurations that fail their "
                   "conformance gate (marked; the exit status stays 1)")
    p.add_argument("--json", help="write the results JSON here")
    p.add_argument("--plot", help="write a PNG of step time vs parameters with the roofline here")
    p.add_argument("--quiet", action="store_true", help="no per-configuration progress on stderr")
    p.set_defaults(func=_cmd_bench)
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
