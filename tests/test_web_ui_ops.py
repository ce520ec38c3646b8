"""The web UI in real headless Chromium on the instances an operator acts on: a parked one
(an effect that failed ``max_attempts`` times) resumed behind a confirmation, a failed one
(a domain error no handler took), a due timer woken up by hand, a journal longer than a
page, and a change made elsewhere arriving without a reload.

The server (``web_ui_common.serve_app``) runs a SQLite runtime of the workflows below with
``max_attempts=1``, in a thread of this process: a test decides what the flaky effect does
next through ``lifecycle_common.FAILURES``. Each state tested is photographed to
/tmp/web-ui-*.png (``shoot``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from lifecycle_common import FAILURES, Flaky
from web_ui_common import browser, call_api, open_instance, page, serve_app, shoot

from workflows4py import WIO, Err, Ok, Result, SignalDef, Workflow
from workflows4py.runtime import Runtime

if TYPE_CHECKING:
    from playwright.sync_api import Page

__all__ = ["browser", "page"]  # the fixtures, imported so that pytest finds them here


@dataclass(frozen=True)
class Cart:
    items: tuple[str, ...] = ()


@dataclass(frozen=True)
class EmptyCart:
    why: str = "no items"


@dataclass(frozen=True)
class Approve:
    ok: bool


approve = SignalDef("cart.approve", request=Approve)


def require_items(cart: Cart) -> Result[Cart, EmptyCart]:
    return Ok(cart) if cart.items else Err(EmptyCart())


class Checkout(Workflow[Cart, Approve]):
    """Fails (a domain error, no handler) on an empty cart; else awaits an approval."""

    id = "checkout"
    initial_state = Cart()
    check_cart = WIO.pure_with_error(require_items)
    approval = (
        WIO.handle_signal(approve, input=Cart)
        .purely(lambda cart, request: request, event=Approve)
        .handle_event(lambda cart, event: cart)
        .void_response()
    )
    definition = check_cart >> approval


@dataclass(frozen=True)
class Nap:
    awake: bool = False


@dataclass(frozen=True)
class GotUp:
    pass


def get_up(nap: Nap) -> GotUp:
    return GotUp()


class Napping(Workflow[Nap, GotUp]):
    """A short timer (due before any test runs: no worker fires it), then a step."""

    id = "napping"
    initial_state = Nap()
    nap = WIO.timer(timedelta(seconds=1), input=Nap, name="Nap")
    wake = WIO.run_io(get_up).handle_event(lambda nap, event: Nap(awake=True))
    definition = nap >> wake


class Hibernating(Workflow[Nap, GotUp]):
    """A timer an hour long: not due while the tests run."""

    id = "hibernating"
    initial_state = Nap()
    definition = WIO.timer(timedelta(hours=1), input=Nap, name="Winter") >> Napping.wake


@dataclass(frozen=True)
class Count:
    n: int = 0


@dataclass(frozen=True)
class Counted:
    n: int


ROUNDS = 45


def count_one(count: Count) -> Counted:
    return Counted(count.n + 1)


class Rounds(Workflow[Count, Counted]):
    """Forty-five rounds of one effect each: a journal of three of the UI's pages of 20."""

    id = "rounds"
    initial_state = Count()
    one_round = WIO.run_io(count_one).handle_event(lambda count, event: Count(event.n))
    definition = WIO.repeat(one_round).until(lambda count: count.n >= ROUNDS, name="Done?")


async def _seed(runtime: Runtime) -> None:
    FAILURES[:] = ["the payment service is down", "the payment service is down"]
    for job in ("job-parked", "job-elsewhere"):
        with pytest.raises(RuntimeError, match="payment service"):
            await runtime.start(Flaky, job)
    await runtime.start(Checkout, "cart-empty")
    await runtime.start(Napping, "nap-1")
    await runtime.start(Hibernating, "bear-1")
    await runtime.start(Rounds, "rounds-1")


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = Path(tmp_path_factory.mktemp("web-ui-ops")) / "ops.db"
    workflows: list[type[Workflow[Any, Any]]] = [Flaky, Checkout, Napping, Hibernating, Rounds]
    with serve_app(lambda: Runtime.sqlite(database, workflows, max_attempts=1), _seed) as served:
        yield served


def _instance(url: str, workflow: str, instance_id: str) -> Any:
    return call_api(url, f"workflows/{workflow}/instances/{instance_id}")


