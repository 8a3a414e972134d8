"""CPU smoke run of `optconform bench` (tiny sizes, 3 repeats) so the benchmark code cannot rot in CI.

The real benchmark stays out of CI (tests/benchmarks, run with --benchmark-only). This checks that a
run produces the table, the JSON and the plot, that every timed row carries a finite positive % of
the same-run limit, and that the bytes-per-param table is consistent with its arrays."""
from __future__ import annotations

import json
import math

import pytest

from optconform.testing import require

from optconform import bench, bench_layouts

require('torch', 'torch')

pytestmark = pytest.mark.framework("torch")


def test_bandwidth_table_matches_its_arrays():
    table = bench.bandwidth_table()
    for rule, entry in table.items():
        assert entry["bytes_fp32"] == 4 * (len(entry["reads"]) + len(entry["writes"])), rule
    assert bench.traffic("adamw")["bytes_per_param"] == 28        # performance.md section 1
    assert bench.traffic("sgd_momentum")["bytes_per_param"] == 20
    assert bench.traffic("lamb")["bytes_per_param"] == 40


def test_bert_base_layout():
    full = bench_layouts.layout("bert-base", None)
    assert len(full) == 199 and bench_layouts.numel(full) == 109_482_240
    small = bench_layouts.layout("bert-base", 10_000)
    assert len(small) == 199 and 5_000 < bench_layouts.numel(small) < 20_000


def test_fit_recovers_overheads():
    rows = [{"framework": "x", "rule": "adamw", "variant": "v", "device": "cpu", "bytes_per_param": 28,
             "n_tensors": k, "n_params": n, "median_s": 30e-6 + 5e-6 * k + 0.5e-9 * n}
            for k in (1, 199) for n in (1e4, 1e5, 1e6)]
    (fit,) = bench.fit_overheads(rows)
    assert fit["fixed_us"] == pytest.approx(30, rel=1e-6)
    assert fit["per_tensor_us"] == pytest.approx(5, rel=1e-6)
    assert fit["asymptotic_GBps"] == pytest.approx(56, rel=1e-6)


def test_bench_smoke(tmp_path, capsys):
    from optconform.cli import main
    out_json, out_png = tmp_path / "bench.json", tmp_path / "bench.png"
    code = main(["bench", "--framework", "torch", "--rule", "adamw", "--variant", "foreach,fused",
                 "--sizes", "1e4,3e4", "--layout", "flat,bert-base", "--repeats", "3", "--warmup", "1",
                 "--json", str(out_json), "--plot", str(out_png), "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "rule adamw (28 B/param" in printed and "% limit" in printed and "fitted overheads" in printed
    assert "harness overhead vs a bare perf_counter loop" in printed
    doc = json.loads(out_json.read_text())
    assert doc["schema"] == bench.SCHEMA
    rows = doc["rows"]
    assert {(r["variant"], r["layout"]) for r in rows} == {(v, lay) for v in ("foreach", "fused")
                                                           for lay in ("flat", "bert-base")}
    for r in rows:
        assert r["gate"] == "conforms" and r["gate_goldens"] > 0
        assert math.isfinite(r["pct_of_limit"]) and r["pct_of_limit"] > 0, r
        assert math.isfinite(r["achieved_GBps"]) and r["achieved_GBps"] > 0
        assert r["peak_MB"] is None                          # n/a on CPU
    assert {r["n_tensors"] for r in rows} == {1, 199} and len(rows) == 8
    assert {(f["variant"], f["per_tensor_us"] is not None) for f in doc["fits"]} == {("foreach", True), ("fused", True)}
    assert out_png.stat().st_size > 1000 and out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_usage_errors(capsys):
    from optconform.cli import main
    assert main(["bench", "--rule", "nosuchrule", "--sizes", "1e4"]) == 2
    assert main(["bench", "--layout", "resnet", "--sizes", "1e4"]) == 2
    assert main(["bench", "--sizes", "lots"]) == 2
    assert main(["bench", "--device", "tpu"]) == 2
    err = capsys.readouterr().err
    assert "nosuchrule" in err and "resnet" in err and "lots" in err
