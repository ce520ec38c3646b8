"""Claims of docs/definitions.md, checked through the public API."""

from __future__ import annotations

import types
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from claims_common import Counted, Poke, St, counting, on_count, poke, poked

from workflows4py import WIO, DefinitionError, InMemoryRuntime, Workflow
from workflows4py.engine import Execution


@dataclass(frozen=True)
class Other:
    n: int


def on_other(s: St, e: Other) -> St:
    return St(e.n)


def same(s: St) -> St:
    return s


# -- names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attribute", "name"),
    [
        ("send_sms", "Send SMS"),  # no vowel: upper-cased
        ("sync_pdf_file", "Sync PDF File"),
        ("by_hand", "By Hand"),  # y counts as a vowel
        ("rhythm_check", "Rhythm Check"),
        ("check_kyc", "Check KYC"),  # a known acronym
        ("get_id", "Get ID"),
        ("run_ci", "Run CI"),
    ],
)
def test_attribute_names_upper_case_vowelless_words_and_acronyms(attribute: str, name: str) -> None:
    step = WIO.pure(St, lambda s: s)
    namespace = {attribute: step, "definition": step}
    types.new_class("Named", (Workflow[St, Counted],), exec_body=lambda ns: ns.update(namespace))
    assert step.display_name == name


def test_an_explicit_name_wins_over_the_attribute() -> None:
    class Flow(Workflow[St, Counted]):
        compute = WIO.pure(St, lambda s: s).named("Compute it")
        definition = compute

    assert Flow.compute.display_name == "Compute it"


def test_the_same_step_on_two_attributes_keeps_the_first_name() -> None:
    step = WIO.pure(St, lambda s: s)

    class Flow(Workflow[St, Counted]):
        first = step
        second = step
        definition = first >> second

    assert Flow.second.display_name == "First"


def test_wrappers_pass_the_attribute_name_to_the_step_they_wrap() -> None:
    class Flow(Workflow[St, Counted | Other]):
        retried = counting().retry(timedelta(seconds=1))
        mapped = counting().map(lambda s: s)
        adapted = counting().map_input(same)
        transformed = counting().transform(input=same, output=lambda outer, s: s)
        checked = counting().checkpointed(
            lambda i, o: Other(o.n), lambda i, e: St(e.n), event=Other
        )
        definition = retried >> mapped >> adapted >> transformed >> checked

    for attribute, name in [
        ("retried", "Retried"),
        ("mapped", "Mapped"),
        ("adapted", "Adapted"),
        ("transformed", "Transformed"),
        ("checked", "Checked"),
    ]:
        wrapper = getattr(Flow, attribute)
        assert wrapper.display_name is None  # the wrapper itself has no name
        assert wrapper.base.display_name == name


def test_an_interruption_passes_the_attribute_name_to_its_base() -> None:
    trigger = (
        WIO.handle_signal(poke, input=St)
        .purely(lambda s, r: Other(0), event=Other)
        .handle_event(on_other)
        .void_response()
    )

    class Flow(Workflow[St, Counted | Other]):
        guarded = counting().interrupt_with(trigger)
        definition = guarded

    progress = Execution.start(Flow.definition, St()).progress()
    assert [p.name for p in progress.walk() if p.kind == "run_io"] == ["Guarded"]


def test_a_wrapped_sequence_is_not_named_by_the_attribute() -> None:
    a = WIO.pure(St, lambda s: s)
    b = WIO.pure(St, lambda s: s)

    class Flow(Workflow[St, Counted]):
        retried = (a >> b).retry(timedelta(seconds=1))
        definition = retried

    assert a.display_name is None
    assert b.display_name is None


def test_named_operations_and_recovery_carry_names() -> None:
    class Flow(Workflow[St, Counted]):
        wait_a_bit = WIO.timer(timedelta(seconds=1), input=St)
        recovered = WIO.recover(on_count)
        definition = wait_a_bit >> recovered

    assert Flow.wait_a_bit.display_name == "Wait A Bit"
    assert Flow.recovered.display_name == "Recovered"
    assert WIO.recover(on_count).named("From checkpoint").display_name == "From checkpoint"
    timer = WIO.timer(timedelta(seconds=1), input=St, name="Cooling")
    assert timer.display_name == "Cooling"


@pytest.mark.parametrize(
    "composition",
    [
        WIO.pure(St, lambda s: s) >> WIO.pure(St, lambda s: s),
        counting().map(lambda s: s),
        counting().retry(timedelta(seconds=1)),
        WIO.fail(Other(1)).handle_error_with(WIO.pure(lambda c: St())),
    ],
    ids=["sequence", "map", "retry", "error handler"],
)
def test_named_on_a_composition_is_a_definition_error(composition: WIO[Any, Any, Any]) -> None:
    with pytest.raises(DefinitionError):
        composition.named("Nope")


