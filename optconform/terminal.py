"""The conformance matrix in a terminal (rich): one table per framework and device, at most 100
columns wide unless `wide` (then the separation and fingerprint columns too); verdicts coloured only on a colour
terminal (rich leaves colour out when stdout is not a TTY and honours NO_COLOR and TERM=dumb)."""
from __future__ import annotations

import io
import os
import sys
from collections import OrderedDict
from typing import Any, Iterable, TextIO

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from optconform.matrix import MatrixRow, dtypes_of, rows as matrix_rows

#: the default width of everything printed: fits an ordinary terminal
WIDTH = 100
#: wide enough that --wide never wraps a row
WIDE = 400
VERDICT_STYLE = {"conforms": "green", "xfail": "yellow", "n/a": "dim", "not-installed": "dim",
                 "deviates": "bold red", "xpass": "bold red", "error": "bold red", "no-goldens": "red",
                 "unavailable": "magenta"}


def console(file: TextIO | None = None, wide: bool = False) -> Console:
    """A console on `file` (default stdout): WIDTH columns, or the terminal's width where narrower."""
    file = file or sys.stdout
    width = WIDE if wide else WIDTH
    if not wide and file.isatty():
        width = min(WIDTH, _columns(file) or WIDTH)
    return Console(file=file, width=width, highlight=False, soft_wrap=False, emoji=False)


def _columns(file: TextIO) -> int:
    """The terminal's width, 0 where it reports none (a pty without a size, a captured stream)."""
    try:
        return os.get_terminal_size(file.fileno()).columns
    except (OSError, ValueError, io.UnsupportedOperation):
        return 0


def render(renderable, wide: bool = False, color: bool = False) -> str:
    """A renderable as plain text (colour codes only when `color`), e.g. for tests and the HTML page."""
    buf = io.StringIO()
    Console(file=buf, width=WIDE if wide else WIDTH, highlight=False, emoji=False, force_terminal=color,
            color_system="standard" if color else None).print(renderable)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines())


def tables(results: Iterable[dict[str, Any]], wide: bool = False) -> list[Table]:
    """One table per (framework version, device): case, claimed/matched rule, decay, separation, a
    column per dtype, and with `wide` the fingerprint."""
    results = list(results)
    dtypes = dtypes_of(results)
    groups: "OrderedDict[tuple, list[MatrixRow]]" = OrderedDict()
    for row in matrix_rows(results):
        groups.setdefault((row.framework, row.device), []).append(row)
    out = []
    for (framework, device), group in groups.items():
        used = [d for d in dtypes if any(d in r.cells for r in group)] or ["verdict"]
        headers = ["case", "rule", "decay"] + (["separation"] if wide else []) + used + (["fingerprint"] if wide else [])
        body = [_cells(row, used, wide) for row in group]
        widths = _widths(headers, body, None if wide else WIDTH)
        table = Table(title=Text(f"{framework} · {device}", style="bold"), title_justify="left",
                      box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True)
        for header, width in zip(headers, widths):
            table.add_column(header, width=width, overflow="fold")
        for cells in body:
            cells[0] = _split_variants(cells[0], widths[0])
        for cells in body:
            table.add_row(*cells)
        out.append(table)
    return out


#: the columns that wrap when the table is too wide (the others keep their natural width)
FLEXIBLE = ("case", "rule", "decay")
GAP = 2
MIN_FLEX = 12


def _widths(headers: list[str], body: list[list[Text]], limit: int | None) -> list[int]:
    """Column widths: each column's natural width when the table fits `limit` (or there is none).
    Otherwise the dtype columns keep theirs and the case, rule and decay columns share the rest
    max-min fairly (the narrow ones get their natural width, the wide ones an equal share, at least
    MIN_FLEX); a case may then put its '[variants]' on a second line. GAP characters between columns."""
    natural = [max([len(h)] + [row[i].cell_len for row in body]) for i, h in enumerate(headers)]
    gaps = GAP * (len(headers) - 1)
    if limit is None or sum(natural) + gaps <= limit:
        return natural
    natural[0] = max([len(headers[0])] + [len(part) for row in body for part in _case_parts(row[0].plain)])
    flex = [i for i, h in enumerate(headers) if h in FLEXIBLE]
    room = max(limit - gaps - sum(w for i, w in enumerate(natural) if i not in flex), MIN_FLEX * len(flex))
    widths = list(natural)
    left, open_ = room, sorted(flex, key=lambda i: natural[i])
    while open_:
        share = left // len(open_)
        i = open_.pop(0)
        widths[i] = max(MIN_FLEX, min(natural[i], share))
        left -= widths[i]
    return widths


def _case_parts(text: str) -> list[str]:
    return [text[:text.rindex("[")], text[text.rindex("["):]] if text.endswith("]") and "[" in text else [text]


def _cells(row: MatrixRow, dtypes: list[str], wide: bool) -> list[Text]:
    rule = Text(row.matched if row.matched != "-" else row.claimed)
    if row.not_claimed:
        rule = Text(f"{row.matched} (claims {row.claimed})", style="bold red")
    cells = [Text(short_case(row)), rule, Text(row.decay)] + ([Text(row.separation)] if wide else [])
    for dtype in dtypes:
        cell = row.cells.get(dtype)
        cells.append(Text(cell.text, style=VERDICT_STYLE.get(cell.verdict, "")) if cell else Text(""))
    if wide:
        cells.append(Text(row.fingerprint or "-", style="dim"))
    return cells


def _split_variants(case: Text, width: int) -> Text:
    """A case too wide for its column: the name on one line, its '[variants]' on the next."""
    parts = _case_parts(case.plain)
    if case.cell_len <= width or len(parts) == 1:
        return case
    out = Text(parts[0] + "\n")
    out.append(parts[1], style="dim")
    return out


def short_case(row: MatrixRow) -> str:
    """The case id without its '<framework>-' prefix (the table's title names the framework)."""
    prefix = f"{row.lane}-"
    return row.case[len(prefix):] if row.case.startswith(prefix) else row.case


def emit(out: Console, renderable="") -> None:
    """Print on `out` without the trailing spaces rich pads lines with (colour codes kept)."""
    with out.capture() as captured:
        out.print(renderable)
    out.file.write("\n".join(line.rstrip() for line in captured.get().split("\n")))
    out.file.flush()


def print_matrix(results: list[dict[str, Any]], out: Console) -> None:
    for table in tables(results, wide=out.width >= WIDE):
        emit(out, table)


def summary_text(text: str, failing: bool) -> Text:
    return Text(text, style="bold red" if failing else "bold green")


def details_text(text: str) -> Text:
    """The details block with each row's head line in its verdict's colour."""
    from optconform.matrix import MARK
    style_of = {MARK[v] + ":": VERDICT_STYLE[v] for v in MARK if v in VERDICT_STYLE}
    out = Text()
    for line in text.splitlines():
        head = line.split(" ", 1)[0]
        out.append(line + "\n", style=style_of.get(head, ""))
    out.rstrip()
    return out


def progress(enabled: bool):
    """A progress callback (done, total, label) drawing a rich bar on stderr, or None."""
    if not enabled:
        return None
    bar = Progress(TextColumn("{task.description}", justify="left"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=Console(file=sys.stderr, width=WIDTH), transient=True)
    task = None

    def show(done: int, total: int, label: str) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task(label[:40], total=total)
        bar.update(task, completed=done, total=total, description=label[:40])
        if done >= total:
            bar.stop()
            task = None
    return show
