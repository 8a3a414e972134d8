"""docs/history/<framework>.md and .json from the recorded runs of `optconform history`.

The table: one row per case, one column per release; a cell reads `matched rule · decay kind ·
float64/float32 verdicts` (`n/a` where the release lacks the case's native option, `-` where the run
has no such row). Below it, "What changed": `optconform diff` of each pair of consecutive releases
that both ran, so that every change listed is backed by two real runs.
"""
from __future__ import annotations

import datetime as _dt
import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

import optconform

from .. import baseline, diff
from optconform.golden.fsio import atomic_write
from ..report import MARK

SCHEMA = "optconform-history"
#: Row fields a history drops beyond a baseline's (it keeps what cells and diffs read: verdict, matched
#: rule, decay kind, fingerprint, deviation, worst error, failing goldens).
DROPPED = ("worst_at", "candidate_units", "first_divergence", "worst_ulps", "device_name", "name", "native",
           "semantics", "precision")


def _slim(doc: dict[str, Any]) -> dict[str, Any]:
    small = baseline.strip(doc)
    small["results"] = [{k: v for k, v in row.items() if k not in DROPPED} for row in small["results"]]
    return small


def document(framework: str, records: list[dict[str, Any]], commit: str = "") -> dict[str, Any]:
    """The history JSON: every release's run record with its (slimmed) results document, and the
    optconform source commit every run was made with."""
    return {"schema": SCHEMA, "schema_version": 1, "framework": framework,
            "optconform_version": optconform.__version__, "optconform_commit": commit,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "releases": [{**r, "commit": r.get("commit", commit),
                          "doc": _slim(r["doc"]) if r.get("doc") else None} for r in records]}


def updated(earlier: dict[str, Any] | None, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The release records of an earlier history with `records` replacing (or adding) their releases,
    in release order as first recorded; without an earlier history, `records`."""
    if not earlier:
        return records
    fresh = {r["release"]: r for r in records}
    old = [{**r, "commit": r.get("commit") or earlier.get("optconform_commit", "")} for r in earlier["releases"]]
    kept = [fresh.pop(r["release"], r) for r in old]
    return kept + list(fresh.values())


def _verdicts(rows: dict[str, dict]) -> str:
    marks = [MARK.get(rows[d]["verdict"], rows[d]["verdict"]) if d in rows else "-" for d in ("float64", "float32")]
    return marks[0] if len(set(marks)) == 1 and marks[0] in ("n/a", "ERROR") else "/".join(marks)


def _cell(rows: dict[str, dict] | None) -> str:
    """matched rule · decay · float64/float32 verdicts of one case in one release."""
    if not rows:
        return "-"
    ran = [r for r in rows.values() if r.get("matched_rule")]
    if not ran:
        return _verdicts(rows)
    rules = "/".join(sorted({r["matched_rule"] for r in ran}))
    decay = "/".join(sorted({r.get("decay_kind") or "-" for r in ran}))
    return f"{rules} · {decay} · {_verdicts(rows)}"


def _by_case(doc: dict[str, Any] | None) -> dict[str, dict[str, dict]]:
    out: "OrderedDict[str, dict[str, dict]]" = OrderedDict()
    for row in (doc or {}).get("results", []):
        if row.get("device") in ("cpu", ""):
            out.setdefault(row["case"], {})[row.get("dtype", "")] = row
    return out


def _table(history: dict[str, Any]) -> list[str]:
    releases = history["releases"]
    columns = [_by_case(r["doc"]) for r in releases]
    cases = list(OrderedDict.fromkeys(c for col in reversed(columns) for c in col))
    lines = ["| case | " + " | ".join(r["release"] for r in releases) + " |",
             "|---|" + "---|" * len(releases)]
    for case in cases:
        lines.append(f"| `{case}` | " + " | ".join(_cell(col.get(case)) for col in columns) + " |")
    failed = [r for r in releases if r["doc"] is None]
    for r in failed:
        lines.append(f"\n{r['release']}: no run ({r['error'] or 'exit ' + str(r['exit_code'])})")
    return lines


def _changes(history: dict[str, Any]) -> list[str]:
    ran = [r for r in history["releases"] if r["doc"] is not None]
    lines = []
    for before, after in zip(ran, ran[1:]):
        lines += ["", f"### {before['release']} → {after['release']}", ""]
        try:
            found = diff.compare(before["doc"], after["doc"])
        except ValueError as exc:
            lines.append(f"not comparable: {exc}")
            continue
        body = diff.markdown(found, level=4).splitlines()
        lines += body[2:]                                 # the title repeats the versions of this heading
    return lines


def markdown(history: dict[str, Any]) -> str:
    """docs/history/<framework>.md."""
    fw = history["framework"]
    runs = [r for r in history["releases"] if r["doc"] is not None]
    versions = ", ".join(f"{r['release']} ({', '.join(e['framework'] + ' ' + e['version'] for e in r['doc']['environments'])}, "
                         f"{r['started']}, optconform {r.get('commit', '')[:10] or '?'})" for r in runs)
    head = [f"# {fw}: optimizer maths across releases", "",
            f"Generated by `optconform history --framework {fw}` (optconform {history['optconform_version']} at "
            f"{history.get('optconform_commit') or 'an unrecorded commit'}, {history['created']}) from real runs on CPU, float64 and float32, recorded in `{fw}.json`: {versions}.",
            "", "A cell reads *matched rule · decay kind · float64/float32 verdicts*; `n/a`: the release lacks "
            "the case's native option; `-`: no such row.", ""]
    return "\n".join(head + _table(history) + ["", "## What changed"] + _changes(history)) + "\n"


def write(history: dict[str, Any], out_dir: str | Path) -> tuple[str, str]:
    """Write <framework>.json and <framework>.md into `out_dir`; their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fw = history["framework"]
    atomic_write(out / f"{fw}.json", json.dumps(history, indent=1) + "\n")
    atomic_write(out / f"{fw}.md", markdown(history))
    return str(out / f"{fw}.json"), str(out / f"{fw}.md")
