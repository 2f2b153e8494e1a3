"""Running the conformance suite with encryption at rest on.

An encrypted factory is an ordinary :class:`~.factory.StoreFactory` whose
store was encrypted before its first record: :func:`encrypt_at` writes the
store's marker with a fresh key and returns that key as a ``CONTINUITY_KEY``
value, which the test (and every process it starts) must have in its
environment. Everything the suite checks must then hold unchanged.
"""

from __future__ import annotations

import base64
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from agent_continuity.storage import codec
from agent_continuity.storage.atomic import replace_atomically
from agent_continuity.storage.envelope import KEY_ENV, new_key_id, new_marker

if TYPE_CHECKING:
    from agent_continuity.storage.encryption import MarkerInStore

__all__ = ["KEY_ENV", "encrypt_at", "encrypt_store"]


def encrypt_at(marker: Path) -> str:
    """Mark the store whose marker lives at ``marker`` encrypted with a new key.

    Returns:
        The key as a ``CONTINUITY_KEY`` value (``ID:BASE64``).
    """
    kid, key = new_key_id(), secrets.token_bytes(32)
    marker.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(marker, codec.dump_document(new_marker(kid, key, None)))
    return f"{kid}:{base64.b64encode(key).decode()}"


def encrypt_store(store: MarkerInStore) -> str:
    """Mark a store that keeps its marker inside itself (``postgresql://``) encrypted.

    Returns:
        The key as a ``CONTINUITY_KEY`` value (``ID:BASE64``).
    """
    kid, key = new_key_id(), secrets.token_bytes(32)
    store.save_marker(codec.dump_document(new_marker(kid, key, None)))
    return f"{kid}:{base64.b64encode(key).decode()}"
