"""A throwaway PostgreSQL server, for tests and benchmarks of ``postgresql://`` stores.

:class:`PostgresServer` runs ``initdb`` as the ``postgres`` user (via ``runuser``
when run as root) in a folder made with :func:`tempfile.mkdtemp`, starts the
server on a free loopback port with its unix socket in that folder, and stops
it by the pid in ``postmaster.pid``. PostgreSQL 15 is expected at
``/usr/lib/postgresql/15/bin`` (``CONTINUITY_PG_BIN`` names another folder) and
installed with apt-get when it is missing. Needs psycopg (the ``postgres`` extra).
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN = Path(os.environ.get("CONTINUITY_PG_BIN", "/usr/lib/postgresql/15/bin"))
_names = itertools.count(1)


def _ensure_installed() -> None:
    if (PG_BIN / "initdb").exists():
        return
    subprocess.run(["apt-get", "install", "-y", "postgresql"], check=True, capture_output=True)
    if not (PG_BIN / "initdb").exists():
        raise RuntimeError(f"apt-get installed postgresql, but {PG_BIN}/initdb is still missing")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster in a temporary folder, reachable on 127.0.0.1.

    Args:
        durable: Keep ``fsync`` on (the benchmarks). The tests turn it off: a
            server or writer killed with the machine still up loses nothing
            that was committed either way, and the shared machine is spared.
    """

    def __init__(self, *, durable: bool = False) -> None:
        _ensure_installed()
        self.as_root = os.geteuid() == 0
        self.folder = Path(tempfile.mkdtemp(prefix="continuity-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self.durable = durable
        self._template = False
        if self.as_root:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.folder}'",
            "port": str(self.port),
            "fsync": "on" if durable else "off",
            "max_connections": "300",
            "shared_buffers": "32MB",
            "logging_collector": "off",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        self.start()

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(PG_BIN / tool), *args]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd="/")
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    def start(self) -> None:
        """Start the server and wait until it takes connections."""
        self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data),
                  "-l", str(self.folder / "server.log"))  # fmt: skip

    def restart_immediate(self) -> None:
        """``pg_ctl restart -m immediate``: every backend killed, crash recovery on start."""
        self._run("pg_ctl", "restart", "-m", "immediate", "-w", "-t", "60",
                  "-D", str(self.data), "-l", str(self.folder / "server.log"))  # fmt: skip

    def stop_immediate(self) -> None:
        """``pg_ctl stop -m immediate``: the server gone at once, as in a crash."""
        self._run("pg_ctl", "stop", "-m", "immediate", "-w", "-D", str(self.data))

    def pid(self) -> int | None:
        """The postmaster's pid, from its ``postmaster.pid``; None when it is not running."""
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            return None

    def stop(self) -> None:
        """Stop the server by its pid (a fast shutdown), and delete its folder. Idempotent."""
        if not self.folder.exists():
            return
        pid = self.pid()
        if pid is not None:
            try:
                os.kill(pid, signal.SIGINT)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    os.kill(pid, 0)
                    time.sleep(0.05)
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        """The store URL of ``database``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """Run one statement as the superuser, outside a transaction."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql)

    def new_database(self, *, empty: bool = False) -> str:
        """A new database of its own; returns its store URL.

        Args:
            empty: No store in it yet. By default it is a copy of a database the
                store's schema was made in once, which saves each test the migrations.
        """
        name = f"t{os.getpid()}_{next(_names)}"
        if empty:
            self.admin(f"CREATE DATABASE {name} TEMPLATE template0")
            return self.url(name)
        if not self._template:
            from agent_continuity.storage.postgres import PostgresStore

            self.admin("CREATE DATABASE continuity_template TEMPLATE template0")
            PostgresStore(self.url("continuity_template")).close()
            self._template = True
        self.admin(f"CREATE DATABASE {name} TEMPLATE continuity_template")
        return self.url(name)