def _badge(page: Page, status: str) -> None:
    page.locator(".instance-head .badge", has_text=status).wait_for()


def test_a_parked_instance_says_why_and_resumes_behind_a_confirmation(page: Page, url: str) -> None:
    open_instance(page, url, "flaky", "job-parked")
    _badge(page, "⚠ parked")
    error = page.locator("#last-error")
    assert (error.text_content() or "").startswith("⚠ Parked (1 failures): ")
    assert "'Do Work': RuntimeError: the payment service is down" in (error.text_content() or "")
    assert "Parked" in (page.locator("#progress-diagram svg").text_content() or "")
    shoot(page, "parked")
    page.evaluate("window.notReloaded = true")

    page.locator("#action-resume").click()
    dialog = page.locator("dialog", has_text="Resume job-parked?")
    dialog.get_by_role("button", name="Cancel").click()
    assert page.locator("dialog").count() == 0
    assert _instance(url, "flaky", "job-parked")["status"] == "parked"

    FAILURES[:] = ["still down"]  # resumed too early: it raises again, and is parked again
    page.locator("#action-resume").click()
    dialog.get_by_role("button", name="Resume").click()
    dialog.locator(".error-box", has_text="still down").wait_for()
    page.locator("#last-error", has_text="RuntimeError: still down").wait_for()
    shoot(page, "parked-resume-refused")
    dialog.get_by_role("button", name="Cancel").click()
    _badge(page, "⚠ parked")

    FAILURES.clear()  # the fix is deployed: the effect works now
    page.locator("#action-resume").click()
    dialog.get_by_role("button", name="Resume").click()
    _badge(page, "✔ finished")
    assert page.locator("#last-error").count() == 0
    page.locator("#state", has_text="tries").wait_for()
    page.locator("#journal td code", has_text="Worked").wait_for()  # drawn after the state
    assert page.evaluate("window.notReloaded") is True
    assert _instance(url, "flaky", "job-parked")["state"] == {"type": "Job", "state": {"tries": 1}}
    shoot(page, "parked-resumed")


def test_a_change_made_elsewhere_shows_without_a_reload(page: Page, url: str) -> None:
    open_instance(page, url, "flaky", "job-elsewhere")
    _badge(page, "⚠ parked")
    page.locator(".live", has_text="● live").wait_for()
    page.evaluate("window.notReloaded = true")
    FAILURES.clear()
    assert call_api(url, "workflows/flaky/instances/job-elsewhere/resume", {})["resumed"] is True
    _badge(page, "✔ finished")  # through the event stream
    page.locator("#journal td code", has_text="Worked").wait_for()
    assert page.locator("#last-error").count() == 0
    assert page.locator("#history-slider").get_attribute("max") == "2"
    assert page.evaluate("window.notReloaded") is True


def test_a_failed_instance_shows_its_error_and_no_signal_button(page: Page, url: str) -> None:
    view = _instance(url, "checkout", "cart-empty")
    assert view["status"] == "failed"
    assert view["expected_signals"] == []
    open_instance(page, url, "checkout", "cart-empty")
    _badge(page, "✖ failed")
    error = page.locator("#domain-error")
    assert error.text_content() == '✖ Failed in Check Cart: Empty Cart {"why":"no items"}'
    assert page.locator("#last-error").count() == 0  # no operation raised: a domain error
    assert page.locator("button[data-signal]").count() == 0
    page.locator("#waiting-for", has_text="no signal expected").wait_for()
    assert "Failed" in (page.locator("#progress-diagram svg").text_content() or "")
    assert page.locator("#progress-diagram svg .failed").count() >= 1  # drawn in red
    shoot(page, "failed")


