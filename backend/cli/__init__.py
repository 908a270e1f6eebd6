"""`manage.py`'s commands. Every group is registered here, explicitly.

`main()` is the one error handler: a project error prints `Error: <message>`
on stderr and exits 1, a bad argument exits 2, Ctrl-C prints `Cancelled.`;
tracebacks appear only with `--traceback`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click
from sqlalchemy import exc as sa_exc

from backend.cli import accounts, db, exchange, jobs, purge, seed, shell
from backend.cli.output import error
from backend.db.errors import is_database_unavailable
from backend.errors import AppError, ValidationFailed

TRACEBACK_FLAG = "--traceback"


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "terminal_width": 120, "max_content_width": 120}
)
@click.option(TRACEBACK_FLAG, is_flag=True, help="Show the full traceback when a command fails.")
def cli(traceback: bool) -> None:
    """Custodian management commands."""


for command in (
    *db.COMMANDS,
    *accounts.COMMANDS,
    *exchange.COMMANDS,
    *jobs.COMMANDS,
    seed.seed,
    purge.purge,
    shell.shell,
):
    cli.add_command(command)


def main(args: Sequence[str] | None = None, *, group: click.Group = cli) -> int:
    """Run the CLI and return its exit code."""
    argv = list(sys.argv[1:] if args is None else args)
    show_traceback = TRACEBACK_FLAG in argv
    try:
        result = group.main(args=argv, prog_name="manage.py", standalone_mode=False)
    except click.UsageError as exc:
        hint = f" (see 'manage.py {exc.ctx.command_path.partition(' ')[2]} --help')" if exc.ctx else ""
        error(f"{exc.format_message()}{hint}".replace("manage.py  --help", "manage.py --help"))
        return 2
    except click.ClickException as exc:
        error(exc.format_message())
        return exc.exit_code
    except (click.Abort, KeyboardInterrupt):
        click.echo("Cancelled.", err=True)
        return 1
    except ValidationFailed as exc:
        if show_traceback:
            raise
        error(exc.message)
        for field, problems in exc.errors.items():
            for problem in problems:
                if problem != exc.message:  # the headline already said it
                    click.echo(f"  {field}: {problem}", err=True)
        return 1
    except AppError as exc:
        if show_traceback:
            raise
        error(exc.message)
        return 1
    except Exception as exc:
        if show_traceback:
            raise
        if _is_database_outage(exc):
            error(
                f"the database is unavailable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            )
        else:
            error(f"unexpected {type(exc).__name__}; run again with {TRACEBACK_FLAG} for details")
        return 1
    return result if isinstance(result, int) else 0


def _is_database_outage(error: Exception) -> bool:
    # Only errors that come from talking to the database: a plain OSError
    # here may as well be a closed terminal.
    database_side = isinstance(error, (sa_exc.SQLAlchemyError, ConnectionError, TimeoutError))
    return database_side and is_database_unavailable(error)
