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


def required_frameworks() -> set[str]:
    """The adapter names in OPTCONFORM_REQUIRE (comma-separated; exact names, so "keras-jax" does not
    require "jax"): a test module for a required framework must import it and fail, never skip."""
    return {n.strip() for n in os.environ.get("OPTCONFORM_REQUIRE", "").split(",") if n.strip()}
