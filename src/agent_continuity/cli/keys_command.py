"""``continuity keys new|rotate|status``: encryption at rest.

Only renders: the work is done by :func:`agent_continuity.manage_keys`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from agent_continuity.cli.options import emit, json_option, manager, store_option

if TYPE_CHECKING:
    from agent_continuity import KeyReport

_DONE = {
    "new": "encrypted {url} with key {key} (key file {keyfile}); {resealed} record(s) sealed",
    "rotate": "{url} now uses key {key}; {resealed} record(s) sealed again; older keys stay in "
    "{keyfile} (keys status says when nothing uses one any more)",
}


def render(action: str, url: str, report: KeyReport) -> str:
    """What a person reads after ``keys ACTION``."""
    if not report.encrypted:
        return f"{url} is not encrypted; `continuity keys new` encrypts it"
    lines = []
    if action in _DONE:
        lines.append(
            _DONE[action].format(
                url=url, key=report.active_key, keyfile=report.key_file, resealed=report.resealed
            )
        )
    else:
        lines.append(f"{url} is encrypted (AES-256-GCM); new records use key {report.active_key}")
    for key, count in sorted(report.records.items()):
        if count:
            lines.append(f"  {key:<20} {count:>8} record(s)")
    if report.unfinished:
        lines.append("  a rotation was cut short: `continuity keys rotate` finishes it")
    if report.unreadable:
        lines.append(
            f"  {report.unreadable} damaged record(s) left as they are: `continuity verify`"
        )
    return "\n".join(lines)


@click.command()
@click.argument("action", type=click.Choice(["new", "rotate", "status"]))
@store_option
@json_option
def keys(action: str, store: str | None, as_json: bool) -> None:
    """Encryption at rest: `new` encrypts the store, `rotate` replaces its key, `status` reports.

    Keys live in CONTINUITY_KEY_FILE (default ~/.config/agent-continuity/keys.json,
    mode 0600) or CONTINUITY_KEY (ID:BASE64, comma-separated), never in the
    store. `rotate` seals every record again with a new key while agents keep
    writing; cut short, running it again finishes it. Old keys are kept.
    """
    from agent_continuity import manage_keys

    mgr = manager(store, create=action == "new")
    report = manage_keys(mgr.store, action)
    emit(
        as_json,
        {"action": action, **report.to_wire()},
        lambda: render(action, report.store, report),
    )


COMMANDS = [keys]
