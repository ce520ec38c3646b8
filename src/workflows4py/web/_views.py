"""The endpoints of ``/api/v1``: workflows, instances, journals, history, signals, operations."""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from workflows4py._errors import (
    CodecError,
    DecodeError,
    InstanceClosed,
    InstanceExists,
    InstanceNotFound,
    InvalidInstanceId,
    InvalidSignalRequest,
    PayloadTooLarge,
    UnexpectedEvent,
    WorkflowError,
)
from workflows4py.definition import Workflow
from workflows4py.engine import progress_of
from workflows4py.render import bpmn, mermaid, mermaid_live_url
from workflows4py.runtime import DurableRuntime, Runtime, UnexpectedSignal, WorkflowInstance
from workflows4py.serialization import encoder_for
from workflows4py.stores import InstanceKey, InstanceRecord, Page, RegistryStatus, SearchQuery

from ._guard import error_body

__all__ = [
    "Api",
    "ApiError",
    "Entry",
    "ErrorBody",
    "ErrorDetail",
    "ExpectedSignal",
    "ForkBody",
    "HistoryView",
    "InstanceView",
    "JournalPage",
    "OriginJson",
    "Resumed",
    "Row",
    "RowPage",
    "SignalAnswer",
    "StartBody",
    "StateJson",
    "TerminateBody",
    "Terminated",
    "WorkflowDetail",
    "WorkflowList",
    "WorkflowSummary",
]

STATUSES: tuple[RegistryStatus, ...] = (
    "running",
    "awaiting",
    "finished",
    "failed",
    "terminated",
    "parked",
)

Json = Any


class ApiError(Exception):
    """An error answered as ``{"error": {"type", "message"}, ...}`` with ``status``."""

    def __init__(self, status: int, kind: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.extra = extra


# -- the documented shapes (for the OpenAPI spec and its checks) ----------------------------------


class ErrorDetail(BaseModel):
    type: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail
    errors: list[dict[str, Any]] | None = None
    expected: list[str] | None = None


class WorkflowSummary(BaseModel):
    id: str
    name: str
    description: str | None
    signals: list[str]
    counts: dict[str, int]


class WorkflowList(BaseModel):
    workflows: list[WorkflowSummary]


class WorkflowDetail(BaseModel):
    id: str
    name: str
    description: str | None
    progress: dict[str, Any]
    mermaid: str
    mermaid_live_url: str
    schema_: dict[str, Any] = Field(alias="schema")


class Row(BaseModel):
    workflow: str
    id: str
    status: str
    created_at: datetime
    updated_at: datetime
    next_wakeup: datetime | None
    tags: dict[str, str]
    failures: int
    last_error: str | None


class RowPage(BaseModel):
    items: list[Row]
    total: int
    exact: bool
    limit: int
    offset: int
    errors: list[str]


class StateJson(BaseModel):
    type: str
    state: Json


class ExpectedSignal(BaseModel):
    id: str
    name: str
    request_schema: Json
    response_schema: Json


class OriginJson(BaseModel):
    workflow: str
    instance_id: str
    after_sequence: int


class InstanceView(BaseModel):
    workflow: str
    id: str
    status: str
    record: Row
    state: StateJson | None
    progress: dict[str, Any]
    mermaid: str
    expected_signals: list[ExpectedSignal]
    next_wakeup: datetime | None
    journal_length: int
    origin: OriginJson | None


class Entry(BaseModel):
    sequence: int
    type: str
    data: Json
    recorded_at: datetime


class JournalPage(BaseModel):
    entries: list[Entry]
    next_after: int | None


class HistoryView(BaseModel):
    sequence: int
    journal_length: int
    state: StateJson | None
    progress: dict[str, Any]
    mermaid: str


class SignalAnswer(BaseModel):
    response: Json
    instance: InstanceView


class Terminated(BaseModel):
    terminated: bool
    instance: InstanceView


class Resumed(BaseModel):
    resumed: bool
    instance: InstanceView


class StartBody(BaseModel):
    id: str
    state: Json = None


class TerminateBody(BaseModel):
    reason: str


class ForkBody(BaseModel):
    new_id: str
    after_sequence: int


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": what}
    for status, what in (
        (400, "the body is not JSON"),
        (401, "no or a wrong bearer token"),
        (403, "the API is read-only"),
        (404, "no such workflow, instance or signal"),
        (409, "the instance's state does not allow it"),
        (413, "the request body is too large"),
        (415, "a write whose body is not JSON"),
        (422, "the request does not validate"),
    )
}

