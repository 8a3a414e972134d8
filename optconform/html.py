"""Self-contained HTML report (no network): the matrix as a sortable, filterable table (every lane of a
merged document), the weight-decay map (table and figure), and for each failing or deviating row a
plot (matplotlib, embedded PNG) of the native vs expected trajectory of its worst element and the
error over steps."""
from __future__ import annotations

import base64
import html
import io
import urllib.parse
from typing import Any

from . import decay_map, decay_map_figure, html_table
from .html_assets import CSS, SCRIPT
from .report import MARK, precision_line, semantics_line, summary


def _plot(trace: dict[str, Any], title: str) -> str:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # reported by the CLI as a usage error
        raise RuntimeError("--html needs matplotlib (pip install 'optconform[report]')") from exc
    steps = list(range(len(trace["expected"])))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    top.plot(steps, [float(x) if x is not None else float("nan") for x in trace["expected"]], "k-", label="expected (reference)")
    top.plot(steps, [float(x) if x is not None else float("nan") for x in trace["native"]], "r--", label="native")
    top.set_ylabel("parameter value")
    top.legend(fontsize=8)
    units = [float(x) if x is not None else float("nan") for x in trace["units"]]
    bottom.semilogy(steps, [max(u, 1e-3) for u in units], "b.-")
    bottom.axhline(1.0, color="gray", linestyle=":", label="tolerance")
    bottom.set_ylabel("error (tolerance units)")
    bottom.set_xlabel("step")
    bottom.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _issue_link(url: str) -> str:
    """A link only for an https:// URL; anything else (javascript:, data:, relative) is shown as text."""
    text = html.escape(str(url))
    if urllib.parse.urlsplit(str(url)).scheme == "https" and not any(c.isspace() for c in str(url)):
        return f"<a href='{text}'>{text}</a>"
    return f"<code>{text}</code> (not an https link)" if url else ""


def render(doc: dict[str, Any]) -> str:
    """The HTML page for a results document (one run or a merge)."""
    results: list[dict[str, Any]] = doc["results"]
    env = ", ".join(f"{e['framework']} {e.get('version', '')}" for e in doc.get("environments", []))
    found = decay_map.build(results)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>optconform report</title><style>{CSS}</style>"
             "</head><body><h1>optconform conformance report</h1>",
             f"<p class='meta'>{html.escape(summary(results, doc.get('seconds')))}<br>optconform "
             f"{html.escape(str(doc.get('optconform_version')))} · python {html.escape(str(doc.get('python')))} · "
             f"{html.escape(str(doc.get('os')))} · {html.escape(env)} · {html.escape(str(doc.get('created')))}</p>",
             "<h2 id='matrix-title'>Matrix</h2><p class='meta'>Cells: worst error in tolerance units over every "
             "golden the case runs (&le; 1 conforms) and the verdict; implementation variants that agree share a "
             "row (worst cell shown). Click a header to sort.</p>",
             html_table.matrix_table(results),
             "<h2 id='decay-map-title'>Weight-decay map</h2><p class='meta'>Every native configuration with weight "
             "decay, the decay its runs identify and the knobs of the matched preset (spec/knobs.toml).</p>",
             html_table.map_table(found)]
    if found.rows:
        parts.append(f"<img alt='weight-decay map' src='data:image/png;base64,"
                     f"{base64.b64encode(decay_map_figure.png(found)).decode('ascii')}'>")
    parts += _failures(results)
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts)


def _failures(results: list[dict[str, Any]]) -> list[str]:
    """The failing and deviating rows, each with its semantics, precision and trajectory plot."""
    flagged = [r for r in results if r["verdict"] not in ("conforms", "not-installed")]
    parts = [f"<h2>Failing and deviating rows ({len(flagged)})</h2>"]
    for r in flagged:
        title = f"{r['case']} · {r.get('device', '')} · {r.get('dtype', '')} · {MARK.get(r['verdict'], r['verdict'])}"
        parts.append(f"<div class='case'><h3 class='bad'>{html.escape(title)}</h3><p>claimed "
                     f"<b>{html.escape(str(r.get('claimed_rule')))}</b>, matched <b>{html.escape(str(r.get('matched_rule')))}</b>"
                     f" ({html.escape(str(r.get('decay_kind')))})</p>")
        if r.get("matched_rule"):
            parts.append(f"<p>{html.escape(semantics_line(r))}<br>{html.escape(precision_line(r))}</p>")
        for key in ("first_divergence", "error"):
            if r.get(key):
                parts.append(f"<p>{html.escape(key.replace('_', ' '))}: <code>{html.escape(str(r[key]))}</code></p>")
        if r.get("deviation"):
            d = r["deviation"]
            parts.append(f"<p>registered {html.escape(str(d.get('kind', '')))} deviation: {html.escape(str(d.get('reason', '')))} "
                         f"{_issue_link(d['issue'])}</p>")
        trace = r.get("trace") or {}
        if trace.get("expected"):
            where = f"{trace['golden']} · {trace['tensor']}{trace.get('index') or ''}"
            parts.append(f"<img alt='trajectory plot' src='data:image/png;base64,{_plot(trace, where)}'>")
        parts.append("</div>")
    return parts
