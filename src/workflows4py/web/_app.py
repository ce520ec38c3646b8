"""``create_app``: the FastAPI application of the HTTP API and the UI's pages."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from workflows4py.runtime import Runtime

from ._guard import Guard
from ._views import Api

__all__ = ["STATIC", "create_app"]

STATIC = Path(__file__).parent / "static"
"""The packaged directory of the UI's files (index.html, scripts, styles, vendored libraries)."""

_PAGES = ("/", "/workflows/{wf}", "/instances", "/instances/{wf}/{id}")


def create_app(
    runtime: Runtime,
    *,
    token: str | None = None,
    read_only: bool = False,
    max_body: int = 1_000_000,
    heartbeat: float = 15.0,
) -> FastAPI:
    """The HTTP API (under ``/api/v1``) and the web UI over ``runtime``.

    Run as an application, its lifespan opens ``runtime`` (``initialize``) and closes it;
    mounted into another application (whose sub-applications get no lifespan), it opens
    the runtime at its first request and leaves closing it to the parent. ``token`` (else
    the environment variable ``WORKFLOWS4PY_TOKEN``, if set) is the bearer token every
    ``/api/`` request must carry; ``read_only`` refuses every write (403); a request body
    past ``max_body`` bytes is refused (413); the event stream sends a heartbeat comment
    every ``heartbeat`` seconds.
    """
    if not isinstance(runtime, Runtime):
        raise TypeError(f"create_app expects a workflows4py Runtime, got {runtime!r}")
    if token is None:
        token = os.environ.get("WORKFLOWS4PY_TOKEN") or None
    if type(max_body) is not int or max_body < 1:
        raise ValueError(f"max_body must be a positive number of bytes, got {max_body!r}")
    if heartbeat <= 0:
        raise ValueError(f"heartbeat must be a positive number of seconds, got {heartbeat!r}")
    opened = _Opener(runtime)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await opened.open()
        try:
            yield
        finally:
            await runtime.close()

    app = FastAPI(
        title="workflows4py",
        version="1",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # Swagger UI would load its scripts from a CDN
        redoc_url=None,
        lifespan=lifespan,
    )
    api = Api(runtime, opened.open, heartbeat, read_only=read_only)
    api.install(app)
    index = _Index(STATIC / "index.html")
    for page in _PAGES:
        app.add_api_route(page, index.serve, methods=["GET"], include_in_schema=False)
    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(Guard, token=token, max_body=max_body)
    return app


class _Opener:
    """Opens the runtime once (its schema created or migrated), whoever asks first."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.done = False
        self.lock = asyncio.Lock()

    async def open(self) -> None:
        if self.done:
            return
        async with self.lock:
            if not self.done:
                await self.runtime.initialize()
                self.done = True


class _Index:
    """index.html with its ``<base href="/">`` set to the application's mount root."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def serve(self, request: Request) -> HTMLResponse:
        root = str(request.scope.get("root_path", "")).rstrip("/") + "/"
        html = self.path.read_text(encoding="utf-8")
        base = f'<base href="{_escape(root)}">'
        if '<base href="/">' in html:
            html = html.replace('<base href="/">', base, 1)
        elif "<!--BASE-->" in html:
            html = html.replace("<!--BASE-->", base, 1)
        else:
            html = html.replace("<head>", "<head>" + base, 1)
        return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
