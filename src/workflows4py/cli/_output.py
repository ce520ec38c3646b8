"""What the commands print: one JSON document with ``--json``; else rich tables and colours
on a terminal and plain text elsewhere (pipes, files, tests); errors as one line on stderr."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import logging
import sys
import traceback
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from workflows4py._errors import WorkflowError

__all__ = [
    "Output",
    "Refused",
    "debugging",
    "instant",
    "one_line",
    "plain",
    "plain_table",
    "report",
    "run",
    "setup_logging",
]

# the colour of each status on a terminal
_STATUS_STYLE = {
    "running": "cyan",
    "awaiting": "yellow",
    "finished": "green",
    "failed": "red",
    "terminated": "magenta",
    "parked": "bold red",
}
_LABEL_WIDTH = 14


class Refused(Exception):
    """A command refuses its arguments or its outcome; the message is the one line shown."""


def instant(at: datetime | None, timespec: str = "seconds") -> str | None:
    """An instant as ISO 8601 (None stays None)."""
    return None if at is None else at.isoformat(timespec=timespec)


def one_line(error: BaseException) -> str:
    """``Type: message`` of an error, on one line (a Refused: its message only)."""
    text = " ".join(str(error).split())
    if isinstance(error, Refused):
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def debugging() -> bool:
    """Whether the group was given ``--debug`` (tracebacks of errors)."""
    ctx = click.get_current_context(silent=True)
    return ctx is not None and bool(ctx.find_root().params.get("debug"))


def plain(value: Any) -> Any:
    """``value`` as JSON can hold it: dataclasses as objects of their fields, tuples as
    lists, enums as their values, instants as ISO 8601; anything else as its repr."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return repr(value)


def report(command: str, error: BaseException, about: str = "") -> None:
    """The one line on stderr saying why ``command`` failed (after its traceback, with
    ``--debug``)."""
    if debugging():
        traceback.print_exception(error, file=sys.stderr)
    click.echo(f"workflows4py {command}: {about}{one_line(error)}", err=True)


def run(
    command: str,
    work: Callable[[Output], Coroutine[Any, Any, int]],
    *,
    log_level: str,
    as_json: bool,
    about: Callable[[Exception], str] | None = None,
) -> int:
    """Run a command's coroutine, logging at ``log_level``, its output ``--json`` or not.

    An exception is one line on stderr and status 1: one of the library's, a refusal, a
    ValueError of a bad argument, and anything else too (an effect of the application that
    raised, say), whose traceback is logged at DEBUG (and printed with ``--debug``). A
    SystemExit with a message (an APP that does not load) keeps it, after the command's
    name."""
    setup_logging(log_level, as_json=as_json)
    try:
        return asyncio.run(work(Output(as_json)))
    except SystemExit as e:  # a refusal of the app or of an argument: named after the command
        if isinstance(e.code, str):
            raise SystemExit(f"workflows4py {command}: {e.code}") from None
        raise
    except BrokenPipeError:  # the reader went away (``| head``): the command's main ends quietly
        raise
    except Exception as e:
        if not isinstance(e, WorkflowError | ValueError | Refused):
            logging.getLogger("workflows4py.cli").debug("%s failed", command, exc_info=True)
        report(command, e, about(e) if about is not None else "")
        return 1


def setup_logging(level: str, *, as_json: bool = False) -> None:
    """Log to stderr: JSON lines with ``--json``, rich on a terminal, plain text otherwise."""
    handler: logging.Handler
    if as_json:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_JsonFormatter())
    elif sys.stderr.isatty():
        from rich.logging import RichHandler

        handler = RichHandler(console=Console(stderr=True), show_path=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created).astimezone().isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, sort_keys=True)


def _cell(value: object) -> str:
    return "-" if value in (None, {}, "") else str(value)


def plain_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """``rows`` under a header line, in columns padded with spaces; empty cells are ``-``."""
    cells = [[_cell(row[c]) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


class Output:
    """Where a command's result goes: ``--json`` documents, or text for people (rich on
    a terminal, plain otherwise)."""

    def __init__(self, as_json: bool) -> None:
        self.json = as_json
        self.terminal = not as_json and sys.stdout.isatty()
        self._console = Console(highlight=False) if self.terminal else None

    def document(self, value: object) -> None:
        """One JSON document, on one line."""
        click.echo(json.dumps(value, sort_keys=True, ensure_ascii=False))

    def line(self, text: str = "", style: str | None = None) -> None:
        if self._console is not None:
            self._console.print(Text(text, style=style or ""), soft_wrap=True)
        else:
            click.echo(text)

    def title(self, text: str) -> None:
        self.line(text, "bold")

    def field(self, label: str, value: object) -> None:
        """``  label:      value``, the value column aligned; a status coloured."""
        shown = "-" if value is None else str(value)
        head = f"  {label + ':':<{_LABEL_WIDTH}}"
        if self._console is None:
            click.echo(head + shown)
            return
        style = _STATUS_STYLE.get(shown, "") if label == "status" else ""
        self._console.print(Text.assemble((head, "dim"), (shown, style)), soft_wrap=True)

    def table(self, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
        if self._console is None:
            click.echo(plain_table(rows, columns))
            return
        table = Table(box=box.SIMPLE_HEAD, header_style="bold")
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(Text(_cell(row[c]), style=self._style(c, row[c])) for c in columns))
        self._console.print(table)

    @staticmethod
    def _style(column: str, value: object) -> str:
        if column == "status":
            return _STATUS_STYLE.get(str(value), "")
        return "red" if column in ("failures", "last_error") and value else ""

    @property
    def shows_progress(self) -> bool:
        """Whether :meth:`progress` draws a bar: on a terminal's stderr, without ``--json``."""
        return not self.json and sys.stderr.isatty()

    @contextmanager
    def progress(self, what: str, total: int | None) -> Iterator[Callable[[int], None]]:
        """A callback taking how many are done so far: a progress bar on stderr when it is
        a terminal (and not ``--json``), else nothing."""
        if not self.shows_progress:
            yield lambda done: None
            return
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task(what, total=total)
            yield lambda done: bar.update(task, completed=done)
