"""The diagram checkers of diagram_tools.py work, and fail when they should.

A valid hand-written BPMN file (tests/js/sample.bpmn) passes every check and renders in
bpmn-js; variants of it, each broken in one way, are caught by the check meant for it.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import diagram_tools
import pytest
from diagram_tools import (
    BpmnReport,
    DiagramToolError,
    DiagramToolMissing,
    check_bpmn,
    check_mermaid,
    render_bpmn,
    screenshot_bpmn,
)

SAMPLE = (diagram_tools.JS / "sample.bpmn").read_text(encoding="utf-8")
FLOW_NODES = ["Start", "Charge", "Paid", "Ship", "Notify", "Merge", "End"]
SEQUENCE_FLOWS = [
    "Flow_start_charge",
    "Flow_charge_paid",
    "Flow_yes",
    "Flow_no",
    "Flow_ship_merge",
    "Flow_notify_merge",
    "Flow_merge_end",
]


def edit(xml: str, pattern: str, replacement: str = "") -> str:
    """``xml`` with the one match of ``pattern`` (a regex) replaced."""
    edited, count = re.subn(pattern, replacement, xml, flags=re.DOTALL)
    assert count == 1, f"{pattern!r} matched {count} times in the sample"
    return edited


BROKEN = {
    "missing shape": edit(SAMPLE, r'<bpmndi:BPMNShape id="Ship_di".*?</bpmndi:BPMNShape>'),
    "missing edge": edit(SAMPLE, r'<bpmndi:BPMNEdge id="Flow_no_di".*?</bpmndi:BPMNEdge>'),
    "overlap": edit(SAMPLE, r'x="500" y="240"', 'x="540" y="150"'),
    "missing condition": edit(SAMPLE, r"<bpmn:conditionExpression .*?</bpmn:conditionExpression>"),
    "unnamed task": edit(SAMPLE, r' name="Charge card"'),
    "unknown element": edit(SAMPLE, r'(?=<bpmn:task id="Ship")', "<bpmn:bogus />"),
    "not xml": SAMPLE[: len(SAMPLE) // 2],
}


@pytest.fixture(scope="module")
def broken() -> dict[str, BpmnReport]:
    """The reports of every broken variant, from one batch."""
    return dict(zip(BROKEN, check_bpmn(list(BROKEN.values())), strict=True))


def test_mermaid_parses_flowcharts_and_reports_the_parsers_error() -> None:
    valid = [
        "flowchart LR\n A-->B",
        # quoted labels go through mermaid's sanitizer, which needs the DOM shim (jsdom)
        'flowchart LR\n S(["✉ Review"]) --> C{{"approved?"}}\n C -. "Not Found" .-> E((" "))',
        "flowchart TD\n subgraph loop [Retry]\n  A --> B\n end\n B -->|again| A",
    ]
    broken = ["flowchart LR\n A[unclosed --> B", "flowchart LR\n A --> B -->", "not a diagram"]
    errors = check_mermaid([*valid, *broken])
    assert errors[: len(valid)] == [None] * len(valid)
    assert all(error is not None for error in errors[len(valid) :]), errors
    assert "Parse error" in str(errors[len(valid)])
    assert "No diagram type detected" in str(errors[-1])
    assert check_mermaid([]) == []


def test_the_sample_passes_every_bpmn_check() -> None:
    [report] = check_bpmn([SAMPLE])
    assert report.ok, report.summary()
    assert report.summary() == "no problems"


def test_a_flow_node_without_a_shape_is_reported(broken: dict[str, BpmnReport]) -> None:
    report = broken["missing shape"]
    assert report.missing_shapes == ("Ship",)
    assert {(p.rule, p.element_id) for p in report.lint} == {("no-bpmndi", "Ship")}
    assert "no BPMNShape for Ship" in report.problems()


def test_a_sequence_flow_without_an_edge_is_reported(broken: dict[str, BpmnReport]) -> None:
    report = broken["missing edge"]
    assert report.missing_edges == ("Flow_no",)
    assert report.missing_shapes == ()
    assert "no BPMNEdge for Flow_no" in report.problems()


def test_overlapping_shapes_are_reported(broken: dict[str, BpmnReport]) -> None:
    report = broken["overlap"]
    assert report.overlaps == (("Ship", "Notify"),)
    assert {p.rule for p in report.lint} == {"no-overlapping-elements"}
    assert "shapes overlap: Ship and Notify" in report.problems()


@pytest.mark.parametrize(
    ("variant", "rule", "element_id"),
    [
        ("missing condition", "conditional-flows", "Flow_yes"),
        ("unnamed task", "label-required", "Charge"),
    ],
)
def test_the_recommended_lint_rules_apply(
    broken: dict[str, BpmnReport], variant: str, rule: str, element_id: str
) -> None:
    report = broken[variant]
    assert [(p.rule, p.element_id, p.category) for p in report.lint] == [
        (rule, element_id, "error")
    ]
    assert (report.warnings, report.missing_shapes, report.overlaps) == ((), (), ())
    assert not report.ok


def test_moddle_warnings_and_unreadable_files_are_reported(
    broken: dict[str, BpmnReport],
) -> None:
    [warning] = broken["unknown element"].warnings
    assert "unparsable content <bpmn:bogus>" in warning
    assert not broken["unknown element"].ok
    unreadable = broken["not xml"]
    assert unreadable.error is not None
    assert unreadable.problems()[0].startswith("not readable: ")


def test_the_lint_config_is_the_recommended_one_with_justified_exceptions() -> None:
    config = json.loads(diagram_tools.LINT_CONFIG.read_text(encoding="utf-8"))
    assert config["extends"] == "bpmnlint:recommended"
    for rule, value in config.get("rules", {}).items():
        if value == "off" or (isinstance(value, list) and value[0] == "off"):
            assert isinstance(value, list), f"{rule} is turned off without a reason"
            assert str(value[1]).strip(), f"{rule} is turned off without a reason"


def test_a_rule_turned_off_needs_a_reason(tmp_path: Path) -> None:
    config = tmp_path / ".bpmnlintrc"
    rules: dict[str, object] = {"label-required": "off"}
    config.write_text(json.dumps({"extends": "bpmnlint:recommended", "rules": rules}))
    with pytest.raises(DiagramToolError, match="label-required is turned off without a reason"):
        check_bpmn([SAMPLE], lint_config=config)
    rules["label-required"] = ["off", "the test's reason"]
    config.write_text(json.dumps({"extends": "bpmnlint:recommended", "rules": rules}))
    [report] = check_bpmn([BROKEN["unnamed task"]], lint_config=config)
    assert report.ok, report.summary()


def test_bpmn_js_draws_one_element_per_flow_node() -> None:
    report = render_bpmn(SAMPLE)
    assert (report.error, report.warnings) == (None, ())
    assert sorted(report.flow_nodes) == sorted(FLOW_NODES)
    assert sorted(report.sequence_flows) == sorted(SEQUENCE_FLOWS)
    assert report.svg.startswith("<?xml")
    assert 'data-element-id="Charge"' in report.svg


def test_bpmn_js_shows_what_it_could_not_draw() -> None:
    missing = render_bpmn(BROKEN["missing shape"])
    assert sorted(missing.flow_nodes) == sorted(set(FLOW_NODES) - {"Ship"})
    assert "unparsable content <bpmn:bogus>" in render_bpmn(BROKEN["unknown element"]).warnings[0]
    assert render_bpmn(BROKEN["not xml"]).error is not None


async def test_rendering_works_from_an_async_test() -> None:
    # Playwright's sync API refuses to run in an event loop: the browser has its own thread.
    assert len(render_bpmn(SAMPLE).flow_nodes) == len(FLOW_NODES)


def test_a_screenshot_is_a_png_of_the_whole_diagram(tmp_path: Path) -> None:
    path = tmp_path / "order.png"
    report = screenshot_bpmn(SAMPLE, path, scale=1, margin=20)
    assert len(report.flow_nodes) == len(FLOW_NODES)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    # the diagram spans x 132..810 (start label to end event) and y 80..320, plus margins
    assert (width, height) == (718, 280)
    with pytest.raises(ValueError, match="bpmn-js could not import"):
        screenshot_bpmn(BROKEN["not xml"], tmp_path / "broken.png")


def test_a_missing_tool_is_an_error_never_a_skip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DiagramToolMissing, match="node is not on PATH"):
        check_mermaid(["flowchart LR\n A-->B"])
    monkeypatch.setattr(diagram_tools, "NODE_MODULES", tmp_path)
    with pytest.raises(DiagramToolMissing, match="bpmn-moddle, bpmnlint are not installed"):
        check_bpmn([SAMPLE])
    monkeypatch.undo()
    monkeypatch.setattr(diagram_tools, "CHROMIUM", tmp_path / "chromium")
    with pytest.raises(DiagramToolMissing, match="chromium is missing"):
        render_bpmn(SAMPLE)
