"""The pull-request instances the UI tests see, served by ``serve_ui``; the UI under a prefix.

``serve_ui()`` serves (``web_ui_common.serve_app``) ``create_app`` over a SQLite runtime of
the pull-request example with a few instances in different states (``SEEDED``), and yields
its URL; scripts/ui_screenshots.py uses it with ``launch_chromium``. The test in this
module checks the UI mounted under a prefix, behind a token.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from web_ui_common import browser, launch_chromium, serve_app

from workflows4py.examples import pull_request as pr
from workflows4py.runtime import Runtime

if TYPE_CHECKING:
    from playwright.sync_api import Browser

__all__ = ["SEEDED", "browser", "launch_chromium", "serve_ui"]  # browser: the fixture

SEEDED = {
    "pr-new": "awaiting create-pr",
    "pr-review": "awaiting review-pr (created, pipeline passed)",
    "pr-invalid": "awaiting review-pr",
    "pr-merged": "merged (approved)",
    "pr-rejected": "closed (review rejected)",
    "pr-long-commit": "closed (commit id too long)",
    "pr-doomed": "awaiting create-pr (the terminate test's)",
}


async def _seed(runtime: Runtime) -> None:
    def created(commit: str) -> tuple[Any, Any]:
        return (pr.create_pr_signal, pr.CreateRequest(commit=commit))

    empty = pr.Empty()
    await runtime.start(pr.PullRequest, "pr-new", initial_state=empty)
    await runtime.start(pr.PullRequest, "pr-doomed", initial_state=empty)
    for name in ("pr-review", "pr-invalid"):
        await runtime.start(pr.PullRequest, name, initial_state=empty, signal=created("c0ffee"))
    merged = await runtime.start(
        pr.PullRequest, "pr-merged", initial_state=empty, signal=created("a1b2c3")
    )
    await merged.deliver_signal(pr.review_pr_signal, pr.ReviewRequest(approve=True))
    rejected = await runtime.start(
        pr.PullRequest, "pr-rejected", initial_state=empty, signal=created("beef")
    )
    await rejected.deliver_signal(pr.review_pr_signal, pr.ReviewRequest(approve=False))
    await runtime.start(
        pr.PullRequest, "pr-long-commit", initial_state=empty, signal=created("0123456789abcdef")
    )


def serve_ui(
    database: Path, *, wrap: Callable[[Any], Any] | None = None, token: str | None = None
) -> AbstractContextManager[str]:
    """Serves the app over ``SEEDED`` (``wrap(app)`` when given); yields its URL."""
    return serve_app(
        lambda: Runtime.sqlite(database, [pr.PullRequest]), _seed, wrap=wrap, token=token
    )


def test_the_ui_works_mounted_under_a_prefix_and_asks_for_the_token(
    tmp_path: Path, browser: Browser
) -> None:
    from fastapi import FastAPI

    def mounted(app: Any) -> Any:
        outer = FastAPI()
        outer.mount("/ops", app)
        return outer

    with serve_ui(tmp_path / "ui.db", wrap=mounted, token="s3cret") as url:
        page = browser.new_page()
        page.goto(f"{url}ops/")
        dialog = page.locator("#token-dialog")
        dialog.wait_for()
        dialog.locator("input[name=token]").fill("wrong")
        dialog.locator("button[type=submit]").click()
        page.locator("#token-dialog").get_by_text("That token was refused").wait_for()
        page.locator("#token-dialog input[name=token]").fill("s3cret")
        page.locator("#token-dialog button[type=submit]").click()
        page.locator("[data-workflow] .diagram svg").first.wait_for()
        page.get_by_role("link", name="Instances", exact=True).click()
        page.wait_for_url(f"{url}ops/instances")
        page.locator("tr[data-instance=pr-merged]").wait_for()
        assert page.evaluate("sessionStorage.getItem('workflows4py.token')") == "s3cret"
        page.close()
