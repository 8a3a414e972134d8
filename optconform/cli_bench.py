"""`optconform bench`: time native optimizer steps against the same-run memory roofline (optconform.bench)."""
from __future__ import annotations

import math
import os
import sys

from optconform.cli_common import (UsageError, check_outputs, require_known_frameworks, require_matplotlib,
                                   split_list, unique)

BENCH_OPTIONS: dict[str, dict] = {
    "--framework": {"help": "comma-separated frameworks with a benchmark stepper (default: every installed one)"},
    "--rule": {"help": "comma-separated rules (default adamw; also sgd_momentum, adam, adagrad, lamb, ...)"},
    "--variant": {"help": "comma-separated implementation variants (torch: forloop, foreach, fused, compiled; "
                  "default all)"},
    "--device": {"default": "cpu", "help": "cpu or cuda (default cpu)"},
    "--sizes": {"help": "comma-separated parameter counts, e.g. 1e6,1e7; 'full' = the layout's own size (default "
                "cpu 1e5,1e6,1e7,1e8; cuda adds 1e9)"},
    "--layout": {"help": "comma-separated: flat, bert-base (BERT-base's 199 tensors scaled to each size; default "
                 "both)"},
    "--repeats": {"type": int, "default": 15, "help": "timed samples per block (default 15)"},
    "--blocks": {"type": int, "default": 7, "help": "rounds per configuration (default 7); in each, the limit probe, "
                 "the step (and the bare native call) alternate sample by sample; the %% of limit and the "
                 "overhead are medians over neighbouring sample pairs with a distribution-free 95 %% CI, the "
                 "limit is reported with its spread over the rounds"},
    "--warmup": {"type": int, "default": 5, "help": "untimed steps after the first (default 5)"},
    "--threads": {"type": int, "help": "CPU threads, 1..N allowed CPUs, pinned to the first N (default all)"},
    "--no-overhead": {"action": "store_true", "help": "skip the harness-vs-bare-loop measurement"},
    "--time-deviating": {"action": "store_true", "help": "also time configurations that fail their conformance "
                         "gate (marked; the exit status stays 1)"},
    "--json": {"help": "write the results JSON here"},
    "--plot": {"help": "write a PNG of step time vs parameters with the roofline here"},
    "--quiet": {"action": "store_true", "help": "no per-configuration progress on stderr"},
}

#: frameworks whose OpenMP runtime, once loaded, no longer reads OMP_PROC_BIND
OPENMP_FRAMEWORKS = ("torch", "jax", "tensorflow", "mxnet")


def cmd_bench(args) -> int:
    from optconform import bench
    from optconform.bench_host import affinity
    explicit = unique(split_list(args.framework), "--framework")
    frameworks = explicit or bench.stepper_frameworks()   # default: every framework with a stepper that imports
    require_known_frameworks(frameworks)
    selection = _selection(args)
    cpus = affinity()     # before a framework's OpenMP binds this thread
    if args.device == "cpu" and not any(m in sys.modules for m in OPENMP_FRAMEWORKS):
        os.environ.setdefault("OMP_PROC_BIND", "true")    # read when the framework's OpenMP starts
    docs = []
    for name in frameworks:
        config = bench.BenchConfig(framework=name, device=args.device, repeats=args.repeats, blocks=args.blocks,
                                   warmup=args.warmup,
                                   threads=args.threads, overhead=not args.no_overhead,
                                   time_deviating=args.time_deviating, cpus=cpus, **selection)
        docs.extend(_run_one(config, args.quiet, explicit))
    if not docs:
        raise UsageError("no framework with a benchmark stepper is installed here")
    return _show(bench.merge(docs), args)


def _selection(args) -> dict:
    """Rules, variants, sizes and layouts (BenchConfig keywords), every flag checked before any work."""
    from optconform import bench, bench_layouts
    if args.device not in ("cpu", "cuda"):
        raise UsageError(f"unknown device {args.device!r}; choose cpu or cuda")
    rules = unique(split_list(args.rule), "--rule") or list(bench.DEFAULT_RULES[:1])
    table = bench.bandwidth_table()
    for rule in rules:
        if rule.split("[", 1)[0] not in table:
            raise UsageError(f"--rule {rule!r} has no bytes-per-param entry (spec/bandwidth.toml: {', '.join(table)})")
    layouts = unique(split_list(args.layout), "--layout") or list(bench.DEFAULT_LAYOUTS)
    for layout in layouts:
        if layout not in bench_layouts.LAYOUTS:
            raise UsageError(f"unknown layout {layout!r}; choose from {', '.join(bench_layouts.LAYOUTS)}")
    if args.repeats < 3 or args.warmup < 0 or args.blocks < 3:
        raise UsageError("--repeats and --blocks must be >= 3 and --warmup >= 0")
    _check_threads(args.threads)
    variants = unique(split_list(args.variant), "--variant")
    sizes = _parse_sizes(unique(split_list(args.sizes), "--sizes"))
    check_outputs(args, "json", "plot")
    if args.plot:
        require_matplotlib("--plot")
    return {"rules": rules, "variants": variants, "sizes": sizes, "layouts": layouts}


def _parse_sizes(items: list[str] | None) -> list[float | None] | None:
    """['1e6', '1e7'] -> [1e6, 1e7]; 'full' = the layout's native size (BERT-base: 109,482,240)."""
    return None if items is None else [_parse_size(item) for item in items]


def _parse_size(item: str) -> float | None:
    if item == "full":
        return None
    try:
        n = float(item)
    except ValueError:
        raise UsageError(f"--sizes: {item!r} is not a number (e.g. 1e6,1e7 or full)") from None
    if not math.isfinite(n) or not n >= 1:
        raise UsageError(f"--sizes: {item!r} must be a finite number >= 1 of parameters")
    return n


def _check_threads(threads: int | None) -> None:
    """--threads: at least 1 and at most the CPUs this process may run on."""
    if threads is None:
        return
    from optconform.bench_host import affinity
    cpus = affinity()
    allowed = len(cpus) if cpus is not None else (os.cpu_count() or 1)
    if not 1 <= threads <= allowed:
        raise UsageError(f"--threads {threads}: must be between 1 and {allowed} (the CPUs available here)")


def _run_one(config, quiet: bool, explicit) -> list[dict]:
    """The results document of one framework's run ([] when it is not installed and was not named)."""
    from optconform import bench
    from optconform.adapters.base import AdapterUnavailable
    log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if not quiet else None
    try:
        return [bench.run(config, log)]
    except AdapterUnavailable as exc:
        if explicit:
            raise UsageError(str(exc)) from None
        print(f"optconform bench: skipping {config.framework}: not installed ({exc})", file=sys.stderr)
        return []
    except LookupError as exc:
        raise UsageError(str(exc)) from None


def _show(doc: dict, args) -> int:
    """Print the table; write --json/--plot; exit 1 when nothing matched, a row erred or a gate failed
    with a deviation that is not registered (a registered one, adapters/<framework>/deviations.toml, is
    xfail: timed, exit 0)."""
    from optconform import bench
    print(bench.table(doc))
    if args.json:
        bench.write_json(doc, args.json)
    if args.plot:
        bench.plot(doc, args.plot)
    if not doc["rows"]:
        print("optconform bench: no configuration matched the selection", file=sys.stderr)
        return 1
    return 1 if any(r["gate"] not in bench.TIMED_VERDICTS or r["error"] for r in doc["rows"]) else 0
