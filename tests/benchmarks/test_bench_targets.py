"""The benchmark's own targets (issue 17), checked on request with the rest of the benchmark suite::

    pytest tests/benchmarks/test_bench_targets.py --benchmark-only

Run on an idle machine (they measure it): three back-to-back runs of fused AdamW at 1e7 flat
parameters read the same % of the limit within +-3 points of their mean; the harness costs <= 2 % over
the bare `optimizer.step()` call (the median of the paired differences); the peak-memory columns are filled on CPU for
every installed framework among torch, JAX and TensorFlow (a framework that does not import is
skipped here: the suite is run by hand, and says which it skipped).
"""
from __future__ import annotations

import pytest

from optconform import bench

pytestmark = pytest.mark.stepbench


def _config(framework: str, sizes, variants=None) -> bench.BenchConfig:
    return bench.BenchConfig(framework=framework, rules=("adamw",), variants=variants, sizes=sizes, layouts=("flat",))


def test_fused_adamw_pct_of_limit_is_stable_and_overhead_small(benchmark):
    pytest.importorskip("torch")
    docs = []
    benchmark.pedantic(lambda: docs.append(bench.run(_config("torch", (1e7,), ("fused",)))), rounds=3, iterations=1)
    rows = [d["rows"][0] for d in docs]
    pcts = [r["pct_of_limit"] for r in rows]
    mean = sum(pcts) / len(pcts)
    benchmark.extra_info.update({"pct_of_limit": pcts, "pct_ci": [r["pct_ci"] for r in rows],
                                 "overhead_pct": [r["overhead"]["overhead_pct"] for r in rows]})
    assert all(abs(p - mean) <= 3.0 for p in pcts), pcts
    assert all(r["overhead"]["overhead_pct"] <= 2.0 for r in rows), [r["overhead"] for r in rows]


@pytest.mark.parametrize("framework, module", [("torch", "torch"), ("jax", "jax"), ("tensorflow", "tensorflow")])
def test_cpu_peak_memory_is_measured(benchmark, framework, module):
    pytest.importorskip(module)
    docs = []
    benchmark.pedantic(lambda: docs.append(bench.run(_config(framework, (1e6,)))), rounds=1, iterations=1)
    rows = [r for r in docs[0]["rows"] if r["median_s"] is not None]
    assert rows
    for r in rows:
        assert r["peak_extra_B_per_param"] is not None and r["first_step_extra_B_per_param"] is not None, r
        assert "VmHWM" in r["memory_method"] and r["state_B_per_param"] == 8
