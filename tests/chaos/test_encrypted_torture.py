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
from chaos_support import STORE_KINDS, store_url
from test_crash_torture import Torture

from agent_continuity.storage.envelope import KEY_ENV
from agent_continuity.testing.encrypted import encrypt_at

KILLS = 8


def marker(url: str) -> Path:
    if url.startswith("files:"):
        return Path(url.removeprefix("files:")) / "encryption.json"
    path = Path(url.removeprefix("sqlite:///"))
    return path.with_name(path.name + ".encryption.json")


@pytest.mark.slow
@pytest.mark.parametrize("kind", STORE_KINDS)
def test_sigkill_never_loses_an_acknowledged_event_of_an_encrypted_store(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The key goes in the environment before the writer server starts: it inherits it.
    monkeypatch.setenv(KEY_ENV, encrypt_at(marker(store_url(kind, tmp_path))))
    torture = Torture(kind, tmp_path, seed=zlib.crc32(f"encrypted-{kind}".encode()))
    try:
        torture.play(KILLS)
    finally:
        if torture.server.proc.poll() is None:
            torture.server.proc.kill()
            torture.server.proc.wait()
    tokens = [token for ledger in torture.ledgers.values() for _, token, _ in ledger.acks]
    assert tokens, "no writer acknowledged anything"
    stored = b"".join(
        p.read_bytes()
        for p in tmp_path.rglob("*")
        if p.is_file() and "project" not in p.relative_to(tmp_path).parts[:1]
    )
    readable = [t for t in tokens if f"{t}|".encode() in stored]  # message_text: "TOKEN|..."
    assert not readable, f"{len(readable)} message(s) stored readable, e.g. {readable[:3]}"
