"""Takes the screenshots of the web UI that docs/web-ui.md shows.

Run it from the repository's root after changing the UI::

    .venv/bin/python scripts/ui_screenshots.py

It serves the real app over a SQLite runtime of the pull-request example (the instances
tests/test_web_ui_server.py seeds), opens each page in Debian's headless chromium and writes
``docs/images/ui-<page>.png``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from playwright.sync_api import Page, ViewportSize, sync_playwright
from test_web_ui_server import launch_chromium, serve_ui

IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"
VIEWPORT: ViewportSize = {"width": 1366, "height": 860}


def _shoot(page: Page, name: str, *, full: bool = True) -> None:
    page.wait_for_timeout(400)  # let transitions and fonts settle
    path = IMAGES / f"ui-{name}.png"
    page.screenshot(path=str(path), full_page=full)
    print(path.relative_to(IMAGES.parent.parent))


def _instance(page: Page, url: str, instance_id: str, query: str = "") -> None:
    page.goto(f"{url}instances/PullRequest/{instance_id}{query}")
    page.locator("#progress-diagram svg").wait_for()
    page.locator("#journal tr[data-sequence]").first.wait_for()


def main() -> None:
    with (
        tempfile.TemporaryDirectory() as folder,
        serve_ui(Path(folder) / "ui.db") as url,
        sync_playwright() as playwright,
    ):
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport=VIEWPORT, device_scale_factor=1)
        page.goto(url)
        page.locator("[data-workflow] .diagram svg").wait_for()
        _shoot(page, "workflows")
        page.goto(f"{url}workflows/PullRequest")
        page.get_by_role("tab", name="BPMN").click()
        page.locator(".djs-container svg").wait_for()
        _shoot(page, "workflow-bpmn")
        page.goto(f"{url}instances")
        page.locator("tr[data-instance]").first.wait_for()
        _shoot(page, "instances")
        _instance(page, url, "pr-review")
        _shoot(page, "instance")
        _instance(page, url, "pr-new")
        page.locator("button[data-signal=create-pr]").click()
        page.locator("dialog.signal-dialog input[name=commit]").fill("a1b2c3")
        _shoot(page, "signal-form", full=False)
        _instance(page, url, "pr-rejected", "?at=2")
        _shoot(page, "history")
        dark = browser.new_page(viewport=VIEWPORT, color_scheme="dark")
        _instance(dark, url, "pr-merged")
        _shoot(dark, "instance-dark")
        browser.close()


if __name__ == "__main__":
    main()
