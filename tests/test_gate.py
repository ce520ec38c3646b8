"""The deploy gate from the user's side: instances written by one definition, checked
against each kind of change (a step added, a step removed, a timer changed or renamed, an
event class renamed with and without its tag) on SQLite and PostgreSQL, read-only; the
journals of tests/fixtures/gate; the ``check`` command."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from lifecycle_common import T0
from pg import fresh_schema, require_postgres
from psycopg import sql

from workflows4py import (
    WIO,
    CheckReport,
    Runtime,
    SignalDef,
    Workflow,
    check_journal_files,
    check_journals,
    type_tag,
)
from workflows4py.runtime import InMemoryRuntime
from workflows4py.stores import MemoryStore
from workflows4py.testing import TestClock

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "gate"


@dataclass(frozen=True)
class Parcel:
    checked: bool = False
    approved_by: str = ""
    noted: str = ""
    carrier: str = ""


@dataclass(frozen=True)
class Checked:
    ok: bool


@dataclass(frozen=True)
class Noted:
    text: str


@dataclass(frozen=True)
class Approved:
    officer: str


@dataclass(frozen=True)
class ApprovalGiven:  # Approved renamed, without keeping its tag
    officer: str


@type_tag("Approved")
@dataclass(frozen=True)
class ApprovalGranted:  # Approved renamed, keeping its tag
    officer: str


@dataclass(frozen=True)
class Shipped:
    carrier: str


@dataclass(frozen=True)
class Approve:
    officer: str


approve = SignalDef("gate.approve", request=Approve)


def check_parcel(p: Parcel) -> Checked:
    return Checked(True)


def note_parcel(p: Parcel) -> Noted:
    return Noted("fragile")


def ship_parcel(p: Parcel) -> Shipped:
    return Shipped("post")


checking = WIO.run_io(check_parcel).handle_event(lambda p, e: replace(p, checked=e.ok))
noting = WIO.run_io(note_parcel).handle_event(lambda p, e: replace(p, noted=e.text))
shipping = WIO.run_io(ship_parcel).handle_event(lambda p, e: replace(p, carrier=e.carrier))


def approval(event: Callable[[str], Any], event_type: type[Any]) -> WIO[Any, Any, Any]:
    return (
        WIO.handle_signal(approve, input=Parcel)
        .purely(lambda p, r: event(r.officer), event=event_type)
        .handle_event(lambda p, e: replace(p, approved_by=e.officer))
        .void_response()
    )


def cooling(days: int = 1, name: str = "Cooling Off") -> WIO[Any, Any, Any]:
    return WIO.timer(timedelta(days=days), input=Parcel, name=name)


Events = Checked | Noted | Approved | Shipped


class Parcels(Workflow[Parcel, Events]):
    """The definition the stored instances were written by."""

    id = "gate.parcels"
    initial_state = Parcel()
    check = checking
    approve = approval(Approved, Approved)
    definition = check >> approve >> cooling() >> shipping.named("Ship")


class StepAdded(Workflow[Parcel, Events]):
    id = "gate.parcels"
    initial_state = Parcel()
    definition = (
        checking.named("Check")
        >> noting.named("Note")
        >> approval(Approved, Approved).named("Approve")
        >> cooling()
        >> shipping.named("Ship")
    )


class StepRemoved(Workflow[Parcel, Events]):
    id = "gate.parcels"
    initial_state = Parcel()
    definition = checking.named("Check") >> cooling() >> shipping.named("Ship")


class TimerLonger(Workflow[Parcel, Events]):
    id = "gate.parcels"
    initial_state = Parcel()
    definition = (
        checking.named("Check")
        >> approval(Approved, Approved).named("Approve")
        >> cooling(days=3)
        >> shipping.named("Ship")
    )


class TimerRenamed(Workflow[Parcel, Events]):
    id = "gate.parcels"
    initial_state = Parcel()
    definition = (
        checking.named("Check")
        >> approval(Approved, Approved).named("Approve")
        >> cooling(name="Waiting Period")
        >> shipping.named("Ship")
    )


class EventRenamed(Workflow[Parcel, Checked | Noted | ApprovalGiven | Shipped]):
    id = "gate.parcels"
    initial_state = Parcel()
    definition = (
        checking.named("Check")
        >> approval(ApprovalGiven, ApprovalGiven).named("Approve")
        >> cooling()
        >> shipping.named("Ship")
    )


class EventRenamedTagged(Workflow[Parcel, Checked | Noted | ApprovalGranted | Shipped]):
    id = "gate.parcels"
    initial_state = Parcel()
    definition = (
        checking.named("Check")
        >> approval(ApprovalGranted, ApprovalGranted).named("Approve")
        >> cooling()
        >> shipping.named("Ship")
    )


@dataclass(frozen=True)
class Vetted:  # the checkpoint event of "check and approve"
    officer: str


def to_vetted(p: Parcel, out: Parcel) -> Vetted:
    return Vetted(out.approved_by)


def from_vetted(p: Parcel, event: Vetted) -> Parcel:
    return replace(p, checked=True, approved_by=event.officer)


class Vetting(Workflow[Parcel, Events | Vetted]):
    """Check and approve behind a checkpoint, so that they can be replaced later."""

    id = "gate.vetting"
    initial_state = Parcel()
    vetting = (
        checking.named("Check") >> approval(Approved, Approved).named("Approve")
    ).checkpointed(to_vetted, from_vetted)
    definition = vetting >> cooling() >> shipping.named("Ship")


class VettingRecovered(Workflow[Parcel, Events | Vetted]):
    id = "gate.vetting"
    initial_state = Parcel()
    vetting = WIO.recover(from_vetted, discards=(Checked, Approved))
    definition = vetting >> cooling() >> shipping.named("Ship")


async def test_an_instance_left_inside_replaced_steps_is_reported_stuck() -> None:
    clock = TestClock(T0)
    deployed = Runtime.memory([Vetting], clock=clock)
    await deployed.start(Vetting, "inside")  # checked, awaiting approval: no checkpoint yet
    past = await deployed.start(Vetting, "past")
    await past.deliver_signal(approve, Approve("olga"))  # vetted, waiting on the timer
    assert isinstance(deployed.store, MemoryStore)
    report = await check_journals(Runtime(deployed.store.share(), [VettingRecovered], clock=clock))
    [stuck] = report.broken
    assert (stuck.instance_id, stuck.sequence, stuck.event_type) == ("inside", 2, "Checked")
    assert "nothing can move it on" in stuck.error
    assert "checkpoint event" in stuck.suggestion
    assert report.workflows[0].replayed == 1  # "past"


# (definition, the instances that break: (instance, sequence, event type, steps awaiting),
# a piece of the suggestion)
CHANGES: dict[str, tuple[type[Workflow[Any, Any]], list[tuple[Any, ...]], str]] = {
    "step added": (StepAdded, [("cooling", 3, "Approved", ("Note",))], "pin them"),
    "step removed": (StepRemoved, [("cooling", 3, "Approved", ("Cooling Off",))], "WIO.recover"),
    "timer longer": (TimerLonger, [], ""),
    "timer renamed": (
        TimerRenamed,
        [("cooling", 4, "workflows4py.TimerStarted", ("Waiting Period",))],
        'name="<old name>"',
    ),
    "event renamed": (
        EventRenamed,
        [("cooling", 3, "Approved", ("Approve",))],
        '@type_tag("Approved")',
    ),
    "event renamed, tag kept": (EventRenamedTagged, [], ""),
}


async def write_instances(runtime: Runtime, clock: TestClock) -> None:
    """The stored instances: ``waiting`` awaits approval, ``cooling`` was approved and
    waits for its timer, ``done`` finished (not checked by default)."""
    await runtime.start(Parcels, "waiting")
    done = await runtime.start(Parcels, "done")
    await done.deliver_signal(approve, Approve("olga"))
    clock.advance(timedelta(days=2))
    assert await runtime.run_due_wakeups() == [("gate.parcels", "done")]
    cooling_one = await runtime.start(Parcels, "cooling")
    await cooling_one.deliver_signal(approve, Approve("olga"))


Opener = Callable[[type[Workflow[Any, Any]]], Runtime]


@pytest.fixture(params=["sqlite", "postgres"])
async def database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Opener, Callable[[], str]]]:
    """Opens a runtime of a definition over a database holding the stored instances, and
    fingerprints the database's content."""
    clock = TestClock(T0)
    if request.param == "sqlite":
        path = tmp_path / "gate.db"

        def open_sqlite(workflow: type[Workflow[Any, Any]]) -> Runtime:
            return Runtime.sqlite(path, [workflow], clock=clock)

        async with open_sqlite(Parcels) as first:
            await write_instances(first, clock)

        def sqlite_bytes() -> str:
            return hashlib.sha256(path.read_bytes()).hexdigest()

        yield open_sqlite, sqlite_bytes
        return
    conninfo = require_postgres()
    with fresh_schema(conninfo) as schema:

        def open_postgres(workflow: type[Workflow[Any, Any]]) -> Runtime:
            return Runtime.postgres(conninfo, [workflow], schema=schema, clock=clock)

        async with open_postgres(Parcels) as first:
            await write_instances(first, clock)

        def postgres_rows() -> str:
            return _schema_digest(conninfo, schema)

        yield open_postgres, postgres_rows


