"""pytest helpers for users: assert that an optimizer implements a rule of the spec.

    from optconform.testing import assert_conforms

    def test_my_adamw():
        assert_conforms(lambda params, **hp: MyAdamW(params, **hp), rule="adamw", framework="torch")
"""
from __future__ import annotations

import os
from typing import Callable

from .checking import CheckReport, check


def assert_conforms(factory: Callable, rule: str = "adamw", framework: str = "torch", **kwargs) -> CheckReport:
    """Run `optconform.check` and raise AssertionError with the readable report when it does not
    conform (first divergence, fingerprint, what differs from the rule). Returns the report."""
    report = check(factory, rule, framework, **kwargs)
    if not report:
        raise AssertionError(str(report))
    return report


def _env_names(variable: str) -> list[str]:
    return [n.strip() for n in os.environ.get(variable, "").split(",") if n.strip()]


def required_frameworks() -> set[str]:
    """The adapter names in OPTCONFORM_REQUIRE (comma-separated; exact names, so "keras-jax" does not
    require "jax"): a test module for a required framework must import it and fail, never skip."""
    return set(_env_names("OPTCONFORM_REQUIRE"))


def selected_frameworks() -> list[str]:
    """The adapter names in OPTCONFORM_FRAMEWORKS (empty: no selection)."""
    return _env_names("OPTCONFORM_FRAMEWORKS")


def require(framework: str, *modules: str):
    """Import `modules` for a test module of `framework`: a plain import (an ImportError fails the
    run) when the framework is required here, else pytest.importorskip (a visible skip). Returns the
    first module."""
    import importlib

    import pytest
    load = importlib.import_module if framework in required_frameworks() else pytest.importorskip
    loaded = [load(m) for m in modules]
    return loaded[0]


def keras_lane_adapter():
    """The Keras adapter of this test process (a process holds one Keras backend): the backend
    required here (a failing import fails, never skips), else the first selected one (tensorflow,
    then keras-jax) that loads; skips the calling test module when none does."""
    import pytest

    from optconform import registry
    from optconform.adapters.base import AdapterUnavailable
    backends = tuple((name, registry.load_adapter(name)) for name in ("tensorflow", "keras-jax"))
    for name, adapter in reversed(backends):
        if name in required_frameworks():
            adapter.load()
            return adapter
    selected = selected_frameworks()
    for name, adapter in backends:
        if not selected or name in selected:
            try:
                adapter.load()
                return adapter
            except AdapterUnavailable:
                continue
    pytest.skip("no Keras backend (tensorflow or keras-jax) is installed here", allow_module_level=True)


def case_by_id(adapter, case_id: str):
    """The adapter's Case with id `case_id` (LookupError naming the ids it has)."""
    for case in adapter.cases():
        if case.id == case_id:
            return case
    raise LookupError(f"{adapter.name} has no case {case_id!r}; cases: {', '.join(c.id for c in adapter.cases())}")


def golden_named(name: str):
    """The installed golden called `name`."""
    from optconform import plan
    for golden in plan.all_goldens():
        if golden.name == name:
            return golden
    raise LookupError(f"no golden named {name!r}")


def run_row(adapter, case_id: str, dtype: str = "float64", device: str = "cpu"):
    """One case run through the runner, as `optconform run` makes its row (optconform.runner.CaseResult):
    the lane's row when OPTCONFORM_LANE_RESULTS holds it (optconform.lane_rows), else run here once."""
    from optconform import lane_rows, runner
    rows = lane_rows.lane_rows()
    case = case_by_id(adapter, case_id)
    if rows.holds(adapter.name, case_id, device, dtype):
        return runner.CaseResult.from_json(rows.row(adapter, case, device, dtype))
    return runner.CaseResult.from_json(lane_rows.computed(adapter, case_id, device, dtype))


def native_params(adapter, case, golden, dtype: str, device: str = "cpu"):
    """The native parameter trajectories of `case` on `golden` (tensor -> (steps + 1, *shape)): the ones
    the lane's run judged when OPTCONFORM_LANE_TRAJECTORIES holds its rows (optconform.lane_trajectories),
    else (or for a case that is no row of the lane, e.g. a case with other keywords) run here."""
    from optconform import lane_trajectories, plan
    directory = os.environ.get(lane_trajectories.ENV)
    if not directory or case not in adapter.cases():
        return adapter.run(case, plan.run_input(case, golden, adapter.supports_eta), device, dtype).params
    goldens = [g.name for g in plan.goldens_for(case, adapter.supports_eta)]
    return lane_trajectories.load(directory, adapter.name, adapter.version(), case.id, device, dtype,
                                  goldens)[golden.name]


def declared_frameworks(path) -> tuple[str, ...] | None:
    """The names of a test module's module-level ``pytestmark = pytest.mark.framework(...)``, read from
    its source without importing it (None: the module declares none; () : any framework lane)."""
    import ast
    from pathlib import Path
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None                    # pytest reports the broken module itself
    for node in tree.body:
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets)
                and isinstance(node.value, ast.Call) and getattr(node.value.func, "attr", "") == "framework"):
            return tuple(a.value for a in node.value.args if isinstance(a, ast.Constant))
    return None
