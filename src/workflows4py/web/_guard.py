"""The safety checks in front of every request: token, read-only mode, content type, size."""

from __future__ import annotations

import hmac
import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Guard", "error_body"]

_WRITES = {"POST"}  # the only method that writes; others get 405 from the router


def error_body(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    """The JSON of an error: ``{"error": {"type", "message"}, ...extra}``."""
    return {"error": {"type": kind, "message": message}, **extra}


class _TooLarge(Exception):
    pass


class Guard:
    """ASGI middleware: on ``/api/`` paths, 401 without the bearer token (when one is set),
    and 413 for a body past ``max_body`` bytes (told by its Content-Length, or counted as
    it comes). The read-only mode and the content type of writes are checked by each
    write's route (so that a method no route has is a 405)."""

    def __init__(self, app: ASGIApp, *, token: str | None, max_body: int) -> None:
        self.app = app
        self.token = None if token is None else token.encode()
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        if not path.startswith("/api/"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v for k, v in scope["headers"]}
        refusal = self._refusal(scope["method"], headers)
        if refusal is not None:
            await _respond(send, *refusal)
            return
        await self._limited(scope, receive, send)

    def _refusal(
        self, method: str, headers: dict[str, bytes]
    ) -> tuple[int, dict[str, Any], list[tuple[bytes, bytes]]] | None:
        if self.token is not None and not self._authorized(headers.get("authorization", b"")):
            return (
                401,
                error_body(
                    "unauthorized", "this API needs the header Authorization: Bearer <token>"
                ),
                [(b"www-authenticate", b'Bearer realm="workflows4py"')],
            )
        if method not in _WRITES:
            return None
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return 413, self._too_large(), []
        return None

    def _authorized(self, header: bytes) -> bool:
        scheme, _, given = header.partition(b" ")
        expected = self.token or b""
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), expected)

    def _too_large(self) -> dict[str, Any]:
        return error_body(
            "payload_too_large", f"the request body is larger than {self.max_body} bytes"
        )

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _TooLarge
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, sending)
        except _TooLarge:
            if started:
                raise
            await _respond(send, 413, self._too_large(), [])


async def _respond(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]
) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
