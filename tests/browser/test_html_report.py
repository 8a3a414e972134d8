"""The HTML report in a real headless browser (Chromium, lane `report-html`): the matrix is a table that
sorts and filters without a server, the weight-decay map is there, nothing is fetched from outside.
A missing Chromium or Playwright fails this lane (it exists to run this), it never skips."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from optconform import html, results

from .headless import executable, page_of, screenshot

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    if not os.access(executable(), os.X_OK):
        pytest.fail(f"no Chromium at {executable()} (apt-get install chromium, or set OPTCONFORM_BROWSER)")
    docs = [results.read(p) for p in sorted((ROOT / "baselines").glob("*.json"))]
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(html.render(results.merge(docs)), encoding="utf-8")
    return path


def _column(page, table: str, index: int) -> list[str]:
    return page.eval_on_selector_all(f"#{table} tbody tr", f"rows => rows.filter(r => r.style.display !== 'none')"
                                     f".map(r => r.cells[{index}].textContent.trim())")


def test_matrix_and_map_render_self_contained(report):
    docs = [results.read(p) for p in sorted((ROOT / "baselines").glob("*.json"))]
    lanes = {r["framework"] for d in docs for r in d["results"]}
    with page_of(report) as (page, outside):
        assert page.locator("#matrix tbody tr").count() > 100
        shown_lanes = {text.split(" ")[0] for text in _column(page, "matrix", 0)}
        assert shown_lanes == lanes                                   # one page, every lane
        assert page.locator("#decay-map tbody tr").count() > 50
        assert page.locator("#decay-map .badge.d-coupled").count() > 0
        assert page.locator("#decay-map .badge.d-decoupled-eta").count() > 0   # MXNet adamw_update
        assert page.locator("td.v-conforms").first.evaluate("e => getComputedStyle(e).backgroundColor") != \
            page.locator("td.v-xfail").first.evaluate("e => getComputedStyle(e).backgroundColor")
        header = page.locator("#matrix thead th").first
        assert header.evaluate("e => getComputedStyle(e).position") == "sticky"
        assert page.locator("img[alt='weight-decay map']").evaluate("e => e.naturalWidth") > 0
        assert outside == []


def test_filter_and_sort_work_without_a_server(report):
    with page_of(report) as (page, _):
        total = page.locator("#matrix tbody tr").count()
        page.fill(".tools[data-table='matrix'] input", "mxnet 1.9.1")
        visible = _column(page, "matrix", 0)
        assert 0 < len(visible) < total and all(v.startswith("mxnet") for v in visible)
        assert page.locator(".tools[data-table='matrix'] .count").inner_text() == f"{len(visible)} of {total} rows"
        page.fill(".tools[data-table='matrix'] input", "")
        page.select_option(".tools[data-table='matrix'] select", "xfail")
        assert all("xfail" in row for row in page.eval_on_selector_all(
            "#matrix tbody tr", "rows => rows.filter(r => r.style.display !== 'none').map(r => r.dataset.verdicts)"))
        page.select_option(".tools[data-table='matrix'] select", "")
        page.click("#decay-map thead th:nth-child(3)")                 # decay kind, ascending
        kinds = _column(page, "decay-map", 2)
        assert kinds == sorted(kinds, key=str.lower) and len(set(kinds)) > 3
        page.click("#decay-map thead th:nth-child(3)")                 # and descending
        assert _column(page, "decay-map", 2) == sorted(kinds, key=str.lower, reverse=True)


def test_screenshot_shows_table_and_map(report, tmp_path):
    out = tmp_path / "shot.png"
    screenshot(report, out)
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 50_000
