"""The benchmark's output: the terminal table (one section per rule), the progress line of a row, the
results JSON, and the merge of per-framework documents."""
from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import Any

from .bench_config import SCHEMA, TIMED_VERDICTS
from optconform.golden.fsio import atomic_write

#: the table's columns; the first two are left-aligned, like the gate column
COLUMNS = ("variant", "layout", "params", "tensors", "median ms", "IQR/med", "GB/s", "limit GB/s (min-max)",
           "limit ms", "% limit [CI]", "first s", "extra B/p first|step", "state B/p", "gate")


def _fmt(v, spec: str, na: str = "n/a") -> str:
    return na if v is None else format(v, spec)


def params_label(n: int) -> str:
    """A parameter count as the table writes it, e.g. 1.00e5."""
    return f"{n:.3g}" if n < 1e3 else f"{n:.2e}".replace("e+0", "e").replace("e+", "e")


def row_line(r) -> str:
    """One row (a Row or its JSON) on one line: the progress log of a run."""
    r = r if isinstance(r, dict) else asdict(r)
    if r["median_s"] is None:
        why = r["error"] or f"not timed: gate {r['gate']}"
        return f"{r['case']} {r['layout']} {params_label(r['n_params'])}: {why}"
    return (f"{r['case']} {r['layout']} {params_label(r['n_params'])}: {r['median_s'] * 1e3:.3f} ms "
            f"(IQR {100 * r['iqr_over_median']:.1f}%), {r['achieved_GBps']:.1f} GB/s = {r['pct_of_limit']:.1f}% "
            f"[{r['pct_ci'][0]:.1f}, {r['pct_ci'][1]:.1f}] of {r['limit_GBps']:.1f} GB/s "
            f"({r['limit_min_GBps']:.1f}-{r['limit_max_GBps']:.1f} over {r['blocks']} rounds)")


def table(doc: dict[str, Any]) -> str:
    """The terminal table: one section per rule (frameworks are compared only within a rule)."""
    rows = doc["rows"]
    lines = [_heading(doc)]
    for rule in dict.fromkeys(r["rule"] for r in rows):
        lines += ["", *_rule_section(rule, [r for r in rows if r["rule"] == rule])]
    for section in (_per_tensor_section(doc["per_tensor"]), _overhead_section(rows), _summary(rows)):
        if section:
            lines += ["", *section]
    return "\n".join(lines)


def _heading(doc: dict[str, Any]) -> str:
    env = doc["environment"]
    return (f"optconform bench: {doc['framework']} {doc['version']} on {env.get('device_name', env['device'])}, "
            f"{env['threads']} thread(s)" + (f" pinned to CPUs {env['pinned_cpus']}" if env.get("pinned_cpus") else "")
            + f", allocator {env['allocator']}")


