"""optconform command line: rules, golden, run, report, check, fingerprint, bench.

Exit codes: 0 everything conforms (or is a registered deviation), 1 an unexpected nonconformance or
a failed check, 2 a usage error (a clear message names what is wrong), 3 fingerprint: no fit.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import math
import time
from typing import Sequence

from optconform.golden.fsio import atomic_write

USAGE_ERROR = 2
NO_FIT = 3


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
        from optconform.golden import wild
        print()
        print("Wild variants (implementation choices seen in third-party optimizers, golden/wild.py):")
        wilds = wild.wild_observability()
        print(wild.format_wild(wilds))
        if not all(f.caught for f in flips) or max(r.worst_units for r in sanity) >= 1.0 or \
                not all(w.caught for w in wilds):
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
    from optconform import natives, registry, results
    from optconform.adapters.base import DTYPES
    known = registry.adapter_names()
    requested = _unique(_split(args.framework), "--framework")
    required = set(_split(os.environ.get("OPTCONFORM_REQUIRE")) or [])
    for name in (requested or []) + sorted(required):
        if name not in known:
            raise UsageError(f"unknown framework {name!r}; known: {', '.join(known)}")
    frameworks = requested or known
    dtypes = _unique(_split(args.dtype), "--dtype")
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
    _check_outputs(args, "json", "html")
    _verify_corpus()
    if args.device == "cuda":
        _check_cuda(frameworks, set(requested or []) | required)
    started = time.perf_counter()
    rows, environments = [], []
    for name in frameworks:
        progress = _progress(sys.stderr.isatty() and not args.quiet)
        res = _run_isolated(name, devices, dtypes, args.k, progress)
        if res and res[0].verdict == "unavailable" and not (requested or name in required):
            res[0].verdict = "not-installed"
        if res and res[0].verdict not in ("unavailable", "not-installed") and res[0].case != f"{name}-*":
            environments.append({"framework": name, "version": res[0].framework_version,
                                 "devices": {r.device: r.device_name for r in res},
                                 "gpu_driver": results.gpu_driver() if any(r.device == "cuda" for r in res) else "",
                                 "native_options": natives.options(r.native for r in res if r.native)})
        rows.extend(r.to_json() for r in res)
    if not rows or all(r["verdict"] == "not-installed" for r in rows):
        raise UsageError("nothing to run: no installed framework has a case matching the selection"
                         + (f" (-k {args.k!r})" if args.k else ""))
    if args.k and not any(r["verdict"] not in ("unavailable", "not-installed") for r in rows):
        raise UsageError(f"-k {args.k!r} selects no case")
    return _show(results.document(rows, environments, time.perf_counter() - started), args)


def _unique(values: list[str] | None, flag: str) -> list[str] | None:
    """`values`, or a usage error naming a value given twice (it would double rows silently)."""
    from optconform import validate
    try:
        return validate.unique(values, flag)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _check_outputs(args, *flags: str) -> None:
    """Every output path given (--json, --html, ...) can be written: checked before any work."""
    from optconform import validate
    given = {f"--{flag}": getattr(args, flag, None) for flag in flags}
    try:
        for flag, path in given.items():
            if path:
                validate.output_path(path, flag)
        validate.distinct_outputs(given)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _verify_corpus() -> None:
    """Read and verify the golden corpus (every SHA-256, manifest schema, pinned digest) before any
    framework runs: a tampered golden is an integrity error, never FAIL rows blaming a framework."""
    from optconform import plan
    from optconform.golden.format import GoldenFormatError
    try:
        plan.all_goldens()
    except GoldenFormatError as exc:
        raise UsageError(f"golden corpus integrity: {exc}") from None


def _check_cuda(frameworks: list[str], named: set[str]) -> None:
    """--device cuda: every named installed framework, and at least one framework, must see a GPU."""
    from optconform import registry
    seen = {}
    for name in frameworks:
        try:
            seen[name] = registry.load_adapter(name).devices()
        except BaseException as exc:  # not installed or broken: reported as its row later
            if isinstance(exc, KeyboardInterrupt):
                raise
    for name, devs in seen.items():
        if name in named and "cuda" not in devs:
            raise UsageError(f"--device cuda: {name} sees no CUDA device here (devices: {', '.join(devs)})")
    if not any("cuda" in devs for devs in seen.values()):
        raise UsageError("--device cuda: no installed framework sees a CUDA device here"
                         + (f" ({', '.join(seen)}: cpu only)" if seen else ""))


def _run_isolated(name: str, devices, dtypes, pattern, progress) -> list:
    """runner.run_adapter for one framework; a broken adapter (entry point that fails to import,
    cases() raising, even SystemExit) becomes one error row and the other frameworks still run."""
    from optconform import registry, runner
    try:
        return runner.run_adapter(registry.load_adapter(name), devices, dtypes, pattern, progress)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        return [runner.CaseResult(framework=name, framework_version="", case=f"{name}-*", name="*", variant="",
                                  native="", device="", device_name="", dtype="", claimed_rule="", verdict="error",
                                  error=f"adapter {name!r} failed: {type(exc).__name__}: {exc}")]


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
        atomic_write(args.html, page)
    return 1 if any(r["verdict"] in report.FAILING for r in rows) else 0


def _cmd_report(args) -> int:
    from optconform import results, validate
    _unique([str(os.path.realpath(p)) for p in args.files], "results file")
    _check_outputs(args, "json", "html")
    docs = _read_results(args.files)
    first_seen: dict[tuple, str] = {}
    for path, doc in zip(args.files, docs):
        for row in doc["results"]:
            key = validate.row_key(row)
            if first_seen.setdefault(key, path) != path:
                raise UsageError(f"{path}: row {row['case']} {row.get('device', '')} {row.get('dtype', '')} is also in "
                                 f"{first_seen[key]}; merging would count it twice")
    return _show(results.merge(docs), args)


def _read_results(paths: Sequence[str]) -> list[dict]:
    from optconform import results
    try:
        return [results.read(p) for p in paths]
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _cmd_diff(args) -> int:
    from optconform import diff
    from optconform.golden.fsio import atomic_write
    _check_outputs(args, "markdown", "json")
    base, new = _read_results([args.base, args.new])
    try:
        found = diff.compare(base, new)
    except ValueError as exc:
        raise UsageError(f"{args.base} vs {args.new}: {exc}") from None
    text = diff.markdown(found)
    print(text, end="")
    if args.markdown:
        atomic_write(args.markdown, text)
    if args.json:
        atomic_write(args.json, json.dumps(found.to_json(), indent=1) + "\n")
    return 1 if found.changed and not args.report_only else 0


def _cmd_baseline(args) -> int:
    from optconform import baseline
    _check_outputs(args, "out")
    (doc,) = _read_results([args.results])
    baseline.write(args.out, doc)
    print(f"wrote baseline {args.out}: {len(doc['results'])} rows")
    return 0


def _cmd_history(args) -> int:
    from pathlib import Path

    from optconform.history import environments, tables
    if args.from_json:
        history = _read_history(args.from_json)
    else:
        releases = environments.select(args.framework, _split(args.releases))
        environments.source_root()
        out = Path(args.out)
        earlier = _read_history(str(out / f"{args.framework}.json")) if args.update else None
        out.mkdir(parents=True, exist_ok=True)
        commit = environments.source_commit()
        records = []
        for i, release in enumerate(releases, 1):
            print(f"[{i}/{len(releases)}] {release.framework} {release.label}", file=sys.stderr, flush=True)
            record = environments.run(release, Path(args.env_dir).expanduser(), out, args.keep_envs,
                                      lambda msg: print(msg, file=sys.stderr, flush=True))
            records.append({**record, "commit": commit})
        history = tables.document(args.framework, tables.updated(earlier, records), commit)
    paths = tables.write(history, args.out)
    print(f"wrote {' and '.join(paths)}")
    failed = [r["release"] for r in history["releases"] if r["doc"] is None]
    if failed:
        print(f"optconform history: no run for {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _read_history(path: str) -> dict:
    from optconform.history import tables
    try:
        doc = json.loads(open(path, encoding="utf-8").read())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read history JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("schema") != tables.SCHEMA:
        raise UsageError(f"{path}: not an optconform history file")
    return doc


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


def _check_report(args, dtype: str):
    """Validate everything (framework installed, rule, hyper-parameters, output paths, corpus, factory
    importable and callable) before running `check`."""
    from optconform import registry, validate
    from optconform.adapters.base import AdapterUnavailable
    from optconform.checking import check
    from optconform.reference import get_rule
    if args.framework not in registry.adapter_names():
        raise UsageError(f"unknown framework {args.framework!r}; known: {', '.join(registry.adapter_names())}")
    if args.rule is None:          # fingerprint without --rule: names checked here, rules per family
        hp = {name: validate.hp_value(name, value) for name, value in _parse_hp(args.hp).items()}
        if set(hp) & set(validate.SCHEDULES):
            raise UsageError("--hp lr / eta cannot be overridden: they are each probe's schedule")
    else:
        hp = validate.hp_overrides(get_rule(args.rule), _parse_hp(args.hp))    # ValueError: exit 2
    _check_outputs(args, "json", "repro")
    _verify_corpus()
    adapter = registry.load_adapter(args.framework)
    try:
        adapter.load()
    except AdapterUnavailable as exc:
        raise UsageError(f"--framework {args.framework}: not installed here ({exc})") from None
    if args.device not in adapter.devices():
        raise UsageError(f"device {args.device!r} is not available to {args.framework} here (available: "
                         f"{', '.join(adapter.devices())})")
    factory = _load_factory(args.factory)
    if args.rule is None:
        from optconform.checking import fingerprint_any
        report, tried = fingerprint_any(factory, args.framework, dtype=dtype, device=args.device, **hp)
        print("families tried (their probes):\n" + "\n".join(f"  {line}" for line in tried))
        return report
    return check(factory, args.rule, args.framework, dtype=dtype, device=args.device,
                 repro=getattr(args, "repro", None), **hp)


def _cmd_check(args) -> int:
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


def _cmd_fingerprint(args) -> int:
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
        if not math.isfinite(n) or not n >= 1:
            raise UsageError(f"--sizes: {item!r} must be a finite number >= 1 of parameters")
        out.append(n)
    return out


def _check_threads(threads: int | None) -> None:
    """--threads: at least 1 and at most the CPUs this process may run on."""
    if threads is None:
        return
    try:
        allowed = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        allowed = os.cpu_count() or 1
    if not 1 <= threads <= allowed:
        raise UsageError(f"--threads {threads}: must be between 1 and {allowed} (the CPUs available here)")


def _cmd_bench(args) -> int:
    from optconform import bench, bench_layouts, registry
    from optconform.adapters.base import AdapterUnavailable
    explicit = _unique(_split(args.framework), "--framework")
    frameworks = explicit or bench.stepper_frameworks()   # default: every framework with a stepper that imports
    for name in frameworks:
        if name not in registry.adapter_names():
            raise UsageError(f"unknown framework {name!r}; known: {', '.join(registry.adapter_names())}")
    if args.device not in ("cpu", "cuda"):
        raise UsageError(f"unknown device {args.device!r}; choose cpu or cuda")
    rules = _unique(_split(args.rule), "--rule") or list(bench.DEFAULT_RULES[:1])
    table = bench.bandwidth_table()
    for rule in rules:
        if rule.split("[", 1)[0] not in table:
            raise UsageError(f"--rule {rule!r} has no bytes-per-param entry (spec/bandwidth.toml: {', '.join(table)})")
    layouts = _unique(_split(args.layout), "--layout") or list(bench.DEFAULT_LAYOUTS)
    for layout in layouts:
        if layout not in bench_layouts.LAYOUTS:
            raise UsageError(f"unknown layout {layout!r}; choose from {', '.join(bench_layouts.LAYOUTS)}")
    if args.repeats < 3 or args.warmup < 0:
        raise UsageError("--repeats must be >= 3 and --warmup >= 0")
    _check_threads(args.threads)
    _unique(_split(args.variant), "--variant")
    _unique(_split(args.sizes), "--sizes")
    sizes = _parse_sizes(args.sizes)
    _check_outputs(args, "json", "plot")
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
                                   sizes=sizes, layouts=layouts, repeats=args.repeats,
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


EXIT_CODES = """exit codes:
  0  everything conforms or is a registered deviation (check: the optimizer conforms; fingerprint: a
     knob vector of the spec reproduces it)
  1  an unexpected nonconformance, an error row, a registered deviation that now conforms (XPASS),
     a check that does not conform or is undecided (its probes cannot see a knob of the rule)
  2  a usage error, reported on one line before any work: unknown name, mistyped or out-of-range value,
     unwritable output path, missing device or framework, factory that cannot be imported or called
     with canonical hyper-parameter names, tampered or incomplete golden corpus
  3  fingerprint: no fit, no knob vector of the spec reproduces the optimizer"""

SYNTAX = """rules: a preset name (see `optconform rules`) or a derived rule preset[knob=value,...],
  e.g. --rule 'adamw[decay_order=after]' (knobs and values: `optconform rules --json`).
