"""Encryption at rest for what people said and wrote: conversation content and task titles.

Seal before writing, unseal after reading.

The `Database` carries the configured `FieldCipher` (None: content stays plain). Each value is
bound to its place (table, column and row key) as AES-GCM associated data, so a ciphertext
copied to another row fails to open instead of showing someone else's words.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from voxdialog.db.engine import Database
from voxdialog.db.errors import StoreError
from voxdialog.security.crypto import DecryptionError

_SEALED_JSON_KEY = "__sealed__"


class SealedDataError(StoreError):
    """A stored value failed authentication (tampered, or the key is missing or wrong)."""


def message_context(session_id: str, item_id: str) -> str:
    """Where a message's text lives."""
    return f"messages.text:{session_id}:{item_id}"


def command_context(command_id: str, column: str) -> str:
    """Where one column of a voice command lives."""
    return f"voice_commands.{column}:{command_id}"


def task_title_context(task_id: str) -> str:
    """Where a task's title lives."""
    return f"tasks.title:{task_id}"


def seal(db: Database, value: str, context: str) -> str:
    """``value`` encrypted for ``context`` when a key is configured; else unchanged."""
    cipher = db.cipher
    return cipher.encrypt_text(value, context=context) if cipher is not None else value


def unseal(db: Database, value: str, context: str) -> str:
    """The plain text of a stored value (plain values pass through).

    Raises:
        SealedDataError: The value is encrypted but does not authenticate, or no key is set.
    """
    cipher = db.cipher
    if cipher is None:
        if value.startswith("enc:v1:"):
            raise SealedDataError("stored text is encrypted but no encryption key is configured")
        return value
    try:
        return cipher.decrypt_text(value, context=context)
    except DecryptionError as exc:
        raise SealedDataError("stored text failed authentication") from exc


def seal_json(db: Database, value: Mapping[str, Any], context: str) -> dict[str, Any]:
    """A JSON object sealed as ``{"__sealed__": ciphertext}`` when a key is configured."""
    if db.cipher is None:
        return dict(value)
    return {_SEALED_JSON_KEY: seal(db, json.dumps(value, separators=(",", ":")), context)}


def unseal_json(db: Database, value: Mapping[str, Any], context: str) -> dict[str, Any]:
    """Inverse of `seal_json` (plain objects pass through)."""
    sealed = value.get(_SEALED_JSON_KEY)
    if not isinstance(sealed, str) or len(value) != 1:
        return dict(value)
    opened = json.loads(unseal(db, sealed, context))
    if not isinstance(opened, dict):
        raise SealedDataError("sealed JSON is not an object")
    return opened


def needs_rotation(db: Database, value: str) -> bool:
    """Whether a stored value should be re-encrypted with the current key."""
    cipher = db.cipher
    return cipher is not None and cipher.needs_rotation(value)
