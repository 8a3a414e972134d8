"""The run in words: the matrix as plain text (optconform/terminal.py renders it), the failures in
detail (folded to 100 columns), the summary line and the BERT variants block."""
from __future__ import annotations

import math
import textwrap
from collections import Counter, OrderedDict
from typing import Any, Iterable

from optconform.matrix import MARK, decay_text as _decay, separation_text as _separation, units_text as _units

FAILING = ("deviates", "xpass", "error", "unavailable", "no-goldens")
#: width of the details block's lines (terminal.WIDTH)
DETAILS_WIDTH = 100


def matrix(results: Iterable[dict[str, Any]], wide: bool = False) -> str:
    """The matrix as plain text, one table per framework and device: cells read '<worst error in
    tolerance units> <verdict>'; at most 100 columns unless `wide` (then with the fingerprint)."""
    from optconform import terminal
    results = list(results)
    if not results:
        return "(no rows)"
    return "\n\n".join(terminal.render(t, wide=wide) for t in terminal.tables(results, wide=wide))


def _wrapped(line: str) -> list[str]:
    """A details line folded to DETAILS_WIDTH, continuation lines indented under it."""
    indent = " " * (len(line) - len(line.lstrip()) + 4)
    return textwrap.wrap(line, DETAILS_WIDTH, subsequent_indent=indent, break_long_words=False,
                         break_on_hyphens=False) or [line]


def details(results: Iterable[dict[str, Any]]) -> str:
    """Every row that is not a plain pass: what diverged, where, and which rule would match."""
    lines = []
    for r in results:
        v = r["verdict"]
        if v in ("conforms", "not-installed"):
            continue
        head = f"{MARK.get(v, v)}: {r['case']} {r.get('device', '')} {r.get('dtype', '')}".rstrip()
        lines.append(head)
        if r.get("error"):
            lines.append(f"    {r['error']}")
        if r.get("first_divergence"):
            lines.append(f"    first divergence: {r['first_divergence']}")
        if v in ("deviates", "xfail", "xpass") and r.get("matched_rule"):
            lines.append("    " + semantics_line(r))
            lines.append("    " + precision_line(r))
        if r.get("deviation"):
            d = r["deviation"]
            lines.append(f"    registered {d['kind']} deviation: {d['issue']}")
            if d.get("carried"):
                lines.append(f"    {d['carried']}")
            if v == "xpass":
                lines.append("    it now conforms: remove the entry from adapters/<framework>/deviations.toml")
    return "\n".join(part for line in lines for part in _wrapped(line))


def semantics_line(r: dict[str, Any]) -> str:
    """The semantics axis of one row, in words."""
    sem = r.get("semantics") or {}
    matched, units = r["matched_rule"], r.get("matched_units")
    runner = f"runner-up {sem['runner_up']!r} {_separation(r)} further" if sem.get("runner_up") else "no runner-up"
    if sem.get("status") == "unknown":
        return (f"semantics: unknown — no preset separated by >= 100x; nearest {matched!r} at {_units(units)} "
                f"units, {runner} (decay {r.get('decay_kind')})")
    if sem.get("status") == "ambiguous":
        return (f"semantics: within tolerance of {matched!r} ({_decay(r)}), but {runner}: the probes do not "
                f"separate them by 100x in {r.get('dtype')}")
    same = sem.get("equivalent_rules") or []
    text = f"semantics: {matched!r} ({_decay(r)}) at {_units(sem.get('units'))} units, {runner}"
    left = sem.get("uninformative_goldens") or []
    if left:
        text += f" (judged without {', '.join(left)}, which no preset explains)"
    if same:
        text += f"; equivalent here: {', '.join(same)}"
    if matched != r.get("claimed_rule"):
        text += f" — not the claimed {r.get('claimed_rule')!r}"
    return text


def precision_line(r: dict[str, Any]) -> str:
    """The precision axis of one row, in words."""
    prec = r.get("precision") or {}
    model = f" (precision model: {prec['model']})" if prec.get("model") else ""
    return f"precision: {prec.get('status', '?')}, worst {_units(r.get('worst_units'))} tolerance units{model}"


def summary(results: Iterable[dict[str, Any]], seconds: float | None = None) -> str:
    results = list(results)
    counts = Counter(r["verdict"] for r in results)
    failing = sum(counts[v] for v in FAILING)
    parts = [f"{counts[v]} {MARK.get(v, v)}" for v in
             ("conforms", "xfail", "deviates", "xpass", "error", "no-goldens", "unavailable", "not-installed", "n/a")
             if counts[v]]
    runs = sum(int(r.get("goldens_run") or 0) for r in results)
    text = f"{len(results)} rows ({runs} golden runs): " + ", ".join(parts)
    if seconds is not None:
        text += f" in {seconds:.1f} s"
    return text + ("" if failing == 0 else f" -- {failing} unexpected")


#: Frameworks whose rows get the "BERT variants" block.
BERT_FRAMEWORKS = ("bert", "bert-tf")


def bert_block(results: Iterable[dict[str, Any]]) -> str:
    """The "BERT variants" block: for each case of the BERT ports (frameworks `bert`, `bert-tf`), the
    rule it matches, its decay kind and bias correction, and whether that is what its documentation
    claims (`Case.documented_rule`, compared by maths: same family and relevant knobs). '' when no
    row is a BERT port."""
    from optconform.compare import decay_kind
    from optconform.reference import get_rule
    from optconform.reference.rules import same_maths

    groups: "OrderedDict[str, list]" = OrderedDict()
    for r in results:
        if r.get("framework") in BERT_FRAMEWORKS and r.get("verdict") not in ("unavailable", "not-installed", "error"):
            groups.setdefault(r["case"], []).append(r)
    if not groups:
        return ""
    rows = []
    for case, items in groups.items():
        scored = [r for r in items if r.get("matched_rule")]
        best = min(scored, key=lambda r: float(r["matched_units"]) if r.get("matched_units") is not None else math.inf,
                   default=items[0])
        rule = best.get("matched_rule") or best.get("claimed_rule") or ""
        units = best.get("matched_units")
        exact = units is not None and float(units) <= 1.0
        verdicts = sorted({MARK.get(r["verdict"], r["verdict"]) for r in items})
        try:
            knobs = get_rule(rule).relevant_knobs()
            decay, bc = decay_kind(rule), knobs.get("bias_correction", "on")
        except ValueError:
            decay, bc = "-", "-"
        documented = best.get("documented_rule") or ""
        if not documented:
            doc_ok = "-"
        else:
            try:
                doc_ok = "yes" if same_maths(get_rule(documented), get_rule(rule)) else "NO"
            except ValueError:
                doc_ok = "?"
        shown = rule if exact else f"{rule} (nearest, {_units(units)} units)"
        rows.append([case, shown, decay, bc, documented or "-", doc_ok, "/".join(verdicts)])
    headers = ["port", "matches rule", "decay", "bias corr.", "documented as", "as documented", "verdicts"]
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from optconform import terminal
    table = Table(title="BERT variants", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    return terminal.render(table)
