"""Who owns a session, and whether that owner is still alive."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Not at run time: `continuity list` judges leases from plain documents
    # (agent_continuity.listing) and must not import the model and pydantic.
    from agent_continuity.model import Lease
    from agent_continuity.storage.base import LeaseRequest

CLI_HOLDER = "cli"
#: The holder of a session a web page owns through ``continuity serve``: its
#: heartbeats renew the lease; when they stop, the session is interrupted with
#: :data:`HEARTBEAT_LOST`, not ``lease-expired``.
BROWSER_HOLDER = "browser"
HEARTBEAT_LOST = "heartbeat-lost"
#: The holder of a web page's session while its page is leaving (the page's
#: unload asked for a deferred end): if no page claims the session back within
#: ``browser-leave-grace``, it ends normally (completed), cause :data:`PAGE_LEFT`;
#: a reload's new page claims it back and the session goes on.
LEAVING_HOLDER = "browser-leaving"
PAGE_LEFT = "page-left"
#: The holders a web page's heartbeats keep or take back.
BROWSER_HOLDERS = (BROWSER_HOLDER, LEAVING_HOLDER)


@dataclass(frozen=True, slots=True)
class Owner:
    """The would-be holder of a lease: this process, or the command line."""

    holder: str
    pid: int | None
    host: str
    ttl: timedelta

    @classmethod
    def process(cls, ttl: float) -> Owner:
        """This process, which will heartbeat its lease."""
        host = socket.gethostname()
        pid = os.getpid()
        return cls(f"{pid}@{host}", pid, host, timedelta(seconds=ttl))

    @classmethod
    def agent(cls, pid: int, ttl: float) -> Owner:
        """Another process on this host, which holds the lease while it lives.

        A coding agent's hooks write for the agent (their parent): the agent's
        pid holds the lease, so the moment the agent dies (even ``kill -9``,
        with no hook run) anyone who looks sees the session interrupted.
        """
        host = socket.gethostname()
        return cls(f"{pid}@{host}", pid, host, timedelta(seconds=ttl))

    @classmethod
    def cli(cls, ttl: float) -> Owner:
        """No process: the lease is renewed by every command and expires when idle."""
        return cls(CLI_HOLDER, None, socket.gethostname(), timedelta(seconds=ttl))

    @classmethod
    def browser(cls, ttl: float) -> Owner:
        """A web page: no process here; the page's heartbeats renew the lease."""
        return cls(BROWSER_HOLDER, None, socket.gethostname(), timedelta(seconds=ttl))

    @classmethod
    def leaving(cls, grace: float) -> Owner:
        """A web page that is going away: held for ``grace`` seconds, for a reload to claim."""
        return cls(LEAVING_HOLDER, None, socket.gethostname(), timedelta(seconds=grace))

    def request(self, now: datetime) -> LeaseRequest:
        """A lease request for this owner at ``now``."""
        from agent_continuity.storage.base import LeaseRequest

        return LeaseRequest(self.holder, self.pid, self.host, self.ttl, now)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    # A killed child that its parent has not reaped yet still answers kill(0);
    # it is dead all the same.
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[-1].split()
    except OSError:
        return True
    return not fields or fields[0] != b"Z"


def owner_gone(lease: Lease | None, now: datetime) -> str | None:
    """Why the lease's owner can no longer be writing, or None if it may be.

    Returns:
        ``"heartbeat-lost"`` when a web page's lease ran out (its heartbeats
        stopped); ``"page-left"`` when a page that left normally was not
        claimed back within the grace (not a crash: the session is ended, not
        interrupted); ``"lease-expired"`` when another lease ran out or its owner
        process on this host no longer exists; None while the owner may still be alive.
    """
    if lease is None:
        return "lease-expired"
    return holder_gone(lease.expires, lease.pid, lease.host, now, holder=lease.holder)


def holder_gone(
    expires: datetime, pid: int | None, host: str, now: datetime, *, holder: str = ""
) -> str | None:
    """:func:`owner_gone` for a lease given by its parts (expiry, owner process and host)."""
    if expires <= now:
        if holder == LEAVING_HOLDER:
            return PAGE_LEFT
        return HEARTBEAT_LOST if holder == BROWSER_HOLDER else "lease-expired"
    if pid is not None and host == socket.gethostname() and not pid_alive(pid):
        return "lease-expired"
    return None
