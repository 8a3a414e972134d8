"""`optconform run --workers N`: the rows worker processes compute are the rows one process computes
(same findings, same order), a worker that dies makes an error row and the others still run, and the
JSON rows round-trip into CaseResult exactly (optconform.workers, runner.CaseResult.from_json)."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from optconform import lane_trajectories, runner

HERE = Path(__file__).parent

#: a module the worker processes import through an entry point: the fake adapter of conftest.py, with
#: one case whose run kills its process and one of a compiling variant (started first)
FAKE_MODULE = f"""
import os, sys
sys.path.insert(0, {str(HERE)!r})
from conftest import ADAM_HP, ADAMW_HP, FakeAdapter, fake_case


class DyingAdapter(FakeAdapter):
    compiling_variants = frozenset({{"jit"}})       # its rows start first; the rows still come back in job order

    def driver(self, case, inp, device, dtype):
        if case.name == "Adam(dies)":
            os._exit(7)
        return super().driver(case, inp, device, dtype)


ADAPTER = DyingAdapter([fake_case("AdamW", "adamw", ADAMW_HP), fake_case("AdamW(l2bug)", "adamw", ADAMW_HP),
                        fake_case("Adam(dies)", "adam", ADAM_HP), fake_case("Adam(broken)", "adam", ADAM_HP),
                        fake_case("Adam", "adam", ADAM_HP, variant="jit")],
                       implements={{"AdamW(l2bug)": "adam_l2"}}, broken={{"Adam(broken)"}})
"""


@pytest.fixture
def fake_pool(tmp_path, monkeypatch):
    """The fake adapter, importable by name ("fake") in this process and in worker processes."""
    package = tmp_path / "optconform_fake_workers"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "adapter.py").write_text(FAKE_MODULE, encoding="utf-8")   # a package: deviations_toml
    info = tmp_path / "optconform_fake_workers-0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: optconform-fake-workers\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text("[optconform.adapters]\nfake = optconform_fake_workers.adapter:ADAPTER\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.syspath_prepend(str(tmp_path))
    from optconform import registry
    return registry.load_adapter("fake")


def _findings(rows):
    return [{k: v for k, v in row.to_json().items() if k != "seconds"} for row in rows]


def test_worker_rows_are_the_in_process_rows(fake_pool, tmp_path):
    progress = []
    alive = [c for c in fake_pool.cases() if c.name != "Adam(dies)"]
    fake_pool._cases, every = alive, fake_pool._cases
    try:
        single = runner.run_adapter(fake_pool, dtypes=["float64", "float32"])
    finally:
        fake_pool._cases = every
    pooled = runner.run_adapter(fake_pool, dtypes=["float64", "float32"], workers=2,
                                progress=lambda i, n, label: progress.append((i, n, label)), trajectories=str(tmp_path))
    pooled = [row for row in pooled if row.case != "fake-Adam(dies)[default]"]
    assert _findings(pooled) == _findings(single)
    kept = {lane_trajectories.row_file(str(tmp_path), r.case, r.device, r.dtype).name for r in pooled if r.goldens_run}
    assert kept and kept == {path.name for path in tmp_path.glob("*.npz")}     # the workers kept each row they judged
    assert {row.verdict for row in pooled} == {"conforms", "deviates", "error"}
    assert progress[-1] == (len(every) * 2, len(every) * 2, "done")


def test_a_worker_that_dies_is_an_error_row_and_the_rest_run(fake_pool):
    rows = runner.run_adapter(fake_pool, dtypes=["float64"], workers=2)
    by_name = {row.name or row.case: row for row in rows}
    died = by_name["fake-Adam(dies)[default]"]
    assert died.verdict == "error" and "exit status 7" in died.error
    assert [row.case for row in rows] == [case.id for case in fake_pool.cases()]
    assert by_name["Adam"].verdict == "conforms" and by_name["AdamW"].verdict == "conforms"


def test_case_result_round_trips_through_json(fake_run):
    for row in fake_run.rows:
        data = row.to_json()
        assert runner.CaseResult.from_json(data).to_json() == data