WfId = Annotated[str, Path(description="a workflow id")]
InstId = Annotated[str, Path(description="an instance id")]
_ANY_JSON = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"description": "the signal's request"}}},
    }
}


_EMPTY_JSON = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object", "maxProperties": 0}}},
    }
}


def _ok(media: str) -> dict[int | str, dict[str, Any]]:
    """The documented answers of a route whose success is not JSON."""
    return {
        **_ERRORS,
        200: {"description": "OK", "content": {media: {"schema": {"type": "string"}}}},
    }


def _loc(path: str) -> list[str | int]:
    """The parts of a codec error's path (``$.a[0].b``) as a pydantic-style ``loc``."""
    parts: list[str | int] = []
    for name, index in re.findall(r"\.?([^.\[\]]+)|\[(\d+)\]", path.lstrip("$")):
        parts.append(int(index) if index else name)
    return parts


def _invalid(error: Exception) -> ApiError:
    path = error.path if isinstance(error, DecodeError) else ""
    message = str(error)
    return ApiError(
        422,
        "validation",
        message,
        errors=[{"loc": ["body", *_loc(path)], "msg": message, "type": type(error).__name__}],
    )


class Api:
    """The routes of ``/api/v1`` over one runtime."""

    def __init__(
        self,
        runtime: Runtime,
        ready: Callable[[], Awaitable[None]],
        heartbeat: float,
        *,
        read_only: bool,
    ) -> None:
        self.read_only = read_only
        self.runtime = runtime
        self.ready = ready
        self.heartbeat = heartbeat

    # -- wiring ---------------------------------------------------------------------------------

    def install(self, app: FastAPI) -> None:
        app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
        app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
        app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
        app.add_exception_handler(WorkflowError, _workflow_error)  # type: ignore[arg-type]
        p = "/api/v1"
        i = p + "/workflows/{wf}/instances/{id}"
        routes: list[tuple[str, str, Callable[..., Any], dict[str, Any]]] = [
            ("GET", p + "/workflows", self.workflows, {"response_model": WorkflowList}),
            ("GET", p + "/workflows/{wf}", self.workflow, {"response_model": WorkflowDetail}),
            ("GET", p + "/workflows/{wf}/bpmn", self.bpmn, {"responses": _ok("application/xml")}),
            ("GET", p + "/instances", self.search, {"response_model": RowPage}),
            (
                "POST",
                p + "/workflows/{wf}/instances",
                self.start,
                {"response_model": InstanceView, "status_code": 201},
            ),
            ("GET", i, self.instance, {"response_model": InstanceView}),
            ("GET", i + "/journal", self.journal, {"response_model": JournalPage}),
            ("GET", i + "/history/{n}", self.history, {"response_model": HistoryView}),
            (
                "POST",
                i + "/signals/{signal_id}",
                self.signal,
                {"response_model": SignalAnswer, "openapi_extra": _ANY_JSON},
            ),
            (
                "POST",
                i + "/wakeup",
                self.wakeup,
                {"response_model": InstanceView, "openapi_extra": _EMPTY_JSON},
            ),
            ("POST", i + "/terminate", self.terminate, {"response_model": Terminated}),
            (
                "POST",
                i + "/resume",
                self.resume,
                {"response_model": Resumed, "openapi_extra": _EMPTY_JSON},
            ),
            (
                "POST",
                i + "/fork",
                self.fork,
                {"response_model": InstanceView, "status_code": 201},
            ),
            ("GET", i + "/events", self.events, {"responses": _ok("text/event-stream")}),
        ]
        writes = [Depends(self._writable)]
        for method, path, endpoint, options in routes:
            write = method == "POST"
            app.router.add_api_route(
                path,
                endpoint,
                methods=[method],
                dependencies=writes if write else None,
                response_model_by_alias=True,
                route_class_override=_Operation if write else None,
                **{"responses": _ERRORS, **options},
            )

    async def _writable(self, request: Request) -> None:
        """A write: refused in read-only mode (403), and unless its body is JSON (415: no
        HTML form of another site can send that without the browser asking first)."""
        if self.read_only:
            raise ApiError(403, "read_only", "the API is read-only: every write is refused")
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            raise ApiError(
                415,
                "unsupported_media_type",
                "a write must have Content-Type: application/json",
            )

    # -- lookups --------------------------------------------------------------------------------

    def _host(self, wf: str) -> DurableRuntime[Any, Any]:
        for host in self.runtime.hosts:
            if host.workflow.id == wf:
                return host
        known = ", ".join(repr(h.workflow.id) for h in self.runtime.hosts)
        raise ApiError(404, "not_found", f"no workflow with the id {wf!r} (there are {known})")

    async def _instance(self, wf: str, instance_id: str) -> WorkflowInstance[Any, Any]:
        await self.ready()
        host = self._host(wf)
        try:
            return await host.get_instance(instance_id)
        except InvalidInstanceId as e:
            raise ApiError(422, "invalid_id", str(e)) from e
        except InstanceNotFound as e:
            raise ApiError(404, "not_found", f"{wf} has no instance {instance_id!r}") from e

    async def _view(self, wf: str, instance: WorkflowInstance[Any, Any]) -> dict[str, Any]:
        host = self._host(wf)
        workflow = host.workflow
        record = await host.store.get_record(InstanceKey(wf, instance.id))
        if record is None:
            raise ApiError(404, "not_found", f"{wf} has no instance {instance.id!r}")
        journal = await instance.get_journal()
        progress = await instance.get_progress()
        schema = workflow.schema()["signals"]
        origin = await instance.origin()
        return {
            "workflow": wf,
            "id": instance.id,
            "status": await instance.status(),
            "record": _row(record),
            "state": _state_json(workflow, await instance.query_state()),
            "progress": progress.to_json(),
            "mermaid": mermaid(progress),
            "expected_signals": [
                {
                    "id": s.id,
                    "name": s.name,
                    "request_schema": schema[s.id]["request"],
                    "response_schema": schema[s.id]["response"],
                }
                for s in await instance.expected_signals()
            ],
            "next_wakeup": await instance.next_wakeup(),
            "journal_length": len(journal),
            "origin": None
            if origin is None
            else {
                "workflow": origin.workflow,
                "instance_id": origin.instance_id,
                "after_sequence": origin.after_sequence,
            },
        }

    # -- workflows ------------------------------------------------------------------------------

    async def workflows(self) -> dict[str, Any]:
        """Every workflow of the runtime, its signals and how many instances it has per status."""
        await self.ready()
        items = []
        for workflow in self.runtime.workflows:
            counts = {}
            for status in STATUSES:
                page = await self.runtime.search(
                    SearchQuery(workflow=workflow.id, status=[status], limit=0)
                )
                counts[status] = page.total
            items.append(
                {
                    "id": workflow.id,
                    "name": workflow.name,
                    "description": _description(workflow),
                    "signals": [s.id for s in workflow.signals()],
                    "counts": counts,
                }
            )
        return {"workflows": items}

    async def workflow(self, wf: WfId) -> dict[str, Any]:
        """A workflow's definition: its progress model, Mermaid diagram and JSON Schemas."""
        workflow = self._host(wf).workflow
        text = mermaid(workflow)
        return {
            "id": workflow.id,
            "name": workflow.name,
            "description": _description(workflow),
            "progress": progress_of(workflow).to_json(),
            "mermaid": text,
            "mermaid_live_url": mermaid_live_url(text),
            "schema": workflow.schema(),
        }

    async def bpmn(self, wf: WfId) -> Response:
        """The definition as BPMN 2.0 XML."""
        workflow = self._host(wf).workflow
        return _Xml(bpmn(workflow))

    # -- instances ------------------------------------------------------------------------------

    async def search(
        self,
        *,
        workflow: str | None = None,
        status: Annotated[list[RegistryStatus] | None, Query()] = None,
        failing: bool | None = None,
        tag: Annotated[
            list[str] | None, Query(description="K=V (K alone: an empty value), repeated")
        ] = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        updated_from: datetime | None = None,
        updated_to: datetime | None = None,
        sort: Literal["updated", "created"] = "updated",
        order: Literal["asc", "desc"] = "desc",
        limit: Annotated[int, Query(ge=0, le=1000)] = 50,
        offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
        count_limit: Annotated[
            int | None,
            Query(ge=0, le=10**9, description="count at most this many matches (exact: false)"),
        ] = None,
    ) -> dict[str, Any]:
        """Registry rows matching every filter given, a page at a time."""
        await self.ready()
        if workflow is not None:
            self._host(workflow)
        tags: dict[str, str] = {}
        for item in tag or []:
            key, _, value = item.partition("=")
            if key:
                tags[key] = value
        for name, at in (
            ("created_from", created_from),
            ("created_to", created_to),
            ("updated_from", updated_from),
            ("updated_to", updated_to),
        ):
            if at is not None and at.tzinfo is None:
                raise ApiError(422, "validation", f"{name} needs a UTC offset, got {at}")
        query = SearchQuery(
            workflow=workflow,
            status=status,
            created_from=created_from,
            created_to=created_to,
            updated_from=updated_from,
            updated_to=updated_to,
            tags=tags,
            failing=failing,
            limit=limit,
            offset=offset,
            descending=order == "desc",
            count_limit=count_limit,
        )
        page = await (self._by_created(query) if sort == "created" else self.runtime.search(query))
        return {
            "items": [_row(r) for r in page.records],
            "total": page.total,
            "exact": page.exact,
            "limit": limit,
            "offset": offset,
            "errors": [str(e) for e in page.errors],
        }

    async def start(self, wf: WfId, body: StartBody) -> dict[str, Any]:
        """Start an instance (from the given state, else the workflow's initial state)."""
        await self.ready()
        host = self._host(wf)
        state: Any = None
        if body.state is not None:
            try:
                state = host.decode_state(json.dumps(body.state))
            except DecodeError as e:
                raise _invalid(e) from e
        try:
            if await host.store.exists(InstanceKey(wf, body.id)):
                raise ApiError(409, "exists", f"{wf} already has an instance {body.id!r}")
            instance = await host.start(body.id, initial_state=state)
        except InvalidInstanceId as e:
            raise ApiError(422, "invalid_id", str(e)) from e
        except InstanceExists as e:
            raise ApiError(409, "exists", str(e)) from e
        except WorkflowError as e:  # no initial state given, and none to default to
            raise ApiError(422, "validation", str(e)) from e
        return await self._view(wf, instance)

    async def _by_created(self, query: SearchQuery) -> Page:
        """A page of ``query`` ordered by creation (then workflow, instance id): the store
        sorts and pages it."""
        return await self.runtime.search(replace(query, sort="created"))

    async def instance(self, wf: WfId, id: InstId) -> dict[str, Any]:
        """An instance: its state, progress, diagram, what it waits for."""
        return await self._view(wf, await self._instance(wf, id))

    async def journal(
        self,
        wf: WfId,
        id: InstId,
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        """The journal's entries after sequence ``after``, ``limit`` at most."""
        instance = await self._instance(wf, id)
        journal = await instance.get_journal()
        page = journal[after : after + limit]
        more = after + limit < len(journal)
        return {
            "entries": [
                {
                    "sequence": e.sequence,
                    "type": e.type,
                    "data": json.loads(e.data),
                    "recorded_at": e.recorded_at,
                }
                for e in page
            ],
            "next_after": page[-1].sequence if more and page else None,
        }

    async def history(self, wf: WfId, id: InstId, n: Annotated[int, Path(ge=0)]) -> dict[str, Any]:
        """The state, progress and diagram as they were after the first ``n`` journal entries."""
        instance = await self._instance(wf, id)
        length = len(await instance.get_journal())
        if n > length:
            raise ApiError(404, "not_found", f"{id!r} has {length} journal entries, not {n}")
        progress = await instance.progress_at(n)
        return {
            "sequence": n,
            "journal_length": length,
            "state": _state_json(self._host(wf).workflow, await instance.state_at(n)),
            "progress": progress.to_json(),
            "mermaid": mermaid(progress),
        }

    async def signal(
        self, wf: WfId, id: InstId, signal_id: str, request: Request
    ) -> dict[str, Any]:
        """Deliver a signal: the body is its request's JSON; the answer its response's."""
        instance = await self._instance(wf, id)
        host = self._host(wf)
        try:
            signal = host.signal_def(signal_id)
        except ValueError as e:
            raise ApiError(404, "not_found", str(e)) from e
        body = (await request.body()).decode("utf-8", "replace")
        try:
            payload = host.decode_request(signal, body)
        except DecodeError as e:
            raise _invalid(e) from e
        try:
            response = await instance.deliver_signal(signal, payload)
        except (InvalidSignalRequest, PayloadTooLarge) as e:
            raise _invalid(e) from e
        if isinstance(response, UnexpectedSignal):
            raise ApiError(
                409, "unexpected_signal", str(response), expected=list(response.expected)
            )
        encoded = None
        if signal.response is not None and response is not None:
            encoded = json.loads(
                json.dumps(encoder_for(signal.response)(response), ensure_ascii=False)
            )
        return {"response": encoded, "instance": await self._view(wf, instance)}

    async def wakeup(self, wf: WfId, id: InstId) -> dict[str, Any]:
        """Run what is due now (effects, timers, retries) until the instance waits."""
        instance = await self._instance(wf, id)
        await instance.wakeup()
        return await self._view(wf, instance)

    async def terminate(self, wf: WfId, id: InstId, body: TerminateBody) -> dict[str, Any]:
        """Stop an instance for good, with a reason (lifecycle's terminate)."""
        instance = await self._instance(wf, id)
        try:
            done = await self.runtime.terminate(wf, id, body.reason)
        except InstanceClosed as e:
            raise ApiError(409, "closed", str(e)) from e
        return {"terminated": done, "instance": await self._view(wf, instance)}

    async def resume(self, wf: WfId, id: InstId) -> dict[str, Any]:
        """Take a parked instance up again; ``resumed`` is false if it was not parked."""
        instance = await self._instance(wf, id)
        done = await self.runtime.resume(wf, id)
        return {"resumed": done, "instance": await self._view(wf, instance)}

    async def fork(self, wf: WfId, id: InstId, body: ForkBody) -> dict[str, Any]:
        """A new instance from the first ``after_sequence`` entries of this one's journal."""
        await self._instance(wf, id)
        try:
            forked = await self.runtime.fork(
                wf, id, body.new_id, after_sequence=body.after_sequence
            )
        except InvalidInstanceId as e:
            raise ApiError(422, "invalid_id", str(e)) from e
        except InstanceExists as e:
            raise ApiError(409, "exists", str(e)) from e
        except UnexpectedEvent as e:
            raise ApiError(409, "unexpected_event", str(e)) from e
        except ValueError as e:
            raise ApiError(422, "validation", str(e)) from e
        return await self._view(wf, forked)

    async def events(self, wf: WfId, id: InstId, request: Request) -> StreamingResponse:
        """Server-sent events: ``change`` with ``{"status", "journal_length"}`` at once and
        whenever the instance changes; a heartbeat comment every ``heartbeat`` seconds."""
        instance = await self._instance(wf, id)
        return _EventStream(self._changes(InstanceKey(wf, id), instance, request))

    async def _changes(
        self, key: InstanceKey, instance: WorkflowInstance[Any, Any], request: Request
    ) -> AsyncIterator[str]:
        """Polls cheaply: each round reads the registry row and only the journal entries
        after the last one seen; the status is asked again only when one of them changed."""
        loop = asyncio.get_running_loop()
        store = self.runtime.store
        last: dict[str, Any] | None = None
        row: tuple[Any, ...] | None = None
        seen = 0  # the sequence of the last journal entry seen
        length = 0
        beat = loop.time() + self.heartbeat
        while True:
            record = await store.get_record(key)
            fresh = await store.read(key, after=seen)
            if fresh:
                seen = fresh[-1].sequence
                length += len(fresh)
            now_row = None if record is None else (record.status, record.updated_at)
            if last is None or fresh or now_row != row:
                row = now_row
                now = {"status": await instance.status(), "journal_length": length}
                if now != last:
                    last = now
                    yield f"event: change\ndata: {json.dumps(now)}\n\n"
            if loop.time() >= beat:
                beat = loop.time() + self.heartbeat
                yield ": heartbeat\n\n"
            if await request.is_disconnected() or _stopping(request):
                return
            # the store says when an operation ends; a cap, as one store's hint is shared
            await store.wait_for_change(min(1.0, max(beat - loop.time(), 0.01)))


def _stopping(request: Request) -> bool:
    """Whether the server is stopping: ``app.state.stopping()``, set by ``workflows4py
    serve`` (an event stream never ends by itself, and a server waits for it to stop)."""
    stopping = getattr(request.app.state, "stopping", None)
    return bool(stopping()) if callable(stopping) else False


class _Operation(APIRoute):
    """A write's route: an exception the operation raised that the library does not define
    (a step's effect or handler raised it) is answered 409 with its class name as the type,
    as the library's own errors are, rather than a bare 500."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def operate(request: Request) -> Response:
            try:
                return await handle(request)
            except (ApiError, WorkflowError, HTTPException, RequestValidationError):
                raise
            except Exception as error:
                raise ApiError(409, type(error).__name__, str(error) or repr(error)) from error

        return operate


class _Xml(Response):
    media_type = "application/xml"


class _EventStream(StreamingResponse):
    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterator[str], status_code: int = 200) -> None:
        super().__init__(
            content, status_code, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )


def _description(workflow: type[Workflow[Any, Any]]) -> str | None:
    doc = workflow.__dict__.get("__doc__")
    return inspect.cleandoc(doc) if isinstance(doc, str) and doc.strip() else None


def _state_json(workflow: type[Workflow[Any, Any]], state: Any) -> dict[str, Any] | None:
    try:
        tag, data = workflow.codecs().state.encode(state)
    except (CodecError, TypeError, ValueError):
        return None
    return {"type": tag, "state": json.loads(data)}


def _row(record: InstanceRecord) -> dict[str, Any]:
    return {
        "workflow": record.key.workflow,
        "id": record.key.instance_id,
        "status": record.status,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "next_wakeup": record.next_wakeup,
        "tags": record.tags,
        "failures": record.failures,
        "last_error": record.last_error,
    }


async def _api_error(request: Request, error: ApiError) -> JSONResponse:
    return JSONResponse(error_body(error.kind, str(error), **error.extra), status_code=error.status)


async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    errors = [
        {
            "loc": list(e.get("loc", ())),
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in error.errors()
    ]
    message = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
    return JSONResponse(
        error_body("validation", message or "the request does not validate", errors=errors),
        status_code=422,
    )


async def _http_error(request: Request, error: HTTPException) -> JSONResponse:
    kind = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
    return JSONResponse(
        error_body(kind, str(error.detail)), status_code=error.status_code, headers=error.headers
    )


async def _workflow_error(request: Request, error: WorkflowError) -> JSONResponse:
    """A library error no endpoint expected (a step that raised, a store refusing): 409."""
    return JSONResponse(error_body(type(error).__name__, str(error)), status_code=409)
