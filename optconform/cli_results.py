"""The results commands: `optconform run` (the conformance matrix), `report` (merge results files),
`diff` (what changed between two results files) and `baseline` (write a committed baseline)."""
from __future__ import annotations

import json
import os
import sys
import time

from optconform.cli_common import (UsageError, check_outputs, read_results, require_known_frameworks,
                                   require_matplotlib, split_list, unique, verify_corpus)
from optconform.golden.fsio import atomic_write

#: the default --workers on CPU: at most this many processes (each imports its framework)
MAX_DEFAULT_WORKERS = 4

RUN_OPTIONS: dict[str, dict] = {
    "--framework": {"help": "comma-separated adapters, each at most once (default: all; missing ones are listed)"},
    "--device": {"default": "cpu", "help": "cpu, cuda or all (default cpu); cuda without a visible GPU is a "
                 "usage error"},
    "--dtype": {"help": "comma-separated dtypes: float64, float32, bfloat16, float16 (default: every dtype each "
                "case supports)"},
    "-k": {"help": "only cases whose id contains this text (or matches this glob)"},
    "--json": {"help": "write the results JSON here"},
    "--html": {"help": "write a self-contained HTML report here"},
    "--trajectories": {"metavar": "DIR", "help": "keep each row's native parameter trajectories here, one .npz per "
                       "row (emptied first; the tests that compare two native runs read them: "
                       "OPTCONFORM_LANE_TRAJECTORIES)"},
    "--quiet": {"action": "store_true", "help": "no progress bar"},
    "--wide": {"action": "store_true", "help": "one long line per row, with the fingerprint column (default: at "
               "most 100 columns)"},
    "--workers": {"help": "processes computing each framework's rows (default: the CPU count, at most "
                  f"{MAX_DEFAULT_WORKERS}, on --device cpu; 1 on a GPU, which one process holds); 1 runs in this process"},
}

REPORT_OPTIONS: dict[str, dict] = {
    "files": {"nargs": "+", "metavar": "RESULTS.json", "help": "results files written by `run --json`, each "
              "once; a row present in two files is an error"},
    "--json": {"help": "write the merged results JSON here"},
    "--html": {"help": "write a self-contained HTML report here"},
    "--wide": RUN_OPTIONS["--wide"],
}

DIFF_OPTIONS: dict[str, dict] = {
    "base": {"help": "the earlier results JSON, e.g. baselines/torch.json"},
    "new": {"help": "the later results JSON, e.g. from optconform run --json"},
    "--markdown": {"help": "write the diff as markdown here (a CI job summary or PR comment)"},
    "--json": {"help": "write the diff as JSON here"},
    "--report-only": {"action": "store_true", "help": "exit 0 even on a semantic change (the run is becoming "
                      "the new baseline: tools/update-baselines)"},
}

BASELINE_OPTIONS: dict[str, dict] = {
    "results": {"help": "a results JSON from optconform run --json"},
    "out": {"help": "the baseline to write, e.g. baselines/torch.json"},
}

#: --device -> the devices run (None: every device each framework sees)
RUN_DEVICES = {"cpu": ["cpu"], "cuda": ["cuda"], "all": None}
#: verdicts of a framework's only row when it did not run
NOT_RUN = ("unavailable", "not-installed")


def cmd_run(args) -> int:
    from optconform import registry, results, terminal
    requested = unique(split_list(args.framework), "--framework")
    required = set(split_list(os.environ.get("OPTCONFORM_REQUIRE")) or [])
    require_known_frameworks((requested or []) + sorted(required))
    dtypes = _dtypes(args.dtype)
    if args.device not in RUN_DEVICES:
        raise UsageError(f"unknown device {args.device!r}; choose cpu, cuda or all")
    if args.html:
        require_matplotlib("--html")
    check_outputs(args, "json", "html")
    verify_corpus()
    workers = _workers(args.workers, args.device)
    frameworks = requested or registry.adapter_names()
    if args.device == "cuda":
        _check_cuda(frameworks, set(requested or []) | required)
    if args.trajectories:
        _prepare_trajectories(args.trajectories, [p for p in (args.json, args.html) if p])
    started = time.perf_counter()
    rows, environments = [], []
    for name in frameworks:
        res = _run_isolated(name, RUN_DEVICES[args.device], dtypes, args.k,
                            terminal.progress(sys.stderr.isatty() and not args.quiet), workers, args.trajectories)
        if res and res[0].verdict == "unavailable" and not (requested or name in required):
            res[0].verdict = "not-installed"
        if res and res[0].verdict not in NOT_RUN and res[0].case != f"{name}-*":
            environments.append(_environment(name, res))
        rows.extend(r.to_json() for r in res)
    _check_selection(rows, args.k)
    return _show(results.document(rows, environments, time.perf_counter() - started), args)


