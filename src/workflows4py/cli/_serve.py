"""``workflows4py serve APP``: the HTTP API and the web UI over the app's runtime (uvicorn)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from types import FrameType

import click

from ._main import load_runtime

__all__ = ["serve"]

DEFAULT_TOKEN_ENV = "WORKFLOWS4PY_TOKEN"  # noqa: S105 - the name of a variable, no secret
SHUTDOWN_TIMEOUT = 5  # seconds a stop waits for the requests under way, at most


@click.command("serve")
@click.argument("app")
@click.option("--host", default="127.0.0.1", show_default=True, help="the address to bind")
@click.option("--port", default=8000, show_default=True, type=int, help="the port to bind")
@click.option(
    "--token-env",
    default=DEFAULT_TOKEN_ENV,
    show_default=True,
    help="the environment variable holding the bearer token (none set: no token needed)",
)
@click.option("--read-only", is_flag=True, help="refuse every write (403)")
def serve(app: str, host: str, port: int, token_env: str, read_only: bool) -> None:
    """Serve the HTTP API (/api/v1) and the web UI over APP (module:attribute giving a
    Runtime), until interrupted."""
    try:
        import uvicorn

        from workflows4py.web import create_app
    except ImportError as e:
        raise click.ClickException(str(e)) from e
    runtime = asyncio.run(load_runtime(app))
    token = os.environ.get(token_env) or None
    if token is None and token_env != DEFAULT_TOKEN_ENV:
        raise click.ClickException(f"the environment variable {token_env} is not set")
    web = create_app(runtime, token=token, read_only=read_only)
    click.echo(f"workflows4py: serving {app} at http://{host}:{port}/", err=True)
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again with the
    # handler it found: this one makes that a clean exit (status 0), as on SIGINT
    signal.signal(signal.SIGTERM, _stopped)
    server = uvicorn.Server(
        uvicorn.Config(
            web,
            host=host,
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=SHUTDOWN_TIMEOUT,
        )
    )
    # the event streams (one per open instance page of the UI) never end by themselves: they
    # end when this says the server stops, so that a stop does not wait for the browsers
    web.state.stopping = lambda: server.should_exit
    with contextlib.suppress(KeyboardInterrupt):  # SIGINT, raised again once it has stopped
        server.run()


def _stopped(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)
