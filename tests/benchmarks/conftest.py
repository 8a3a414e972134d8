"""The step-time benchmark suite runs only on request: ``pytest tests/benchmarks --benchmark-only``.

In every other pytest run (the tox lanes, a bare ``pytest`` over testpaths = tests) its tests are
skipped at collection, so CI never times anything here (CI runs tests/harness/test_bench_smoke.py).
Needs pytest-benchmark and torch; a missing one skips the suite."""
from __future__ import annotations

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "stepbench: optimizer step-time benchmark (run with --benchmark-only)")


def pytest_collection_modifyitems(config, items):
    try:
        requested = bool(config.getoption("benchmark_only"))
    except ValueError:                 # pytest-benchmark is not installed
        requested = False
    skip = pytest.mark.skip(reason="step-time benchmarks run only with --benchmark-only (pytest-benchmark)")
    for item in items:
        if item.get_closest_marker("stepbench") and not requested:
            item.add_marker(skip)
