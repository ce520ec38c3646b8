"""Building definitions: names, validation, clear errors at definition time."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from workflows4py import WIO, DefinitionError, Err, Ok, Result, SignalDef, Workflow
from workflows4py.definition import pretty_name


@dataclass(frozen=True)
class S:
    n: int


@dataclass(frozen=True)
class Ev:
    n: int


@dataclass(frozen=True)
class OtherEv:
    n: int


@dataclass(frozen=True)
class Req:
    n: int


@dataclass(frozen=True)
class Boom:
    pass


sig = SignalDef("sig", request=Req)


def effect(s: S) -> Ev:
    return Ev(1)


def handle(s: S, e: Ev) -> S:
    return S(e.n)


def handle_checked(s: S, e: Ev) -> Result[S, Boom]:
    return Ok(S(e.n)) if e.n else Err(Boom())


@pytest.mark.parametrize(
    ("identifier", "name"),
    [
        ("create_pr", "Create PR"),
        ("createPR", "Create PR"),
        ("run_pipeline", "Run Pipeline"),
        ("merge_pr", "Merge PR"),
        ("check_kyc_status", "Check KYC Status"),
        ("sendSMS", "Send SMS"),
        ("_private_step", "Private Step"),
        ("validate", "Validate"),
    ],
)
def test_pretty_names(identifier: str, name: str) -> None:
    assert pretty_name(identifier) == name


def test_steps_are_named_after_class_attributes_even_inside_definition() -> None:
    class Flow(Workflow[S, Ev]):
        create_pr = WIO.run_io(effect).handle_event(handle)
        close_it = WIO.pure(S, lambda s: s)
        explicit = WIO.run_io(effect).handle_event(handle).named("Custom Name")
        definition = create_pr >> close_it >> explicit

    assert Flow.create_pr.display_name == "Create PR"
    assert Flow.close_it.display_name == "Close It"
    assert Flow.explicit.display_name == "Custom Name"
    from workflows4py.engine import Execution

    names = [c.name for c in Execution.start(Flow.definition, S(0)).progress().children]
    assert names == ["Create PR", "Close It", "Custom Name"]


def test_named_returns_a_copy_and_validates() -> None:
    step = WIO.run_io(effect).handle_event(handle)
    named = step.named("X")
    assert named is not step
    assert step.display_name is None
    assert named.display_name == "X"
    with pytest.raises(DefinitionError, match="non-empty"):
        step.named("  ")
    with pytest.raises(DefinitionError, match="no name of its own"):
        (step >> step).named("seq")


def test_signal_handler_without_explicit_name_is_named_after_signal() -> None:
    from workflows4py.engine import Execution

    step = WIO.handle_signal(sig, input=S).purely(lambda s, r: Ev(r.n)).handle_event(handle)
    flow = step.void_response()
    assert Execution.start(flow, S(0)).progress().name == "Handle Req"


def test_event_type_from_annotations_or_explicit() -> None:
    from workflows4py.definition import RunIO

    by_return = WIO.run_io(effect).handle_event(lambda s, e: s)
    assert isinstance(by_return, RunIO)
    assert by_return.event_types == (Ev,)
    by_handler = WIO.run_io(S, lambda s: Ev(1)).handle_event(handle)
    assert isinstance(by_handler, RunIO)
    assert by_handler.event_types == (Ev,)
    explicit = WIO.run_io(S, lambda s: Ev(1), event=Ev).handle_event(lambda s, e: s)
    assert isinstance(explicit, RunIO)
    assert explicit.event_types == (Ev,)
    with pytest.raises(DefinitionError, match="cannot tell which event"):
        WIO.run_io(S, lambda s: Ev(1)).handle_event(lambda s, e: s)


def test_error_names_are_read_from_result_annotations() -> None:
    from workflows4py.definition import RunIO

    step = WIO.run_io(effect).handle_event_with_error(handle_checked)
    assert isinstance(step, RunIO)
    assert step.errors == ("Boom",)


def test_signal_builder_misuse_is_reported() -> None:
    async def async_handler(s: S, r: Req) -> Ev:
        return Ev(r.n)

    with pytest.raises(DefinitionError, match="purely\\(\\) takes a plain function"):
        WIO.handle_signal(sig, input=S).purely(async_handler)
    answered = SignalDef("answered", request=Req, response=S)
    builder = WIO.handle_signal(answered, input=S).purely(lambda s, r: Ev(r.n)).handle_event(handle)
    with pytest.raises(DefinitionError, match="use produce_response"):
        builder.void_response()  # type: ignore[misc]
    with pytest.raises(DefinitionError, match="expects a SignalDef"):
        WIO.handle_signal("sig")  # type: ignore[call-overload]


@pytest.mark.parametrize("bad", ["", " spaced", "x" * 201, "-leading", None])
def test_signal_ids_must_be_explicit_and_stable(bad: object) -> None:
    with pytest.raises(DefinitionError, match="signal id"):
        SignalDef(bad, request=Req)  # type: ignore[call-overload]


def test_signal_defs_compare_by_id() -> None:
    assert SignalDef("a", request=Req) == SignalDef("a", request=Req)
    assert len({SignalDef("a", request=Req), SignalDef("a", request=Req)}) == 1
    assert repr(sig) == "SignalDef('sig', request=Req, response=None)"


def test_workflow_declaration_is_validated() -> None:
    with pytest.raises(DefinitionError, match="must be a WIO"):

        class NotWio(Workflow[S, Ev]):
            definition = 42  # type: ignore[assignment]

    other = SignalDef("sig", request=S)
    with pytest.raises(DefinitionError, match="share the id 'sig'"):

        class Clash(Workflow[S, Ev]):
            a = WIO.handle_signal(sig, input=S).purely(lambda s, r: Ev(1)).handle_event(handle)
            b = WIO.handle_signal(other, input=S).purely(lambda s, r: Ev(1)).handle_event(handle)
            definition = a.void_response() >> b.void_response()


def test_events_must_belong_to_the_workflow() -> None:
    def other_effect(s: S) -> OtherEv:
        return OtherEv(1)

    class Stray(Workflow[S, Ev]):
        stray_step = WIO.run_io(other_effect).handle_event(lambda s, e: s)
        definition = stray_step

    with pytest.raises(DefinitionError, match="step 'Stray Step' records OtherEv"):
        Stray.codecs()


def test_workflow_lists_its_signals() -> None:
    class Flow(Workflow[S, Ev]):
        definition = (
            WIO.handle_signal(sig, input=S).purely(lambda s, r: Ev(1)).handle_event(handle)
        ).void_response()

    assert Flow.signals() == (sig,)
    assert Flow.name == "Flow"


def test_a_named_copy_does_not_rename_the_original() -> None:
    class Flow(Workflow[S, Ev]):
        a = WIO.run_io(effect).handle_event(handle)
        b = a.named("Custom")
        definition = a >> b

    assert Flow.a.display_name == "A"
    assert Flow.b.display_name == "Custom"
