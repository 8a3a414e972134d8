"""Shared test plumbing: the lane's frameworks, and case / golden / run fixtures.

One environment variable says what a lane tests: OPTCONFORM_FRAMEWORKS (comma-separated adapter
names); OPTCONFORM_REQUIRE names the frameworks that must import there (a failing import fails, never
skips: optconform.testing.require). Test modules of one framework carry ``pytest.mark.framework(name,
...)`` (no names: every framework lane, e.g. the generated conformance tests). The reference lane runs
``pytest -m "not framework"``, a framework lane ``pytest -m framework``; a module whose frameworks the
lane does not test is not collected (read from its source, never imported), so one command serves every
lane and no lane lists files to ignore.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from optconform import testing


def pytest_configure(config):
    config.addinivalue_line("markers", "framework(*names): needs one of these frameworks (none: any selected one)")


def pytest_ignore_collect(collection_path: Path, config):
    """A module of frameworks this lane does not test is not even imported (its framework may not be
    installed here): in the reference lane (-m "not framework") every framework module, in a framework
    lane the modules of other frameworks."""
    if collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    names = testing.declared_frameworks(collection_path)
    if names is None:
        return None
    if config.getoption("markexpr") == "not framework":
        return True
    lane = set(testing.selected_frameworks())
    return True if lane and names and not lane & set(names) else None


def pytest_collection_modifyitems(config, items):
    lane = set(testing.selected_frameworks())
    if not lane:
        return
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("framework")
        (drop if marker is not None and marker.args and not lane & set(marker.args) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def case_of():
    """case_of(adapter, case_id) -> the adapter's Case with that id."""
    return testing.case_by_id


@pytest.fixture(scope="session")
def golden_of():
    """golden_of(name) -> the installed golden of that name."""
    return testing.golden_named


@pytest.fixture(scope="session")
def run_of():
    """run_of(adapter, case_id, dtype="float64", device="cpu") -> the CaseResult row of that run."""
    return testing.run_row
