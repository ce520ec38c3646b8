"""The HTTP API of workflows4py.web over memory, SQLite and PostgreSQL (docs/web.md)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from lifecycle_common import (  # noqa: F401
    FAILURES,
    T0,
    Factory,
    Order,
    Orders,
    Pay,
    Tickets,
    make,
    pay,
)
from starlette.applications import Starlette
from starlette.routing import Mount

from workflows4py.runtime import Runtime
from workflows4py.testing import TestClock
from workflows4py.web import create_app

ORDER = {"type": "Order", "state": {"sku": "book", "qty": 2}}
ORDERS = "/api/v1/workflows/orders/instances"


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture
async def api(make: Factory) -> AsyncIterator[httpx.AsyncClient]:  # noqa: F811
    runtime = make(TestClock(T0))
    async with client(create_app(runtime)) as c:
        yield c
    await runtime.close()


async def test_workflows_list_counts_and_definitions(api: httpx.AsyncClient) -> None:
    assert (await api.post(ORDERS, json={"id": "o-1", "state": ORDER})).status_code == 201
    body = (await api.get("/api/v1/workflows")).json()
    orders = next(w for w in body["workflows"] if w["id"] == "orders")
    assert orders["signals"] == ["order.pay"]
    assert orders["counts"]["awaiting"] == 1
    assert orders["counts"]["finished"] == 0
    detail = (await api.get("/api/v1/workflows/orders")).json()
    assert detail["mermaid"].startswith("flowchart")
    assert detail["mermaid_live_url"].startswith("https://mermaid.live/")
    assert detail["schema"]["signals"]["order.pay"]["request"]["properties"]["amount"]
    assert detail["progress"]["version"] == 1
    xml = await api.get("/api/v1/workflows/orders/bpmn")
    assert xml.headers["content-type"].startswith("application/xml")
    assert "<bpmn:definitions" in xml.text or "definitions" in xml.text
    missing = await api.get("/api/v1/workflows/nope")
    assert missing.status_code == 404
    assert "nope" in missing.json()["error"]["message"]


async def test_signal_validation_unexpected_and_unknown(api: httpx.AsyncClient) -> None:
    view = (await api.post(ORDERS, json={"id": "o-1", "state": ORDER})).json()
    assert view["status"] == "awaiting"
    assert view["journal_length"] == 1
    assert [s["id"] for s in view["expected_signals"]] == ["order.pay"]
    assert view["expected_signals"][0]["request_schema"]["properties"]["amount"]
    assert view["state"] == {"type": "Order", "state": {"sku": "book", "qty": 2, "paid": False}}

    bad = await api.post(f"{ORDERS}/o-1/signals/order.pay", json={"amount": "twelve"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"][-1] == "amount"
    assert (await api.get(f"{ORDERS}/o-1")).json()["journal_length"] == 1  # nothing changed

    ok = await api.post(f"{ORDERS}/o-1/signals/order.pay", json={"amount": 12})
    assert ok.status_code == 200, ok.text
    assert ok.json()["response"] == "paid 12"
    assert ok.json()["instance"]["state"]["state"]["paid"] is True

    again = await api.post(f"{ORDERS}/o-1/signals/order.pay", json={"amount": 12})
    assert again.status_code in (200, 409)  # a redelivery is answered from the event
    tickets = "/api/v1/workflows/tickets/instances"
    assert (await api.post(tickets, json={"id": "t-1"})).status_code == 201
    closed = await api.post(f"{tickets}/t-1/signals/ticket.close", json={"why": "done"})
    assert closed.status_code == 200
    assert closed.json()["response"] is None
    late = await api.post(f"{tickets}/t-1/signals/ticket.close", json={"why": "x"})
    assert late.status_code in (200, 409)

    for path, status in (
        (f"{ORDERS}/o-2/signals/order.pay", 404),
        (f"{ORDERS}/o-1/signals/no.such", 404),
        ("/api/v1/workflows/nope/instances/o-1/signals/order.pay", 404),
        (f"{ORDERS}/bad%20id/signals/order.pay", 422),
    ):
        answer = await api.post(path, json={"amount": 1})
        assert answer.status_code == status, (path, answer.text)
        assert answer.json()["error"]["message"]


async def test_unexpected_signal_is_409_with_the_expected_ids(make: Factory) -> None:  # noqa: F811
    runtime = make(TestClock(T0))
    async with client(create_app(runtime)) as api:
        await api.post(ORDERS, json={"id": "o-1", "state": ORDER})
        await api.post(f"{ORDERS}/o-1/terminate", json={"reason": "gone"})
        refused = await api.post(f"{ORDERS}/o-1/signals/order.pay", json={"amount": 1})
        assert refused.status_code == 409
        assert refused.json()["error"]["type"] == "unexpected_signal"
        assert refused.json()["expected"] == []
    await runtime.close()


async def test_journal_pages_and_history(api: httpx.AsyncClient) -> None:
    await api.post(ORDERS, json={"id": "o-1", "state": ORDER})
    await api.post(f"{ORDERS}/o-1/signals/order.pay", json={"amount": 5})
    length = (await api.get(f"{ORDERS}/o-1")).json()["journal_length"]
    assert length == 3  # the start entry, Paid, the timer's start
    first = (await api.get(f"{ORDERS}/o-1/journal", params={"limit": 2})).json()
    assert [e["sequence"] for e in first["entries"]] == [1, 2]
    assert first["next_after"] == 2
    rest = (await api.get(f"{ORDERS}/o-1/journal", params={"after": 2, "limit": 2})).json()
    assert [e["sequence"] for e in rest["entries"]] == [3]
    assert rest["next_after"] is None
    assert first["entries"][1]["data"] == {"amount": 5}
    before = (await api.get(f"{ORDERS}/o-1/history/1")).json()
    assert before["state"]["state"]["paid"] is False
    assert before["journal_length"] == 3
    after = (await api.get(f"{ORDERS}/o-1/history/2")).json()
    assert after["state"]["state"]["paid"] is True
    assert "flowchart" in after["mermaid"]
    assert (await api.get(f"{ORDERS}/o-1/history/4")).status_code == 404
    assert (await api.get(f"{ORDERS}/o-1/history/-1")).status_code == 422


async def test_start_terminate_resume_fork(api: httpx.AsyncClient) -> None:
    assert (await api.post(ORDERS, json={"id": "o-1", "state": ORDER})).status_code == 201
    assert (await api.post(ORDERS, json={"id": "o-1", "state": ORDER})).status_code == 409
    bad_state = await api.post(ORDERS, json={"id": "o-9", "state": {"type": "Order", "state": {}}})
    assert bad_state.status_code == 422
    no_state = await api.post(ORDERS, json={"id": "o-8"})
    assert no_state.status_code == 422  # orders declare no initial state
    await api.post(f"{ORDERS}/o-1/signals/order.pay", json={"amount": 5})
    fork = await api.post(f"{ORDERS}/o-1/fork", json={"new_id": "o-2", "after_sequence": 1})
    assert fork.status_code == 201
    assert fork.json()["origin"] == {
        "workflow": "orders",
        "instance_id": "o-1",
        "after_sequence": 1,
    }
    assert fork.json()["journal_length"] == 1
    taken = await api.post(f"{ORDERS}/o-1/fork", json={"new_id": "o-2", "after_sequence": 1})
    assert taken.status_code == 409
    outside = await api.post(f"{ORDERS}/o-1/fork", json={"new_id": "o-3", "after_sequence": 99})
    assert outside.status_code == 422
    resumed = (await api.post(f"{ORDERS}/o-1/resume", json={})).json()
    assert resumed["resumed"] is False
    woken = await api.post(f"{ORDERS}/o-1/wakeup", json={})
    assert woken.status_code == 200
    assert woken.json()["status"] == "awaiting"
    done = (await api.post(f"{ORDERS}/o-1/terminate", json={"reason": "left"})).json()
    assert done["terminated"] is True
    assert done["instance"]["status"] == "terminated"
    assert done["instance"]["progress"]["terminated"]["reason"] == "left"
    twice = (await api.post(f"{ORDERS}/o-1/terminate", json={"reason": "left"})).json()
    assert twice["terminated"] is False


async def test_a_step_that_raises_is_409_with_its_class_name(make: Factory) -> None:  # noqa: F811
    """docs/web.md: an operation that failed in the library (a step raised) is a 409 whose
    type is the error's class name, as JSON like every error, not a bare 500."""
    FAILURES[:] = ["the service is down", "still down"]
    runtime = make(TestClock(T0), max_attempts=1)
    flaky = "/api/v1/workflows/flaky/instances"
    async with client(create_app(runtime)) as api:
        started = await api.post(flaky, json={"id": "f-1"})
        assert started.status_code == 409, started.text
        assert started.json() == {
            "error": {"type": "RuntimeError", "message": "the service is down"}
        }
        view = (await api.get(f"{flaky}/f-1")).json()
        assert view["status"] == "parked"
        assert "the service is down" in view["record"]["last_error"]
        again = await api.post(f"{flaky}/f-1/resume", json={})
        assert again.status_code == 409
        assert again.json()["error"] == {"type": "RuntimeError", "message": "still down"}
        assert (await api.get(f"{flaky}/f-1")).json()["status"] == "parked"
        resumed = await api.post(f"{flaky}/f-1/resume", json={})
        assert resumed.status_code == 200
        assert resumed.json()["resumed"] is True
        assert resumed.json()["instance"]["status"] == "finished"
    await runtime.close()