hyper-parameters: --hp NAME=VALUE, repeatable, one name per flag; VALUE is JSON: --hp eps=1e-6
  --hp nesterov=true --hp 'weight_decay_exclude=["LayerNorm", "bias"]' --hp clip_value=null.
  NAME is a canonical name of the rule (beta1, beta2, eps, weight_decay, momentum, ...); lr and eta
  are each scenario's schedule and cannot be overridden. Types and ranges: spec/hyperparameters.toml."""


def _formatter(prog):
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


#: `optconform history` options: flag -> argparse keywords
HISTORY_OPTIONS: dict[str, dict] = {
    "--framework": {"default": "torch", "help": "torch, jax or tensorflow (default torch)"},
    "--releases": {"help": "comma-separated release labels (default: every listed one)"},
    "--out": {"default": "docs/history", "help": "output folder (default docs/history)"},
    "--env-dir": {"default": "~/.cache/optconform/history", "help": "where the environments live"},
    "--keep-envs": {"action": "store_true",
                    "help": "keep each environment after its run (reused while its requirements are unchanged)"},
    "--from-json": {"help": "no runs: regenerate the markdown from a history JSON written before"},
    "--update": {"action": "store_true", "help": "rerun only --releases and keep the other releases' recorded runs "
                 "from <out>/<framework>.json (each run records its own optconform commit)"},
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="optconform", description="Conformance of optimizer update rules "
                                     "across frameworks, against a float64 reference.",
                                     epilog=f"{EXIT_CODES}\n\n{SYNTAX}", formatter_class=_formatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="rules | golden | run | check | fingerprint | report | bench "
                                     "(optconform COMMAND --help)")
    _add_parsers(sub)
    return parser