def _schema_digest(conninfo: str, schema: str) -> str:
    """Every row of every table of ``schema``, digested."""
    digest = hashlib.sha256()
    with psycopg.connect(conninfo) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
            "ORDER BY table_name",
            (schema,),
        ).fetchall()
        for (table,) in tables:
            rows = conn.execute(
                sql.SQL("SELECT t::text FROM {}.{} t ORDER BY 1").format(
                    sql.Identifier(schema), sql.Identifier(table)
                )
            ).fetchall()
            digest.update(f"{table}:{len(rows)}:{rows!r}".encode())
    return digest.hexdigest()


def _broken(report: CheckReport) -> list[tuple[Any, ...]]:
    return [(b.instance_id, b.sequence, b.event_type, b.steps) for b in report.broken]


@pytest.mark.parametrize("change", list(CHANGES))
async def test_the_gate_finds_the_instances_a_change_breaks(
    database: tuple[Opener, Callable[[], str]], change: str
) -> None:
    open_runtime, fingerprint = database
    definition, breaks, hint = CHANGES[change]
    before = fingerprint()
    async with open_runtime(definition) as runtime:
        report = await check_journals(runtime)
    assert fingerprint() == before  # read-only: not a byte, not a row changed
    [only] = report.workflows
    assert (only.workflow, only.checked, only.replayed) == ("gate.parcels", 2, 2 - len(breaks))
    assert _broken(report) == breaks
    assert report.ok is (not breaks)
    for found in report.broken:
        assert hint in found.suggestion
        assert found.workflow == "gate.parcels"
        assert f"#{found.sequence}" in found.error