async def test_search_filters_sort_and_paging(api: httpx.AsyncClient) -> None:
    for n in range(3):
        await api.post(ORDERS, json={"id": f"o-{n}", "state": ORDER})
    await api.post("/api/v1/workflows/tickets/instances", json={"id": "t-1"})
    await api.post(f"{ORDERS}/o-1/terminate", json={"reason": "x"})
    every = (await api.get("/api/v1/instances")).json()
    assert (every["total"], every["exact"]) == (4, True)
    assert every["errors"] == []
    capped = (await api.get("/api/v1/instances", params={"count_limit": 2, "limit": 3})).json()
    assert (len(capped["items"]), capped["total"], capped["exact"]) == (3, 2, False)
    enough = (await api.get("/api/v1/instances", params={"count_limit": 4})).json()
    assert (enough["total"], enough["exact"]) == (4, True)
    assert (await api.get("/api/v1/instances", params={"count_limit": -1})).status_code == 422
    only = (await api.get("/api/v1/instances", params={"workflow": "orders"})).json()
    assert {r["id"] for r in only["items"]} == {"o-0", "o-1", "o-2"}
    stopped = (await api.get("/api/v1/instances", params={"status": "terminated"})).json()
    assert [r["id"] for r in stopped["items"]] == ["o-1"]
    page = (await api.get("/api/v1/instances", params={"limit": 2, "offset": 2})).json()
    assert len(page["items"]) == 2
    assert page["total"] == 4
    assert page["offset"] == 2
    created = await api.get(
        "/api/v1/instances", params={"workflow": "orders", "sort": "created", "order": "asc"}
    )
    assert [r["id"] for r in created.json()["items"]] == ["o-0", "o-1", "o-2"]
    assert (await api.get("/api/v1/instances", params={"failing": "true"})).json()["total"] == 0
    after = (T0.replace(year=2030)).isoformat()
    later = (await api.get("/api/v1/instances", params={"created_from": after})).json()
    assert later["total"] == 0
    assert (await api.get("/api/v1/instances", params={"tag": "k=v"})).json()["total"] == 0
    assert (await api.get("/api/v1/instances", params={"tag": "novalue"})).json()["total"] == 0
    assert (await api.get("/api/v1/instances", params={"workflow": "x"})).status_code == 404
    assert (await api.get("/api/v1/instances", params={"status": "nope"})).status_code == 422


