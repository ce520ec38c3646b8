"""Checks generated diagrams with the real tools: Mermaid's parser, bpmn.io's BPMN tools, bpmn-js.

- ``check_mermaid(texts)``: one ``None`` per text that Mermaid's own parser (npm ``mermaid``
  under node) accepts, else the parser's message.
- ``check_bpmn(xmls)``: one ``BpmnReport`` per BPMN file: bpmn-moddle's import warnings,
  bpmnlint's problems under ``tests/js/.bpmnlintrc`` (the recommended rules; a rule turned
  off there carries its reason), flow nodes without a shape, flows without an edge, and
  overlapping shapes.
- ``render_bpmn(xml)``: imports the file into bpmn-js in headless Chromium and reports the
  flow nodes and sequence flows it drew and its import warnings (``RenderReport``).
- ``screenshot_bpmn(xml, path)``: the same, and saves the whole diagram as a PNG.

The JavaScript tools are pinned in ``package-lock.json`` and ``./scripts/test`` installs them
(``npm ci``) along with Debian's chromium. A missing tool raises ``DiagramToolMissing``
saying what to install: these checks never skip. The node checkers take a batch (one node
process per call, so pass every text of a test at once); the browser is started on first
use, once per process, in a thread of its own (so the functions also work from async
tests), and closed at exit.
"""

from __future__ import annotations

import atexit
import json
import queue
import shutil
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parent.parent
JS = ROOT / "tests" / "js"
NODE_MODULES = ROOT / "node_modules"
LINT_CONFIG = JS / ".bpmnlintrc"
VIEWER = JS / "bpmn_viewer.html"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking")
NODE_TIMEOUT = 120.0
BROWSER_TIMEOUT_MS = 30_000

T = TypeVar("T")


class DiagramToolError(RuntimeError):
    """A diagram tool failed to run (not: found a problem in a diagram)."""


class DiagramToolMissing(DiagramToolError):
    """node, a pinned JavaScript package, Python playwright or chromium is not installed."""


@dataclass(frozen=True)
class LintProblem:
    """One bpmnlint report: the rule, the element it is about, ``error`` or ``warn``."""

    rule: str
    element_id: str | None
    category: str
    message: str

    def __str__(self) -> str:
        return f"bpmnlint {self.rule} ({self.category}) at {self.element_id}: {self.message}"


@dataclass(frozen=True)
class BpmnReport:
    """What ``check_bpmn`` found in one BPMN file; ``ok`` when nothing."""

    error: str | None
    warnings: tuple[str, ...]
    lint: tuple[LintProblem, ...]
    missing_shapes: tuple[str, ...]
    missing_edges: tuple[str, ...]
    overlaps: tuple[tuple[str, str], ...]

    @property
    def ok(self) -> bool:
        return not self.problems()

    def problems(self) -> list[str]:
        """One line per problem found."""
        return [
            *([f"not readable: {self.error}"] if self.error is not None else []),
            *(f"bpmn-moddle warning: {warning}" for warning in self.warnings),
            *(str(problem) for problem in self.lint),
            *(f"no BPMNShape for {element_id}" for element_id in self.missing_shapes),
            *(f"no BPMNEdge for {element_id}" for element_id in self.missing_edges),
            *(f"shapes overlap: {a} and {b}" for a, b in self.overlaps),
        ]

    def summary(self) -> str:
        """The problems, one a line, for an assertion message."""
        return "\n".join(self.problems()) or "no problems"


@dataclass(frozen=True)
class RenderReport:
    """What bpmn-js drew: ids of flow nodes and sequence flows, import warnings, the SVG."""

    error: str | None
    warnings: tuple[str, ...]
    flow_nodes: tuple[str, ...]
    sequence_flows: tuple[str, ...]
    svg: str


def _require_packages(*packages: str) -> None:
    missing = [name for name in packages if not (NODE_MODULES / name / "package.json").is_file()]
    if missing:
        raise DiagramToolMissing(
            f"the pinned JavaScript tools {', '.join(missing)} are not installed in "
            f"{NODE_MODULES}: run ./scripts/test (it runs npm ci) or npm ci"
        )