async def test_statuses_and_sample_choose_the_instances(
    database: tuple[Opener, Callable[[], str]],
) -> None:
    open_runtime, _ = database
    async with open_runtime(TimerRenamed) as runtime:
        everything = await check_journals(runtime, statuses=["awaiting", "finished"])
        sampled = await check_journals(runtime, sample=1)
        seen: list[tuple[int, int]] = []
        await check_journals(runtime, progress=lambda done, total: seen.append((done, total)))
    assert everything.workflows[0].checked == 3
    assert sorted(b.instance_id for b in everything.broken) == ["cooling", "done"]
    assert sampled.workflows[0].checked == 1
    assert [b.instance_id for b in sampled.broken] == ["cooling"]  # the latest updated
    assert seen == [(1, 2), (2, 2)]


async def test_a_report_is_json() -> None:
    clock = TestClock(T0)
    runtime = Runtime.memory([Parcels], clock=clock)
    await write_instances(runtime, clock)
    assert isinstance(runtime.store, MemoryStore)
    report = await check_journals(Runtime(runtime.store.share(), [TimerRenamed]))
    document = report.to_json()
    assert document["ok"] is False
    assert document["workflows"][0]["replayed"] == 1
    assert document["workflows"][0]["broken"][0]["instance"] == "cooling"
    assert json.loads(json.dumps(document)) == document


def test_every_journal_in_the_fixture_folder_still_replays() -> None:
    assert check_journal_files(Parcels, FIXTURES).ok
    assert check_journal_files(TimerLonger, FIXTURES).ok
    renamed = check_journal_files(TimerRenamed, FIXTURES)
    assert renamed.workflows[0].checked == 2
    assert [b.instance_id for b in renamed.broken] == ["cooling"]


