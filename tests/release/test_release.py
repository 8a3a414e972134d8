"""The release lanes (`<lane>-latest`, `<lane>-release`): what the lane's own run and diff say.

The lane ran `optconform run --json $OPTCONFORM_LANE_RESULTS` (exit 0 required) and
`optconform diff baselines/<lane>.json ... --json $OPTCONFORM_LANE_DIFF` (exit 0 required). These
tests read those two files and check the release-tracking promises on the real release: no semantic
change, every registered deviation of the pinned baseline accounted for, and rows beyond a
deviation's registered range carried forward only with the "still present" statement.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from optconform import baseline, deviations

pytestmark = pytest.mark.framework()


def _load(variable: str) -> dict:
    path = os.environ.get(variable)
    assert path, f"{variable} is not set: run these tests from a release lane (tox -e torch-latest)"
    return json.loads(Path(path).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def run():
    return _load("OPTCONFORM_LANE_RESULTS")


@pytest.fixture(scope="module")
def found():
    return _load("OPTCONFORM_LANE_DIFF")


@pytest.fixture(scope="module")
def pinned(run):
    lane = run["results"][0]["framework"]
    doc = baseline.packaged(lane)
    assert doc is not None, f"no committed baseline for {lane}"
    return doc


def test_no_semantic_change(found):
    assert found["semantic_change"] is False, found["semantic"]
    assert found["compared"] > 0


def test_every_registered_deviation_still_present(found, pinned):
    issues = {r["deviation"]["issue"] for r in pinned["results"] if r["verdict"] == "xfail"}
    assert {d["issue"] for d in found["deviations"]} == issues
    assert all(d["status"] == "still present" for d in found["deviations"]), found["deviations"]


def test_rows_beyond_a_registered_range_say_still_present(run):
    for row in run["results"]:
        dev = row.get("deviation") or {}
        if not dev:
            continue
        entry = next(d for d in deviations.registry() if d.issue == dev["issue"] and d.framework == row["framework"])
        beyond = deviations.version_beyond(row["framework_version"], entry.versions)
        assert row["verdict"] == "xfail", row["case"]
        if beyond:
            assert dev["carried"] == (f"still present in {row['framework']} {row['framework_version']} "
                                      f"(registered for {entry.versions})"), row["case"]
        else:
            assert "carried" not in dev, row["case"]
