"""Turn every failure into exit status 1 and one line on stderr."""

from __future__ import annotations

import errno
import sys
from collections.abc import Sequence

import click

from agent_continuity.errors import ContinuityError


def _say(message: str) -> None:
    first = " ".join(str(message).split()) or "unknown error"
    click.echo(f"continuity: error: {first}", err=True)


def run(group: click.Group, argv: Sequence[str], *, debug: bool = False) -> int:
    """Run ``group`` with ``argv``; return the exit status.

    Library errors, usage mistakes, I/O errors and even bugs end in one clear
    line on stderr and status 1, never a traceback (set CONTINUITY_DEBUG=1 to
    see one).
    """
    try:
        result = group.main(list(argv), prog_name="continuity", standalone_mode=False)
    except ContinuityError as exc:
        _say(str(exc))
        return 1
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else "", err=True)
        return 1
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        _say(f"{exc.format_message()}{hint}")
        return 1
    except click.ClickException as exc:
        _say(exc.format_message())
        return 1
    except click.exceptions.Abort:
        _say("aborted")
        return 1
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            return 1
        _say(f"{exc.strerror or exc} ({exc.filename or 'I/O'}); check the path and its permissions")
        return 1
    except Exception as exc:
        if debug:
            import traceback  # only for this rare path: every command imports this module

            traceback.print_exc()
        _say(
            f"internal error: {type(exc).__name__}: {exc}. This is a bug; rerun with "
            "CONTINUITY_DEBUG=1 and report the traceback"
        )
        return 1
    finally:
        try:
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            pass
    return result if isinstance(result, int) else 0
