"""The conformance tests' rows from the lane's results JSON (optconform.lane_rows): a current file
gives its rows; a missing, foreign or stale one fails (AssertionError), never skips."""
from __future__ import annotations

import json

import pytest

from optconform import lane_rows, results


def _write(path, fake_run, mutate=None):
    rows = [r.to_json() for r in fake_run.rows]
    env = [{"framework": "fake", "version": "1.2.3", "devices": {"cpu": "cpu"}, "gpu_driver": "", "native_options": {}}]
    doc = results.document(rows, env, 1.0)
    if mutate:
        mutate(doc)
    path.write_text(json.dumps(doc), encoding="utf-8")
    return lane_rows.LaneRows(str(path))


def _case(fake_run, name):
    return next(c for c in fake_run.adapter.cases() if c.name == name)


def test_a_current_file_gives_its_rows(tmp_path, fake_run):
    rows = _write(tmp_path / "run.json", fake_run)
    row = rows.row(fake_run.adapter, _case(fake_run, "AdamW(l2bug)"), "cpu", "float32")
    assert row == fake_run.by_key[("AdamW(l2bug)", "float32")].to_json()
    assert rows.keys("fake") == {(r.case, "cpu", r.dtype) for r in fake_run.rows}


def _bump_version(doc):
    doc["optconform_version"] = "0.0.0-other"


def _other_release(doc):
    doc["environments"][0]["version"] = "9.9.9"


def _drop_a_row(doc):
    doc["results"] = [r for r in doc["results"] if not (r["name"] == "AdamW" and r["dtype"] == "float64")]


def _fewer_goldens(doc):
    for r in doc["results"]:
        if r["name"] == "AdamW":
            r["goldens_run"] -= 1


def _another_framework(doc):
    doc["environments"][0]["framework"] = "other"


@pytest.mark.parametrize("mutate,says", [(_bump_version, "written by optconform"), (_other_release, "this environment has"),
                                         (_drop_a_row, "has no row"), (_fewer_goldens, "stale"),
                                         (_another_framework, "holds no rows of fake")])
def test_a_stale_or_foreign_file_fails(tmp_path, fake_run, mutate, says):
    rows = _write(tmp_path / "run.json", fake_run, mutate)
    with pytest.raises(AssertionError, match=says):
        rows.row(fake_run.adapter, _case(fake_run, "AdamW"), "cpu", "float64")


def test_a_missing_file_fails(tmp_path, fake_run):
    rows = lane_rows.LaneRows(str(tmp_path / "absent.json"))
    with pytest.raises(AssertionError, match="cannot read"):
        rows.row(fake_run.adapter, _case(fake_run, "AdamW"), "cpu", "float64")


def test_without_a_file_the_row_is_computed_once(fake_run):
    rows = lane_rows.LaneRows(None)
    case = _case(fake_run, "AdamW")
    calls = fake_run.adapter.calls
    first = rows.row(fake_run.adapter, case, "cpu", "float64")
    again = rows.row(fake_run.adapter, case, "cpu", "float64")
    assert first is again and fake_run.adapter.calls > calls
    expected = fake_run.by_key[("AdamW", "float64")].to_json()
    assert {k: v for k, v in first.items() if k != "seconds"} == {k: v for k, v in expected.items() if k != "seconds"}
