"""What changed between two runs of a lane (a pinned baseline and a newer release): `optconform diff`.

Rows are matched by (framework, case, device, dtype). For each pair the diff reports:

- **semantic changes** (each makes `diff` exit 1): the matched rule, the decay kind or the fingerprint
  (knob vector) differ; the row newly fails (its verdict enters FAILING); a registered deviation is
  fixed or fails differently; a case or a native keyword option disappeared;
- **registered deviations**, grouped per upstream link: still present, fixed or changed, with the
  releases on both sides;
- **news** (exit 0): cases and native keyword options that appeared, other verdict changes;
- **numeric drift** (informational): worst errors that moved by at least DRIFT_FACTOR, in tolerance
  units, where either side is at least DRIFT_FLOOR units.

The markdown is what a CI job summary or a pull-request comment shows; the JSON carries the same.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any

from .baseline import rows_by_key
from .report import FAILING

#: Row fields whose change is a change of the maths the native implements.
SEMANTIC_FIELDS = (("matched_rule", "matched rule"), ("decay_kind", "decay kind"), ("fingerprint", "fingerprint"))
#: Drift is reported when a worst error moves by this factor or more ...
DRIFT_FACTOR = 2.0
#: ... and one side is at least this many tolerance units (below it, both are rounding noise).
DRIFT_FLOOR = 0.1
#: Verdicts under which a registered deviation still shows.
DEVIATING = ("xfail",)
#: Verdicts of rows that compared nothing: their matched rule, decay and fingerprint are empty.
NOT_COMPARED = ("n/a", "error", "unavailable", "not-installed", "no-goldens")


@dataclass(frozen=True)
class Change:
    """One named change of one row (or of one native API, `case` then holds the API)."""
    case: str
    device: str
    dtype: str
    what: str
    before: str
    after: str


@dataclass(frozen=True)
class DeviationStatus:
    """A registered deviation (one upstream link) across the rows it covered in the baseline."""
    issue: str
    kind: str
    status: str                       # "still present", "fixed", "changed" or "mixed"
    rows: dict[str, list[str]]        # status -> ["case device dtype", ...]
    carried: str = ""                 # on a release beyond the registered range: what `run` said


@dataclass
class Diff:
    base_versions: dict[str, str]
    new_versions: dict[str, str]
    compared: int
    semantic: list[Change] = field(default_factory=list)
    news: list[Change] = field(default_factory=list)
    deviations: list[DeviationStatus] = field(default_factory=list)
    drift: list[Change] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether any semantic change was found (exit status 1)."""
        return bool(self.semantic)

    def to_json(self) -> dict[str, Any]:
        return {"base_versions": self.base_versions, "new_versions": self.new_versions, "compared": self.compared,
                "semantic_change": self.changed, "semantic": [asdict(c) for c in self.semantic],
                "news": [asdict(c) for c in self.news], "deviations": [asdict(d) for d in self.deviations],
                "drift": [asdict(c) for c in self.drift]}


def _versions(doc: dict[str, Any]) -> dict[str, str]:
    out = {e.get("framework", ""): e.get("version", "") for e in doc.get("environments", [])}
    for row in doc["results"]:
        out.setdefault(row.get("framework", ""), row.get("framework_version", ""))
    return out


def _label(key: tuple[str, str, str, str]) -> str:
    return " ".join(part for part in key[1:] if part)


