"""The JSON codec: encode and decode times of the codec on pydantic against the codec of
release 0.1.0 (hand-written, kept as ``benchmarks/_old_codec.py``), on the same values, in
the same run.

Each case builds both codecs over the same type, checks that they write the very same text,
then times ``encode`` (value to ``(tag, JSON text)``) and ``decode`` (back), old and new
interleaved, repeated; the ratio new / old is taken per repetition. Target: the new codec
at least as fast (ratio <= 1.00) on the nested tagged union (the case the issue measured:
an event whose field is a union of classes, written with "$type"), for both directions.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import _old_codec as old
from _common import (
    ROOT,
    Stat,
    Stepped,
    base_parser,
    command_line,
    facts_table,
    machine_facts,
    markdown_table,
    ratio_stat,
    text_table,
    write_section,
)

from workflows4py import JsonCodec

sys.path.insert(0, str(ROOT))  # the examples, run as benchmarks/codec.py from the repository
from workflows4py.examples import checks
from workflows4py.examples import withdrawal as wd

TARGET_CASE = "nested tagged union"


@dataclass(frozen=True)
class Person:
    name: str


@dataclass(frozen=True)
class Company:
    vat_number: str
    contact: Person | None


@dataclass(frozen=True)
class Line:
    sku: str
    quantity: int
    price: Decimal


@dataclass(frozen=True)
class InvoicePaid:
    number: str
    payer: Person | Company


@dataclass(frozen=True)
class InvoiceIssued:
    number: str
    payer: Person | Company
    lines: tuple[Line, ...]
    due: datetime


InvoiceEvent = InvoiceIssued | InvoicePaid


def cases() -> list[tuple[str, Any, Any]]:
    """(name, type, value): the same value for both codecs."""
    ann = Person("ann")
    checking = wd.Checking(
        "tx-1",
        Decimal(100),
        "DE89370400440532013000",
        Decimal(11),
        checks.Pending(
            checks.ChecksInput(checks.CheckData("tx-1", Decimal(100), "DE89"), ("fraud",)),
            {"fraud": checks.CheckResult.PENDING},
        ),
    )
    lines = tuple(Line(f"sku-{i}", i, Decimal(f"{i}.50")) for i in range(5))
    return [
        (TARGET_CASE, InvoiceEvent, InvoicePaid("INV-1", Company("FR1", ann))),
        ("flat event (the benchmark loop's)", Stepped, Stepped(42)),
        (
            "nested union, datetime, decimals",
            InvoiceEvent,
            InvoiceIssued("INV-2", Company("FR1", ann), lines, datetime(2024, 5, 1, tzinfo=UTC)),
        ),
        ("withdrawal state (embedded checks)", wd.WithdrawalState, checking),
    ]


def per_op(fn: Callable[[], Any], n: int) -> float:
    """Microseconds per call of ``fn``, over ``n`` calls."""
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def measure(tp: Any, value: Any, n: int, reps: int) -> dict[str, tuple[list[float], list[float]]]:
    """Per direction, the old and the new times (µs/op) of each repetition."""
    before, after = old.JsonCodec(tp), JsonCodec(tp)
    tag, text = before.encode(value)
    if after.encode(value) != (tag, text):
        raise SystemExit(f"the codecs disagree on {value!r}: {after.encode(value)} != {text}")
    if after.decode(tag, text) != value or before.decode(tag, text) != value:
        raise SystemExit(f"a codec does not read back {value!r}")
    runs = {
        "encode": (lambda: before.encode(value), lambda: after.encode(value)),
        "decode": (lambda: before.decode(tag, text), lambda: after.decode(tag, text)),
    }
    times: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in runs}
    for run_old, run_new in runs.values():  # warm up
        per_op(run_old, max(n // 10, 100))
        per_op(run_new, max(n // 10, 100))
    for rep in range(reps):
        for direction, (run_old, run_new) in runs.items():
            olds, news = times[direction]
            if rep % 2:  # alternate which goes first
                news.append(per_op(run_new, n))
                olds.append(per_op(run_old, n))
            else:
                olds.append(per_op(run_old, n))
                news.append(per_op(run_new, n))
    return times


def main() -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 9)")
    args = parser.parse_args()
    reps = args.reps or (2 if args.quick else 9)
    n = 500 if args.quick else 20_000
    header = ["value", "direction", "old µs/op", "new µs/op", "new / old"]
    rows: list[list[str]] = []
    verdicts: list[str] = []
    for name, tp, value in cases():
        for direction, (olds, news) in measure(tp, value, n, reps).items():
            ratio = ratio_stat(news, olds)
            rows.append(
                [
                    name,
                    direction,
                    Stat(tuple(olds)).fmt(2),
                    Stat(tuple(news)).fmt(2),
                    ratio.fmt(2),
                ]
            )
            print(text_table(header, rows[-1:]).splitlines()[-1], flush=True)
            if name == TARGET_CASE:
                met = "**met**" if ratio.median <= 1.0 else "**not met**"
                verdicts.append(f"{direction} {ratio.median:.2f} (target <= 1.00): {met}")
    print()
    print(text_table(header, rows))
    print(f"\n{TARGET_CASE}: " + "; ".join(v.replace("**", "") for v in verdicts))
    if args.no_write:
        return
    body = "\n\n".join(
        [
            "## Codec: the codec on pydantic against the codec of 0.1.0",
            f"Command: {command_line()}. {n:,} calls per timing, {reps} repetitions, old and "
            "new interleaved; both codecs write the same text for every value (checked).",
            markdown_table(header, rows),
            f"Target, on the {TARGET_CASE}: " + "; ".join(verdicts) + ".",
            facts_table(machine_facts(None, None)),
        ]
    )
    write_section("codec", body)


if __name__ == "__main__":
    main()
