"""The codecs of a workflow: what cannot be stored is refused when the codecs are built (naming
the step or the state type), classes declared in a function resolve, plain values can be
states, and ``Workflow.schema()`` describes states, events and signals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from workflows4py import WIO, DefinitionError, InMemoryRuntime, SignalDef, Workflow
from workflows4py.examples import pull_request as pr
from workflows4py.runtime import Runtime


@dataclass(frozen=True)
class Start:
    n: int


@dataclass(frozen=True)
class Counted:
    n: int


def test_a_step_recording_an_event_that_cannot_be_stored_is_named() -> None:
    @dataclass(frozen=True)
    class Measured:
        value: complex

    def measure(s: Start) -> Measured:
        return Measured(1j)

    class Flow(Workflow[Start, Measured]):
        record = WIO.run_io(measure, event=Measured).handle_event(lambda s, e: s)
        definition = record

    with pytest.raises(DefinitionError) as caught:
        Flow.codecs()
    message = str(caught.value)
    assert message.startswith("Flow: step 'Record' records")
    assert "Measured, which cannot be stored: unsupported type complex at " in message


@pytest.mark.parametrize("part", ["request", "response"])
def test_a_signal_type_that_cannot_be_encoded_is_refused_before_any_instance_naming_the_step(
    part: str,
) -> None:
    @dataclass(frozen=True)
    class Plain:
        n: int

    @dataclass(frozen=True)
    class Odd:
        value: complex

    request, response = (Odd, Plain) if part == "request" else (Plain, Odd)
    odd = SignalDef("odd", request=request, response=response)

    class Flow(Workflow[Start, Counted]):
        definition = (
            WIO.handle_signal(odd, input=Start)
            .purely(lambda s, r: Counted(1), event=Counted)
            .handle_event(lambda s, e: Start(e.n))
            .produce_response(lambda s, e, r: Plain(1) if response is Plain else Odd(1j))
            .named("Take the odd one")
        )

    with pytest.raises(DefinitionError) as caught:
        InMemoryRuntime(Flow, initial_state=Start(0))  # before any instance exists
    message = str(caught.value)
    assert message.startswith(
        f"Flow: step 'Take the odd one' handles signal 'odd', whose {part} type "
    ), message
    assert "Odd cannot be encoded: unsupported type complex at " in message


def test_a_state_type_that_cannot_be_stored_is_named() -> None:
    class Flow(Workflow[complex, Counted]):
        definition = WIO.pure(complex, lambda s: s)

    with pytest.raises(DefinitionError, match="Flow: its state type cannot be stored: unsupported"):
        Flow.codecs()


def test_a_workflow_declared_in_a_function_resolves_the_classes_declared_before_it() -> None:
    @dataclass(frozen=True)
    class Reason:
        text: str

    @dataclass(frozen=True)
    class Closed:
        reason: Reason  # a name only this function knows (annotations are strings here)

    class Flow(Workflow[Start | Closed, Counted]):
        definition = WIO.pure(Start, lambda s: Closed(Reason(str(s.n))))

    codec = Flow.codecs().state
    assert codec.decode(*codec.encode(Closed(Reason("x")))) == Closed(Reason("x"))


def test_a_local_class_that_names_what_the_workflow_cannot_see_is_refused_saying_why() -> None:
    @dataclass(frozen=True)
    class Closed:
        reason: Later  # declared after the workflow class

    class Flow(Workflow[Start | Closed, Counted]):
        definition = WIO.pure(Start, lambda s: s)

    @dataclass(frozen=True)
    class Later:
        text: str

    with pytest.raises(DefinitionError) as caught:
        Flow.codecs()
    message = str(caught.value)
    assert "cannot resolve the type hints of" in message
    assert "name 'Later' is not defined" in message
    assert "define these classes at module level" in message
    assert Later("x").text == "x"


def _count_to_three(s: Start) -> Counted:
    return Counted(s.n + 1)


class CountToThree(Workflow[Start | int, Counted]):
    """A loop whose until_some produces a plain int: the workflow's final state."""

    step = WIO.run_io(_count_to_three).handle_event(lambda s, e: Start(e.n))
    definition = WIO.repeat(step).until_some(lambda s: s.n if s.n >= 3 else None)


async def test_a_plain_value_can_be_a_state() -> None:
    codec = CountToThree.codecs().state
    assert list(codec.members) == ["Start", "int"]
    async with Runtime.memory([CountToThree], snapshot_every=1) as runtime:
        instance = await runtime.start(CountToThree, "c-1", initial_state=Start(0))
        assert await instance.query_state() == 3
        journal = await instance.get_journal()
    fresh = InMemoryRuntime(CountToThree, initial_state=Start(0))
    restored = await fresh.restore_instance("c-2", journal)
    assert await restored.query_state() == 3


@dataclass(frozen=True)
class Pay:
    number: str
    cents: int


@dataclass(frozen=True)
class Receipt:
    accepted: bool


def test_the_schema_of_a_workflow() -> None:
    schema: dict[str, Any] = pr.PullRequest.schema()
    assert set(schema) == {"workflow", "state", "events", "signals"}
    assert schema["workflow"] == "PullRequest"
    create = schema["signals"]["create-pr"]
    assert create["response"] is None
    assert create["request"] == {
        "additionalProperties": False,
        "properties": {"commit": {"title": "Commit", "type": "string"}},
        "required": ["commit"],
        "title": "CreateRequest",
        "type": "object",
    }
    states = schema["state"]
    assert states["discriminator"] == {"propertyName": "type"}
    tags = [alt["properties"]["type"]["const"] for alt in states["oneOf"]]
    assert tags == ["Empty", "Initiated", "Checked", "Reviewed", "Merged", "Closed"]
    assert all(alt["required"] == ["type", "state"] for alt in states["oneOf"])
    closed = states["$defs"]["Closed"]["properties"]["reason"]
    assert closed["discriminator"]["propertyName"] == "$type"  # the union of domain errors
    tagged = states["$defs"]["CommitNotFound_tagged"]
    assert tagged["properties"] == {"$type": {"const": "CommitNotFound", "type": "string"}}
    assert tagged["required"] == ["$type"]
    events = [alt["properties"]["type"]["const"] for alt in schema["events"]["oneOf"]]
    assert events[:3] == ["Created", "PipelineFinished", "ReviewSubmitted"]
    assert "workflows4py.Terminated" in events
    assert all("data" in alt["properties"] for alt in schema["events"]["oneOf"])


def test_a_signal_with_a_response_has_both_schemas() -> None:
    pay = SignalDef("billing.pay", request=Pay, response=Receipt)

    class Billing(Workflow[Start, Counted]):
        definition = (
            WIO.handle_signal(pay, input=Start)
            .purely(lambda s, r: Counted(r.cents), event=Counted)
            .handle_event(lambda s, e: Start(e.n))
            .produce_response(lambda s, e, r: Receipt(accepted=True))
        )

    signals = Billing.schema()["signals"]
    assert signals["billing.pay"]["request"]["required"] == ["number", "cents"]
    assert signals["billing.pay"]["response"]["properties"] == {
        "accepted": {"title": "Accepted", "type": "boolean"}
    }
