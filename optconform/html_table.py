"""The HTML report's tables: the conformance matrix (optconform/matrix.py rows, every lane of a merged
document in one table) and the weight-decay map (optconform/decay_map.py), each with a filter box;
sorting and filtering are the inline script of html_assets.py. Every text is escaped."""
from __future__ import annotations

import html
from typing import Any

from optconform.decay_map import COLUMNS as MAP_COLUMNS, DecayMap
from optconform.matrix import MARK, SCORED, MatrixRow, dtypes_of, rows as matrix_rows, separation_value


def decay_badge(kind: str) -> str:
    """A decay kind as a coloured badge: coupled, decoupled x lr, x eta, unscaled, none, other."""
    if kind.startswith("coupled"):
        css = "d-coupled"
    elif kind.startswith("decoupled x lr"):
        css = "d-decoupled-lr"
    elif kind.startswith("decoupled x eta"):
        css = "d-decoupled-eta"
    elif kind.startswith("decoupled unscaled"):
        css = "d-unscaled"
    elif kind in ("none", "-"):
        css = "d-none"
    else:
        css = "d-other"
    return f"<span class='badge {css}'>{html.escape(kind)}</span>"


def _tools(table_id: str, verdicts: list[str]) -> str:
    options = "".join(f"<option value='{html.escape(v)}'>{html.escape(MARK.get(v, v))}</option>" for v in verdicts)
    pick = f"<label>verdict <select><option value=''>any</option>{options}</select></label>" if verdicts else ""
    return (f"<div class='tools' data-table='{table_id}'><label>filter <input type='search' "
            f"placeholder='text in any column, e.g. torch or adamw'></label>{pick}<span class='count'></span></div>")


def _head(headers: list[str]) -> str:
    return "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headers) + "</tr></thead>"


def matrix_table(results: list[dict[str, Any]]) -> str:
    """The matrix as a sortable, filterable table: framework, case (variants that agree collapsed),
    device, claimed and matched rule, decay badge, separation, one coloured cell per dtype, fingerprint."""
    dtypes = dtypes_of(results)
    rows = matrix_rows(results)
    verdicts = sorted({c.verdict for r in rows for c in r.cells.values()})
    headers = ["framework", "case", "device", "claimed", "matched rule", "decay", "separation", *dtypes, "fingerprint"]
    body = "".join(_matrix_row(r, dtypes) for r in rows)
    return (_tools("matrix", verdicts) + "<div class='wrap'><table class='grid' id='matrix'>" + _head(headers)
            + f"<tbody>{body}</tbody></table></div>")


def _matrix_row(row: MatrixRow, dtypes: list[str]) -> str:
    esc = html.escape
    verdicts = " ".join(sorted({c.verdict for c in row.cells.values()}))
    matched = f"<span class='claims'>{esc(row.matched)}</span>" if row.not_claimed else esc(row.matched)
    sep = separation_value(row.separation)
    short = f"{row.lane} {row.version.split(' ', 1)[0]}".strip()
    cells = [f"<td title='{esc(row.framework)}'>{esc(short)}</td>", f"<td class='case-id'>{esc(row.case)}</td>", f"<td>{esc(row.device)}</td>",
             f"<td>{esc(row.claimed)}</td>", f"<td>{matched}</td>", f"<td>{decay_badge(row.decay)}</td>",
             f"<td data-sort='{'' if sep == float('inf') else sep}'>{esc(row.separation)}</td>"]
    for dtype in dtypes:
        cell = row.cells.get(dtype)
        if cell is None:
            cells.append("<td></td>")
            continue
        units = cell.units if cell.verdict in SCORED and cell.units not in (None, "inf") else ""
        cells.append(f"<td class='v-{esc(cell.verdict)}' data-sort='{units}'>{esc(cell.text)}</td>")
    cells.append(f"<td><code>{esc(row.fingerprint or '-')}</code></td>")
    return f"<tr data-verdicts='{esc(verdicts)}'>" + "".join(cells) + "</tr>"


def map_table(found: DecayMap) -> str:
    """The weight-decay map as a sortable, filterable table, the decay kind as a badge."""
    esc = html.escape
    body = []
    for row in found.rows:
        cells = row.cells()
        tds = [f"<td>{esc(cells[0])}</td>", f"<td><code>{esc(row.native)}</code> {esc(row.config)}</td>",
               f"<td>{decay_badge(row.decay_kind)}</td>", *(f"<td>{esc(c)}</td>" for c in cells[3:7]),
               f"<td><code>{esc(row.preset)}</code></td>"]
        body.append("<tr data-verdicts=''>" + "".join(tds) + "</tr>")
    return (_tools("decay-map", []) + "<div class='wrap'><table class='grid' id='decay-map'>" + _head(list(MAP_COLUMNS))
            + f"<tbody>{''.join(body)}</tbody></table></div>"
            + f"<p class='meta'>{len(found.rows)} configurations with weight decay; {found.without_decay} without "
              "weight decay are not listed. Scaling and order apply to decoupled decay only (—).</p>")
