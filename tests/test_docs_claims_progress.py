"""docs/progress.md's claims that its samples do not show: the table of node kinds is the
model's, the frontier's kinds, the text tree's roles and marks, and the JSON document's
keys. (Replay at any point, the statuses and the JSON invariants are checked in
tests/test_progress_history.py, the renderings in tests/test_progress_golden.py.)"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from test_progress_golden import DRAFTS, KINDS

import workflows4py
from workflows4py import StepProgress, progress_of, render

DOC = (Path(__file__).resolve().parents[1] / "docs" / "progress.md").read_text()
ROW = re.compile(r"^\| `(\w+Progress)` \| `(\w+)` \|(.*?)\|(.*?)\|$", re.M)
ROWS = ROW.findall(DOC)
CASES = [p for build in KINDS.values() for p in build().values()]


def test_the_table_names_every_node_class_once() -> None:
    exported = {
        name
        for name in workflows4py.__all__
        if name.endswith("Progress") and name != "StepProgress"
    }
    assert sorted(name for name, *_ in ROWS) == sorted(exported)
    assert len(ROWS) == 20


@pytest.mark.parametrize(("name", "kind", "fields", "children"), ROWS, ids=[r[0] for r in ROWS])
def test_each_row_is_the_class_it_names(name: str, kind: str, fields: str, children: str) -> None:
    cls: type[StepProgress] = getattr(workflows4py, name)
    assert issubclass(cls, StepProgress)
    assert cls.kind == kind
    assert dataclasses.is_dataclass(cls)
    assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    own = {f.name for f in dataclasses.fields(cls)} | {
        n for n in vars(cls) if isinstance(vars(cls)[n], property)
    }
    named = set(re.findall(r"`(\w+)`", fields))
    assert named <= own, f"{name}: {sorted(named - own)} are not fields"
    for child in re.findall(r"`(\w+)`", children):
        assert child in own


def test_the_kinds_are_distinct() -> None:
    kinds = [kind for _, kind, *_ in ROWS]
    assert len(set(kinds)) == len(kinds)


def test_the_frontier_holds_the_kinds_the_page_lists() -> None:
    found = {node.kind for p in CASES for node in p.frontier()}
    assert found == {"signal", "timer", "run_io", "checkpoint", "recovery", "end"}


def test_a_definition_has_nothing_waiting_and_a_draft_the_same_kinds() -> None:
    for definition in DRAFTS.values():
        assert {p.status for p in progress_of(definition).walk()} == {"pending"}
    kinds = {p.kind for d in DRAFTS.values() for p in progress_of(d).walk()}
    assert kinds <= {kind for _, kind, *_ in ROWS}


def test_the_text_tree_labels_the_roles_the_page_lists() -> None:
    text = "\n".join(render.text(p) for p in CASES)
    text += "\n".join(render.text(d) for d in DRAFTS.values())
    for role in ("on error:", "interrupted by:", "then:", "on restart:", "each:"):
        assert f"- {role} [" in text


def test_a_leaf_and_the_root_show_their_output_and_a_composition_its_index_only() -> None:
    done = KINDS["handle_error"]()["ok"]
    lines = render.text(done).splitlines()
    assert lines[0].endswith("✓ #3 St(value=2, log=('Prepare', 'Charge'))")
    assert lines[1].endswith("[sequence]  ✓ #2")
    assert lines[2].endswith("✓ #0 St(value=1, log=('Prepare',))")


def test_the_engine_never_sets_a_parked_mark() -> None:
    assert all(node.parked is None for p in CASES for node in p.walk())


def test_an_interruption_without_a_rest_has_no_handler() -> None:
    timed_out = KINDS["interruptible"]()["timed out"]
    assert isinstance(timed_out, workflows4py.InterruptibleProgress)
    assert timed_out.handler is None
    assert timed_out.interrupted


def test_the_document_keys_are_those_of_the_table() -> None:
    doc = CASES[0].to_json()
    table = DOC.split("## The JSON document", 1)[1]
    keys = re.findall(r"^\| `(\w+)` \|", table, re.M)
    assert keys == list(doc)
    node = set(doc["root"])
    assert {"kind", "name", "status", "index", "result", "description", "draft"} <= node
    assert list(doc["root"])[-1] == "children"
