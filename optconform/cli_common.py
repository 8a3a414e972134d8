"""What the optconform commands share: the usage error (exit 2) and the checks made before any work."""
from __future__ import annotations

import importlib.util
from typing import Iterable, Sequence

USAGE_ERROR = 2
NO_FIT = 3


class UsageError(Exception):
    """Bad command-line input; printed without a traceback, exit 2."""


def split_list(value: str | None) -> list[str] | None:
    """'a, b,,c' -> ['a', 'b', 'c']; None for an empty or missing value."""
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def unique(values: list[str] | None, flag: str) -> list[str] | None:
    """`values`, or a usage error naming a value given twice (it would double rows silently)."""
    from optconform import validate
    try:
        return validate.unique(values, flag)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def require_known_frameworks(names: Iterable[str]) -> None:
    """A usage error naming the first of `names` that is no known adapter."""
    from optconform import registry
    known = registry.adapter_names()
    for name in names:
        if name not in known:
            raise UsageError(f"unknown framework {name!r}; known: {', '.join(known)}")


def require_matplotlib(flag: str) -> None:
    """An output that plots (--html, --plot) needs matplotlib: a usage error before any work."""
    if importlib.util.find_spec("matplotlib") is None:
        raise UsageError(f"{flag} needs matplotlib (pip install 'optconform[report]')")


def check_outputs(args, *flags: str) -> None:
    """Every output path given (--json, --html, ...) can be written: checked before any work."""
    from optconform import validate
    given = {f"--{flag}": getattr(args, flag, None) for flag in flags}
    try:
        for flag, path in given.items():
            if path:
                validate.output_path(path, flag)
        validate.distinct_outputs(given)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def verify_corpus() -> None:
    """Read and verify the golden corpus (every SHA-256, manifest schema, pinned digest) before any
    framework runs: a tampered golden is an integrity error, never FAIL rows blaming a framework."""
    from optconform import plan
    from optconform.golden.format import GoldenFormatError
    try:
        plan.all_goldens()
    except GoldenFormatError as exc:
        raise UsageError(f"golden corpus integrity: {exc}") from None


def read_results(paths: Sequence[str]) -> list[dict]:
    """The results documents at `paths`; an unreadable or invalid one is a usage error."""
    from optconform import results
    try:
        return [results.read(p) for p in paths]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
