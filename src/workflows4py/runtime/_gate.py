"""The deploy gate: replay stored journals against today's definitions, read-only, and say
which instances would no longer fit, where, and what to do about it."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from workflows4py._errors import DecodeError, JournalError, UnexpectedEvent, WorkflowError
from workflows4py.definition import Workflow
from workflows4py.stores import InstanceKey, JournalEntry, RegistryStatus, SearchQuery

from ._app import Runtime
from ._durable import DurableRuntime
from ._runtime import STARTED

__all__ = [
    "CheckReport",
    "JournalBreak",
    "WorkflowCheck",
    "check_journal_files",
    "check_journals",
]

DEFAULT_STATUSES: tuple[RegistryStatus, ...] = ("running", "awaiting", "parked")
_TIMER_TAGS = ("workflows4py.TimerStarted", "workflows4py.TimerReleased")
_PAGE = 200


@dataclass(frozen=True, kw_only=True)
class JournalBreak:
    """One journal that no longer replays, and where it stopped matching."""

    workflow: str
    instance_id: str
    sequence: int | None
    """The journal position of the first entry that does not fit (None: not an entry's
    fault, such as a missing initial state)."""
    event_type: str | None
    """That entry's type tag."""
    steps: tuple[str, ...]
    """The step path where it stopped matching: the steps awaiting at that point."""
    error: str
    """The error replaying it raised."""
    suggestion: str
    """What to do about it."""

    def to_json(self) -> dict[str, Any]:
        """The break as a JSON object (the ``check --json`` output's items)."""
        return {
            "workflow": self.workflow,
            "instance": self.instance_id,
            "sequence": self.sequence,
            "event_type": self.event_type,
            "steps": list(self.steps),
            "error": self.error,
            "suggestion": self.suggestion,
        }


@dataclass(frozen=True, kw_only=True)
class WorkflowCheck:
    """The journals of one workflow that were checked: how many, how many replay, and the
    ones that do not."""

    workflow: str
    checked: int
    broken: tuple[JournalBreak, ...] = ()
    versions: Mapping[int, int] = field(default_factory=dict)
    """How many of the checked instances are on each version of the workflow (the one
    their journal's first entry records, 1 for one recording none), by version."""

    @property
    def replayed(self) -> int:
        """How many of the checked journals replay."""
        return self.checked - len(self.broken)


