"""docs/architecture.md's claims: its layer table is the one tests/test_imports.py enforces,
every package it names is public, and the names it places in a package are there."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from test_imports import BELOW
from test_public_api import PUBLIC_MODULES

import workflows4py

DOC = (Path(__file__).resolve().parents[1] / "docs" / "architecture.md").read_text()
ROW = re.compile(r"^\| `workflows4py\.(\w+)` \| (.*?) \| (.*?) \|$", re.M)


def _table() -> dict[str, set[str]]:
    return {
        package: {w.strip("` ") for w in allowed.split(",")}
        for package, _, allowed in ROW.findall(DOC)
    }


def test_the_layer_table_is_the_enforced_one() -> None:
    table = _table()
    assert set(table) == set(BELOW) - {"_errors"}
    for package, allowed in table.items():
        assert allowed == BELOW[package], package


def test_every_package_of_the_table_is_public() -> None:
    layers = {m for m in PUBLIC_MODULES if m.count(".") == 1}  # contrib.otel: inside contrib
    assert {f"workflows4py.{p}" for p in _table()} == layers


@pytest.mark.parametrize(
    ("package", "names"),
    [
        ("engine", ["Execution", "RunEffect", "Record", "StepProgress", "draft"]),
        ("stores", ["Store", "InstanceKey", "InstanceRecord", "SearchQuery", "Page"]),
        ("stores", ["MemoryStore", "SqliteStore", "PostgresStore"]),
        ("stores", ["JournalStore", "SnapshotStore", "RegistryStore", "LeaseStore", "WakeupStore"]),
        ("definition", ["WIO", "Workflow", "SignalDef", "draft_refusal", "is_draft"]),
        ("definition", ["ensure_runnable", "Ok", "Err"]),
        ("serialization", ["JsonCodec", "type_tag"]),
        ("runtime", ["InMemoryRuntime", "DurableRuntime", "Worker", "current_step"]),
        ("testing", ["TestClock", "StoreConformance"]),
        ("render", ["text", "mermaid", "mermaid_live_url", "bpmn"]),
    ],
)
def test_names_are_where_the_page_puts_them(package: str, names: list[str]) -> None:
    module = importlib.import_module(f"workflows4py.{package}")
    for name in names:
        assert name in module.__all__, f"{name} not in workflows4py.{package}"


def test_engine_internals_and_store_records_left_the_top_level() -> None:
    for name in ["Execution", "RunEffect", "Record", "InstanceKey", "SearchQuery", "Page"]:
        assert name not in workflows4py.__all__
        assert not hasattr(workflows4py, name)


def test_a_timer_event_carries_its_stable_tag() -> None:
    from workflows4py.serialization import tag_of

    assert tag_of(workflows4py.TimerStarted) == "workflows4py.TimerStarted"


def test_the_stores_import_nothing_but_the_exception_tree() -> None:
    assert BELOW["stores"] == {"_errors"}
    assert BELOW["serialization"] == {"_errors"}