def _rule_section(rule: str, rows: list[dict]) -> list[str]:
    """The rule's heading, the column heads and one aligned line per row."""
    body = [_cells(r) for r in rows]
    widths = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(COLUMNS)]
    lines = [f"rule {rule} ({rows[0]['bytes_per_param']} B/param; limit = B/param x params / same-run stream GB/s)",
             "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(COLUMNS, widths)))]
    for b in body:
        lines.append("  ".join(v.ljust(w) if i < 2 or i == len(b) - 1 else v.rjust(w)
                               for i, (v, w) in enumerate(zip(b, widths))))
    return lines


def _cells(r: dict) -> tuple[str, ...]:
    """A row's cells under COLUMNS ("-" where it was not timed)."""
    timed = r["median_s"] is not None
    limit = f"{r['limit_GBps']:.1f} ({r['limit_min_GBps']:.0f}-{r['limit_max_GBps']:.0f})" if timed else "-"
    pct = f"{r['pct_of_limit']:.1f}% [{r['pct_ci'][0]:.1f}, {r['pct_ci'][1]:.1f}]" if timed else "-"
    return (f"{r['framework']} {r['variant']}", r["layout"], params_label(r["n_params"]), str(r["n_tensors"]),
            _fmt(r["median_s"] and r["median_s"] * 1e3, ".4g", "-"),
            _fmt(r["iqr_over_median"] and 100 * r["iqr_over_median"], ".1f", "-") + ("%" if timed else ""),
            _fmt(r["achieved_GBps"], ".1f", "-"), limit, _fmt(r["limit_s"] and r["limit_s"] * 1e3, ".4g", "-"), pct,
            _fmt(r["first_step_s"], ".3g", "-"), _memory_cell(r) if timed else "-",
            _fmt(r["state_B_per_param"], "d", "-"),
            r["gate"] + (" (timed anyway)" if timed and r["gate"] not in TIMED_VERDICTS else "")
            + (f" ({r['error'][:40]})" if r["error"] else ""))


def _memory_cell(r: dict) -> str:
    """Peak extra bytes per parameter, first step | steady step; 'n/a' (reason in the summary)."""
    if r["peak_extra_B_per_param"] is None:
        return "n/a"
    return f"{r['first_step_extra_B_per_param']:.1f} | {r['peak_extra_B_per_param']:.1f}"


def _per_tensor_section(costs: list[dict]) -> list[str]:
    if not costs:
        return []
    lines = ["per-tensor cost, multi-tensor layout vs one flat tensor of the same size "
             "(t_layout - t_flat x n_layout/n_flat) / (tensors - 1):"]
    for c in costs:
        lines.append(f"  {c['case']} {c['layout']} {params_label(c['n_params'])} ({c['n_tensors']} tensors): "
                     f"{c['per_tensor_us']:.2f} us/tensor")
    return lines


def _overhead_section(rows: list[dict]) -> list[str]:
    over = [r for r in rows if r.get("overhead")]
    if not over:
        return []
    lines = ["harness overhead vs a bare loop of the native step (interleaved rounds; median over rounds [CI]):"]
    for r in over:
        o = r["overhead"]
        lines.append(f"  {r['case']} {r['layout']} {params_label(r['n_params'])}: harness "
                     f"{o['harness_median_s'] * 1e3:.4f} ms, bare {o['bare_median_s'] * 1e3:.4f} ms, "
                     f"overhead {o['overhead_pct']:+.2f}% [{o['overhead_ci_pct'][0]:+.2f}, {o['overhead_ci_pct'][1]:+.2f}]")
    return lines


def _summary(rows: list[dict]) -> list[str]:
    timed = [r for r in rows if r["median_s"] is not None]
    if not timed:
        return []
    worst = max(timed, key=lambda r: r["iqr_over_median"])
    methods = sorted({r["memory_method"] for r in timed})
    conf = min(r["ci_confidence"] for r in timed)
    return [f"{len(timed)} of {len(rows)} configurations timed in {timed[0]['blocks']} interleaved rounds "
            f"(CI of the median over neighbouring sample pairs, order statistics, >= {100 * conf:.1f}% confidence); worst IQR/median "
            f"{100 * worst['iqr_over_median']:.1f}% ({worst['case']} {worst['layout']} "
            f"{params_label(worst['n_params'])}); memory: {'; '.join(methods)} "
            f"(extra B/p = peak bytes above those in use before the step, per parameter)"]


def write_json(doc: dict[str, Any], path: str) -> None:
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        return v
    atomic_write(path, json.dumps(doc, indent=1, default=lambda o: clean(o) if isinstance(o, float) else str(o)))


def merge(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """One document from per-framework runs (rows side by side; the table still groups by rule)."""
    if len(docs) == 1:
        return docs[0]
    first = docs[0]
    return {"schema": SCHEMA, "framework": "+".join(d["framework"] for d in docs),
            "version": ", ".join(f"{d['framework']} {d['version']}" for d in docs),
            "environment": first["environment"], "environments": {d["framework"]: d["environment"] for d in docs},
            "config": [d["config"] for d in docs], "rows": [r for d in docs for r in d["rows"]],
            "per_tensor": [f for d in docs for f in d["per_tensor"]], "limits": [x for d in docs for x in d["limits"]],
            "seconds": sum(d["seconds"] for d in docs)}
