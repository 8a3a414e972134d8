"""pytest helpers for users: assert that an optimizer implements a rule of the spec.

    from optconform.testing import assert_conforms

    def test_my_adamw():
        assert_conforms(lambda params, **hp: MyAdamW(params, **hp), rule="adamw", framework="torch")
"""
from __future__ import annotations

from typing import Callable

from .checking import CheckReport, check


def assert_conforms(factory: Callable, rule: str = "adamw", framework: str = "torch", **kwargs) -> CheckReport:
    """Run `optconform.check` and raise AssertionError with the readable report when it does not
    conform (first divergence, fingerprint, what differs from the rule). Returns the report."""
    report = check(factory, rule, framework, **kwargs)
    if not report:
        raise AssertionError(str(report))
    return report
