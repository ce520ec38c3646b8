"""A process killed right after a group commit, before it told any caller of the batch that
its event committed: nothing is lost and no event is duplicated, on SQLite and PostgreSQL.

``tests/group_commit_app.py`` starts 40 instances of 5 steps at once (their appends commit in
batches) and dies after its third batch of appends; a second process resumes them all.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg import fresh_schema, require_postgres

from workflows4py.stores import InstanceKey, PostgresStore, SqliteStore

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "tests" / "group_commit_app.py"
INSTANCES = 40
STEPS = 5


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")]),
        "GC_BACKEND": request.param,
        "GC_EFFECTS": str(tmp_path / "effects.log"),
        "GC_BATCH": str(tmp_path / "batch.txt"),
        "GC_INSTANCES": str(INSTANCES),
    }
    if request.param == "sqlite":
        env["GC_DB"] = str(tmp_path / "gc.db")
        yield env
        return
    dsn = require_postgres()
    with fresh_schema(dsn) as schema:
        env["GC_DB"], env["GC_SCHEMA"] = dsn, schema
        yield env


def _run(env: dict[str, str], phase: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(APP), phase],
        env={**env, **extra},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _effects(env: dict[str, str]) -> list[tuple[str, int, str]]:
    """The effects log: (instance, step, pid) per execution of a step's side effect."""
    lines = Path(env["GC_EFFECTS"]).read_text().splitlines()
    return [(iid, int(n), pid) for iid, n, pid in (line.split() for line in lines)]


async def _journals(env: dict[str, str]) -> dict[str, list[tuple[int, str, str]]]:
    store: SqliteStore | PostgresStore
    if env["GC_BACKEND"] == "sqlite":
        store = SqliteStore(env["GC_DB"])
    else:
        store = PostgresStore(env["GC_DB"], schema=env["GC_SCHEMA"])
    try:
        journals = {}
        for n in range(INSTANCES):
            iid = f"i{n:03d}"
            entries = await store.read(InstanceKey("gc-counting", iid))
            journals[iid] = [(e.sequence, e.type, e.data) for e in entries]
        return journals
    finally:
        await store.close()


async def test_a_crash_between_a_batch_commit_and_its_acknowledgements_loses_nothing(
    backend: dict[str, str],
) -> None:
    crashed = _run(backend, "run", GC_CRASH_AT="3")
    assert crashed.returncode == 17, crashed.stderr
    batch = Path(backend["GC_BATCH"]).read_text().split()
    assert len(batch) >= 2  # a real batch: several instances' events in one commit
    dead_pid = {pid for _, _, pid in _effects(backend)}.pop()  # every effect so far is its

    before = await _journals(backend)
    recovered = _run(backend, "recover")
    assert recovered.returncode == 0, recovered.stderr
    after = await _journals(backend)

    for iid, journal in after.items():
        # the start entry, then one event per step, each exactly once, in order
        assert [seq for seq, _, _ in journal] == list(range(1, STEPS + 2)), iid
        assert [data for _, _, data in journal[1:]] == [f'{{"n":{n}}}' for n in range(1, 6)]
        # what had committed before the crash is still there, unchanged
        assert journal[: len(before[iid])] == before[iid], iid
    effects = _effects(backend)
    ran = Counter((iid, n) for iid, n, _ in effects)
    for iid in batch:
        committed = len(before[iid]) - 1  # the steps recorded before the crash
        assert committed >= 1
        # the step whose event was in the dying batch is not run again on recovery ...
        assert ran[(iid, committed)] == 1, (iid, committed)
        # ... and its next step had not started in the dead process: it was not yet told
        assert not any((i, n, pid) == (iid, committed + 1, dead_pid) for i, n, pid in effects), iid
    # every step ran (at least once: one caught mid-effect by the crash runs again)
    assert all(ran[(iid, n)] >= 1 for iid in after for n in range(1, STEPS + 1))