def test_wake_up_now_fires_a_due_timer(page: Page, url: str) -> None:
    due = datetime.fromisoformat(_instance(url, "napping", "nap-1")["next_wakeup"])
    while datetime.now(UTC) <= due:  # the timer is a second long; no worker fires it
        time.sleep(0.1)
    open_instance(page, url, "napping", "nap-1")
    _badge(page, "◷ awaiting")
    waiting = page.locator("#waiting-for")
    assert "wakes up" in (waiting.text_content() or "")
    before = page.locator("#progress-diagram").inner_html()
    shoot(page, "timer-due")
    page.evaluate("window.notReloaded = true")
    waiting.get_by_role("button", name="Wake up now").click()
    _badge(page, "✔ finished")
    waiting.get_by_text("nothing scheduled").wait_for()
    assert waiting.get_by_role("button", name="Wake up now").count() == 0
    page.locator("#journal td code", has_text="GotUp").wait_for()  # drawn after the diagram
    types = page.locator("#journal td code").all_text_contents()
    assert types == [
        "workflows4py.Started",
        "workflows4py.TimerStarted",
        "workflows4py.TimerReleased",
        "GotUp",
    ]
    page.wait_for_function(
        "before => document.querySelector('#progress-diagram').innerHTML !== before", arg=before
    )
    page.locator("#state", has_text="awake").wait_for()
    assert page.evaluate("window.notReloaded") is True
    assert _instance(url, "napping", "nap-1")["state"]["state"] == {"awake": True}
    shoot(page, "timer-passed")


def test_wake_up_now_before_the_timer_is_due_says_nothing_ran(page: Page, url: str) -> None:
    open_instance(page, url, "hibernating", "bear-1")
    waiting = page.locator("#waiting-for")
    waiting.get_by_role("button", name="Wake up now").click()
    note = page.locator("#wakeup-note")
    note.wait_for()
    assert "not due yet: nothing ran" in (note.text_content() or "")
    assert page.locator("#journal td code").all_text_contents() == [
        "workflows4py.Started",
        "workflows4py.TimerStarted",
    ]
    assert _instance(url, "hibernating", "bear-1")["status"] == "awaiting"
    shoot(page, "timer-not-due")


EARLIER, LATER = "\u2039 Earlier", "Later \u203a"  # the journal pager's buttons


def _events(first: int, last: int, length: int) -> str:
    """What the journal pager says it shows."""
    return f"events {first}\u2013{last} of {length}"


def _rows(page: Page) -> list[int]:
    sequences = page.locator("#journal tr[data-sequence]").evaluate_all(
        "rows => rows.map(r => Number(r.dataset.sequence))"
    )
    return list(sequences)


def test_the_journal_pages_and_the_slider_spans_every_event(page: Page, url: str) -> None:
    length = _instance(url, "rounds", "rounds-1")["journal_length"]
    assert length > 40  # three pages of 20
    open_instance(page, url, "rounds", "rounds-1")
    pager = page.locator("#journal .pager")
    assert _rows(page) == list(range(1, 21))
    assert pager.get_by_text(_events(1, 20, length)).is_visible()
    assert pager.get_by_role("button", name=EARLIER).is_disabled()
    shoot(page, "journal-first-page")
    pager.get_by_role("button", name=LATER).click()
    pager.get_by_text(_events(21, 40, length)).wait_for()
    assert _rows(page) == list(range(21, 41))
    pager.get_by_role("button", name=LATER).click()
    pager.get_by_text(_events(41, length, length)).wait_for()
    assert _rows(page) == list(range(41, length + 1))
    assert pager.get_by_role("button", name=LATER).is_disabled()
    shoot(page, "journal-last-page")
    page.locator("#journal tr[data-sequence='45'] td.num").click()  # the state after event 45
    page.wait_for_url("**/instances/rounds/rounds-1?at=45")
    page.locator("#history-position", has_text=f"after event 45 of {length}").wait_for()
    expected = call_api(url, "workflows/rounds/instances/rounds-1/history/45")["state"]
    assert expected == {"type": "Count", "state": {"n": 44}}  # the start entry, 44 rounds
    page.locator("#state .json-line", has_text="n: 44").wait_for()
    assert page.locator("#journal tr.current").get_attribute("data-sequence") == "45"
    pager.get_by_role("button", name=EARLIER).click()
    pager.get_by_text(_events(21, 40, length)).wait_for()
    pager.get_by_role("button", name=EARLIER).click()
    pager.get_by_text(_events(1, 20, length)).wait_for()

    slider = page.locator("#history-slider")
    assert (slider.get_attribute("min"), slider.get_attribute("max")) == ("0", str(length))
    slider.focus()
    page.keyboard.press("End")
    page.locator("#history-position", has_text=f"after event {length} of {length}").wait_for()
    page.keyboard.press("Home")
    page.locator("#history-position", has_text=f"after event 0 of {length}").wait_for()
    page.wait_for_url("**/instances/rounds/rounds-1?at=0")
    shoot(page, "journal-slider-start")
