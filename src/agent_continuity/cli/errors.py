"""Turn every failure into exit status 1 and one line on stderr.

The line names the error's stable code, ``continuity: error [lease-held]: ...``:
a :class:`~agent_continuity.errors.ContinuityError` says its own; the command
line's own failures have the codes below. With ``--json`` the command's one
JSON object on stdout is the error, ``{"error": {"code": ..., "message": ...}}``
(the shape of the HTTP API's errors), and the line on stderr is printed as well.
"""

from __future__ import annotations

import errno
import json
import sys
from collections.abc import Sequence

import click

from agent_continuity.cli.options import reset_output, wants_json_error
from agent_continuity.errors import ContinuityError

#: Codes of the failures that are not library errors.
USAGE = "usage"
ABORTED = "aborted"
INTERRUPTED = "interrupted"
OS_ERROR = "os-error"
INTERNAL = "internal-error"


def _say(code: str, message: str) -> None:
    first = " ".join(str(message).split()) or "unknown error"
    if wants_json_error():
        click.echo(json.dumps({"error": {"code": code, "message": first}}, ensure_ascii=False))
    click.echo(f"continuity: error [{code}]: {first}", err=True)


def run(group: click.Group, argv: Sequence[str], *, debug: bool = False) -> int:
    """Run ``group`` with ``argv``; return the exit status.

    Library errors, usage mistakes, I/O errors and even bugs end in one clear
    line on stderr and status 1, never a traceback (set CONTINUITY_DEBUG=1 to
    see one).
    """
    reset_output()
    try:
        result = group.main(list(argv), prog_name="continuity", standalone_mode=False)
    except ContinuityError as exc:
        _say(exc.code, str(exc))
        return 1
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else "", err=True)
        return 1
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        _say(USAGE, f"{exc.format_message()}{hint}")
        return 1
    except click.ClickException as exc:
        _say(USAGE, exc.format_message())
        return 1
    except click.exceptions.Abort:
        _say(ABORTED, "aborted")
        return 1
    except KeyboardInterrupt:
        _say(INTERRUPTED, "interrupted")
        return 130
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            return 1
        _say(
            OS_ERROR,
            f"{exc.strerror or exc} ({exc.filename or 'I/O'}); check the path and its permissions",
        )
        return 1
    except Exception as exc:
        if debug:
            import traceback  # only for this rare path: every command imports this module

            traceback.print_exc()
        _say(
            INTERNAL,
            f"internal error: {type(exc).__name__}: {exc}. This is a bug; rerun with "
            "CONTINUITY_DEBUG=1 and report the traceback",
        )
        return 1
    finally:
        try:
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            pass
    return result if isinstance(result, int) else 0