def _units(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _row_changes(key, old: dict[str, Any], new: dict[str, Any]) -> tuple[list[Change], list[Change]]:
    """(semantic, news) changes of one row present on both sides."""
    semantic, news = [], []
    make = lambda what, a, b: Change(key[1], key[2], key[3], what, str(a), str(b))  # noqa: E731
    compared = old.get("verdict") not in NOT_COMPARED and new.get("verdict") not in NOT_COMPARED
    for name, words in SEMANTIC_FIELDS if compared else ():
        a, b = old.get(name) or "", new.get(name) or ""
        if a != b:
            semantic.append(make(words, a or "-", b or "-"))
    a, b = old.get("verdict", ""), new.get("verdict", "")
    if a != b and not (old.get("deviation") and a in DEVIATING):   # deviations are judged per link below
        (semantic if b in FAILING else news).append(make("verdict", a, b))
    return semantic, news


def _drift(key, old: dict[str, Any], new: dict[str, Any]) -> Change | None:
    a, b = _units(old.get("worst_units")), _units(new.get("worst_units"))
    if not (0 < a < math.inf and 0 < b < math.inf) or max(a, b) < DRIFT_FLOOR or max(a, b) / min(a, b) < DRIFT_FACTOR:
        return None
    return Change(key[1], key[2], key[3], "worst error (tolerance units)", f"{a:.3g}", f"{b:.3g}")


def _deviation_state(old: dict[str, Any], new: dict[str, Any] | None) -> str:
    if new is None:
        return "changed"
    if new.get("verdict") in DEVIATING and (new.get("deviation") or {}).get("issue") == old["deviation"]["issue"]:
        return "still present"
    return "fixed" if new.get("verdict") in ("conforms", "xpass") else "changed"


def _deviations(base: dict, new: dict) -> tuple[list[DeviationStatus], list[Change]]:
    """Every registered deviation of the baseline, grouped by upstream link; semantic changes for
    the rows where it was fixed or now fails differently."""
    groups: "OrderedDict[str, dict[str, list]]" = OrderedDict()
    kinds: dict[str, str] = {}
    carried: dict[str, str] = {}
    changes = []
    for key, old in base.items():
        dev = old.get("deviation") or {}
        if not dev.get("issue") or old.get("verdict") not in DEVIATING:
            continue
        state = _deviation_state(old, new.get(key))
        groups.setdefault(dev["issue"], {}).setdefault(state, []).append(_label(key))
        kinds[dev["issue"]] = dev.get("kind", "")
        note = ((new.get(key) or {}).get("deviation") or {}).get("carried", "")
        if note and state == "still present":
            carried.setdefault(dev["issue"], note)
        if state != "still present":
            after = new[key]["verdict"] if key in new else "absent"
            changes.append(Change(key[1], key[2], key[3], f"registered deviation {state}", "xfail", after))
    out = [DeviationStatus(issue, kinds[issue], next(iter(rows)) if len(rows) == 1 else "mixed", rows,
                           carried.get(issue, "")) for issue, rows in groups.items()]
    return out, changes


def _options(base_doc: dict, new_doc: dict) -> tuple[list[Change], list[Change]]:
    """(removed, added) native keyword options per native API, where both runs recorded them."""
    def table(doc):
        out: dict[str, list[str] | None] = {}
        for env in doc.get("environments", []):
            out.update(env.get("native_options") or {})
        return out
    old, new = table(base_doc), table(new_doc)
    removed, added = [], []
    for native in sorted(set(old) & set(new)):
        if old[native] is None or new[native] is None:
            continue
        for name in sorted(set(old[native]) - set(new[native])):
            removed.append(Change(native, "", "", "native option removed", name, "-"))
        for name in sorted(set(new[native]) - set(old[native])):
            added.append(Change(native, "", "", "native option added", "-", name))
    return removed, added


def compare(base_doc: dict[str, Any], new_doc: dict[str, Any]) -> Diff:
    """The diff of two results documents (baseline first); ValueError when they share no row."""
    base, new = rows_by_key(base_doc), rows_by_key(new_doc)
    common = [k for k in base if k in new]
    if not common:
        raise ValueError("the two results share no (framework, case, device, dtype) row: different lanes?")
    diff = Diff(_versions(base_doc), _versions(new_doc), len(common))
    for key in common:
        semantic, news = _row_changes(key, base[key], new[key])
        diff.semantic += semantic
        diff.news += news
        drift = _drift(key, base[key], new[key])
        if drift:
            diff.drift.append(drift)
    diff.deviations, fixed_or_changed = _deviations(base, new)
    diff.semantic += fixed_or_changed
    diff.semantic += [Change(k[1], k[2], k[3], "case disappeared", base[k].get("verdict", ""), "absent")
                      for k in base if k not in new]
    diff.news += [Change(k[1], k[2], k[3], "case appeared", "absent", new[k].get("verdict", ""))
                  for k in new if k not in base]
    removed, added = _options(base_doc, new_doc)
    diff.semantic += removed
    diff.news += added
    diff.drift.sort(key=lambda c: -max(float(c.before), float(c.after)) / min(float(c.before), float(c.after)))
    return diff


#: Rows of a markdown table shown per section before "... and N more".
SHOWN = 40


def _table(changes: list[Change], headers=("case", "device", "dtype", "what", "before", "after")) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for c in changes[:SHOWN]:
        cells = (c.case, c.device or "-", c.dtype or "-", c.what, c.before, c.after)
        lines.append("| " + " | ".join(f"`{x}`" if i == 0 else x for i, x in enumerate(cells)) + " |")
    if len(changes) > SHOWN:
        lines.append(f"\n... and {len(changes) - SHOWN} more (see the JSON)")
    return lines


def _versions_line(diff: Diff) -> str:
    names = sorted(set(diff.base_versions) | set(diff.new_versions))
    return ", ".join(f"{n} {diff.base_versions.get(n, '-')} -> {diff.new_versions.get(n, '-')}" for n in names)


def _deviation_lines(diff: Diff) -> list[str]:
    out = []
    for d in diff.deviations:
        counts = ", ".join(f"{len(rows)} {state}" for state, rows in d.rows.items())
        if d.carried and d.status == "still present":
            out.append(f"- {d.issue} ({d.kind}, {counts} rows): **{d.carried}**")
        else:
            out.append(f"- {d.issue} ({d.kind}): **{d.status}** ({counts} rows)")
    return out


def _short(issue: str) -> str:
    """'https://github.com/pytorch/pytorch/issues/110940' -> 'pytorch#110940'; other links unchanged."""
    parts = issue.rstrip("/").split("/")
    return f"{parts[-3]}#{parts[-1]}" if len(parts) >= 4 and parts[-2] in ("issues", "pull") else issue


def markdown(diff: Diff, level: int = 2) -> str:
    """The diff as markdown: verdict line first, then each non-empty section; `level` is the markdown
    heading level of the title (sections one below)."""
    head = "**Semantic change.**" if diff.changed else "**No semantic change.**"
    present = [_short(d.issue) for d in diff.deviations if d.status == "still present"]
    lines = ["#" * level + " optconform diff: " + _versions_line(diff), "",
             f"{head} {diff.compared} rows compared; {len(diff.semantic)} semantic change(s)"
             + (f"; {', '.join(present)} still present" if present else "") + "."]
    sections = (("Semantic changes", _table(diff.semantic)),
                ("Registered deviations", _deviation_lines(diff)),
                ("News", _table(diff.news)),
                (f"Numeric drift (informational: at least {DRIFT_FACTOR:g}x, above {DRIFT_FLOOR:g} units)",
                 _table(diff.drift)))
    for title, body in sections:
        if body and not (body[0].startswith("| ") and len(body) == 2):
            lines += ["", "#" * (level + 1) + f" {title}", "", *body]
    return "\n".join(lines) + "\n"