async def test_token_read_only_content_type_and_size() -> None:
    runtime = Runtime.memory([Orders, Tickets])
    async with client(create_app(runtime, token="s3cret", max_body=100)) as api:
        refused = await api.get("/api/v1/workflows")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        wrong = await api.get("/api/v1/workflows", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        auth = {"Authorization": "Bearer s3cret"}
        assert (await api.get("/api/v1/workflows", headers=auth)).status_code == 200
        assert (await api.get("/api/v1/openapi.json")).status_code == 401
        assert (await api.get("/")).status_code == 200  # the UI's page needs no token
        form = await api.post(
            ORDERS, content="id=o-1", headers={**auth, "Content-Type": "text/plain"}
        )
        assert form.status_code == 415
        big = await api.post(ORDERS, json={"id": "o-1", "state": {"pad": "x" * 200}}, headers=auth)
        assert big.status_code == 413
        assert big.json()["error"]["type"] == "payload_too_large"
    async with client(create_app(runtime, read_only=True)) as api:
        assert (await api.get("/api/v1/workflows")).status_code == 200
        for path in (ORDERS, f"{ORDERS}/o-1/terminate", f"{ORDERS}/o-1/signals/order.pay"):
            refused = await api.post(path, json={"id": "o-1"})
            assert refused.status_code == 403
            assert refused.json()["error"]["type"] == "read_only"
    await runtime.close()


async def test_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKFLOWS4PY_TOKEN", "from-env")
    runtime = Runtime.memory([Orders])
    async with client(create_app(runtime)) as api:
        assert (await api.get("/api/v1/workflows")).status_code == 401
        ok = await api.get("/api/v1/workflows", headers={"Authorization": "Bearer from-env"})
        assert ok.status_code == 200
    await runtime.close()


async def test_mounted_under_a_prefix_the_page_has_its_base() -> None:
    runtime = Runtime.memory([Orders])
    parent = Starlette(routes=[Mount("/wf", app=create_app(runtime))])
    async with client(parent) as api:
        for page in ("/wf/", "/wf/instances", "/wf/workflows/orders", "/wf/instances/orders/o-1"):
            html = await api.get(page)
            assert html.status_code == 200, page
            assert '<base href="/wf/">' in html.text, page
        assert (await api.get("/wf/api/v1/workflows")).json()["workflows"][0]["id"] == "orders"
        assert (await api.get("/wf/static/../../_app.py")).status_code == 404
    async with client(create_app(runtime)) as api:
        assert '<base href="/">' in (await api.get("/instances")).text
    await runtime.close()


class _Stream:
    """The event stream of ``path``, read from ``app`` as a client would (no server): the
    chunks received so far, ``until(text)`` waits for some text, ``close()`` disconnects."""

    def __init__(self, app: Any, path: str) -> None:
        self.chunks: list[str] = []
        self.gone = asyncio.Event()
        self.asked = False
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [],
            "server": ("test", 80),
            "client": ("test", 1),
        }
        self.task = asyncio.create_task(app(scope, self.receive, self.send))

    async def receive(self) -> dict[str, Any]:
        if not self.asked:
            self.asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = dict(message["headers"])
            assert headers[b"content-type"].startswith(b"text/event-stream")
        if message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b"").decode())

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    async def until(self, text: str) -> None:
        for _ in range(100):
            if text in self.text:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {text!r} in {self.chunks!r}")

    async def close(self) -> list[Any]:
        """Disconnects; the data of every event received."""
        self.gone.set()
        await asyncio.wait_for(self.task, 5)
        return [json.loads(line[6:]) for line in self.text.splitlines() if line[:6] == "data: "]


