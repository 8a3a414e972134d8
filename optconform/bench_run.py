"""One framework's benchmark run: the correctness gate, then every (case, layout, size) timed.

Correctness gate: a configuration is timed only after a short conformance check of that exact case
passes (`runner.run_case` on float32, on the benchmark's device; torch.compile'd steps run a cheaper
subset of two constant-lr goldens because every optimizer instance compiles). Rows are compared only
within one rule (semantics-normalised): the table has one section per rule.

Timing: probe, step and bare loop in interleaved rounds (bench_blocks). Memory: the peak extra bytes
per parameter of the first and of a steady-state step (bench_memory: the RSS high-water mark on CPU,
torch.cuda.max_memory_allocated on CUDA), beside the rule's state bytes per parameter.
"""
from __future__ import annotations

import gc
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

from optconform.adapters.base import Case

from . import bench_host, bench_layouts
from .bench_config import ITEMSIZE, SCHEMA, TIMED_VERDICTS, BenchConfig, Row
from .bench_blocks import block_medians, coverage, median_ci, order_statistic, rounds
from .bench_limit import case_traffic, limits_json, stream_probe, traffic
from .bench_memory import state_bytes_per_param, step_extra_bytes
from .bench_output import row_line
from .bench_pertensor import per_tensor_costs
from .bench_stepper import Stepper, bench_hp, get_stepper
from .bench_timing import MIN_SAMPLE_S


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
            "rows": rows_json, "per_tensor": per_tensor_costs(rows_json), "limits": limits_json(rows_json),
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
                      size_requested=None if size is None else int(size),
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
    """Build the step and its limit probe, measure the step's memory, then time probe, step (and the
    bare loop) in interleaved rounds (bench_blocks); the results into `row`."""
    stepper, config = session.stepper, session.config
    probe = stream_probe(stepper, config, row.n_params, tr)
    try:
        built = stepper.build(case, shapes, config.device, config.dtype, bench_hp(case))
        try:
            first_s, inner, memory = _warm(stepper, config, built)
            probe_inner = _warm(stepper, config, probe, memory=False)[1]
            parts = [("limit", probe.step, probe.sync, probe_inner), ("step", built.step, built.sync, inner)]
            if config.overhead and case.variant in stepper.overhead_variants:
                parts.append(("bare", stepper.bare_step(built), built.sync, inner))
            blocks = rounds(parts, config.blocks, config.repeats)
        finally:
            built.close()
            del built
    finally:
        probe.close()
    row.limit_probe = probe.kind or "in-place add passes, one per written array"
    _record(row, blocks, probe.bytes_per_call, first_s, inner, config)
    _record_memory(row, memory, tr, session.itemsize)


def _warm(stepper: Stepper, config: BenchConfig, built, memory: bool = True) -> tuple[float, int, Any]:
    """(first step's seconds, samples-per-call `inner`, memory). The first step is timed alone
    (allocation, compile), then `warmup` steps; steps under MIN_SAMPLE_S repeat `inner` times inside a
    sample. With `memory`: the peak extra bytes of the first and of one steady-state step
    (bench_memory), or the reason they cannot be read."""
    probe = stepper.memory_probe(config.device) if memory else "not measured"
    measured = not isinstance(probe, str)
    t0 = time.perf_counter()
    first_extra = step_extra_bytes(probe, built.step, built.sync) if measured else _step(built)
    first = time.perf_counter() - t0
    for _ in range(config.warmup):
        _step(built)
    if measured:
        probe = {"first": first_extra, "steady": step_extra_bytes(probe, built.step, built.sync),
                 "method": probe.method}
    t0 = time.perf_counter()
    _step(built)
    est = max(time.perf_counter() - t0, 1e-7)
    return first, 1 if est >= MIN_SAMPLE_S else min(1000, math.ceil(MIN_SAMPLE_S / est)), probe


def _step(built) -> None:
    built.step()
    built.sync()


def _record(row: Row, blocks: dict[str, list[list[float]]], probe_bytes: float, first_s: float, inner: int,
            config: BenchConfig) -> None:
    """Times, GB/s, the limit per round (median, min, max over rounds) and the % of limit (median of
    the neighbouring probe/step sample pairs, with its CI)."""
    steps = [s for b in blocks["step"] for s in b]
    bytes_moved = row.bytes_per_param * row.n_params
    median = float(np.median(steps))
    q1, q3 = np.percentile(steps, [25, 75])
    row.median_s, row.iqr_s, row.best_s = median, float(q3 - q1), float(np.min(steps))
    row.iqr_over_median = row.iqr_s / median
    row.first_step_s, row.compile_s = first_s, max(0.0, first_s - median)
    row.inner, row.repeats, row.blocks = inner, len(steps), config.blocks
    row.achieved_GBps = bytes_moved / median / 1e9
    row.Gparam_per_s = row.n_params / median / 1e9
    limit_gbps = probe_bytes / block_medians(blocks["limit"]) / 1e9
    row.limit_blocks_GBps = [float(g) for g in limit_gbps]
    row.limit_GBps = float(np.median(limit_gbps))
    row.limit_min_GBps, row.limit_max_GBps = float(limit_gbps.min()), float(limit_gbps.max())
    row.limit_s = bytes_moved / (row.limit_GBps * 1e9)
    probe_s, step_s = np.concatenate(blocks["limit"]), np.concatenate(blocks["step"])
    pct = 100.0 * (bytes_moved / probe_bytes) * probe_s / step_s      # limit time / step time, per pair
    row.pct_of_limit, low, high = median_ci(pct)
    row.pct_ci, row.ci_confidence = [low, high], coverage(len(pct), order_statistic(len(pct)))
    if "bare" in blocks:
        row.overhead = overhead(blocks["step"], blocks["bare"])


def overhead(harness: list[list[float]], bare: list[list[float]]) -> dict[str, Any]:
    """Harness vs bare native call, sampled alternately (bench_blocks.alternate): the paired
    differences h_i - b_i of every round, as % of the bare median; their median with a
    distribution-free CI (sign-test order statistics: the pairs, not the rounds, are the units)."""
    h, b = np.concatenate(harness), np.concatenate(bare)
    base = float(np.median(b))
    pct, low, high = median_ci(100.0 * (h - b) / base)
    return {"harness_median_s": float(np.median(h)), "bare_median_s": base, "overhead_pct": pct,
            "overhead_ci_pct": [low, high], "pairs": len(h)}


def _record_memory(row: Row, memory, tr: dict, itemsize: int) -> None:
    row.state_B_per_param = state_bytes_per_param(tr, itemsize)
    if isinstance(memory, str):
        row.memory_method = memory
        return
    row.memory_method = memory["method"]
    row.first_step_extra_B_per_param = memory["first"] / row.n_params
    row.peak_extra_B_per_param = memory["steady"] / row.n_params
