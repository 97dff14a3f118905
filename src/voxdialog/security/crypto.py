"""Encryption at rest for conversation text and stored audio (AES-256-GCM, rotating keyring).

Text fields are stored as ``enc:v1:<key_id>:<base64url(nonce || ciphertext+tag)>`` and audio
blobs as ``b"VXE1" + len(key_id) + key_id + nonce + ciphertext+tag``. Every encryption draws a
fresh 12-byte nonce from ``os.urandom``. The caller's ``context`` (say ``"messages.text:<row
id>"``) is authenticated with the data, so a ciphertext copied to another row or column does not
decrypt. Values written before encryption was configured (no prefix / no magic) pass through
unchanged; a stored value that literally starts with the prefix is read as a ciphertext.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Sequence
from typing import Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

TEXT_PREFIX = "enc:v1:"
BLOB_MAGIC = b"VXE1"
KEY_BYTES = 32
NONCE_BYTES = 12

_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,16}")
_DEFAULT_KEY_ID = "k1"
_Kind = Literal["text", "bytes"]


class DecryptionError(Exception):
    """A ciphertext failed authentication: tampered, wrong key or context, unknown key id."""


class FieldCipher:
    """AES-256-GCM over fields, with an ordered keyring: the first key encrypts, all decrypt.

    Args:
        keys: ``(key_id, 32-byte key)`` pairs, current key first; older keys only decrypt, so
            rows written before a rotation stay readable until they are re-encrypted.

    Raises:
        ValueError: No key, a key that is not 32 bytes, a malformed or repeated key id.
    """

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("the keyring needs at least one key")
        self._aeads: dict[str, AESGCM] = {}
        for position, (key_id, key) in enumerate(keys, start=1):
            _check_key(position, key_id, key)
            if key_id in self._aeads:
                raise ValueError(f"keyring entry {position}: key id {key_id!r} is repeated")
            self._aeads[key_id] = AESGCM(key)
        self._current = keys[0][0]

    @property
    def current_key_id(self) -> str:
        """The id of the key that new encryptions use."""
        return self._current

    def encrypt_text(self, plain: str, *, context: str) -> str:
        """Encrypt ``plain`` with the current key, bound to ``context``.

        Returns:
            ``enc:v1:<key_id>:<base64url payload>`` (no padding).
        """
        payload = self._seal("text", plain.encode(), context)
        encoded = base64.urlsafe_b64encode(payload).rstrip(b"=").decode("ascii")
        return f"{TEXT_PREFIX}{self._current}:{encoded}"

    def decrypt_text(self, value: str, *, context: str) -> str:
        """The plaintext of ``value``; a value that is not encrypted is returned unchanged.

        Raises:
            DecryptionError: ``value`` is a ciphertext that does not authenticate.
        """
        if not value.startswith(TEXT_PREFIX):
            return value
        key_id, _, encoded = value[len(TEXT_PREFIX) :].partition(":")
        plain = self._open("text", key_id, _decode_payload(encoded), context)
        try:
            return plain.decode()
        except UnicodeDecodeError as exc:  # authentic but not ours: never hand back garbage
            raise DecryptionError("decrypted field is not UTF-8") from exc

    def encrypt_bytes(self, data: bytes, *, context: str) -> bytes:
        """Encrypt a blob (stored audio) with the current key, bound to ``context``."""
        key_id = self._current.encode("ascii")
        header = BLOB_MAGIC + bytes([len(key_id)]) + key_id
        return header + self._seal("bytes", data, context)

    def decrypt_bytes(self, blob: bytes, *, context: str) -> bytes:
        """The plaintext of ``blob``; a blob without the ``VXE1`` magic is returned unchanged.

        Raises:
            DecryptionError: ``blob`` is a ciphertext that does not authenticate.
        """
        if not blob.startswith(BLOB_MAGIC):
            return blob
        key_id, payload = _split_blob(blob)
        return self._open("bytes", key_id, payload, context)

    def is_encrypted(self, value: str | bytes) -> bool:
        """Whether ``value`` is in this module's encrypted format (text or blob)."""
        if isinstance(value, str):
            return value.startswith(TEXT_PREFIX)
        return value.startswith(BLOB_MAGIC)

    def needs_rotation(self, value: str | bytes) -> bool:
        """Whether ``value`` is plain or encrypted under a key other than the current one."""
        return self._key_id_of(value) != self._current

    def _key_id_of(self, value: str | bytes) -> str | None:
        if not self.is_encrypted(value):
            return None
        if isinstance(value, str):
            return value[len(TEXT_PREFIX) :].partition(":")[0]
        try:
            return _split_blob(value)[0]
        except DecryptionError:
            return None

    def _seal(self, kind: _Kind, data: bytes, context: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        aad = _associated_data(kind, self._current, context)
        return nonce + self._aeads[self._current].encrypt(nonce, data, aad)

    def _open(self, kind: _Kind, key_id: str, payload: bytes, context: str) -> bytes:
        aead = self._aeads.get(key_id)
        if aead is None:
            raise DecryptionError("ciphertext names a key id that is not in the keyring")
        if len(payload) < NONCE_BYTES + 16:
            raise DecryptionError("ciphertext is too short")
        nonce, sealed = payload[:NONCE_BYTES], payload[NONCE_BYTES:]
        try:
            return aead.decrypt(nonce, sealed, _associated_data(kind, key_id, context))
        except InvalidTag as exc:
            raise DecryptionError("ciphertext failed authentication") from exc


def parse_keyring(spec: str) -> list[tuple[str, bytes]]:
    """Parse the settings form ``"kid1:BASE64KEY,kid0:BASE64KEY"`` (first = current).

    A single bare base64 key (no id) gets the id ``k1``. Standard and URL-safe base64 are
    accepted, with or without padding.

    Raises:
        ValueError: The spec is malformed; the message names entries by position and never
            contains key material.
    """
    entries = [entry.strip() for entry in spec.split(",")]
    if not any(entries):
        raise ValueError("the encryption keyring is empty")
    if len(entries) == 1 and ":" not in entries[0]:
        entries = [f"{_DEFAULT_KEY_ID}:{entries[0]}"]
    keyring: list[tuple[str, bytes]] = []
    for position, entry in enumerate(entries, start=1):
        key_id, separator, encoded = entry.partition(":")
        if not separator:
            raise ValueError(f"keyring entry {position}: expected '<key id>:<base64 key>'")
        key = _decode_key(position, encoded)
        _check_key(position, key_id, key)
        keyring.append((key_id, key))
    if len({key_id for key_id, _ in keyring}) != len(keyring):
        raise ValueError("the keyring repeats a key id")
    return keyring


def generate_key() -> str:
    """A new random 32-byte key, base64url without padding, for the settings keyring."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).rstrip(b"=").decode("ascii")


def _check_key(position: int, key_id: str, key: bytes) -> None:
    if not _KEY_ID.fullmatch(key_id):
        raise ValueError(f"keyring entry {position}: key id must match [A-Za-z0-9_-]{{1,16}}")
    if len(key) != KEY_BYTES:
        raise ValueError(
            f"keyring entry {position}: key must be {KEY_BYTES} bytes (AES-256), got {len(key)}"
        )


def _decode_key(position: int, encoded: str) -> bytes:
    urlsafe = encoded.strip().replace("+", "-").replace("/", "_").rstrip("=")
    try:
        return _b64url_decode(urlsafe)
    except ValueError:
        raise ValueError(f"keyring entry {position}: key is not valid base64") from None


def _decode_payload(encoded: str) -> bytes:
    try:
        payload = _b64url_decode(encoded)
    except ValueError:
        raise DecryptionError("ciphertext is not valid base64url") from None
    # Several strings decode to the same bytes (unused low bits of the last character);
    # only the one we write is accepted, so any edit of the stored text is detected.
    if base64.urlsafe_b64encode(payload).rstrip(b"=").decode("ascii") != encoded:
        raise DecryptionError("ciphertext is not in canonical base64url")
    return payload


def _b64url_decode(encoded: str) -> bytes:
    """Strict base64url decoding of unpadded text; ``ValueError`` on any stray character."""
    try:
        padded = encoded.encode("ascii") + b"=" * (-len(encoded) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise ValueError("invalid base64url") from exc


def _split_blob(blob: bytes) -> tuple[str, bytes]:
    """``(key_id, nonce || ciphertext)`` of a blob that starts with the magic."""
    start = len(BLOB_MAGIC) + 1
    if len(blob) < start:
        raise DecryptionError("encrypted blob is truncated")
    end = start + blob[len(BLOB_MAGIC)]
    try:
        key_id = blob[start:end].decode("ascii")
    except UnicodeDecodeError:
        raise DecryptionError("encrypted blob has a malformed key id") from None
    if len(blob) < end or not _KEY_ID.fullmatch(key_id):
        raise DecryptionError("encrypted blob has a malformed key id")
    return key_id, blob[end:]


def _associated_data(kind: _Kind, key_id: str, context: str) -> bytes:
    # The kind keeps a text ciphertext from being replayed as a blob; the key id is already
    # implied by the key, but binding it costs nothing. Neither part can contain a NUL.
    return f"voxdialog:{kind}\x00{key_id}\x00{context}".encode()
