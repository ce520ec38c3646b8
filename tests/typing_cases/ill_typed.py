"""Compositions mypy --strict must reject. Each line marked `# expect-error` must be reported."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Never

from workflows4py import WIO, Caught, SignalDef


@dataclass(frozen=True)
class Draft:
    text: str


@dataclass(frozen=True)
class Submitted:
    text: str


@dataclass(frozen=True)
class Published:
    url: str


@dataclass(frozen=True)
class Approve:
    ok: bool


approve = SignalDef("approve", request=Approve, response=str)
void_signal = SignalDef("poke", request=Approve)

submit: WIO[Draft, Never, Submitted] = WIO.pure(Draft, lambda d: Submitted(d.text))
publish: WIO[Published, Never, Published] = WIO.pure(Published, lambda p: p)
submit_or_fail: WIO[Draft, str, Submitted] = WIO.pure(Draft, lambda d: Submitted(d.text))

# the output of `submit` (Submitted) is not the input `publish` takes (Published)
wrong_order = submit >> publish  # expect-error

# a declared response type cannot be voided
no_response = WIO.handle_signal(approve, input=Draft).purely(lambda d, req: Submitted(d.text)).handle_event(lambda d, e: e).void_response()  # expect-error

# a response of the wrong type for a signal without response
wrong_response = WIO.handle_signal(void_signal, input=Draft).purely(lambda d, req: Submitted(d.text)).handle_event(lambda d, e: e).produce_response(lambda d, e, req: 42)  # expect-error

# a step whose output type is not the declared one
mapped: WIO[Draft, Never, Submitted] = submit.map(lambda s: s.text)  # expect-error

# an error handler whose input does not take the step's error type
handler: WIO[Caught[object, int], Never, Submitted] = WIO.pure(lambda c: Submitted(str(c.error)))
handled = submit_or_fail.handle_error_with(handler)  # expect-error


# without input=, the handler's annotation is the input type: a Draft handler after a
# step ending in Submitted does not compose
def on_draft(d: Draft, req: Approve) -> Submitted:
    return Submitted(d.text)


untyped_wrong = submit >> WIO.handle_signal(approve).purely(on_draft).handle_event(lambda d, e: e).produce_response(lambda d, e, req: "ok")  # expect-error
