"""CPU smoke run of `optconform bench` (tiny sizes, 3 repeats) so the benchmark code cannot rot in CI.

The real benchmark stays out of CI (tests/benchmarks, run with --benchmark-only). This checks that a
run produces the table, the JSON and the plot, that every timed row carries a finite positive % of
the same-run limit with its CI and the probe's spread over the interleaved rounds, the CPU memory
columns, the exit status on registered and unregistered gate failures, and that the bytes-per-param
table is consistent with its arrays."""
from __future__ import annotations

import json
import math

import pytest

from optconform.testing import require

from optconform import bench, bench_blocks, bench_layouts, bench_memory

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


def test_per_tensor_cost_is_the_layout_difference():
    rows = [{"framework": "x", "case": "x-A[v]", "rule": "adamw", "variant": "v", "device": "cpu", "size_requested": 10**6,
             "layout": lay, "n_tensors": k, "n_params": n, "median_s": 30e-6 + 5e-6 * k + 0.5e-9 * n}
            for lay, k, n in (("flat", 1, 10**6), ("bert-base", 199, 10**6))]
    (cost,) = bench.per_tensor_costs(rows)
    assert cost["per_tensor_us"] == pytest.approx(5, rel=1e-6)


def test_median_ci_order_statistics():
    assert bench_blocks.coverage(7, 1) == pytest.approx(1 - 2 / 128)        # min..max of 7
    assert bench_blocks.order_statistic(7) == 1 and bench_blocks.order_statistic(9) == 2
    assert bench_blocks.coverage(9, 2) == pytest.approx(1 - 2 * 10 / 512)
    med, low, high = bench.median_ci([5, 1, 4, 2, 3, 9, 7, 8, 6])
    assert (med, low, high) == (5, 2, 8)


def test_rounds_alternate_sample_by_sample():
    order = []
    parts = [(n, lambda n=n: order.append(n), lambda: None, 1) for n in "lsb"]
    got = bench_blocks.alternate(parts, 3)
    assert order == list("lsbsbl" "bls") and all(len(got[n]) == 3 for n in "lsb")
    order.clear()
    out = bench_blocks.rounds(parts[:2], blocks=3, repeats=2)
    assert order == list("lssl") * 3 and all(len(v) == 3 and len(v[0]) == 2 for v in out.values())


def test_rss_probe_sees_a_new_allocation():
    probe = bench.rss_probe()
    if isinstance(probe, str):
        pytest.fail(probe)                 # the lanes run on Linux: the CPU memory column must be measurable
    import numpy as np
    held = []
    extra = bench_memory.step_extra_bytes(probe, lambda: held.append(np.ones(8 * 2**20 // 8)), lambda: None)
    assert 7.5 * 2**20 <= extra <= 16 * 2**20, extra


def test_bench_smoke(tmp_path, capsys):
    from optconform.cli import main
    out_json, out_png = tmp_path / "bench.json", tmp_path / "bench.png"
    code = main(["bench", "--framework", "torch", "--rule", "adamw", "--variant", "foreach,fused",
                 "--sizes", "1e4,3e4", "--layout", "flat,bert-base", "--repeats", "3", "--blocks", "3", "--warmup", "1",
                 "--json", str(out_json), "--plot", str(out_png), "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "rule adamw (28 B/param" in printed and "% limit [CI]" in printed and "per-tensor cost" in printed
    assert "harness overhead vs a bare loop" in printed and "VmHWM" in printed
    doc = json.loads(out_json.read_text())
    assert doc["schema"] == bench.SCHEMA
    rows = doc["rows"]
    assert {(r["variant"], r["layout"]) for r in rows} == {(v, lay) for v in ("foreach", "fused")
                                                           for lay in ("flat", "bert-base")}
    for r in rows:
        assert r["gate"] == "conforms" and r["gate_goldens"] > 0
        assert math.isfinite(r["pct_of_limit"]) and r["pct_of_limit"] > 0, r
        assert r["pct_ci"][0] <= r["pct_of_limit"] <= r["pct_ci"][1] and r["blocks"] == 3
        assert r["limit_min_GBps"] <= r["limit_GBps"] <= r["limit_max_GBps"] and len(r["limit_blocks_GBps"]) == 3
        assert math.isfinite(r["achieved_GBps"]) and r["achieved_GBps"] > 0
        assert r["state_B_per_param"] == 8                        # m and v, float32
        assert r["peak_extra_B_per_param"] is not None and r["peak_extra_B_per_param"] >= 0
        assert r["first_step_extra_B_per_param"] >= 0 and "VmHWM" in r["memory_method"]
    fused = [r for r in rows if r["variant"] == "fused"]
    assert all(r["overhead"]["pairs"] == 9 and r["overhead"]["overhead_ci_pct"][0] <= r["overhead"]["overhead_pct"]
               for r in fused)
    assert {r["n_tensors"] for r in rows} == {1, 199} and len(rows) == 8
    assert {(c["variant"], c["n_tensors"]) for c in doc["per_tensor"]} == {("foreach", 199), ("fused", 199)}
    assert len(doc["per_tensor"]) == 4
    assert out_png.stat().st_size > 1000 and out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _gate_as(monkeypatch, verdict: str) -> None:
    from optconform import bench_run
    monkeypatch.setattr(bench_run, "gate", lambda stepper, case, device, version: (verdict, "stubbed", 1))


@pytest.mark.parametrize("verdict, code", [("xfail", 0), ("deviates", 1)])
def test_bench_exit_status_follows_registration(monkeypatch, capsys, verdict, code):
    """A registered deviation (xfail) is timed and exits 0; an unregistered one is not timed, exits 1."""
    from optconform.cli import main
    _gate_as(monkeypatch, verdict)
    got = main(["bench", "--framework", "torch", "--variant", "fused", "--sizes", "1e4", "--layout", "flat",
                "--repeats", "3", "--blocks", "3", "--warmup", "1", "--quiet", "--no-overhead"])
    printed = capsys.readouterr().out
    assert got == code, printed
    assert ("% [" in printed) == (verdict == "xfail")


def test_compiled_adamw_is_a_matrix_case_and_its_gate_passes():
    """torch.compile'd AdamW is a conformance-matrix case (float32, float32 bias corrections modelled)
    and the benchmark's compiled variant is that case; its gate conforms."""
    from optconform import bench_run, registry
    adapter = registry.load_adapter("torch")
    compiled = [c for c in adapter.cases() if c.variant == "compiled"]
    assert [c.id for c in compiled] == ["torch-AdamW[compiled]"] and compiled[0].dtypes == ("float32",)
    assert str(compiled[0].precision) == "powers=float32"
    stepper = bench.get_stepper("torch", adapter)
    (case,) = [c for c in stepper.bench_cases("adamw", "cpu") if c.variant == "compiled"]
    assert case is compiled[0] or case.id == compiled[0].id
    verdict, detail, ngold = bench_run.gate(stepper, case, "cpu", adapter.version())
    assert (verdict, ngold) == ("conforms", 2), detail


def test_bench_usage_errors(capsys):
    from optconform.cli import main
    assert main(["bench", "--rule", "nosuchrule", "--sizes", "1e4"]) == 2
    assert main(["bench", "--layout", "resnet", "--sizes", "1e4"]) == 2
    assert main(["bench", "--sizes", "lots"]) == 2
    assert main(["bench", "--device", "tpu"]) == 2
    err = capsys.readouterr().err
    assert "nosuchrule" in err and "resnet" in err and "lots" in err
