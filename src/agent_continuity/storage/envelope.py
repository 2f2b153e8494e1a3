"""Encryption at rest: AES-256-GCM envelopes, the keys they need, and the store's marker.

A store is encrypted once ``continuity keys new`` wrote its **marker**
(``encryption.json`` in a files store, ``DB.encryption.json`` beside a SQLite
database): plaintext metadata naming the algorithm, the key ids in use and,
per key, a *check value* (a known text sealed with that key), so a wrong key is
told apart from a damaged record before any record is read. The marker holds no
key: keys come from the key file (``CONTINUITY_KEY_FILE``, default
``~/.config/agent-continuity/keys.json``, mode 0600) or ``CONTINUITY_KEY``
(``ID:BASE64[,ID:BASE64...]``), never from the store.

Each sealed value is ``{"$aead": "KEYID.BASE64(nonce || ciphertext || tag)"}``
with a fresh random 96-bit nonce. The associated data binds it to where it
belongs: a journal payload to its session, sequence number, kind and time
(:func:`event_context`), a document to its kind and owner. A record copied to
another session or swapped with another fails authentication, which the store
reports as damage, like a failed checksum.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import stat
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent_continuity.checksums import compact
from agent_continuity.errors import (
    ConfigError,
    CorruptRecord,
    KeyFileError,
    KeyUnavailable,
    WrongKey,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

#: The key of a sealed value's one entry; a ``$`` no JSON payload of ours starts with.
SEALED = "$aead"
ALGORITHM = "AES-256-GCM"
KEY_FILE_ENV = "CONTINUITY_KEY_FILE"
KEY_ENV = "CONTINUITY_KEY"
MARKER_NAME = "encryption.json"
_CHECK_TEXT = b"agent-continuity key check"
_CHECK_CONTEXT = b"agent-continuity/key-check"
_NONCE = 12


def _aesgcm() -> type[AESGCM]:
    """The AES-GCM class, imported on first use: plaintext stores never load ``cryptography``."""
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:  # pragma: no cover - the dev extra installs it
        raise ConfigError(
            "this store is encrypted and reading it needs the `cryptography` package: "
            "pip install 'agent-continuity[crypto]'"
        ) from None
    return AESGCM


def event_context(session_id: str, head: bytes) -> bytes:
    """The associated data of one journal payload: its session, and the line's head as
    written (``{"seq":N,"kind":"…","at":"…"``: its number, kind and time, byte for byte)."""
    return b"event\0" + session_id.encode() + b"\0" + head


def document_context(kind: str, owner: str = "") -> bytes:
    """The associated data of a document: its kind (``point``, ``snapshot``...) and owner id."""
    return f"doc\0{kind}\0{owner}".encode()


class Sealer:
    """Seals with the active key and opens with any key of the ring.

    Args:
        keys: Key id to 32-byte key.
        active: The id new records are sealed with.
    """

    def __init__(self, keys: dict[str, bytes], active: str) -> None:
        if active not in keys:
            raise KeyUnavailable(f"key {active} is not configured")
        aesgcm = _aesgcm()
        #: While a plaintext store is being encrypted, its plaintext records still open.
        self.accept_plaintext = False
        self.active = active
        self._aeads = {kid: aesgcm(key) for kid, key in keys.items()}
        # By the id's bytes too: a journal line's token is opened without decoding it.
        self._by_bytes = {kid.encode(): aead for kid, aead in self._aeads.items()}
        self._prefix = active.encode() + b"."

    @property
    def key_ids(self) -> list[str]:
        """The ids this sealer can open."""
        return sorted(self._aeads)

    def seal_token(self, plain: bytes, context: bytes) -> bytes:
        """``KEYID.BASE64(nonce || ciphertext || tag)`` for ``plain``, bound to ``context``."""
        nonce = os.urandom(_NONCE)
        body = self._aeads[self.active].encrypt(nonce, plain, context)
        return self._prefix + binascii.b2a_base64(nonce + body, newline=False)

    def seal(self, plain: bytes, context: bytes) -> dict[str, str]:
        """``{"$aead": token}`` for ``plain``, bound to ``context``."""
        return {SEALED: self.seal_token(plain, context).decode("ascii")}

    def open_token(self, token: bytes | str, context: bytes, location: str) -> bytes:
        """The plaintext of a token :meth:`seal_token` made.

        Raises:
            CorruptRecord: If it is malformed or fails authentication.
            KeyUnavailable: If it names a key that is not configured.
        """
        if isinstance(token, str):
            token = token.encode("ascii", "replace")
        kid, _, text = token.partition(b".")
        aead = self._by_bytes.get(kid)
        if aead is None:
            raise KeyUnavailable(
                f"{location} is sealed with key {kid.decode('ascii', 'replace')}, which is not "
                f"configured; add it to {key_file_path()} or {KEY_ENV}"
            )
        try:
            # Strict, in C: b64decode(validate=True) runs a regex, 3x the decryption.
            raw = binascii.a2b_base64(text, strict_mode=True)
            return aead.decrypt(raw[:_NONCE], raw[_NONCE:], context)
        except (binascii.Error, ValueError) as exc:
            raise CorruptRecord(
                f"{location}: sealed record is malformed ({exc})", location
            ) from None
        except Exception as exc:  # cryptography's InvalidTag
            if type(exc).__name__ != "InvalidTag":
                raise
            raise CorruptRecord(
                f"{location}: sealed record fails authentication (altered, or moved from "
                "another session, number or kind)",
                location,
            ) from None

    def open(self, sealed: Any, context: bytes, location: str) -> bytes:
        """The plaintext of a sealed value.

        Raises:
            CorruptRecord: If ``sealed`` is not sealed (plaintext in an encrypted
                store), or fails authentication (altered, moved or swapped).
            KeyUnavailable: If it names a key that is not configured.
        """
        token = sealed_token(sealed)
        if token is None:
            if self.accept_plaintext:
                return compact(sealed)
            raise CorruptRecord(
                f"{location}: plaintext record in an encrypted store (written without the key, "
                "or injected)",
                location,
            )
        return self.open_token(token, context, location)


def sealed_token(value: Any) -> str | None:
    """The token of a sealed value, or None when ``value`` is not one."""
    if isinstance(value, dict) and len(value) == 1:
        token = value.get(SEALED)
        if isinstance(token, str):
            return token
    return None


def sealed_key_id(value: Any) -> str | None:
    """The key id a sealed value names, or None when it is not sealed."""
    token = sealed_token(value)
    return None if token is None else token.partition(".")[0]


#: What a SQL store's document tables seal their rows as: table -> document kind.
#: Leases stay plaintext: a holder, a token and a time, what fencing reads.
_TABLE_KINDS = {
    "sessions": "registry",
    "snapshots": "snapshot",
    "emergency": "emergency",
    "recovery_log": "log",
}


def table_kind(table: str, key: object) -> tuple[str, str]:
    """The document kind and owner a SQL store's row is sealed as (``("", "")``: plaintext)."""
    kind = _TABLE_KINDS.get(table, "")
    return kind, ("" if kind in ("", "log") else str(key))


# -- keys -----------------------------------------------------------------


def key_file_path() -> Path:
    """``CONTINUITY_KEY_FILE``, else ``~/.config/agent-continuity/keys.json``."""
    named = os.environ.get(KEY_FILE_ENV)
    if named:
        return Path(named).expanduser()
    return Path.home() / ".config" / "agent-continuity" / "keys.json"


def _decode_key(kid: str, text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32 or not kid or "." in kid or "," in kid or ":" in kid:
        raise KeyFileError(
            f"{where}: key {kid!r} is not an id and a base64 256-bit key; "
            "create keys with `continuity keys new`"
        )
    return key


def read_key_file(path: Path | None = None) -> dict[str, bytes]:
    """The keys in the key file (empty when there is none).

    Raises:
        KeyFileError: If it is readable by others, unreadable or malformed.
    """
    path = path if path is not None else key_file_path()
    try:
        info = path.stat()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise KeyFileError(f"cannot read the key file {path}: {exc.strerror}") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"the key file {path} is readable by other users (mode "
            f"{stat.S_IMODE(info.st_mode):o}); run `chmod 600 {path}`"
        )
    try:
        doc = json.loads(path.read_bytes())
        entries = doc["keys"]
        return {str(e["id"]): _decode_key(str(e["id"]), str(e["key"]), str(path)) for e in entries}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KeyFileError(f"the key file {path} is malformed ({exc}); restore it") from None


def environment_keys() -> dict[str, bytes]:
    """The keys ``CONTINUITY_KEY`` holds (``ID:BASE64``, comma-separated)."""
    text = os.environ.get(KEY_ENV, "").strip()
    keys: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        kid, _, encoded = item.partition(":")
        keys[kid] = _decode_key(kid, encoded, KEY_ENV)
    return keys


def configured_keys() -> dict[str, bytes]:
    """Every configured key: the key file's, then the environment's."""
    return {**read_key_file(), **environment_keys()}


def new_key_id() -> str:
    """A fresh key id: the day and random hex, e.g. ``k20261206-3f9a1c2b``."""
    return f"k{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(4)}"


def add_key_to_file(path: Path | None = None) -> tuple[str, bytes]:
    """Create a key and add it to the key file (created 0600 in a 0700 folder), atomically.

    Returns:
        The new key's id and bytes.
    """
    from .atomic import replace_atomically

    path = path if path is not None else key_file_path()
    existing = read_key_file(path)
    kid, key = new_key_id(), secrets.token_bytes(32)
    entries = [{"id": k, "key": base64.b64encode(v).decode()} for k, v in existing.items()]
    entries.append({"id": kid, "key": base64.b64encode(key).decode()})
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = json.dumps({"keys": entries}, indent=2).encode() + b"\n"
    replace_atomically(path, data)
    os.chmod(path, 0o600)
    return kid, key


# -- the store's marker ---------------------------------------------------


def key_check(sealer: Sealer) -> str:
    """The check value of the sealer's active key (see the module documentation)."""
    return sealer.seal(_CHECK_TEXT, _CHECK_CONTEXT)[SEALED]


def build_sealer(marker: dict[str, Any], keys: dict[str, bytes], where: str) -> Sealer:
    """A sealer for a store whose marker is ``marker``, from the configured ``keys``.

    Every key the marker lists as in use must be configured and pass its check.

    Raises:
        KeyUnavailable: If a key the store uses is not configured.
        WrongKey: If a configured key with that id is not the store's key.
    """
    listed: dict[str, Any] = marker.get("keys", {})
    missing = [kid for kid in listed if kid not in keys]
    if missing:
        raise KeyUnavailable(
            f"{where} is encrypted with key {', '.join(missing)}, which is not configured: "
            f"put it in the key file ({key_file_path()}) or {KEY_ENV}"
        )
    # Every configured key opens: a record sealed with a key the marker no longer
    # lists (sealed by a process that opened the store before a rotation) still reads.
    sealer = Sealer(dict(keys), str(marker["activeKey"]))
    for kid, info in listed.items():
        probe = Sealer({kid: keys[kid]}, kid)
        try:
            plain = probe.open({SEALED: info["check"]}, _CHECK_CONTEXT, where)
        except CorruptRecord:
            plain = b""
        if plain != _CHECK_TEXT:
            raise WrongKey(
                f"the configured key {kid} is not the key {where} was encrypted with; "
                f"restore the right key file ({key_file_path()}) or {KEY_ENV}"
            )
    return sealer


def marker_entry(sealer: Sealer) -> dict[str, Any]:
    """The marker's record of the sealer's active key."""
    return {"check": key_check(sealer), "added": datetime.now(UTC).isoformat()}


def new_marker(kid: str, key: bytes, previous: dict[str, Any] | None) -> dict[str, Any]:
    """The marker after adding key ``kid`` and making it active."""
    sealer = Sealer({kid: key}, kid)
    marker: dict[str, Any] = dict(previous) if previous else {"algorithm": ALGORITHM}
    marker["keys"] = {**(previous or {}).get("keys", {}), kid: marker_entry(sealer)}
    marker["activeKey"] = kid
    return marker


def retire_keys(marker: dict[str, Any], keep: Iterable[str]) -> dict[str, Any]:
    """The marker with only the keys in ``keep`` (and the active one) still listed as in use."""
    kept = set(keep) | {marker["activeKey"]}
    return {**marker, "keys": {k: v for k, v in marker["keys"].items() if k in kept}}