@dataclass(frozen=True)
class CheckReport:
    """What :func:`check_journals` found, per workflow."""

    workflows: tuple[WorkflowCheck, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when every checked journal replays."""
        return not self.broken

    @property
    def broken(self) -> list[JournalBreak]:
        """Every journal that does not replay, workflow by workflow."""
        return [b for w in self.workflows for b in w.broken]

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON object: ``{"ok", "workflows": [{"workflow", "checked",
        "replayed", "versions": {version: instances}, "broken": [...]}]}`` (the versions'
        numbers as strings, JSON's keys)."""
        return {
            "ok": self.ok,
            "workflows": [
                {
                    "workflow": w.workflow,
                    "checked": w.checked,
                    "replayed": w.replayed,
                    "versions": {str(v): n for v, n in sorted(w.versions.items())},
                    "broken": [b.to_json() for b in w.broken],
                }
                for w in self.workflows
            ],
        }


Checked = Runtime | DurableRuntime[Any, Any]


async def check_journals(
    runtime_or_runtimes: Checked | Iterable[Checked],
    *,
    statuses: Sequence[RegistryStatus] = DEFAULT_STATUSES,
    sample: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CheckReport:
    """Replay the stored journals of the instances in ``statuses`` (default: running,
    awaiting and parked) through the definitions the runtimes have today.

    Read-only: journals are read and replayed in memory, nothing is written (no registry
    row, no snapshot, no lease). ``sample``: check at most that many instances per workflow,
    the most recently updated. ``progress(done, total)`` is called after each instance.
    """
    hosts = _hosts(runtime_or_runtimes)
    if sample is not None and sample < 1:
        raise ValueError(f"sample must be at least 1, got {sample}")
    chosen: list[tuple[DurableRuntime[Any, Any], list[InstanceKey]]] = []
    for host in hosts:
        chosen.append((host, await _keys(host, statuses, sample)))
    total = sum(len(keys) for _, keys in chosen)
    done = 0
    found: list[WorkflowCheck] = []
    for host, keys in chosen:
        tally = _Tally(host)
        for key in keys:
            tally.check(key.instance_id, await host.store.read(key))
            done += 1
            if progress is not None:
                progress(done, total)
        found.append(tally.result())
    return CheckReport(tuple(found))


class _Tally:
    """The journals of one workflow checked so far: the breaks, and the instances per
    version."""

    def __init__(self, host: DurableRuntime[Any, Any]) -> None:
        self.host = host
        self.broken: list[JournalBreak] = []
        self.versions: Counter[int] = Counter()
        self.checked = 0

    def check(self, instance_id: str, entries: list[JournalEntry]) -> None:
        self.checked += 1
        self.versions[_version(entries)] += 1
        problem = _replay_problem(self.host, instance_id, entries)
        if problem is not None:
            self.broken.append(problem)

    def result(self) -> WorkflowCheck:
        return WorkflowCheck(
            workflow=self.host.workflow.id,
            checked=self.checked,
            broken=tuple(self.broken),
            versions=dict(sorted(self.versions.items())),
        )


def _version(entries: Sequence[JournalEntry]) -> int:
    """The version a journal's start entry records (1: none, or no start entry); -1 stands
    for a start entry whose version is not a number (the journal breaks)."""
    if not entries or entries[0].type != STARTED or entries[0].sequence != 1:
        return 1
    try:
        body = json.loads(entries[0].data)
    except ValueError:
        return 1  # not JSON: the replay tells
    version = body.get("version", 1) if isinstance(body, dict) else 1
    return version if type(version) is int else -1


def check_journal_files(
    workflow: Checked | type[Workflow[Any, Any]], folder: str | Path
) -> CheckReport:
    """Replay every journal in ``folder`` (``*.jsonl`` files, JSON lines as
    ``export_journal`` and ``workflows4py export`` write them) through ``workflow``'s
    definition: a runtime of it, or the class (for an instance whose journal has no start
    entry, give a runtime with its ``initial_state``).

    Raises ValueError when the folder holds no journal, or a line is not an exported entry
    of this workflow."""
    host = _single_host(workflow)
    files = sorted(Path(folder).glob("*.jsonl"))
    if not files:
        raise ValueError(f"no journal (*.jsonl) in {folder}")
    tally = _Tally(host)
    for path in files:
        tally.check(*_read_export(path, host.workflow.id))
    return CheckReport((tally.result(),))


def _replay_problem(
    host: DurableRuntime[Any, Any], instance_id: str, entries: list[JournalEntry]
) -> JournalBreak | None:
    """Why ``entries`` do not replay through ``host``'s definition, or None if they do (and
    the instance rebuilt can move on: a signal, a timer or an effect ahead of it)."""
    probe = host._new(instance_id)
    try:
        probe.replay(entries)
        probe.settle_initial()
    except UnexpectedEvent as e:
        return _break(host, instance_id, e, (e.sequence, e.event_type, e.steps), _unexpected(e))
    except DecodeError as e:
        tag = _entry_type(entries, e.sequence)
        steps = _probe_steps(probe)
        return _break(host, instance_id, e, (e.sequence, tag, steps), _undecodable(e, tag))
    except JournalError as e:
        tag = _entry_type(entries, e.sequence)
        suggestion = "the journal itself is damaged (not contiguous): restore it from a backup"
        if _version(entries) not in host.workflow.versions():
            suggestion = (
                f"it started on version {_version(entries)}, which the workflow no longer "
                "has: keep that version's definition in previous_versions (see "
                "docs/evolution.md, keeping an old version)"
            )
        return _break(host, instance_id, e, (e.sequence, tag, ()), suggestion)
    except WorkflowError as e:
        suggestion = "give the runtime the initial_state these instances started from"
        return _break(host, instance_id, e, (None, None, ()), suggestion)
    execution = probe.execution
    stuck = (
        execution.status == "awaiting"
        and not execution.expected_signals()
        and execution.wakeup_at() is None
        and execution.next_action(host.clock.now()) is None
    )
    if not stuck:
        return None
    last = entries[-1] if entries else None
    where = (
        None if last is None else last.sequence,
        None if last is None else last.type,
        execution.awaiting_steps(),
    )
    error = WorkflowError(
        f"instance {instance_id!r} replays, but nothing can move it on: it awaits no signal, "
        "no timer and no effect"
    )
    suggestion = (
        "it waits inside steps a recovery replaced, for a checkpoint event that will never "
        "come: keep it on the old definition (a version) until its journal holds the "
        "checkpoint event"
    )
    return _break(host, instance_id, error, where, suggestion)


def _probe_steps(probe: Any) -> tuple[str, ...]:
    """The steps awaiting in a probe that stopped replaying."""
    try:
        return tuple(probe.execution.awaiting_steps())
    except Exception:  # a probe that never started has no frontier
        return ()


def _break(
    host: DurableRuntime[Any, Any],
    instance_id: str,
    error: Exception,
    where: tuple[int | None, str | None, tuple[str, ...]],
    suggestion: str,
) -> JournalBreak:
    """The break of ``instance_id``; ``where``: sequence, event type and awaiting steps."""
    sequence, event_type, steps = where
    return JournalBreak(
        workflow=host.workflow.id,
        instance_id=instance_id,
        sequence=sequence,
        event_type=event_type,
        steps=steps,
        error=str(error),
        suggestion=suggestion,
    )


def _unexpected(error: UnexpectedEvent) -> str:
    if error.event_type in _TIMER_TAGS:
        return (
            "a timer's events no longer match a timer awaiting here: a timer renamed keeps "
            'its old name with WIO.timer(..., name="<old name>"); a timer moved or removed '
            "needs a checkpoint in the old version and WIO.recover in the new, or pin these "
            "instances to the old definition (a version)"
        )
    return (
        f"the steps before event #{error.sequence} changed: a step added before where these "
        "instances are (add it after them, or pin them to the old definition under a "
        "version), or steps removed or reordered (wrap them in checkpointed(...) in the old "
        "version and replace them by WIO.recover(..., discards=...) in the new, or pin "
        "these instances to the old definition)"
    )


def _undecodable(error: DecodeError, tag: str | None) -> str:
    if "unknown type tag" in str(error):
        return (
            f"no event class of the workflow has the tag {tag!r} any more: a renamed class "
            f'keeps it with @type_tag("{tag}"); a removed one stays in the event union '
            "while journals hold it"
        )
    return (
        "an edited event class no longer accepts a stored payload (at "
        f"{error.path}): give new fields defaults, keep old fields (see serialization)"
    )


def _entry_type(entries: Sequence[JournalEntry], sequence: int | None) -> str | None:
    return next((e.type for e in entries if e.sequence == sequence), None)


async def _keys(
    host: DurableRuntime[Any, Any], statuses: Sequence[RegistryStatus], sample: int | None
) -> list[InstanceKey]:
    """The instances of ``host`` to check: at most ``sample``, the most recently updated."""
    keys: list[InstanceKey] = []
    offset = 0
    while sample is None or len(keys) < sample:
        limit = _PAGE if sample is None else min(_PAGE, sample - len(keys))
        query = SearchQuery(
            workflow=host.workflow.id,
            status=list(statuses),
            limit=limit,
            offset=offset,
            descending=True,
        )
        page = await host.store.search(query)
        keys += [r.key for r in page.records]
        keys += [InstanceKey(host.workflow.id, e.instance_id) for e in page.errors if e.instance_id]
        offset += limit
        if offset >= page.total:
            break
    return keys


def _hosts(given: Checked | Iterable[Checked]) -> list[DurableRuntime[Any, Any]]:
    items: Iterable[Checked] = [given] if isinstance(given, Runtime | DurableRuntime) else given
    hosts: list[DurableRuntime[Any, Any]] = []
    for item in items:
        if isinstance(item, Runtime):
            hosts += item.hosts
        elif isinstance(item, DurableRuntime):
            hosts.append(item)
        else:
            raise TypeError(f"check_journals expects runtimes, got {item!r}")
    return hosts


def _single_host(workflow: Checked | type[Workflow[Any, Any]]) -> DurableRuntime[Any, Any]:
    if isinstance(workflow, type) and issubclass(workflow, Workflow):
        from ._inmemory import InMemoryRuntime

        return InMemoryRuntime(workflow)
    hosts = _hosts(workflow)
    if len(hosts) != 1:
        raise ValueError("check_journal_files checks one workflow: give its runtime or its class")
    return hosts[0]


def _read_export(path: Path, workflow: str) -> tuple[str, list[JournalEntry]]:
    """The instance id and the entries of one exported journal."""
    instance_ids: set[str] = set()
    entries: list[JournalEntry] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if row["workflow"] != workflow:
                raise ValueError(f"an entry of workflow {row['workflow']!r}, not {workflow!r}")
            instance_ids.add(str(row["instance_id"]))
            entries.append(
                JournalEntry(
                    int(row["sequence"]),
                    str(row["type"]),
                    json.dumps(row["data"], ensure_ascii=False, separators=(",", ":")),
                    datetime.fromisoformat(row["recorded_at"]),
                )
            )
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}:{number}: not an exported journal entry: {e}") from e
    if len(instance_ids) != 1:
        raise ValueError(f"{path}: expected the journal of one instance, found {len(instance_ids)}")
    return instance_ids.pop(), entries
