"""Committed baselines: the results of each pinned lane, the reference point for every later release.

`baselines/<lane>.json` is a results document (spec/results-format.md) made small: no traces, no
timings, numbers rounded to 4 significant digits (enough for drift in tolerance units; verdicts and
semantics are strings), empty fields ("", [], {}) left out (every reader takes a missing field as
empty), one row per line so that a regenerated baseline reads as a line diff.
`optconform baseline RESULTS.json OUT.json` writes one; `tools/update-baselines` regenerates them all
from the pinned tox lanes. Installed with the package (`optconform.baselines`), so `run` can find the
pinned behaviour of a framework to carry registered deviations forward to newer releases.
"""
from __future__ import annotations

import functools
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

from . import results
from optconform.golden.fsio import atomic_write

#: Row fields a baseline drops: plotting data and wall times (not part of what a release does), and
#: every candidate's error (the semantics keep the best, the runner-up and their separation).
DROPPED = ("trace", "seconds", "candidate_units")
#: Fields of a row's `deviation` a baseline drops: the reason is the registry's, read there.
DEVIATION_DROPPED = ("reason",)
#: Row fields kept unrounded: where the worst error is, with the native and expected values.
EXACT = ("worst_at",)
#: Significant digits kept for every number in a baseline.
DIGITS = 4


def _round(value: Any) -> Any:
    """Numbers to DIGITS significant digits, recursively; everything else unchanged."""
    if isinstance(value, float) and math.isfinite(value) and value != 0.0:
        return float(f"{value:.{DIGITS - 1}e}")
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_round(v) for v in value]
    return value


def strip(doc: dict[str, Any]) -> dict[str, Any]:
    """A results document reduced to a baseline: rows without DROPPED fields, numbers rounded."""
    rows = [_row(row) for row in doc["results"]]
    out = {k: v for k, v in doc.items() if k not in ("results", "seconds")}
    out["results"] = rows
    return out


def _empty(value: Any) -> bool:
    return isinstance(value, (str, list, dict)) and not value


def _row(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v if k in EXACT else _round(v) for k, v in row.items() if k not in DROPPED and not _empty(v)}
    if out.get("deviation"):
        out["deviation"] = {k: v for k, v in out["deviation"].items() if k not in DEVIATION_DROPPED}
    for key in ("semantics", "precision"):
        if isinstance(out.get(key), dict):
            out[key] = {k: v for k, v in out[key].items() if not _empty(v)}
    return out


def dumps(doc: dict[str, Any]) -> str:
    """JSON text with one result row per line (small, and regenerations diff line by line)."""
    head = {k: v for k, v in doc.items() if k != "results"}
    lines = [json.dumps(row, separators=(",", ":")) for row in doc["results"]]
    body = json.dumps(head, indent=1)[:-2]          # drop the closing "\n}"
    return body + ',\n "results": [\n' + ",\n".join(lines) + "\n ]\n}\n"


def write(path: str | Path, doc: dict[str, Any]) -> None:
    """Write the baseline of a results document (atomically)."""
    atomic_write(path, dumps(strip(doc)))


@functools.cache
def packaged(lane: str) -> dict[str, Any] | None:
    """The committed baseline of a lane (e.g. "torch"), or None when the lane has none."""
    item = resources.files("optconform.baselines").joinpath(f"{lane}.json")
    if not item.is_file():
        return None
    return results.read(Path(str(item)))


def rows_by_key(doc: dict[str, Any] | None) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    """Rows keyed by (framework, case, device, dtype): the identity of a row across releases."""
    return {row_key(r): r for r in (doc or {}).get("results", [])}


def row_key(row: dict[str, Any]) -> tuple[str, str, str, str]:
    return (row.get("framework", ""), row.get("case", ""), row.get("device", ""), row.get("dtype", ""))


def pinned_row(lane: str, case_id: str, device: str, dtype: str) -> dict[str, Any] | None:
    """The row of the committed baseline of `lane` for this case, device and dtype, if any."""
    return _pinned_rows(lane).get((lane, case_id, device, dtype))


@functools.cache
def _pinned_rows(lane: str) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    return rows_by_key(packaged(lane))