def test_a_folder_without_journals_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no journal"):
        check_journal_files(Parcels, tmp_path)
    (tmp_path / "bad.jsonl").write_text('{"workflow": "other"}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:1"):
        check_journal_files(Parcels, tmp_path)


async def test_the_fixture_journals_are_what_export_writes() -> None:
    runtime = InMemoryRuntime(Parcels, clock=TestClock(T0))
    await runtime.create_instance("waiting")
    cooling_one = await runtime.create_instance("cooling")
    await cooling_one.deliver_signal(approve, Approve("olga"))
    for name in ("waiting", "cooling"):
        exported = await runtime.export_journal(name)
        if os.environ.get("WORKFLOWS4PY_WRITE_FIXTURES") == "1":
            (FIXTURES / f"{name}.jsonl").write_text(exported)
        assert (FIXTURES / f"{name}.jsonl").read_text() == exported


# -- the command ---------------------------------------------------------------------------

CLI_DB = "WORKFLOWS4PY_GATE_DB"
CLI_DEFINITION = "WORKFLOWS4PY_GATE_DEFINITION"


def cli_runtime() -> Runtime:
    """The app the ``check`` tests give the command: the database and the definition (a
    key of CHANGES, or ``unchanged``) named by the environment."""
    name = os.environ[CLI_DEFINITION]
    definition = Parcels if name == "unchanged" else CHANGES[name][0]
    return Runtime.sqlite(os.environ[CLI_DB], [definition])


@pytest.fixture
async def cli_db(tmp_path: Path) -> Path:
    path = tmp_path / "cli.db"
    clock = TestClock(T0)
    async with Runtime.sqlite(path, [Parcels], clock=clock) as runtime:
        await write_instances(runtime, clock)
    return path


# the command object, run as the integrator's ``workflows4py check`` runs it
RUN_CHECK = (
    "import sys; from workflows4py.cli._check import check; "
    "sys.exit(check.main(sys.argv[1:], prog_name='workflows4py check', standalone_mode=False))"
)


def _invoke(db: Path, definition: str, *args: str) -> tuple[int, str]:
    env = os.environ | {
        CLI_DB: str(db),
        CLI_DEFINITION: definition,
        "PYTHONPATH": str(Path(__file__).resolve().parent),
    }
    done = subprocess.run(
        [sys.executable, "-c", RUN_CHECK, "test_gate:cli_runtime", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def test_the_command_passes_when_everything_replays(cli_db: Path) -> None:
    code, output = _invoke(cli_db, "unchanged")
    assert code == 0, output
    assert "gate.parcels" in output
    assert "2 of 2 replay" in output


def test_the_command_fails_and_names_what_breaks(cli_db: Path) -> None:
    code, output = _invoke(cli_db, "timer renamed")
    assert code == 1, output
    assert "1 of 2 replay" in output
    assert "cooling" in output
    assert "workflows4py.TimerStarted" in output
    assert "Waiting Period" in output


def test_the_command_writes_json(cli_db: Path) -> None:
    options = ("--json", "--status", "awaiting", "--sample", "5")
    code, output = _invoke(cli_db, "event renamed", *options)
    assert code == 1, output
    document = json.loads(output)
    assert document["ok"] is False
    [broken] = document["workflows"][0]["broken"]
    assert (broken["instance"], broken["sequence"], broken["event_type"]) == (
        "cooling",
        3,
        "Approved",
    )


def test_the_command_never_writes(cli_db: Path) -> None:
    before = cli_db.read_bytes()
    assert _invoke(cli_db, "step removed")[0] == 1
    assert cli_db.read_bytes() == before


def test_the_command_draws_a_progress_bar_on_a_terminal(cli_db: Path) -> None:
    import pty

    leader, follower = pty.openpty()
    env = os.environ | {
        CLI_DB: str(cli_db),
        CLI_DEFINITION: "unchanged",
        "PYTHONPATH": str(Path(__file__).resolve().parent),
        "COLUMNS": "100",
    }
    try:
        done = subprocess.run(
            [sys.executable, "-c", RUN_CHECK, "test_gate:cli_runtime"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=120,
            check=False,
        )
        os.close(follower)
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(leader)
    assert done.returncode == 0
    assert b"replaying journals" in drawn
    assert b"replaying journals" not in done.stdout  # the report alone on stdout
