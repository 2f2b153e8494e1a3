"""Encryption at rest on a ``postgresql://`` store, and what search asks of it.

The conformance suite runs on an encrypted PostgreSQL store too
(``postgres-encrypted`` in conftest). These check what only a server store
does differently: the marker is a row of the database (``settings``), not a
file beside it, ``continuity keys`` works on it through the command line, no
row holds a message readable, a wrong or missing key is one clear error, a
swapped record is damage, and a store made before the marker's table gains it.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import psycopg
import pytest

from agent_continuity.storage.envelope import KEY_ENV, KEY_FILE_ENV
from agent_continuity.storage.postgres import PostgresStore
from agent_continuity.storage.postgres.schema import MIGRATIONS
from cli_support import cli, cli_json, git_project
from postgres_support import server

SECRET = "zebra-orchid-4471"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.setenv(KEY_FILE_ENV, str(tmp_path / "keys" / "keys.json"))
    return git_project(tmp_path / "project")


def _query(url: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def database_bytes(url: str) -> bytes:
    """Every value of every table of the store, as bytes (what a reader of the server sees)."""
    tables = _query(
        url, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    )
    out = bytearray()
    for (table,) in tables:
        for row in _query(url, f'SELECT * FROM "{table}"'):
            for value in row:
                out += value if isinstance(value, bytes) else str(value).encode()
    return bytes(out)


def one_error_line(done: object, code: str) -> None:
    assert getattr(done, "returncode", None) == 1, done
    stdout, stderr = getattr(done, "stdout", ""), getattr(done, "stderr", "")
    assert stdout == ""  # never an empty history
    assert stderr.count("\n") == 1 and f"[{code}]" in stderr, stderr


def test_keys_new_and_rotate_seal_every_row_and_the_marker_is_a_row(project: Path) -> None:
    url = server().new_database()
    assert cli(project, url, "start", "--task", "T-1").returncode == 0
    assert cli(project, url, "message", "--role", "user", SECRET).returncode == 0
    assert cli(project, url, "save").returncode == 0
    assert SECRET.encode() in database_bytes(url)  # plaintext until `keys new`

    made = cli_json(project, url, "keys", "new")
    assert made["encrypted"] and made["resealed"] > 0 and "plaintext" not in made["records"]
    # The marker is in the database (every client sees it), never a file in the project.
    ((doc,),) = _query(url, "SELECT doc FROM settings WHERE name = 'encryption'")
    assert json.loads(bytes(doc))["activeKey"] == made["activeKey"]
    assert not list(project.rglob("*encryption.json"))
    assert cli(project, url, "message", "--role", "user", f"{SECRET} after").returncode == 0
    assert SECRET.encode() not in database_bytes(url)
    status = cli_json(project, url, "keys", "status")
    assert set(status["records"]) == {made["activeKey"]} and not status["unfinished"]
    shown = cli(project, url, "prompt")
    assert shown.returncode == 0 and SECRET in shown.stdout

    rotated = cli_json(project, url, "keys", "rotate")
    assert rotated["activeKey"] != made["activeKey"] and rotated["resealed"] > 0
    status = cli_json(project, url, "keys", "status")
    assert set(status["records"]) == {rotated["activeKey"]} and not status["unfinished"]
    assert SECRET in cli(project, url, "prompt").stdout
    assert cli_json(project, url, "verify")["ok"]

    key_file = Path(os.environ[KEY_FILE_ENV])
    saved = key_file.read_bytes()
    key_file.unlink()
    one_error_line(cli(project, url, "list"), "key-unavailable")
    other = {
        "keys": [{"id": rotated["activeKey"], "key": base64.b64encode(os.urandom(32)).decode()}]
    }
    key_file.write_text(json.dumps(other))
    key_file.chmod(0o600)
    one_error_line(cli(project, url, "list"), "wrong-key")
    key_file.write_bytes(saved)
    assert cli(project, url, "list").returncode == 0


def test_keys_never_print_the_password_of_the_store_url(project: Path) -> None:
    # The test server trusts loopback connections, so any password connects.
    url = server().new_database().replace("postgres@", "postgres:Sup3rS3cret@")
    assert cli(project, url, "start", "--task", "T-1").returncode == 0
    outputs = [cli(project, url, "keys", "new"), cli(project, url, "keys", "status")]
    outputs.append(cli(project, url, "keys", "new"))  # refused: encrypted already
    Path(os.environ[KEY_FILE_ENV]).unlink()
    outputs.append(cli(project, url, "list"))  # refused: the key is not configured
    assert [done.returncode for done in outputs] == [0, 0, 1, 1]
    assert "encrypted postgresql://127.0.0.1:" in outputs[0].stdout
    for done in outputs:
        assert "Sup3rS3cret" not in done.stdout + done.stderr, done


def test_two_sealed_records_swapped_are_damage(project: Path) -> None:
    url = server().new_database()
    assert cli(project, url, "start", "--task", "T-1").returncode == 0
    for n in range(3):
        assert cli(project, url, "message", "--role", "user", f"{SECRET} {n}").returncode == 0
    cli_json(project, url, "keys", "new")
    assert cli_json(project, url, "verify")["ok"]
    rows = _query(url, "SELECT seq, line FROM events WHERE seq IN (2, 3) ORDER BY seq")
    (_, second), (_, third) = rows
    # Each record is bound to its number: swapping the sealed payloads (the plaintext
    # heads and checksums stay right) must not read as two valid events.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE events SET line = %s WHERE seq = 2", (_relabel(third, second),))
        conn.execute("UPDATE events SET line = %s WHERE seq = 3", (_relabel(second, third),))
    done = cli(project, url, "verify", "--json")
    assert done.returncode != 0
    report = json.loads(done.stdout)
    assert not report["ok"]
    sealed = [d for d in report["damage"] if "authentication" in str(d["detail"])]
    assert len(sealed) == 2, report["damage"]


def _relabel(line: bytes, like: bytes) -> bytes:
    """``line``'s sealed payload under ``like``'s number, kind and time, its checksum valid."""
    import zlib

    payload = line[line.index(b',"payload":') : line.rindex(b',"crc":')]
    body = like[: like.index(b',"payload":')] + payload + b"}"
    return body[:-1] + b',"crc":"%08x"}\n' % zlib.crc32(body)


def test_a_store_made_before_the_settings_table_gains_it_when_opened() -> None:
    url = server().new_database()
    # As a database made by the first schema version (no `settings`) is.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE settings")
        conn.execute("UPDATE continuity_schema SET version = 1")
    store = PostgresStore(url)
    try:
        assert store.load_marker() is None  # not encrypted, and no error
    finally:
        store.close()
    assert _query(url, "SELECT version FROM continuity_schema") == [(len(MIGRATIONS),)]
    assert _query(url, "SELECT count(*) FROM settings") == [(0,)]