async def test_renaming_a_non_timer_step_is_safe_for_running_instances() -> None:
    answer = poked(lambda s: Counted(9))

    class Before(Workflow[St, Counted]):
        name = "renamed"
        old_name = counting()
        definition = old_name >> answer

    class After(Workflow[St, Counted]):
        name = "renamed"
        new_name = counting()
        definition = new_name >> answer

    before = await InMemoryRuntime(Before, initial_state=St()).create_instance("r-1")
    journal = await before.get_journal()
    after = await InMemoryRuntime(After, initial_state=St()).restore_instance("r-1", journal)
    assert await after.query_state() == await before.query_state() == St(1)
    assert [s.name for s in (await after.get_progress()).executed_steps()] == ["New Name"]


# -- the event class of a step ------------------------------------------------------------


def test_event_argument_wins_over_annotations() -> None:
    def produce(s: St) -> Counted:
        return Counted(1)

    declared: Any = Other  # at odds with the annotation on purpose
    step = WIO.run_io(produce, event=declared).handle_event(on_count)
    assert Execution.start(step, St()).expected_events() == (Other,)


def test_return_annotation_comes_before_the_handler_parameter() -> None:
    def produce(s: St) -> Counted:
        return Counted(1)

    handler: Any = on_other  # annotated with another class on purpose
    step = WIO.run_io(produce).handle_event(handler)
    assert Execution.start(step, St()).expected_events() == (Counted,)


def test_awaitable_coroutine_and_union_annotations_name_the_event() -> None:
    def awaitable(s: St) -> Awaitable[Counted]:
        raise NotImplementedError

    async def coroutine(s: St) -> Counted:
        return Counted(1)

    def union(s: St) -> Counted | Other:
        return Counted(1)

    keep = WIO.run_io(awaitable).handle_event(lambda s, e: s)
    assert Execution.start(keep, St()).expected_events() == (Counted,)
    keep = WIO.run_io(coroutine).handle_event(lambda s, e: s)
    assert Execution.start(keep, St()).expected_events() == (Counted,)
    keep = WIO.run_io(union).handle_event(lambda s, e: s)
    assert Execution.start(keep, St()).expected_events() == (Counted, Other)


def test_the_handler_parameter_annotation_is_enough() -> None:
    step = WIO.run_io(St, lambda s: Counted(1)).handle_event(on_count)
    assert Execution.start(step, St()).expected_events() == (Counted,)


async def test_a_plain_or_coroutine_effect_runs() -> None:
    async def later(s: St) -> Counted:
        return Counted(s.n + 5)

    class Both(Workflow[St, Counted]):
        definition = counting() >> WIO.run_io(later).handle_event(on_count)

    instance = await InMemoryRuntime(Both, initial_state=St()).create_instance("b-1")
    assert await instance.query_state() == St(6)


async def test_a_step_recording_an_undeclared_class_is_refused_by_the_runtime() -> None:
    class Wrong(Workflow[St, Other]):
        definition = counting()

    with pytest.raises(DefinitionError, match="not one of the workflow's event types"):
        InMemoryRuntime(Wrong, initial_state=St())


# -- value, fail, end ---------------------------------------------------------------------


def test_value_and_fail_fit_after_any_step() -> None:
    after = counting() >> WIO.value("anything")
    done = Execution.start(after, St()).apply_event(Counted(1))
    assert done is not None
    assert done.state == "anything"
    failing = WIO.pure(St, lambda s: s) >> WIO.fail(Other(3))
    assert Execution.start(failing, St()).status == "failed"


async def test_end_keeps_an_instance_awaiting_and_answering() -> None:
    handled = poked(lambda s: Counted(1))

    class Open(Workflow[St, Counted]):
        definition = handled >> WIO.end()

    class Closed(Workflow[St, Counted]):
        definition = handled

    for workflow, status in [(Open, "awaiting"), (Closed, "finished")]:
        runtime: InMemoryRuntime[St, Counted] = InMemoryRuntime(workflow, initial_state=St())
        instance = await runtime.create_instance("e-1")
        assert await instance.deliver_signal(poke, Poke()) is None
        assert await instance.status() == status
        assert await instance.query_state() == St(1)
        assert await instance.deliver_signal(poke, Poke()) is None  # a redelivery
        assert len(await instance.get_journal()) == 1
    assert WIO.noop().kind == WIO.end().kind == "end"