async def test_event_stream_sends_changes_and_heartbeats() -> None:
    runtime = Runtime.memory([Orders])
    app = create_app(runtime, heartbeat=0.2)
    async with client(app) as api:
        await api.post(ORDERS, json={"id": "o-1", "state": ORDER})
    stream = _Stream(app, f"{ORDERS}/o-1/events")
    await stream.until('"journal_length": 1')
    assert stream.text.startswith("event: change\ndata: ")
    assert '"status": "awaiting"' in stream.text
    await (await runtime.get(Orders, "o-1")).deliver_signal(pay, Pay(3))
    await stream.until('"journal_length": 3')
    await stream.until(": heartbeat")
    events = await stream.close()
    assert events[0] == {"status": "awaiting", "journal_length": 1}
    assert events[-1] == {"status": "awaiting", "journal_length": 3}
    await runtime.close()


async def test_event_stream_reads_only_what_is_new(make: Factory) -> None:  # noqa: F811
    """Each poll reads the registry row and the journal after the last entry seen: the whole
    journal is read once, however long the stream runs; a change made by another runtime
    over the same data (another process) still arrives."""
    runtime = make(TestClock(T0))
    app = create_app(runtime, heartbeat=0.05)
    async with client(app) as api:
        await api.post(ORDERS, json={"id": "o-1", "state": ORDER})
    reads: list[int] = []
    store = runtime.store
    read = store.read

    async def counted(key: Any, after: int = 0) -> Any:
        if key.instance_id == "o-1":
            reads.append(after)
        return await read(key, after)

    store.read = counted  # type: ignore[method-assign]
    stream = _Stream(app, f"{ORDERS}/o-1/events")
    await stream.until('"journal_length": 1')
    await stream.until(": heartbeat\n\n" * 10)  # ten polls at least
    async with make(TestClock(T0), like=runtime) as other:
        await (await other.get(Orders, "o-1")).deliver_signal(pay, Pay(3))
    await stream.until('"journal_length": 3')
    await (await runtime.get(Orders, "o-1")).deliver_signal(pay, Pay(3))  # a redelivery
    events = await stream.close()
    # the signal's two events are two commits: a poll between them sees the one in between
    assert events[0] == {"status": "awaiting", "journal_length": 1}
    assert events[-1] == {"status": "awaiting", "journal_length": 3}
    assert len(events) <= 3
    if len(events) == 3:
        assert events[1]["journal_length"] == 2
    assert len(reads) > 10
    assert reads.count(0) == 1  # the first poll's; every later one reads after what it saw
    assert set(reads) <= {0, 1, 2, 3}
    await runtime.close()


def test_without_the_extra_the_import_error_says_what_to_install(tmp_path: Any) -> None:
    import subprocess
    import sys

    code = "import sys; sys.modules['fastapi'] = None; import workflows4py.web"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert run.returncode == 1
    assert "pip install workflows4py[web]" in run.stderr


def test_an_order_state_is_what_the_api_takes() -> None:
    assert Orders.codecs().state.encode(Order("book", 2))[0] == ORDER["type"]
