"""Signal definitions: the typed, stably identified messages a workflow can receive."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, overload

from workflows4py._errors import DefinitionError, InvalidSignalRequest

from ._naming import pretty_name

__all__ = ["SignalDef", "check_id"]

_Req = TypeVar("_Req")
_Resp_co = TypeVar("_Resp_co", covariant=True)
_R = TypeVar("_R")  # method-scoped: the request type of a signal without a response

_SIGNAL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}")


def check_id(value: object, what: str) -> str:
    """``value`` if it is a valid id (of a signal, of a workflow); else a DefinitionError."""
    if not isinstance(value, str) or not _SIGNAL_ID.fullmatch(value):
        raise DefinitionError(
            f"{what} {value!r} is not valid: use 1-200 characters from [A-Za-z0-9._:/-], "
            "starting with a letter or digit"
        )
    return value


@dataclass(frozen=True, init=False, eq=False)
class SignalDef(Generic[_Req, _Resp_co]):
    """A signal a workflow can receive: a stable ``id``, a request type and a response type.

    The id is what identifies the signal across deploys (it is matched when a signal is
    delivered), so it is explicit and never generated. ``response=None`` declares a signal
    without a response.
    """

    id: str
    request: type[_Req]
    response: type[_Resp_co] | None
    name: str = field(compare=False)

    @overload
    def __init__(
        self: SignalDef[_R, None],
        id: str,
        *,
        request: type[_R],
        response: None = None,
        name: str | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self,
        id: str,
        *,
        request: type[_Req],
        response: type[_Resp_co],
        name: str | None = None,
    ) -> None: ...

    def __init__(
        self,
        id: str,
        *,
        request: type[Any],
        response: type[Any] | None = None,
        name: str | None = None,
    ) -> None:
        check_id(id, "signal id")
        if not isinstance(request, type):
            raise DefinitionError(f"signal {id!r}: request must be a class, got {request!r}")
        if response is not None and not isinstance(response, type):
            raise DefinitionError(f"signal {id!r}: response must be a class or None")
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "request", request)
        object.__setattr__(self, "response", response)
        object.__setattr__(self, "name", name or pretty_name(request.__name__))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SignalDef) and other.id == self.id

    def __hash__(self) -> int:
        return hash(("SignalDef", self.id))

    def __repr__(self) -> str:
        resp = self.response.__name__ if self.response is not None else "None"
        return f"SignalDef({self.id!r}, request={self.request.__name__}, response={resp})"

    def check_request(self, request: object) -> _Req:
        """Return ``request`` if it is of the declared type, else raise InvalidSignalRequest."""
        if not isinstance(request, self.request):
            raise InvalidSignalRequest(
                f"signal {self.id!r} expects a request of type {self.request.__qualname__}, "
                f"got {type(request).__qualname__}; nothing was run"
            )
        return request
