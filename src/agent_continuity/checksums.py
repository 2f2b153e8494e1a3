"""Compact JSON and the checksum that seals a document (see :mod:`.storage.codec`).

Kept apart from the codec, which needs the model, so that a reader of the
files store's documents (``continuity list``, :mod:`agent_continuity.listing`)
can verify them without importing pydantic.
"""

from __future__ import annotations

import hashlib
import json
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any

from agent_continuity.errors import CorruptRecord, InvalidInput


def _not_json(value: object) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _c_encoder(sort_keys: bool) -> Any:
    # json.dumps with arguments builds a new encoder on every call, which is half
    # the cost of encoding an event; these are built once. No circular-reference
    # markers: a cycle ends in RecursionError, translated below like the rest.
    if c_make_encoder is None:  # pragma: no cover - interpreters without the C accelerator
        return None
    return c_make_encoder(
        None, _not_json, encode_basestring, None, ":", ",", sort_keys, False, False
    )


_ENCODERS = {False: _c_encoder(False), True: _c_encoder(True)}


def compact(obj: Any, *, sort_keys: bool = False) -> bytes:
    """``obj`` as compact UTF-8 JSON.

    Raises:
        InvalidInput: If ``obj`` cannot be stored exactly as JSON.
    """
    try:
        encoder = _ENCODERS[sort_keys]
        if encoder is None:  # pragma: no cover
            text = json.dumps(
                obj, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys, allow_nan=False
            )
        else:
            text = "".join(encoder(obj, 0))
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(
            "text contains a lone surrogate character that cannot be stored as UTF-8; "
            "decode the text properly before recording it"
        ) from exc
    except RecursionError:
        raise InvalidInput(
            "value cannot be stored as JSON: it contains itself, or nests too deeply"
        ) from None
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"value cannot be stored as JSON: {exc}") from exc


def canonical(obj: Any) -> bytes:
    """The canonical JSON of ``obj`` (compact, keys sorted): what a checksum covers."""
    return compact(obj, sort_keys=True)


def document_checksum(doc: dict[str, Any]) -> str:
    """``sha256:`` of the canonical JSON of ``doc``."""
    return "sha256:" + hashlib.sha256(canonical(doc)).hexdigest()


def load_document(data: bytes, location: str = "") -> dict[str, Any]:
    """Parse ``data`` and verify its checksum; return it without the checksum key.

    Raises:
        CorruptRecord: If it is truncated, not JSON, or fails its checksum.
    """
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptRecord(f"{location}: not valid JSON ({exc})", location) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("checksum"), str):
        raise CorruptRecord(f"{location}: document has no checksum", location)
    stored = doc.pop("checksum")
    if stored != document_checksum(doc):
        raise CorruptRecord(f"{location}: document fails its checksum", location)
    return doc
