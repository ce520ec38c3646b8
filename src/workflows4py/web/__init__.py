"""The HTTP API and the web UI: ``create_app(runtime)`` is a FastAPI application serving
``/api/v1`` (docs/web.md) and the pages of the UI (docs/web-ui.md).

It needs the ``web`` extra (``pip install workflows4py[web]``): FastAPI and uvicorn.
"""

try:
    import fastapi as _fastapi
except ImportError as _missing:  # the extra is not installed
    raise ImportError(
        "workflows4py.web needs FastAPI and uvicorn: pip install workflows4py[web]"
    ) from _missing

from ._app import create_app

del _fastapi

__all__ = ["create_app"]
