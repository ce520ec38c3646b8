"""The ``workflows4py`` command, on click.

Commands over an application's runtimes (``APP`` is ``module:attribute`` giving a Runtime, a
durable runtime, a list of them, or a possibly async callable returning one of those):

- ``worker APP``: run due wakeups and resume interrupted instances;
- ``instances APP``: list instances from the registry (status, failing, tags);
- ``show APP ID``: one instance: registry row, state, progress and journal.

Commands over one instance's life (``APP`` gives a :class:`Runtime`, ``WORKFLOW`` is a
workflow id): ``start``, ``terminate``, ``resume``, ``fork``, ``purge``, ``export``; over an
instance by its id: ``signal``, ``wakeup``. Over a workflow (``TARGET`` gives a definition,
a Workflow subclass or runtimes): ``render``, ``lint``. And ``demo``.

Every command but ``demo`` takes ``--json`` (``signal``'s is its request; it always prints
JSON). A command that fails prints one line naming what was wrong to stderr and exits with
status 1 (with ``--debug``, after its traceback); a usage error exits with status 2
(docs/cli.md). Output piped to a reader that stops early (``| head``) ends quietly.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence

import click

from ._check import check
from ._draw import lint_command, render
from ._inspect import instances, show, worker
from ._lifecycle import export, fork, purge, resume, start, terminate
from ._main import version
from ._operate import demo, signal, wakeup
from ._output import one_line
from ._serve import serve

__all__ = ["COMMANDS", "cli", "main"]

COMMANDS: tuple[click.Command, ...] = (
    worker,
    instances,
    show,
    start,
    signal,
    wakeup,
    terminate,
    resume,
    fork,
    purge,
    export,
    render,
    lint_command,
    check,
    serve,
    demo,
)
"""The commands of the group, in the order of ``--help``'s list (which click sorts)."""

_PIPE_CLOSED = 141  # 128 + SIGPIPE: what a command killed by the signal would return


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"workflows4py {version()}")
        raise SystemExit(0)


_HELP = """Durable workflows from the command line.

\b
APP is MODULE:ATTRIBUTE: a Runtime, or a (possibly async) callable returning one
(worker, instances, show, signal and wakeup also take durable runtimes, or a list
of them). TARGET (render, lint) is MODULE:ATTRIBUTE giving a Workflow subclass, a
definition or runtimes. WORKFLOW is a workflow id, ID an instance id.

Every command takes --json (one JSON document on stdout). A command that fails
prints one line on stderr naming what was wrong and exits with status 1 (--debug:
its traceback too); a usage error exits with status 2. See docs/cli.md.
"""


@click.group(
    help=_HELP,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="print the version and exit",
)
@click.option("--debug", is_flag=True, help="print the traceback of an error")
def cli(debug: bool) -> None:
    """The command group."""


for _command in COMMANDS:
    cli.add_command(_command)


def _quiet_pipe() -> None:
    """stdout's reader went away: point stdout at /dev/null, so that the interpreter's
    last flush does not fail again (and print a traceback) on the way out."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``workflows4py`` command: the exit status of the command run
    (a usage error, ``--version`` and a refused argument raise SystemExit)."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        result = cli.main(args=args, prog_name="workflows4py", standalone_mode=False)
    except click.ClickException as e:  # a usage error: click's message, status 2
        e.show()
        raise SystemExit(e.exit_code) from None
    except click.Abort:
        click.echo("Aborted!", err=True)
        raise SystemExit(130) from None
    except BrokenPipeError:
        _quiet_pipe()
        return _PIPE_CLOSED
    except Exception as e:  # raised outside a command's work: one line all the same
        if "--debug" in args[: next((i for i, a in enumerate(args) if a[:1] != "-"), 0)]:
            traceback.print_exception(e, file=sys.stderr)
        click.echo(f"workflows4py: {one_line(e)}", err=True)
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
