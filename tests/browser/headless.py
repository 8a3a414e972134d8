"""Headless Chromium for the HTML report tests (Playwright driving the system's Chromium: never a
browser Playwright downloads). OPTCONFORM_BROWSER names the executable (default /usr/bin/chromium).
Every request other than the page itself and data: URIs is aborted and recorded: the report must be
self-contained."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 1500}


def executable() -> str:
    return os.environ.get("OPTCONFORM_BROWSER", "/usr/bin/chromium")


@contextmanager
def page_of(path: Path):
    """(page, outside_requests) for a local HTML file opened in headless Chromium."""
    from playwright.sync_api import sync_playwright
    outside: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable(), args=ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)

            def route(r):
                url = r.request.url
                if url.startswith(("file://", "data:")):
                    r.continue_()
                else:
                    outside.append(url)
                    r.abort()
            page.route("**/*", route)
            page.goto(path.resolve().as_uri())
            yield page, outside
        finally:
            browser.close()


def screenshot(path: Path, out: Path) -> None:
    """A viewport-sized PNG of the page: the header, the matrix and the weight-decay map."""
    with page_of(path) as (page, _):
        page.screenshot(path=str(out))
