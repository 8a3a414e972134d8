"""The native trajectories a lane's run keeps (optconform.lane_trajectories, `optconform run
--trajectories`): the tests read back exactly the arrays the run judged; a missing, foreign or stale row
file fails (AssertionError), never skips; a directory of other files is never emptied."""
from __future__ import annotations

import numpy as np
import pytest

from optconform import lane_trajectories, plan, runner
from optconform.testing import native_params


@pytest.fixture
def kept(tmp_path, fake):
    """A fake adapter's rows run with --trajectories (one conforming case, one that raises)."""
    cases = [fake.case("AdamW", "adamw", fake.ADAMW_HP), fake.case("Adam(broken)", "adam", fake.ADAM_HP)]
    adapter = fake.Adapter(cases, broken={"Adam(broken)"})
    directory = tmp_path / "trajectories"
    lane_trajectories.prepare(str(directory))
    rows = runner.run_adapter(adapter, dtypes=["float64", "float32"], trajectories=str(directory))
    return adapter, cases, directory, rows


def _load(adapter, case, directory, dtype="float32", version=None, goldens=None):
    names = goldens if goldens is not None else [g.name for g in plan.goldens_for(case)]
    return lane_trajectories.load(str(directory), adapter.name, version or adapter.version(), case.id, "cpu",
                                  dtype, names)


def test_the_tests_read_the_arrays_the_run_judged(kept, monkeypatch):
    adapter, (adamw, _), directory, rows = kept
    assert [r.verdict for r in rows if r.name == "AdamW"] == ["conforms", "conforms"]
    for dtype in ("float64", "float32"):
        for golden in plan.goldens_for(adamw):
            here = native_params(adapter, adamw, golden, dtype)                    # run in this process
            monkeypatch.setenv(lane_trajectories.ENV, str(directory))
            calls = adapter.calls
            stored = native_params(adapter, adamw, golden, dtype)                  # read from the run's file
            assert adapter.calls == calls, "the stored trajectory must not be run again"
            monkeypatch.delenv(lane_trajectories.ENV)
            assert sorted(stored) == sorted(here) == sorted(golden.tensors)
            for name in golden.tensors:
                np.testing.assert_array_equal(stored[name], here[name])
                assert stored[name].dtype == here[name].dtype


def test_an_error_row_keeps_nothing_and_reading_it_fails(kept):
    adapter, (_, broken), directory, rows = kept
    assert {r.verdict for r in rows if r.name == "Adam(broken)"} == {"error"}
    with pytest.raises(AssertionError, match="has no file"):
        _load(adapter, broken, directory)


@pytest.mark.parametrize("change,says", [({"version": "9.9.9"}, "it is stale"),
                                         ({"goldens": ["adamw__one_golden_only"]}, "it is stale")])
def test_a_stale_row_file_fails(kept, change, says):
    adapter, (adamw, _), directory, _ = kept
    with pytest.raises(AssertionError, match=says):
        _load(adapter, adamw, directory, **change)


def test_a_case_that_is_no_lane_row_runs_here(kept, monkeypatch, fake):
    adapter, (adamw, _), directory, _ = kept
    other = fake.case("AdamW(other)", "adamw", fake.ADAMW_HP)
    golden = plan.goldens_for(adamw)[0]
    monkeypatch.setenv(lane_trajectories.ENV, str(directory))
    calls = adapter.calls
    native_params(adapter, other, golden, "float32")
    assert adapter.calls == calls + 1


def test_a_new_run_empties_its_own_directory_only(kept, tmp_path):
    adapter, (adamw, _), directory, _ = kept
    lane_trajectories.prepare(str(directory))
    assert not list(directory.glob("*.npz"))
    with pytest.raises(AssertionError, match="has no file"):
        _load(adapter, adamw, directory)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.npz").write_bytes(b"not ours")
    with pytest.raises(ValueError, match="holds other files"):
        lane_trajectories.prepare(str(foreign))
    assert (foreign / "keep.npz").read_bytes() == b"not ours"