def _add_parsers(sub) -> None:
    """One sub-parser per command, each with the exit codes (and the --hp / rule syntax) in its help."""
    def add(name, helptext, syntax=False):
        return sub.add_parser(name, help=helptext, description=helptext, formatter_class=_formatter,
                              epilog=EXIT_CODES + (f"\n\n{SYNTAX}" if syntax else ""))
    p = add("rules", "list the spec's rules (presets) with knobs and defaults")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_rules)
    p = add("golden", "regenerate, check or audit the golden corpus")
    p.add_argument("--regenerate", action="store_true", help="rewrite every golden file (deterministic)")
    p.add_argument("--check", action="store_true", help="verify the manifest and recompute every case")
    p.add_argument("--audit", action="store_true", help="observability and float32-sanity tables")
    p.set_defaults(func=_cmd_golden)
    p = add("run", "run the conformance matrix")
    p.add_argument("--framework", help="comma-separated adapters, each at most once (default: all; missing "
                   "ones are listed)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or all (default cpu); cuda without a visible "
                   "GPU is a usage error")
    p.add_argument("--dtype", help="comma-separated dtypes: float64, float32, bfloat16, float16 (default: every "
                   "dtype each case supports)")
    p.add_argument("-k", help="only cases whose id contains this text (or matches this glob)")
    p.add_argument("--json", help="write the results JSON here")
    p.add_argument("--html", help="write a self-contained HTML report here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_run)
    for name, helptext, dtype in (("check", "check a user's optimizer factory against a rule (exit 0 conforms, 1 not "
                                   "or undecided)", "float32"),
                                  ("fingerprint", "infer the knob vector of a user's optimizer factory (exit 0 fits, "
                                   "3 no fit)", "float64")):
        p = add(name, helptext, syntax=True)
        p.add_argument("--framework", default="torch", help="adapter that runs the factory (default torch; "
                       "it must be installed)")
        p.add_argument("--factory", required=True, help="MODULE:FUNC (the current folder is importable); torch: "
                       "FUNC(params, **hp) -> optimizer, optax/Keras: FUNC(**hp); hp by canonical name")
        if name == "check":
            p.add_argument("--rule", default="adamw", help="rule to check against, a preset or "
                           "preset[knob=value,...] (default adamw)")
        else:
            p.add_argument("--rule", default=None, help="rule whose probes to use, a preset or preset[knob=value,...] "
                           "(default: every family's probes, the best fitting family is reported)")
        p.add_argument("--hp", action="append", metavar="NAME=VALUE", help="canonical hyper-parameter override "
                       "for the optimizer and the reference alike; repeatable; VALUE is JSON (see below)")
        p.add_argument("--dtype", default=dtype, help=f"dtype of the run (default {dtype})")
        p.add_argument("--device", default="cpu", help="device the framework runs on: cpu or cuda (default cpu)")
        p.add_argument("--json", help="write the report as JSON here (checked writable before the run)")
        if name == "check":
            p.add_argument("--repro", default=None, metavar="PATH",
                           help="write a framework-native repro script here when it does not conform (torch; "
                           "default: none is written)")
        p.set_defaults(func=_cmd_check if name == "check" else _cmd_fingerprint)
    p = add("report", "merge results JSON files from several environments")
    p.add_argument("files", nargs="+", metavar="RESULTS.json", help="results files written by `run --json`, "
                   "each once; a row present in two files is an error")
    p.add_argument("--json", help="write the merged results JSON here")
    p.add_argument("--html", help="write a self-contained HTML report here")
    p.set_defaults(func=_cmd_report)
    p = add("diff", "what changed between two results files (e.g. a pinned baseline and a newer "
                       "release): exit 0 no semantic change, 1 a semantic change, 2 a usage error")
    p.add_argument("base", help="the earlier results JSON, e.g. baselines/torch.json")
    p.add_argument("new", help="the later results JSON, e.g. from optconform run --json")
    p.add_argument("--markdown", help="write the diff as markdown here (a CI job summary or PR comment)")
    p.add_argument("--json", help="write the diff as JSON here")
    p.add_argument("--report-only", action="store_true", help="exit 0 even on a semantic change (the run is "
                   "becoming the new baseline: tools/update-baselines)")
    p.set_defaults(func=_cmd_diff)
    p = add("baseline", "write a committed baseline (baselines/<lane>.json) from a results JSON")
    p.add_argument("results", help="a results JSON from optconform run --json")
    p.add_argument("out", help="the baseline to write, e.g. baselines/torch.json")
    p.set_defaults(func=_cmd_baseline)
    p = add("history", "install each release of a framework (optconform/history/releases.toml) "
                       "in a throwaway environment, run the matrix on CPU in float64 and float32, and write "
                       "<out>/<framework>.md (cases x releases, what changed) and .json; exit 1 if a release "
                       "did not run")
    for flag, options in HISTORY_OPTIONS.items():
        p.add_argument(flag, **options)
    p.set_defaults(func=_cmd_history)
    p = add("bench", "time native optimizer steps against the same-run memory roofline")
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
    p.add_argument("--threads", type=int, help="CPU threads, 1..N allowed CPUs, pinned to the first N (default all)")
    p.add_argument("--no-overhead", action="store_true", help="skip the harness-vs-bare-loop measurement")
    p.add_argument("--time-deviating", action="store_true", help="also time configurations that fail their "
                   "conformance gate (marked; the exit status stays 1)")
    p.add_argument("--json", help="write the results JSON here")
    p.add_argument("--plot", help="write a PNG of step time vs parameters with the roofline here")
    p.add_argument("--quiet", action="store_true", help="no per-configuration progress on stderr")
    p.set_defaults(func=_cmd_bench)


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
