"""Draws the BPMN diagrams that docs/bpmn.md shows, with bpmn-js in headless Chromium.

Run it from the repository's root after changing the BPMN renderer::

    .venv/bin/python scripts/bpmn_images.py

It needs the test tools (``node_modules`` from ``npm ci`` and Debian's chromium; see
docs/contributing.md). For each diagram it writes ``docs/images/<name>.png`` and the BPMN
file it was drawn from, ``docs/images/<name>.bpmn`` (to open in bpmn.io or Camunda Modeler);
tests/test_render_bpmn.py checks that those files are what the renderer draws today.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

# run as a script: the examples and the test tools importable
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from diagram_tools import close_browser, screenshot_bpmn

from workflows4py import render
from workflows4py.examples import pull_request as pr
from workflows4py.examples import withdrawal as wd
from workflows4py.runtime import Runtime

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
SCALE = 1.5
"""Device pixels per diagram unit: sharp on a high-density screen, files of a few hundred KB."""
MARGIN = 60
"""Room around the diagram, so that bpmn-js's logo in the lower right corner covers nothing."""


async def _rejected_pull_request() -> str:
    """The BPMN of a pull request whose review was rejected, its progress coloured."""
    async with Runtime.memory([pr.PullRequest]) as runtime:
        request = pr.CreateRequest("a1b2c3")
        instance = await runtime.start(
            pr.PullRequest, "pr-1", initial_state=pr.Empty(), signal=(pr.create_pr_signal, request)
        )
        await instance.deliver_signal(pr.review_pr_signal, pr.ReviewRequest(approve=False))
        return render.bpmn(await instance.get_progress(), name="Pull Request")


def diagrams() -> dict[str, str]:
    """The BPMN file of each image, by the image's name."""
    return {
        "bpmn-pull-request": render.bpmn(pr.PullRequest),
        "bpmn-withdrawal": render.bpmn(wd.withdrawal_workflow(wd.FakeWithdrawalService())),
        "bpmn-pull-request-rejected": asyncio.run(_rejected_pull_request()),
    }


def main() -> int:
    """Writes every image and its BPMN file; 0 when done."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    try:
        for name, xml in diagrams().items():
            (IMAGES / f"{name}.bpmn").write_text(xml, encoding="utf-8")
            report = screenshot_bpmn(xml, IMAGES / f"{name}.png", scale=SCALE, margin=MARGIN)
            print(f"docs/images/{name}.png: {len(report.flow_nodes)} flow nodes")
    finally:
        close_browser()
    return 0


if __name__ == "__main__":
    sys.exit(main())
