"""The SIGKILL torture on encrypted stores: the same promises, with every record sealed.

One shorter round per store of :mod:`test_crash_torture`'s writer kills
(killed mid-append, mid-point, mid-takeover), the store encrypted from its
first record; every acknowledged event must come back, ``verify`` must pass
after repair, and no message text may be readable in what the store wrote.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
import test_crash_torture
from chaos_support import SHARED_KINDS, store_url
from test_crash_torture import Torture

from agent_continuity.storage.envelope import KEY_ENV
from agent_continuity.testing.encrypted import encrypt_at, encrypt_store

KILLS = 8


def marker(url: str) -> Path:
    if url.startswith("files:"):
        return Path(url.removeprefix("files:")) / "encryption.json"
    path = Path(url.removeprefix("sqlite:///"))
    return path.with_name(path.name + ".encryption.json")


def encrypted_url(kind: str, base: Path) -> tuple[str, str]:
    """A fresh store of ``kind`` encrypted before its first record: its URL and key."""
    url = store_url(kind, base)
    if kind != "postgres":
        return url, encrypt_at(marker(url))
    from agent_continuity.storage.postgres import PostgresStore

    store = PostgresStore(url)  # the marker is a row of the database
    try:
        return url, encrypt_store(store)
    finally:
        store.close()


def stored_bytes(url: str, base: Path) -> bytes:
    """Everything the store wrote: its files, or every value of the database's tables."""
    if not url.startswith("postgresql:"):
        return b"".join(
            p.read_bytes()
            for p in base.rglob("*")
            if p.is_file() and "project" not in p.relative_to(base).parts[:1]
        )
    import psycopg

    out = bytearray()
    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
        for (table,) in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"').fetchall():
                for value in row:
                    out += value if isinstance(value, bytes) else str(value).encode()
    return bytes(out)


@pytest.mark.slow
@pytest.mark.parametrize("kind", SHARED_KINDS)
def test_sigkill_never_loses_an_acknowledged_event_of_an_encrypted_store(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, key = encrypted_url(kind, tmp_path)
    # The key goes in the environment before the writer server starts: it inherits it.
    monkeypatch.setenv(KEY_ENV, key)
    monkeypatch.setattr(test_crash_torture, "store_url", lambda kind, base: url)
    torture = Torture(kind, tmp_path, seed=zlib.crc32(f"encrypted-{kind}".encode()))
    try:
        torture.play(KILLS)
    finally:
        if torture.server.proc.poll() is None:
            torture.server.proc.kill()
            torture.server.proc.wait()
    tokens = [token for ledger in torture.ledgers.values() for _, token, _ in ledger.acks]
    assert tokens, "no writer acknowledged anything"
    stored = stored_bytes(url, tmp_path)
    readable = [t for t in tokens if f"{t}|".encode() in stored]  # message_text: "TOKEN|..."
    assert not readable, f"{len(readable)} message(s) stored readable, e.g. {readable[:3]}"
