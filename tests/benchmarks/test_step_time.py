"""pytest-benchmark suite: native optimizer step time vs the same-run memory roofline.

Run (never part of the default test run; see conftest.py)::

    pytest tests/benchmarks --benchmark-only --benchmark-json=bench.json          # one run, full JSON
    pytest tests/benchmarks --benchmark-only --benchmark-autosave                 # save a baseline
    pytest tests/benchmarks --benchmark-only --benchmark-compare \\
        --benchmark-compare-fail=median:10%                                       # regression gate

The gate: fail when a cell's median is more than 10 % slower than the latest saved run of the same
machine (``.benchmarks/<machine>/``); 10 % on this 2-vCPU CPU VM (pinned runs vary 5-10 %), 5 % on
GPU (``median:5%``).

Cells (environment variables, comma-separated): OPTCONFORM_BENCH_RULES (default
adamw,sgd_momentum,adam,adagrad), OPTCONFORM_BENCH_SIZES (default 1e6,1e7), OPTCONFORM_BENCH_LAYOUTS
(default flat,bert-base: BERT-base's 199 tensors scaled to the size), OPTCONFORM_BENCH_VARIANTS (default
forloop,foreach,fused; add compiled for torch.compile'd steps), OPTCONFORM_BENCH_DEVICE (cpu or cuda),
OPTCONFORM_BENCH_THREADS (default: all allowed CPUs, pinned), OPTCONFORM_BENCH_ROUNDS (default 25).
Each cell is timed only after its exact case passes the float32 conformance gate; the stream probe
that gives the limit runs in the same session on the same device. `benchmark.extra_info` holds
bytes/param, achieved GB/s, limit GB/s, fraction of the limit, IQR/median and, for fused variants,
the median of a bare perf_counter loop over the same step (the harness overhead).
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from optconform import bench, bench_layouts, bench_limit, bench_run

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.stepbench


def _env(name: str, default: str) -> list[str]:
    return [v.strip() for v in os.environ.get(name, default).split(",") if v.strip()]


RULES = _env("OPTCONFORM_BENCH_RULES", "adamw,sgd_momentum,adam,adagrad")
SIZES = [int(float(s)) for s in _env("OPTCONFORM_BENCH_SIZES", "1e6,1e7")]
LAYOUTS = _env("OPTCONFORM_BENCH_LAYOUTS", "flat,bert-base")
VARIANTS = _env("OPTCONFORM_BENCH_VARIANTS", "forloop,foreach,fused")
DEVICE = os.environ.get("OPTCONFORM_BENCH_DEVICE", "cpu")
ROUNDS = int(os.environ.get("OPTCONFORM_BENCH_ROUNDS", "25"))
THREADS = int(os.environ["OPTCONFORM_BENCH_THREADS"]) if os.environ.get("OPTCONFORM_BENCH_THREADS") else None


@pytest.fixture(scope="session")
def session():
    """Adapter, stepper, pinned threads, and caches for gates and stream probes."""
    from optconform import registry
    adapter = registry.load_adapter("torch")
    adapter.load()
    if DEVICE not in adapter.devices():
        pytest.skip(f"torch sees no {DEVICE} device")
    stepper = bench.get_stepper("torch", adapter)
    original = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    threads = THREADS or (len(original) if original else os.cpu_count())
    if original and DEVICE == "cpu":
        os.sched_setaffinity(0, original[:threads])
    restore = stepper.pin_threads(threads)
    yield {"adapter": adapter, "stepper": stepper, "version": adapter.version(), "gates": {}, "limits": {},
           "threads": threads}
    restore()
    if original and DEVICE == "cpu":
        os.sched_setaffinity(0, original)


def _case(s, rule: str, variant: str):
    cases = [c for c in s["stepper"].bench_cases(rule, DEVICE) if c.variant == variant]
    if not cases:
        pytest.skip(f"torch has no {variant} case for {rule}")
    case = cases[0]
    if case.id not in s["gates"]:
        s["gates"][case.id] = bench_run.gate(s["stepper"], case, DEVICE, s["version"])
    verdict, detail, _ = s["gates"][case.id]
    if verdict not in bench.TIMED_VERDICTS:
        pytest.fail(f"{case.id} fails its conformance gate ({verdict}: {detail}); not timing a wrong kernel")
    return case


def _limit_gbps(s, config, n: int, tr: dict) -> float:
    """The stream limit at n elements over the rule's arrays (bench_limit.stream_probe), once per session."""
    key = (n, len(tr["arrays"]), len(tr["written"]))
    if key not in s["limits"]:
        probe = bench_limit.stream_probe(s["stepper"], config, n, tr)
        try:
            t = bench.measure(probe.step, probe.sync, config.repeats, config.warmup)
        finally:
            probe.close()
        s["limits"][key] = probe.bytes_per_call / t.median / 1e9
    return s["limits"][key]


@pytest.mark.parametrize("size", SIZES, ids=lambda n: f"{n:.0e}".replace("+0", ""))
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("rule", RULES)
def test_step(benchmark, session, rule, variant, layout, size):
    s = session
    case = _case(s, rule, variant)
    tr = bench.traffic(rule)
    shapes = bench_layouts.layout(layout, size)
    n = bench_layouts.numel(shapes)
    config = bench.BenchConfig(device=DEVICE, repeats=ROUNDS, warmup=5)
    limit_gbps = _limit_gbps(s, config, n, tr)
    built = s["stepper"].build(case, shapes, DEVICE, "float32", bench.bench_hp(case))
    try:
        sync, step = built.sync, built.step

        def target():
            step()
            sync()
        probe = bench.measure(step, sync, repeats=3, warmup=5)          # warm-up + first-step time
        benchmark.group = f"{rule} {layout} {n:.2e}"
        benchmark.pedantic(target, rounds=ROUNDS, warmup_rounds=2, iterations=probe.inner)
        data = np.asarray(benchmark.stats.stats.data)
        median = float(np.median(data))
        q1, q3 = np.percentile(data, [25, 75])
        bare = None
        if variant in s["stepper"].overhead_variants:
            bare = float(np.median(s["stepper"].bare_loop(built, ROUNDS)))
    finally:
        built.close()
    nbytes = tr["bytes_per_param"] * n
    benchmark.extra_info.update({
        "framework": "torch", "version": s["version"], "case": case.id, "rule": rule, "variant": variant,
        "layout": layout, "n_params": n, "n_tensors": len(shapes), "device": DEVICE, "threads": s["threads"],
        "bytes_per_param": tr["bytes_per_param"], "achieved_GBps": nbytes / median / 1e9,
        "limit_GBps": limit_gbps, "frac_limit": nbytes / median / 1e9 / limit_gbps,
        "iqr_over_median": float((q3 - q1) / median), "first_step_s": probe.first_s,
        "gate": s["gates"][case.id][0], "bare_loop_median_s": bare,
        "harness_overhead_pct": None if bare is None else 100 * (median - bare) / bare,
        "env": {k: v for k, v in os.environ.items() if k.startswith(("OMP_", "MALLOC_"))},
    })
    # physics, not a speed target: a step that moves its bytes faster than the same-run stream limit
    # (with the limit's own spread, 20 %) measured something else; the regression gate is
    # --benchmark-compare-fail
    assert median > 0 and 0.0 < nbytes / median / 1e9 / limit_gbps <= 1.2, benchmark.extra_info
    assert s["gates"][case.id][0] in ("conforms", "xfail"), s["gates"][case.id]
