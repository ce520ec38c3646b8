"""The web UI in real headless Chromium against the real app over SQLite.

The server (``serve_ui``) holds the pull-request example's instances of ``SEEDED``; each
test uses instances of its own, so their order does not matter.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from test_web_ui_server import serve_ui
from web_ui_common import browser, call_api, open_instance, page

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = ["browser", "page"]  # the fixtures, imported so that pytest finds them here

NODE_LABELS = ("Create PR", "Run Pipeline", "Process Review", "Merge PR", "Close PR")


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_ui(Path(tmp_path_factory.mktemp("web-ui")) / "ui.db") as served:
        yield served


def _instance(url: str, instance_id: str) -> Any:
    return call_api(url, f"workflows/PullRequest/instances/{instance_id}")


def _open_instance(page: Page, url: str, instance_id: str, query: str = "") -> None:
    open_instance(page, url, "PullRequest", instance_id, query)


def test_the_workflow_list_draws_each_definition(page: Page, url: str) -> None:
    page.goto(url)
    diagram = page.locator("[data-workflow=PullRequest] .diagram")
    diagram.locator("svg").wait_for()
    text = diagram.locator("svg").text_content() or ""
    for label in NODE_LABELS:
        assert label in text
    assert page.evaluate("window.mermaid.mermaidAPI.getConfig().securityLevel") == "strict"
    width = diagram.locator("svg").bounding_box()
    page.get_by_role("button", name="Zoom in").click()
    zoomed = diagram.locator("svg").bounding_box()
    assert width is not None
    assert zoomed is not None
    assert zoomed["width"] == pytest.approx(width["width"] * 1.25, rel=0.02)
    live = page.get_by_role("link", name="Open in Mermaid Live ↗")
    assert (live.get_attribute("href") or "").startswith("https://mermaid.live/")
    page.get_by_role("tab", name="BPMN").click()
    diagram.locator(".djs-container svg").wait_for()
    drawn = diagram.locator(".djs-container").text_content() or ""
    for label in NODE_LABELS:
        assert label in drawn


def test_the_instance_list_filters_and_opens_an_instance(page: Page, url: str) -> None:
    page.goto(f"{url}instances")
    page.locator("tr[data-instance=pr-merged]").wait_for()
    assert page.locator("tbody tr[data-instance]").count() == len(
        call_api(url, "instances")["items"]
    )
    page.locator("select[name=status]").select_option("finished")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**/instances?status=finished")
    page.locator("tr[data-instance=pr-merged]").wait_for()
    shown = set(
        page.locator("tbody tr[data-instance]").evaluate_all(
            "rs => rs.map(r => r.dataset.instance)"
        )
    )
    finished = {row["id"] for row in call_api(url, "instances?status=finished")["items"]}
    assert shown == finished
    assert "pr-new" not in shown
    page.reload()  # the filter is in the URL
    page.locator("tr[data-instance=pr-merged]").wait_for()
    assert page.locator("select[name=status]").input_value() == "finished"
    page.locator("#find-instance input").fill("pr-rejected")  # the header's box opens one by id
    page.keyboard.press("Enter")
    page.wait_for_url("**/instances/PullRequest/pr-rejected")
    page.go_back()
    page.locator("tr[data-instance=pr-merged] a").click()
    page.wait_for_url("**/instances/PullRequest/pr-merged")
    page.locator("h1", has_text="pr-merged").wait_for()
    page.locator("#progress-diagram svg").wait_for()
    # a count cut short says so, and the next page stays reachable
    page.goto(f"{url}instances?limit=1&count_limit=1")
    page.locator(".page-head", has_text="1+ found").wait_for()
    assert page.locator(".pager", has_text="page 1 of 1+").count() == 1
    page.get_by_role("link", name="Next \u203a").click()
    page.wait_for_url("**/instances?limit=1&count_limit=1&offset=1")
    page.locator("tbody tr[data-instance]").first.wait_for()  # the page renders after its URL
    assert page.locator("tbody tr[data-instance]").count() == 1


def test_a_signal_sent_through_the_generated_form_updates_the_page(page: Page, url: str) -> None:
    _open_instance(page, url, "pr-new")
    page.evaluate("window.notReloaded = true")
    before = page.locator("#progress-diagram").inner_html()
    page.locator("button[data-signal=create-pr]").click()
    dialog = page.locator("dialog.signal-dialog")
    dialog.locator("input[name=commit]").fill("abc123")
    dialog.get_by_role("button", name="Send").click()
    dialog.locator(".signal-response").wait_for()
    dialog.get_by_role("button", name="Close").click()
    page.locator("#state", has_text="abc123").wait_for()
    page.wait_for_function(
        "before => document.querySelector('#progress-diagram').innerHTML !== before", arg=before
    )
    assert page.evaluate("window.notReloaded") is True
    assert page.locator("button[data-signal=review-pr]").is_visible()
    assert _instance(url, "pr-new")["state"]["state"]["commit"] == "abc123"


def test_an_invalid_payload_shows_the_validation_errors(page: Page, url: str) -> None:
    length = _instance(url, "pr-invalid")["journal_length"]
    _open_instance(page, url, "pr-invalid")
    page.locator("button[data-signal=review-pr]").click()
    dialog = page.locator("dialog.signal-dialog")
    dialog.get_by_label("Edit as raw JSON").check()
    dialog.locator("textarea.raw-json").fill('{"approve": "perhaps"}')
    dialog.get_by_role("button", name="Send").click()
    errors = dialog.locator(".error-list")
    errors.wait_for()
    assert "approve" in (errors.text_content() or "")
    dialog.get_by_label("Edit as raw JSON").uncheck()
    assert dialog.locator(".field.invalid .field-error").is_visible()
    assert _instance(url, "pr-invalid")["journal_length"] == length


def test_the_history_slider_shows_an_earlier_state(page: Page, url: str) -> None:
    _open_instance(page, url, "pr-merged")
    page.locator("#state .state-type", has_text="Merged").wait_for()
    latest = page.locator("#progress-diagram").inner_html()
    slider = page.locator("#history-slider")
    slider.focus()
    page.keyboard.press("Home")
    page.keyboard.press("ArrowRight")
    page.wait_for_url("**/instances/PullRequest/pr-merged?at=1")
    page.locator("#history-position", has_text="after event 1 of").wait_for()
    page.locator("#state .state-type", has_text="Empty").wait_for()
    page.wait_for_function(
        "latest => document.querySelector('#progress-diagram').innerHTML !== latest", arg=latest
    )
    page.locator("h1").click()  # the arrow keys step through the history anywhere on the page
    page.keyboard.press("ArrowRight")
    page.wait_for_url("**/instances/PullRequest/pr-merged?at=2")
    page.keyboard.press("ArrowLeft")
    page.wait_for_url("**/instances/PullRequest/pr-merged?at=1")
    page.goto(f"{url}instances/PullRequest/pr-merged?at=2")  # a deep link to that moment
    page.locator("#history-position", has_text="after event 2 of").wait_for()
    assert page.locator("#journal tr.current").get_attribute("data-sequence") == "2"
    expected = call_api(url, "workflows/PullRequest/instances/pr-merged/history/2")["state"]["type"]
    page.locator("#state .state-type", has_text=expected).wait_for()


def test_terminate_asks_for_confirmation(page: Page, url: str) -> None:
    _open_instance(page, url, "pr-doomed")
    page.locator("#action-terminate").click()
    page.locator("dialog").get_by_role("button", name="Cancel").click()
    assert _instance(url, "pr-doomed")["status"] != "terminated"
    page.locator("#action-terminate").click()
    dialog = page.locator("dialog")
    dialog.get_by_label("Reason").fill("abandoned")
    dialog.get_by_role("button", name="Terminate").click()
    page.locator(".instance-head .badge", has_text="terminated").wait_for()
    assert _instance(url, "pr-doomed")["status"] == "terminated"


def test_resume_asks_for_confirmation_and_fork_opens_the_new_instance(page: Page, url: str) -> None:
    _open_instance(page, url, "pr-rejected")
    page.locator("#action-resume").click()
    page.locator("dialog", has_text="Resume pr-rejected?").wait_for()
    page.locator("dialog").get_by_role("button", name="Cancel").click()
    assert page.locator("dialog").count() == 0
    page.locator("#history-slider").focus()
    page.keyboard.press("Home")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.wait_for_url("**?at=2")
    page.locator("#action-fork").click()
    dialog = page.locator("dialog")
    assert dialog.get_by_label("After event").input_value() == "2"
    dialog.get_by_label("New instance id").fill("pr-rejected-again")
    dialog.get_by_role("button", name="Fork").click()
    page.wait_for_url("**/instances/PullRequest/pr-rejected-again")
    page.locator("h1", has_text="pr-rejected-again").wait_for()
    page.locator(".facts", has_text="pr-rejected after event 2").wait_for()
    assert _instance(url, "pr-rejected-again")["origin"]["after_sequence"] == 2


def test_the_ui_follows_the_dark_colour_scheme(browser: Browser, url: str) -> None:
    backgrounds = []
    for scheme in ("light", "dark"):
        page = browser.new_page(color_scheme=scheme)
        page.goto(url)
        page.locator("[data-workflow] .diagram svg").wait_for()
        backgrounds.append(page.evaluate("getComputedStyle(document.body).backgroundColor"))
        page.close()
    light, dark = backgrounds
    assert light != dark
    assert sum(map(int, dark[4:-1].split(","))) < sum(map(int, light[4:-1].split(",")))


RICH_SCHEMA = {
    "type": "object",
    "required": ["name", "count"],
    "properties": {
        "name": {"type": "string", "title": "Name"},
        "count": {"type": "integer"},
        "ratio": {"type": "number"},
        "urgent": {"type": "boolean"},
        "colour": {"$ref": "#/$defs/Colour"},
        "owner": {
            "type": "object",
            "properties": {"email": {"type": "string"}, "age": {"type": "integer"}},
        },
        "labels": {"type": "array", "items": {"type": "string"}},
        "extra": {"oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "object"}]},
    },
    "$defs": {"Colour": {"enum": ["red", "green"], "type": "string"}},
}

FILL_THE_FORM = """async (schema) => {
  const {schemaForm} = await import(new URL('static/js/schemaform.js', document.baseURI));
  const form = schemaForm(schema);
  document.body.append(form.element);
  const set = (name, value) => { form.element.querySelector(`[name=${name}]`).value = value; };
  set('name', 'Ada'); set('count', '3'); set('ratio', '0.5'); set('email', 'a@b.c');
  form.element.querySelector('[name=urgent]').checked = true;
  const colour = form.element.querySelector('select[name=colour]');
  colour.value = [...colour.options].find((o) => o.textContent === 'green').value;
  const add = [...form.element.querySelectorAll('button')].find((b) => b.textContent === '+ Add');
  add.click(); add.click();
  const items = form.element.querySelectorAll('.array-row input');
  items[0].value = 'x'; items[1].value = 'y';
  set('extra', '{"any": [1]}');
  const kinds = {
    fieldsets: form.element.querySelectorAll('fieldset').length,
    numbers: form.element.querySelectorAll('input[type=number]').length,
    textareas: form.element.querySelectorAll('textarea[name=extra]').length,
  };
  form.showErrors([{loc: ['body', 'owner', 'age'], msg: 'too young'}]);
  const error = form.element.querySelector('.invalid .field-error').textContent;
  return {value: form.value(), kinds, error};
}"""


def test_the_signal_form_covers_the_schema_kinds(page: Page, url: str) -> None:
    page.goto(url)
    page.locator("[data-workflow]").first.wait_for()
    result = page.evaluate(FILL_THE_FORM, RICH_SCHEMA)
    assert result["value"] == {
        "name": "Ada",
        "count": 3,
        "ratio": 0.5,
        "urgent": True,
        "colour": "green",
        "owner": {"email": "a@b.c"},
        "labels": ["x", "y"],
        "extra": {"any": [1]},
    }
    assert result["kinds"] == {"fieldsets": 1, "numbers": 3, "textareas": 1}
    assert result["error"] == "too young"
