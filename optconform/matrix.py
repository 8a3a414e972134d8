"""The conformance matrix as data: one `MatrixRow` per (framework, case, device) — implementation
variants that agree collapsed into one row — for the terminal table (optconform/terminal.py) and the
HTML table (optconform/html_table.py). Each dtype cell holds the worst error over every golden in
tolerance units (<= 1 conforms, spec/tolerance.md) and the verdict; a collapsed row shows the worst
cell over its variants."""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Iterable

DTYPE_ORDER = ("float64", "float32", "bfloat16", "float16")
MARK = {"conforms": "ok", "xfail": "xfail", "xpass": "XPASS", "deviates": "FAIL", "error": "ERROR",
        "no-goldens": "NO-GOLDENS", "n/a": "n/a", "unavailable": "UNAVAILABLE", "not-installed": "not installed"}
#: verdicts with a worst error to show beside the mark
SCORED = ("conforms", "deviates", "xfail", "xpass")


@dataclass(frozen=True)
class Cell:
    """One dtype of one row: verdict and worst error in tolerance units (None: no comparison)."""
    verdict: str
    units: float | None = None

    @property
    def text(self) -> str:
        mark = MARK.get(self.verdict, self.verdict)
        return f"{units_text(self.units)} {mark}" if self.verdict in SCORED else mark


@dataclass
class MatrixRow:
    """One line of the matrix. `case` is the case id, its variants joined ('torch-SGD[forloop, fused]')."""
    lane: str
    version: str
    case: str
    device: str
    claimed: str
    matched: str
    decay: str
    separation: str
    cells: dict[str, Cell] = field(default_factory=dict)
    fingerprint: str = ""
    variants: list[str] = field(default_factory=list)
    #: a dtype whose semantics are identified names a rule other than the claimed one
    not_claimed: bool = False

    @property
    def framework(self) -> str:
        return f"{self.lane} {self.version}".strip()

    def agrees_with(self, other: "MatrixRow") -> bool:
        """Same everything but the variant and the exact errors: verdicts per dtype, rules, decay."""
        verdicts = {d: c.verdict for d, c in self.cells.items()}
        return ((self.lane, self.version, _case_base(self.case), self.device, self.claimed, self.matched,
                 self.decay, self.fingerprint, verdicts)
                == (other.lane, other.version, _case_base(other.case), other.device, other.claimed, other.matched,
                    other.decay, other.fingerprint, {d: c.verdict for d, c in other.cells.items()}))


def units_text(value) -> str:
    if value is None or isinstance(value, str) and value != "inf":
        return "-" if value is None else value
    if value == "inf" or math.isinf(float(value)):
        return "inf"
    if math.isnan(float(value)):
        return "-"
    return f"{value:.2g}" if value < 100 else f"{value:.1e}"


def dtypes_of(results: Iterable[dict[str, Any]]) -> list[str]:
    """The cell columns: the dtypes present, in DTYPE_ORDER, then 'verdict' where a row has no dtype
    (a framework that did not run, an adapter that failed)."""
    present = {r.get("dtype") or "verdict" for r in results}
    return [d for d in (*DTYPE_ORDER, "verdict") if d in present]


def rows(results: Iterable[dict[str, Any]], collapse: bool = True) -> list[MatrixRow]:
    """The matrix rows in first-seen order; `collapse` merges the variants of a case that agree."""
    groups: "OrderedDict[tuple, list]" = OrderedDict()
    for r in results:
        groups.setdefault((r["framework"], r.get("framework_version", ""), r["case"], r.get("device", "")), []).append(r)
    out: list[MatrixRow] = []
    for items in groups.values():
        row = _row(items)
        twin = next((o for o in out if o.agrees_with(row)), None) if collapse else None
        if twin is None:
            out.append(row)
        else:
            _absorb(twin, row)
    return out


def _case_base(case: str) -> str:
    return case.rsplit("[", 1)[0] if case.endswith("]") else case


def _variant(case: str) -> str:
    return case.rsplit("[", 1)[1][:-1] if case.endswith("]") and "[" in case else ""


def _absorb(twin: MatrixRow, row: MatrixRow) -> None:
    """Fold an agreeing row into `twin`: its variant joins the list, each cell keeps the worst error."""
    twin.variants.append(_variant(row.case))
    twin.case = f"{_case_base(twin.case)}[{', '.join(twin.variants)}]"
    for dtype, cell in row.cells.items():
        mine = twin.cells.get(dtype)
        if mine is None or _worse(cell.units, mine.units):
            twin.cells[dtype] = cell
    twin.separation = min(twin.separation, row.separation, key=separation_value)


def _worse(a, b) -> bool:
    value = lambda u: -math.inf if u is None else math.inf if u == "inf" else float(u)  # noqa: E731
    return value(a) > value(b)


def _row(items: list[dict[str, Any]]) -> MatrixRow:
    """One (framework, case, device): the semantics from the dtypes that separate the rules (bfloat16's
    tolerance often cannot; such rows are 'ambiguous' and only shown when no dtype separates)."""
    first = items[0]
    named = [r for r in items if (r.get("semantics") or {}).get("status") in ("identified", "equivalent")]
    shown = named or items
    matched = sorted({matched_text(r) for r in shown if r.get("verdict") != "error"}) or ["-"]
    decay = sorted({decay_text(r) for r in shown if r.get("decay_kind")}) or ["-"]
    seps = [separation_text(r) for r in shown if r.get("semantics")]
    cells = {r.get("dtype") or "verdict": Cell(r["verdict"], _number(r.get("worst_units"))) for r in items}
    prints = sorted({r.get("fingerprint") for r in items if r.get("fingerprint")})
    claimed = first.get("claimed_rule") or "-"
    rules = {r.get("matched_rule") for r in named if r.get("verdict") != "error" and r.get("matched_rule")}
    return MatrixRow(lane=first["framework"], version=first.get("framework_version") or "", case=first["case"],
                     device=first.get("device") or "-", claimed=claimed, not_claimed=not rules <= {claimed},
                     matched="/".join(matched), decay="/".join(decay),
                     separation=min(seps, key=separation_value) if seps else "-", cells=cells,
                     fingerprint=" | ".join(prints), variants=[_variant(first["case"])])


def _number(value):
    return None if value is None or (isinstance(value, str) and value != "inf") else value


def matched_text(row: dict[str, Any]) -> str:
    """The semantics axis' rule: the matched rule ('=' equivalent rules), or 'unknown (nearest X)'."""
    sem = row.get("semantics") or {}
    rule = row.get("matched_rule") or "-"
    if sem.get("status") == "unknown":
        return f"unknown (nearest {rule})"
    same = sem.get("equivalent_rules") or []
    return " = ".join([rule, *same]) if same else rule


def decay_text(row: dict[str, Any]) -> str:
    sem = row.get("semantics") or {}
    kinds = [row.get("decay_kind") or "-"] + [k for k in sem.get("equivalent_decay_kinds") or []
                                              if k != row.get("decay_kind")]
    return " = ".join(kinds) + (" (equivalent)" if len(kinds) > 1 else "")


def separation_value(text: str) -> float:
    return math.inf if text in ("inf", "-") else float(text.rstrip("x"))


def separation_text(row: dict[str, Any]) -> str:
    """Runner-up / best error ratio of the match (>= 100x names the rule), e.g. '7.2e+04x'."""
    value = (row.get("semantics") or {}).get("separation")
    if value is None:
        return "-"
    if value == "inf":
        return "inf"
    return f"{float(value):.2g}x" if float(value) < 100 else f"{float(value):.1e}x"
