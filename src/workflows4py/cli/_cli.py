"""The ``workflows4py`` command, on click.

Commands over an application's runtimes (``APP`` is ``module:attribute`` giving a Runtime, a
durable runtime, a list of them, or a possibly async callable returning one of those):

- ``worker APP``: run due wakeups and resume interrupted instances;
- ``instances APP``: list instances from the registry (status, failing, tags);
- ``show APP ID``: one instance: registry row, state, progress and journal.

Commands over one instance's life (``APP`` gives a :class:`Runtime`, ``WORKFLOW`` is a
workflow id): ``start``, ``terminate``, ``resume``, ``fork``, ``purge``, ``export``.

Every command takes ``--json``. A command that fails prints one line naming what was wrong
to stderr and exits with status 1; a usage error exits with status 2 (docs/cli.md).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from ._inspect import instances, show, worker
from ._lifecycle import export, fork, purge, resume, start, terminate
from ._main import version

__all__ = ["cli", "main"]


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"workflows4py {version()}")
        raise SystemExit(0)


_HELP = """Durable workflows from the command line.

\b
APP is MODULE:ATTRIBUTE: a Runtime, or a (possibly async) callable returning one
(worker, instances and show also take durable runtimes, or a list of them).
WORKFLOW is a workflow id, ID an instance id.

Every command takes --json (one JSON document on stdout). A command that fails
prints one line on stderr naming what was wrong and exits with status 1; a usage
error exits with status 2. See docs/cli.md.
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
def cli() -> None:
    """The command group."""


for _command in (worker, instances, show, start, terminate, resume, fork, purge, export):
    cli.add_command(_command)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``workflows4py`` command: the exit status of the command run
    (a usage error, ``--version`` and a refused argument raise SystemExit)."""
    try:
        result = cli.main(
            args=None if argv is None else list(argv),
            prog_name="workflows4py",
            standalone_mode=False,
        )
    except click.ClickException as e:  # a usage error: click's message, status 2
        e.show()
        raise SystemExit(e.exit_code) from None
    except click.Abort:
        click.echo("Aborted!", err=True)
        raise SystemExit(130) from None
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
