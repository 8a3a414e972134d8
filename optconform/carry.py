"""Known deviations on releases newer than their registered range: carried forward only if they
reproduce as the pinned baseline recorded them.

A deviation registered for ``>=2.13,<2.14`` was checked on the pinned release only. On 2.14.1 the
same rows may fail the same way (still present: xfail, the run stays green and says so), conform
(gone: the entry must be closed or bounded: xpass, red), or fail differently (changed: deviates,
red, naming what differs). "The same way" is three facts of the baseline row: the same failing
goldens, the same fingerprint (knob vector), and a worst error within one order of magnitude.
"""
from __future__ import annotations

import math
from typing import Any

from .deviations import Deviation

#: A carried deviation's worst error may differ from the baseline's by at most this factor.
MAGNITUDE_FACTOR = 10.0


def difference(row: Any, base: dict[str, Any] | None) -> str:
    """'' when `row` (a CaseResult) fails as the baseline row did; else what differs, in words."""
    if base is None:
        return "the pinned baseline has no such row to compare with"
    if base.get("verdict") != "xfail":
        return f"the pinned baseline row was {base.get('verdict')!r}, not a registered deviation"
    before, now = sorted(base.get("goldens_failed") or []), sorted(row.goldens_failed)
    if before != now:
        return f"failing goldens changed: {', '.join(before) or 'none'} -> {', '.join(now) or 'none'}"
    if (base.get("fingerprint") or "") != row.fingerprint:
        return f"fingerprint changed: {base.get('fingerprint')!r} -> {row.fingerprint!r}"
    old, new = float(base.get("worst_units") or math.nan), float(row.worst_units)
    if old == new:                      # the same error; also +inf both times (a native run that raised)
        return ""
    if not (0 < old < math.inf and 0 < new < math.inf
            and abs(math.log10(new / old)) <= math.log10(MAGNITUDE_FACTOR)):
        return f"worst error changed by more than {MAGNITUDE_FACTOR:g}x: {old:.3g} -> {new:.3g} units"
    return ""


def apply(row: Any, dev: Deviation, base: dict[str, Any] | None, conforms: bool) -> None:
    """Set the verdict and `deviation` of a row covered only by `dev`, registered for older releases."""
    where = f"{row.framework} {row.framework_version} (registered for {dev.versions})"
    row.deviation = {"id": dev.id, "kind": dev.kind, "reason": dev.reason, "issue": dev.issue}
    if conforms:
        row.verdict = "xpass"
        row.deviation["carried"] = f"gone in {where}: bound or remove the entry"
        return
    changed = difference(row, base)
    if changed:
        row.verdict = "deviates"
        row.deviation["carried"] = f"changed in {where}: {changed}"
    else:
        row.verdict = "xfail"
        row.deviation["carried"] = f"still present in {where}"


def failed_in_baseline(base: dict[str, Any] | None, golden: str) -> bool:
    """Whether the pinned baseline recorded `golden` as a failing golden of a registered deviation
    (the per-golden form of `difference`, for the generated conformance tests)."""
    return bool(base) and base.get("verdict") == "xfail" and golden in (base.get("goldens_failed") or [])
