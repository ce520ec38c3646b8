"""Serving the real app to a real browser, for the UI tests and scripts/ui_screenshots.py.

``serve_app(open_runtime, seed)`` starts, in a thread of its own, uvicorn serving
``create_app`` over the runtime ``open_runtime()`` builds, once ``seed(runtime)`` has made
the instances the tests need, and yields its URL. ``launch_chromium`` starts Debian's
chromium (never a downloaded browser); a missing chromium fails the test. The ``browser``
and ``page`` fixtures (a test module imports them, and defines the ``url`` fixture ``page``
needs) give a page that fails its test on a script error or a request to another origin.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from workflows4py.runtime import Runtime

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

__all__ = [
    "browser",
    "call_api",
    "free_port",
    "launch_chromium",
    "open_instance",
    "page",
    "serve_app",
    "shoot",
]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve_app(
    open_runtime: Callable[[], Runtime],
    seed: Callable[[Runtime], Awaitable[None]],
    *,
    wrap: Callable[[Any], Any] | None = None,
    token: str | None = None,
) -> Iterator[str]:
    """Serves the app (``wrap(app)`` when given, e.g. mounted under a prefix); yields its URL."""
    import uvicorn

    from workflows4py.web import create_app

    port = free_port()
    started = threading.Event()
    failure: list[BaseException] = []
    holder: dict[str, uvicorn.Server] = {}

    async def main() -> None:
        async with open_runtime() as runtime:
            await seed(runtime)
            app = create_app(runtime, token=token)
            config = uvicorn.Config(
                wrap(app) if wrap else app, host="127.0.0.1", port=port, log_level="warning"
            )
            server = uvicorn.Server(config)
            holder["server"] = server
            serving = asyncio.create_task(server.serve())
            while not server.started and not serving.done():
                await asyncio.sleep(0.05)
            started.set()
            await serving

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as error:
            failure.append(error)
        finally:
            started.set()

    thread = threading.Thread(target=run, name="web-ui-server", daemon=True)
    thread.start()
    started.wait(60)
    if failure:
        raise RuntimeError("the web UI server did not start") from failure[0]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        if "server" in holder:
            holder["server"].should_exit = True
        thread.join(30)


def call_api(url: str, path: str, body: Any = None) -> Any:
    """GET (or, with a body, POST as JSON) ``api/v1/{path}`` of the app at ``url``; its JSON."""
    request = urllib.request.Request(f"{url}api/v1/{path}")
    if body is not None:
        request.data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def open_instance(page: Page, url: str, workflow: str, instance_id: str, query: str = "") -> None:
    """Opens an instance's page and waits until its diagram and journal are drawn."""
    page.goto(f"{url}instances/{workflow}/{instance_id}{query}")
    page.locator("#progress-diagram svg").wait_for()
    page.locator("#journal tr[data-sequence]").first.wait_for()


def shoot(page: Page, name: str) -> Path:
    """A screenshot of the whole page, /tmp/web-ui-{name}.png, to look at."""
    path = Path("/tmp") / f"web-ui-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's chromium, headless; fails (never skips) when it is not installed."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, url: str) -> Iterator[Page]:
    """A page that fails its test on a script error or a request to another origin."""
    opened = browser.new_page(viewport={"width": 1366, "height": 900})
    errors: list[str] = []
    elsewhere: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on(
        "request",
        lambda request: None if request.url.startswith(url) else elsewhere.append(request.url),
    )
    yield opened
    opened.close()
    assert errors == []
    assert elsewhere == []
