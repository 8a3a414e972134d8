"""One framework's benchmark run: the correctness gate, then every (case, layout, size) timed.

Correctness gate: a configuration is timed only after a short conformance check of that exact case
passes (`runner.run_case` on float32, on the benchmark's device; torch.compile'd steps run a cheaper
subset of two constant-lr goldens because every optimizer instance compiles). Rows are compared only
within one rule (semantics-normalised): the table has one section per rule.

Peak memory is read where the framework reports it (torch.cuda.max_memory_allocated; n/a on CPU).
"""
from __future__ import annotations

import gc
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from optconform.adapters.base import Case

from . import bench_host, bench_layouts
from .bench_config import ITEMSIZE, SCHEMA, TIMED_VERDICTS, BenchConfig, Row
from .bench_fit import fit_overheads
from .bench_limit import case_traffic, limits_json, stream_gbps, traffic
from .bench_output import row_line
from .bench_stepper import Stepper, bench_hp, get_stepper
from .bench_timing import Timing, harness_overhead, measure


def gate(stepper: Stepper, case: Case, device: str, version: str) -> tuple[str, str, int]:
    """The correctness gate of `case`: (verdict, detail, goldens run)."""
    from optconform import runner
    goldens = stepper.gate_goldens(case)
    res = runner.run_case(stepper.adapter, case, stepper.native_device(device), "float32", version, goldens)
    detail = res.error or res.first_divergence or (f"worst {res.worst_units:.2g} tolerance units" if res.goldens_run else "")
    return res.verdict, detail, res.goldens_run


@dataclass
class _Session:
    """What every configuration of one framework's run shares, and the rows and probes it records."""
    config: BenchConfig
    stepper: Stepper
    version: str
    itemsize: int
    log: Callable[[str], None]
    rows: list[Row] = field(default_factory=list)
    limits: list[tuple[tuple[int, int, int], Timing, float]] = field(default_factory=list)


def run(config: BenchConfig, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the results document (rows, limits, fits, environment)."""
    itemsize = ITEMSIZE[config.dtype]
    pinning = bench_host.pin(config)       # before the framework loads
    restore_threads = lambda: None  # noqa: E731
    started = time.perf_counter()
    try:
        stepper, version = _stepper(config)
        restore_threads = stepper.pin_threads(pinning.threads)
        env = bench_host.environment(stepper, config.device, pinning.threads, pinning.pinned)
        env["main_thread_affinity"] = bench_host.affinity()
        session = _Session(config, stepper, version, itemsize, log or (lambda msg: None))
        for rule in config.rules:
            _run_rule(session, rule)
    finally:
        restore_threads()
        pinning.restore()
    rows_json = [asdict(r) for r in session.rows]
    return {"schema": SCHEMA, "framework": config.framework, "version": version, "environment": env,
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
            "rows": rows_json, "fits": fit_overheads(rows_json), "limits": limits_json(session.limits),
            "seconds": time.perf_counter() - started}


def _stepper(config: BenchConfig) -> tuple[Stepper, str]:
    """The framework's stepper and version; a LookupError when the framework does not see the device."""
    from optconform import registry
    adapter = registry.load_adapter(config.framework)
    adapter.load()
    version = adapter.version()
    if config.device not in adapter.devices():
        raise LookupError(f"--device {config.device}: {config.framework} sees no such device here "
                          f"(devices: {', '.join(adapter.devices())})")
    return get_stepper(config.framework, adapter), version


def _run_rule(session: _Session, rule: str) -> None:
    config = session.config
    traffic(rule, session.itemsize)
    cases = session.stepper.bench_cases(rule, config.device)
    if config.variants:
        cases = [c for c in cases if c.variant in config.variants]
    if not cases:
        session.log(f"{config.framework}: no case for rule {rule!r}"
                    + (f" with variants {list(config.variants)}" if config.variants else ""))
    for case in cases:
        _run_case(session, case, case_traffic(case.rule, rule, session.itemsize))


def _run_case(session: _Session, case: Case, tr: dict) -> None:
    """Gate `case`, then one row per layout and size (timed when the gate lets it)."""
    config = session.config
    verdict, detail, ngold = gate(session.stepper, case, config.device, session.version)
    session.log(f"gate {case.id} {config.device} float32: {verdict} ({ngold} goldens)")
    for layout in config.layouts:
        for size in config.run_sizes():
            shapes = bench_layouts.layout(layout, None if size is None else int(size))
            row = Row(framework=config.framework, version=session.version, rule=case.rule, case=case.id,
                      variant=case.variant, device=config.device, layout=layout,
                      n_params=bench_layouts.numel(shapes), n_tensors=len(shapes),
                      bytes_per_param=tr["bytes_per_param"], gate=verdict, gate_detail=detail, gate_goldens=ngold)
            session.rows.append(row)
            if verdict not in TIMED_VERDICTS and not config.time_deviating:
                continue
            try:
                _time_row(session, case, shapes, row, tr)
            except Exception as exc:       # one failing configuration is a row, not a crash
                row.error = f"{type(exc).__name__}: {exc}"
            gc.collect()
            session.log(row_line(row))


def _time_row(session: _Session, case: Case, shapes, row: Row, tr: dict) -> None:
    """Probe the limit, then time the step of `case` at `shapes`; the results into `row`."""
    stepper, config = session.stepper, session.config
    fresh: dict = {}
    limit_gbps = stream_gbps(stepper, config, row.n_params, tr, fresh)
    session.limits.extend((k, t, b) for k, (t, b) in fresh.items())
    built = stepper.build(case, shapes, config.device, config.dtype, bench_hp(case))
    try:
        if built.reset_memory:
            built.reset_memory()
        t = measure(built.step, built.sync, config.repeats, config.warmup)
        mem = built.memory() if built.memory else None
        if config.overhead and case.variant in stepper.overhead_variants:
            row.overhead = harness_overhead(stepper, built, config.repeats, t.inner)
    finally:
        built.close()
        del built
    _record_timing(row, t, limit_gbps, mem)


def _record_timing(row: Row, t: Timing, limit_gbps: float, mem: dict[str, float] | None) -> None:
    bytes_moved = row.bytes_per_param * row.n_params
    row.median_s, row.iqr_s, row.best_s = t.median, t.iqr, t.best
    row.iqr_over_median = t.iqr / t.median
    row.first_step_s, row.compile_s = t.first_s, max(0.0, t.first_s - t.median)
    row.inner, row.repeats = t.inner, len(t.samples)
    row.achieved_GBps = bytes_moved / t.median / 1e9
    row.Gparam_per_s = row.n_params / t.median / 1e9
    row.limit_GBps = limit_gbps
    row.limit_s = bytes_moved / (limit_gbps * 1e9)
    row.pct_of_limit = 100.0 * row.limit_s / t.median
    if mem:
        row.peak_MB, row.resident_MB = mem.get("peak_MB"), mem.get("resident_MB")
