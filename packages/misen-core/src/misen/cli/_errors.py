"""Running a click command so that every user mistake ends as one line on standard error and an exit status."""

from __future__ import annotations

import sys
from typing import Any

import click

from misen.errors import MisenError

__all__ = ["error_line", "invoke"]

#: Exit statuses: 1 for failed work or a misen error, 2 for a wrong command line (click's convention).
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def error_line(message: str) -> None:
    """Print ``Error: message`` as one line on standard error (red on a terminal)."""
    text = " ".join(part.strip() for part in str(message).strip().splitlines() if part.strip())
    styled = click.style("Error:", fg="red", bold=True) if _tty(sys.stderr) else "Error:"
    print(f"{styled} {text}", file=sys.stderr, flush=True)


def _tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def invoke(command: click.Command, args: list[str] | None, prog_name: str | None = None) -> int:
    """Run ``command`` on ``args`` and return its exit status, reporting errors in one line each."""
    try:
        rv = command.main(args=args, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    except click.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError" and exc.ctx is not None:
            # A bare group (`misen`): its help is the answer, not an error.
            click.echo(exc.ctx.get_help())
            return 0
        hint = ""
        if exc.ctx is not None:
            hint = f" (see '{exc.ctx.command_path} --help')"
        error_line(exc.format_message() + hint)
        return EXIT_USAGE
    except click.ClickException as exc:
        error_line(exc.format_message())
        return exc.exit_code or EXIT_FAILED
    except click.Abort:
        error_line("aborted")
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        error_line("interrupted")
        return EXIT_INTERRUPTED
    except MisenError as exc:
        error_line(str(exc))
        return EXIT_FAILED
    except BrokenPipeError:
        return EXIT_FAILED
    if isinstance(rv, int) and not isinstance(rv, bool):
        return rv
    return 0