def _dtypes(value: str | None) -> list[str] | None:
    """--dtype: the dtypes named (None: every dtype each case supports)."""
    from optconform.adapters.base import DTYPES
    dtypes = unique(split_list(value), "--dtype")
    for d in dtypes or []:
        if d not in DTYPES:
            raise UsageError(f"unknown dtype {d!r}; choose from {', '.join(DTYPES)}")
    return dtypes


def _workers(value: str | None, device: str) -> int:
    """--workers: a positive integer; by default the CPU count (at most MAX_DEFAULT_WORKERS) on cpu, else 1."""
    if value is None:
        return min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS) if device == "cpu" else 1
    if not value.isdigit() or int(value) < 1:
        raise UsageError(f"--workers {value!r}: give a whole number of processes, at least 1")
    return int(value)


def _environment(name: str, res: list) -> dict:
    """The results document's environment entry of a framework that ran."""
    from optconform import natives, results
    return {"framework": name, "version": res[0].framework_version,
            "devices": {r.device: r.device_name for r in res},
            "gpu_driver": results.gpu_driver() if any(r.device == "cuda" for r in res) else "",
            "native_options": natives.options(r.native for r in res if r.native)}


def _check_selection(rows: list[dict], pattern: str | None) -> None:
    """A usage error when nothing ran: no installed framework, or -k selecting no case."""
    if not rows or all(r["verdict"] == "not-installed" for r in rows):
        raise UsageError("nothing to run: no installed framework has a case matching the selection"
                         + (f" (-k {pattern!r})" if pattern else ""))
    if pattern and not any(r["verdict"] not in NOT_RUN for r in rows):
        raise UsageError(f"-k {pattern!r} selects no case")


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


def _prepare_trajectories(directory: str, outputs: list[str]) -> None:
    """--trajectories: a directory this run can empty and write, not one of its output files (a usage
    error before any work if not)."""
    from optconform import lane_trajectories
    if os.path.realpath(directory) in {os.path.realpath(p) for p in outputs}:
        raise UsageError(f"--trajectories {directory}: the same path as --json or --html")
    try:
        lane_trajectories.prepare(directory)
    except OSError as exc:
        raise UsageError(f"--trajectories {directory}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"--trajectories: {exc}") from None


def _run_isolated(name: str, devices, dtypes, pattern, progress, workers: int = 1,
                  trajectories: str | None = None) -> list:
    """runner.run_adapter for one framework; a broken adapter (entry point that fails to import,
    cases() raising, even SystemExit) becomes one error row and the other frameworks still run."""
    from optconform import registry, runner
    try:
        return runner.run_adapter(registry.load_adapter(name), devices, dtypes, pattern, progress, workers,
                                  trajectories)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        return [runner.CaseResult(framework=name, framework_version="", case=f"{name}-*", name="*", variant="",
                                  native="", device="", device_name="", dtype="", claimed_rule="", verdict="error",
                                  error=f"adapter {name!r} failed: {type(exc).__name__}: {exc}")]


def _show(doc, args) -> int:
    """Print the matrix, details and summary of a results document; write --json/--html; exit code."""
    from optconform import report, results, terminal
    rows = doc["results"]
    out = terminal.console(wide=args.wide)
    terminal.print_matrix(rows, out)
    bert = report.bert_block(rows)
    if bert:
        terminal.emit(out, terminal.Text(bert))
    if report.details(rows):
        terminal.emit(out, terminal.details_text(report.details(rows)))
    terminal.emit(out)
    failing = any(r["verdict"] in report.FAILING for r in rows)
    terminal.emit(out, terminal.summary_text(report.summary(rows, doc["seconds"]), failing))
    if args.json:
        results.write(args.json, doc)
    if args.html:
        _write_html(doc, args.html)
    return 1 if failing else 0


def _write_html(doc, path: str) -> None:
    from optconform import html
    try:
        page = html.render(doc)
    except RuntimeError as exc:
        raise UsageError(str(exc)) from None
    atomic_write(path, page)


def cmd_report(args) -> int:
    from optconform import results, validate
    unique([str(os.path.realpath(p)) for p in args.files], "results file")
    if args.html:
        require_matplotlib("--html")
    check_outputs(args, "json", "html")
    docs = read_results(args.files)
    first_seen: dict[tuple, str] = {}
    for path, doc in zip(args.files, docs):
        for row in doc["results"]:
            key = validate.row_key(row)
            if first_seen.setdefault(key, path) != path:
                raise UsageError(f"{path}: row {row['case']} {row.get('device', '')} {row.get('dtype', '')} is also in "
                                 f"{first_seen[key]}; merging would count it twice")
    return _show(results.merge(docs), args)


def cmd_diff(args) -> int:
    from optconform import diff
    check_outputs(args, "markdown", "json")
    base, new = read_results([args.base, args.new])
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


def cmd_baseline(args) -> int:
    from optconform import baseline
    check_outputs(args, "out")
    (doc,) = read_results([args.results])
    baseline.write(args.out, doc)
    print(f"wrote baseline {args.out}: {len(doc['results'])} rows")
    return 0
