"""Every test module that needs a framework says so (``pytestmark = pytest.mark.framework(...)``): a
framework lane runs ``pytest -m framework``, so an unmarked module there would silently not run, and in
the reference lane (no framework installed) it would be imported for nothing."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from optconform.testing import declared_frameworks

TESTS = Path(__file__).resolve().parents[1]
#: folders whose every module runs in framework lanes only
FRAMEWORK_FOLDERS = ("conformance", "release", "fingerprint")
#: a module-level call that imports a framework
NEEDS_FRAMEWORK = re.compile(r"^\w*\s*=?\s*(require|keras_lane_adapter)\(", re.M)


def _modules():
    return sorted(p for p in TESTS.rglob("test_*.py") if "benchmarks" not in p.parts)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(TESTS)))
def test_framework_modules_are_marked(path):
    needs = path.parent.name in FRAMEWORK_FOLDERS or NEEDS_FRAMEWORK.search(path.read_text(encoding="utf-8"))
    if needs:
        assert declared_frameworks(path) is not None, (
            f"{path.name} needs a framework: declare pytestmark = pytest.mark.framework(<lane>, ...) at module level")


def test_framework_lanes_select_by_marker():
    tox = (TESTS.parent / "tox.ini").read_text(encoding="utf-8")
    commands = [line.strip() for line in tox.splitlines() if line.strip().startswith("pytest ")]
    assert commands and all("-m framework" in c or '-m "not framework"' in c for c in commands), commands
    assert "--ignore" not in tox