def _run_node(script: str, inputs: list[str], *args: str) -> list[dict[str, Any]]:
    """Runs ``tests/js/<script>`` with ``inputs`` as JSON on stdin; its JSON answer."""
    node = shutil.which("node")
    if node is None:
        raise DiagramToolMissing(
            "node is not on PATH: the diagram checks run the pinned JavaScript tools under "
            "Node.js 20; install Node.js (then ./scripts/test installs the tools)"
        )
    done = subprocess.run(
        [node, str(JS / script), *args],
        input=json.dumps(inputs),
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=ROOT,
        timeout=NODE_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise DiagramToolError(f"{script} failed (exit {done.returncode}):\n{done.stderr}")
    answer: list[dict[str, Any]] = json.loads(done.stdout)
    if len(answer) != len(inputs):
        raise DiagramToolError(f"{script} answered {len(answer)} times for {len(inputs)} inputs")
    return answer


def check_mermaid(texts: list[str]) -> list[str | None]:
    """Parses each text with Mermaid's parser: ``None`` if it parses, else the error."""
    _require_packages("mermaid", "jsdom")
    if not texts:
        return []
    answer = _run_node("check_mermaid.mjs", texts)
    return [None if item["ok"] else str(item["error"]) for item in answer]


def check_bpmn(xmls: list[str], *, lint_config: Path = LINT_CONFIG) -> list[BpmnReport]:
    """Checks each BPMN file with bpmn-moddle, bpmnlint and for complete, unoverlapping DI."""
    _require_packages("bpmn-moddle", "bpmnlint")
    if not xmls:
        return []
    return [
        BpmnReport(
            error=item["error"],
            warnings=tuple(item["warnings"]),
            lint=tuple(
                LintProblem(p["rule"], p["id"], p["category"], p["message"]) for p in item["lint"]
            ),
            missing_shapes=tuple(item["missing_shapes"]),
            missing_edges=tuple(item["missing_edges"]),
            overlaps=tuple((a, b) for a, b in item["overlaps"]),
        )
        for item in _run_node("check_bpmn.mjs", xmls, str(lint_config))
    ]


class _Chromium:
    """Playwright and one chromium, owned by a daemon thread that runs every call.

    Playwright's sync API refuses to run inside an asyncio loop and its objects belong to
    the thread that created them: one thread of its own lets sync and async tests share the
    browser.
    """

    def __init__(self) -> None:
        self._calls: queue.Queue[tuple[Callable[[_Chromium], Any], Future[Any]] | None]
        self._calls = queue.Queue()
        self._browser: Browser | None = None
        self._viewer: tuple[Page, list[str]] | None = None
        started: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name="diagram-tools-chromium", daemon=True
        )
        self._thread.start()
        started.result()

    def _run(self, started: Future[None]) -> None:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as error:
            started.set_exception(
                DiagramToolMissing(
                    f"Python playwright is not installed ({error}): pip install -e '.[dev]'"
                )
            )
            return
        try:
            playwright = sync_playwright().start()
        except Exception as error:
            started.set_exception(DiagramToolError(f"playwright did not start: {error}"))
            return
        try:
            self._browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=list(CHROMIUM_ARGS), headless=True
            )
        except Exception as error:
            playwright.stop()
            started.set_exception(DiagramToolError(f"chromium did not start: {error}"))
            return
        started.set_result(None)
        while (call := self._calls.get()) is not None:
            function, future = call
            try:
                future.set_result(function(self))
            except BaseException as error:
                future.set_exception(error)
        self._browser.close()
        playwright.stop()

    @property
    def browser(self) -> Browser:
        """The browser (in calls only)."""
        assert self._browser is not None
        return self._browser

    def viewer(self) -> tuple[Page, list[str]]:
        """The page ``render_bpmn`` reuses (in calls only), with its list of page errors."""
        if self._viewer is None:
            page = self.browser.new_page()
            self._viewer = (page, _open_viewer(page))
        return self._viewer

    def call(self, function: Callable[[_Chromium], T]) -> T:
        """Runs ``function(self)`` in the browser's thread; its result."""
        if not self._thread.is_alive():
            raise DiagramToolError("the browser thread has stopped")
        future: Future[T] = Future()
        self._calls.put((function, future))
        try:
            return future.result(timeout=BROWSER_TIMEOUT_MS / 1000 * 4)
        except TimeoutError:
            raise DiagramToolError("chromium did not answer in time") from None

    def close(self) -> None:
        self._calls.put(None)
        self._thread.join(timeout=30)


_chromium: _Chromium | None = None
_chromium_lock = threading.Lock()


def _browser() -> _Chromium:
    global _chromium  # noqa: PLW0603 - one browser per test process, started on first use
    _require_packages("bpmn-js")
    if not CHROMIUM.exists():
        raise DiagramToolMissing(
            f"{CHROMIUM} is missing: the BPMN rendering checks run Debian's chromium; "
            "install it (apt-get install chromium; ./scripts/test does it when run as root)"
        )
    with _chromium_lock:
        if _chromium is None:
            _chromium = _Chromium()
            atexit.register(close_browser)
        return _chromium


def close_browser() -> None:
    """Closes the shared browser (done at exit; the next render starts a new one)."""
    global _chromium  # noqa: PLW0603 - see _browser
    with _chromium_lock:
        if _chromium is not None:
            _chromium.close()
            _chromium = None


def _open_viewer(page: Page) -> list[str]:
    """Loads bpmn_viewer.html into ``page``; the list its uncaught errors will go to."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    page.set_default_timeout(BROWSER_TIMEOUT_MS)
    page.goto(VIEWER.as_uri())
    page.wait_for_function("typeof window.renderBpmn === 'function'")
    return errors


def _render(page: Page, errors: list[str], xml: str) -> RenderReport:
    errors.clear()
    item: dict[str, Any] = page.evaluate("xml => window.renderBpmn(xml)", xml)
    return RenderReport(
        error=item["error"],
        warnings=(*item["warnings"], *errors),
        flow_nodes=tuple(item["flowNodes"]),
        sequence_flows=tuple(item["sequenceFlows"]),
        svg=item["svg"],
    )


def render_bpmn(xml: str) -> RenderReport:
    """Imports ``xml`` into bpmn-js in headless Chromium; what it drew."""
    return _browser().call(lambda chromium: _render(*chromium.viewer(), xml))


def screenshot_bpmn(
    xml: str, path: Path | str, *, scale: float = 2.0, margin: int = 20
) -> RenderReport:
    """Renders ``xml`` like ``render_bpmn`` and saves the whole diagram as a PNG at ``path``.

    The image shows the diagram at ``scale`` device pixels per diagram unit, with ``margin``
    units of white around it. Raises ``ValueError`` when bpmn-js cannot import the file.
    """

    def shoot(chromium: _Chromium) -> RenderReport:
        context = chromium.browser.new_context(device_scale_factor=scale)
        try:
            page = context.new_page()
            report = _render(page, _open_viewer(page), xml)
            if report.error is not None:
                raise ValueError(f"bpmn-js could not import the diagram: {report.error}")
            page.set_viewport_size(page.evaluate("margin => window.diagramSize(margin)", margin))
            page.evaluate("margin => window.showWhole(margin)", margin)
            page.screenshot(path=str(path))
            return report
        finally:
            context.close()

    return _browser().call(shoot)
