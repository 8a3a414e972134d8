"""The conformance matrix as a terminal table: one row per (framework, case, device), one column per
dtype, plus claimed rule, matched rule and decay kind; then the failures in detail."""
from __future__ import annotations

import math
from collections import Counter, OrderedDict
from typing import Any, Iterable

DTYPE_ORDER = ("float64", "float32", "bfloat16", "float16")
MARK = {"conforms": "ok", "xfail": "xfail", "xpass": "XPASS", "deviates": "FAIL", "error": "ERROR",
        "no-goldens": "NO-GOLDENS", "n/a": "n/a", "unavailable": "UNAVAILABLE", "not-installed": "not installed"}
FAILING = ("deviates", "xpass", "error", "unavailable", "no-goldens")


def _units(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and math.isnan(value):
        return "-"
    return f"{value:.2g}" if value < 100 else f"{value:.1e}"


def _cell(row: dict[str, Any]) -> str:
    mark = MARK.get(row["verdict"], row["verdict"])
    if row["verdict"] in ("conforms", "deviates", "xfail", "xpass"):
        return f"{_units(row.get('worst_units'))} {mark}"
    return mark


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


def matrix(results: Iterable[dict[str, Any]]) -> str:
    """The matrix; dtype cells read '<worst error in tolerance units> <verdict>'."""
    results = list(results)
    dtypes = [d for d in DTYPE_ORDER if any(r.get("dtype") == d for r in results)]
    groups: "OrderedDict[tuple, list]" = OrderedDict()
    for r in results:
        groups.setdefault((r["framework"], r.get("framework_version", ""), r["case"], r.get("device", "")), []).append(r)
    rows = []
    for (framework, _version, case, device), items in groups.items():
        by_dtype = {r.get("dtype"): r for r in items}
        first = items[0]
        # the case's semantics: from the dtypes that separate the rules (bfloat16's tolerance often
        # cannot; such rows are 'ambiguous' and only shown when no dtype separates)
        named = [r for r in items if (r.get("semantics") or {}).get("status") in ("identified", "equivalent")]
        shown = named or items
        matched = sorted({_matched(r) for r in shown if r.get("verdict") != "error"}) or ["-"]
        decay = sorted({_decay(r) for r in shown if r.get("decay_kind")}) or ["-"]
        seps = [_separation(r) for r in shown if r.get("semantics")]
        claimed = first.get("claimed_rule") or "-"
        named = {r.get("matched_rule") for r in items if r.get("verdict") != "error" and r.get("matched_rule")
                 and (r.get("semantics") or {}).get("status") in ("identified", "equivalent")}
        flag = "" if named <= {claimed} else "  <- not the claimed rule"
        version = first.get("framework_version") or ""
        prints = sorted({r.get("fingerprint") for r in items if r.get("fingerprint")}) or ["-"]
        rows.append([f"{framework} {version}".strip(), case, device or "-", claimed, "/".join(matched) + flag,
                     "/".join(decay), min(seps, key=_sep_value) if seps else "-"]
                    + [_cell(by_dtype[d]) if d in by_dtype else "" for d in dtypes] + [" | ".join(prints)])
        if not dtypes:
            rows[-1].insert(-1, _cell(first))
        elif not first.get("dtype"):          # a framework-level row (not installed / unavailable)
            rows[-1][7] = _cell(first)
    headers = (["framework", "case", "device", "claimed rule", "matched rule", "decay", "separation"]
               + (dtypes or ["verdict"]) + ["fingerprint"])
    return _table(headers, rows)


def _matched(row: dict[str, Any]) -> str:
    """The semantics axis' rule: the matched rule ('+' equivalent rules), or 'unknown (nearest X)'."""
    sem = row.get("semantics") or {}
    rule = row.get("matched_rule") or "-"
    if sem.get("status") == "unknown":
        return f"unknown (nearest {rule})"
    same = sem.get("equivalent_rules") or []
    return " = ".join([rule, *same]) if same else rule


def _decay(row: dict[str, Any]) -> str:
    sem = row.get("semantics") or {}
    kinds = [row.get("decay_kind") or "-"] + [k for k in sem.get("equivalent_decay_kinds") or []
                                              if k != row.get("decay_kind")]
    return " = ".join(kinds) + (" (equivalent)" if len(kinds) > 1 else "")


def _sep_value(text: str) -> float:
    return math.inf if text in ("inf", "-") else float(text.rstrip("x"))


def _separation(row: dict[str, Any]) -> str:
    """Runner-up / best error ratio of the match (>= 100x names the rule), e.g. '7.2e+04x'."""
    value = (row.get("semantics") or {}).get("separation")
    if value is None:
        return "-"
    if value == "inf":
        return "inf"
    return f"{float(value):.2g}x" if float(value) < 100 else f"{float(value):.1e}x"


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
    return "\n".join(lines)


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
        rows.append([f"{best['framework']}", case, best.get("native", ""), shown, decay, bc,
                     documented or "-", doc_ok, "/".join(verdicts)])
    headers = ["lane", "port", "native", "matches rule", "decay", "bias corr.", "documented as", "as documented",
               "verdicts"]
    return "BERT variants\n" + _table(headers, rows)
