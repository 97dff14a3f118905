"""Field encryption: round trips, tamper and context detection, rotation, nonce uniqueness."""

from __future__ import annotations

import base64
import os
import string

import pytest

from voxdialog.security.crypto import (
    BLOB_MAGIC,
    NONCE_BYTES,
    TEXT_PREFIX,
    DecryptionError,
    FieldCipher,
    generate_key,
    parse_keyring,
)

CANARY = "purple-elephant-canary-4417"
CONTEXT = "messages.text:01HZX"
B64URL_ALPHABET = string.ascii_letters + string.digits + "-_"


def _key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def cipher() -> FieldCipher:
    """A cipher with one random key ``k0``."""
    return FieldCipher([("k0", _key())])


def _payload(token: str) -> bytes:
    """The binary ``nonce || ciphertext+tag`` of a text token."""
    encoded = token.rsplit(":", 1)[1]
    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))


def _b64_forms(data: bytes) -> set[str]:
    """Standard and URL-safe base64 of ``data`` at every 3-byte alignment, trimmed of edges."""
    forms: set[str] = set()
    for shift in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * shift + data).decode()
            forms.add(encoded[4 : -4 if len(encoded) > 8 else None])
    return forms


@pytest.mark.parametrize("plain", ["", "hello", CANARY, "ünïcödé ✓ 日本語", "x" * 10_000])
def test_text_round_trip(cipher: FieldCipher, plain: str) -> None:
    token = cipher.encrypt_text(plain, context=CONTEXT)
    assert token.startswith(f"{TEXT_PREFIX}k0:")
    assert cipher.is_encrypted(token)
    assert cipher.decrypt_text(token, context=CONTEXT) == plain


@pytest.mark.parametrize("data", [b"", b"RIFF\x00\x01", os.urandom(70_000)])
def test_bytes_round_trip(cipher: FieldCipher, data: bytes) -> None:
    blob = cipher.encrypt_bytes(data, context="audio:01HZX")
    assert blob.startswith(BLOB_MAGIC + b"\x02k0")
    assert cipher.is_encrypted(blob)
    assert cipher.decrypt_bytes(blob, context="audio:01HZX") == data


def test_same_plaintext_encrypts_differently(cipher: FieldCipher) -> None:
    assert cipher.encrypt_text(CANARY, context=CONTEXT) != cipher.encrypt_text(
        CANARY, context=CONTEXT
    )


def test_ciphertexts_never_contain_the_plaintext(cipher: FieldCipher) -> None:
    canary = CANARY.encode()
    token = cipher.encrypt_text(CANARY, context=CONTEXT)
    blob = cipher.encrypt_bytes(canary, context=CONTEXT)
    assert CANARY not in token
    assert CANARY.casefold() not in token.casefold()
    assert canary not in _payload(token)
    assert canary not in blob
    for form in _b64_forms(canary):
        assert form not in token
        assert form.encode() not in blob


# Payloads of 30, 31 and 32 bytes: the last two end in a base64 character with unused bits.
@pytest.mark.parametrize("plain", ["hi", "hi!", "hi!!"])
def test_every_single_character_edit_of_a_text_token_is_rejected(
    cipher: FieldCipher, plain: str
) -> None:
    token = cipher.encrypt_text(plain, context=CONTEXT)
    # Everything after the version prefix: key id, separator and payload.
    for position in range(len(TEXT_PREFIX), len(token)):
        for replacement in B64URL_ALPHABET:
            if replacement == token[position]:
                continue
            tampered = token[:position] + replacement + token[position + 1 :]
            with pytest.raises(DecryptionError):
                cipher.decrypt_text(tampered, context=CONTEXT)


def test_every_single_bit_flip_of_a_blob_is_rejected(cipher: FieldCipher) -> None:
    blob = cipher.encrypt_bytes(b"hi", context=CONTEXT)
    # Past the magic (a blob without it is plain data by definition).
    for position in range(len(BLOB_MAGIC), len(blob)):
        for bit in range(8):
            tampered = bytearray(blob)
            tampered[position] ^= 1 << bit
            with pytest.raises(DecryptionError):
                cipher.decrypt_bytes(bytes(tampered), context=CONTEXT)


@pytest.mark.parametrize(
    "token_suffix",
    ["", "k0", "k0:", "k0:AAAA", "k0:not base64!", "k0:" + "A" * 30, "k0:ü", ":AAAA"],
)
def test_malformed_text_tokens_are_rejected(cipher: FieldCipher, token_suffix: str) -> None:
    with pytest.raises(DecryptionError):
        cipher.decrypt_text(TEXT_PREFIX + token_suffix, context=CONTEXT)


@pytest.mark.parametrize(
    "blob",
    [BLOB_MAGIC, BLOB_MAGIC + b"\x05k0", BLOB_MAGIC + b"\x02\xff\xfe" + b"\0" * 40],
)
def test_truncated_blobs_are_rejected(cipher: FieldCipher, blob: bytes) -> None:
    with pytest.raises(DecryptionError):
        cipher.decrypt_bytes(blob, context=CONTEXT)


def test_wrong_context_is_rejected(cipher: FieldCipher) -> None:
    token = cipher.encrypt_text(CANARY, context="messages.text:row-1")
    blob = cipher.encrypt_bytes(b"pcm", context="audio:row-1")
    with pytest.raises(DecryptionError):
        cipher.decrypt_text(token, context="messages.text:row-2")
    with pytest.raises(DecryptionError):
        cipher.decrypt_bytes(blob, context="audio:row-2")


def test_text_ciphertext_cannot_be_replayed_as_a_blob(cipher: FieldCipher) -> None:
    token = cipher.encrypt_text(CANARY, context=CONTEXT)
    as_blob = BLOB_MAGIC + b"\x02k0" + _payload(token)
    with pytest.raises(DecryptionError):
        cipher.decrypt_bytes(as_blob, context=CONTEXT)


def test_wrong_key_is_rejected() -> None:
    token = FieldCipher([("k0", _key())]).encrypt_text(CANARY, context=CONTEXT)
    with pytest.raises(DecryptionError):
        FieldCipher([("k0", _key())]).decrypt_text(token, context=CONTEXT)


def test_unknown_key_id_is_rejected(cipher: FieldCipher) -> None:
    other = FieldCipher([("k9", _key())])
    with pytest.raises(DecryptionError, match="key id"):
        cipher.decrypt_text(other.encrypt_text(CANARY, context=CONTEXT), context=CONTEXT)
    with pytest.raises(DecryptionError, match="key id"):
        cipher.decrypt_bytes(other.encrypt_bytes(b"pcm", context=CONTEXT), context=CONTEXT)


def test_rotation_keeps_old_rows_readable_and_flags_them() -> None:
    old_key, new_key = _key(), _key()
    before = FieldCipher([("k0", old_key)])
    token = before.encrypt_text(CANARY, context=CONTEXT)
    blob = before.encrypt_bytes(b"pcm", context=CONTEXT)
    assert not before.needs_rotation(token)
    assert not before.needs_rotation(blob)

    after = FieldCipher([("k1", new_key), ("k0", old_key)])
    assert after.current_key_id == "k1"
    assert after.needs_rotation(token)
    assert after.needs_rotation(blob)
    plain = after.decrypt_text(token, context=CONTEXT)
    assert plain == CANARY
    assert after.decrypt_bytes(blob, context=CONTEXT) == b"pcm"

    rotated = after.encrypt_text(plain, context=CONTEXT)
    assert rotated.startswith(f"{TEXT_PREFIX}k1:")
    assert not after.needs_rotation(rotated)
    assert FieldCipher([("k1", new_key)]).decrypt_text(rotated, context=CONTEXT) == CANARY


def test_plain_values_pass_through_and_need_rotation(cipher: FieldCipher) -> None:
    assert cipher.decrypt_text("written before encryption", context=CONTEXT) == (
        "written before encryption"
    )
    assert cipher.decrypt_bytes(b"RIFF....WAVE", context=CONTEXT) == b"RIFF....WAVE"
    assert not cipher.is_encrypted("enc:v2:something")
    assert not cipher.is_encrypted(b"RIFF")
    assert cipher.needs_rotation("plain text")
    assert cipher.needs_rotation(b"RIFF")


def test_100k_encryptions_use_100k_distinct_nonces(cipher: FieldCipher) -> None:
    count = 100_000
    nonces = {
        _payload(cipher.encrypt_text("same text", context=CONTEXT))[:NONCE_BYTES]
        for _ in range(count)
    }
    assert len(nonces) == count


@pytest.mark.parametrize("size", [0, 16, 24, 31, 33, 64])
def test_keys_that_are_not_32_bytes_are_rejected(size: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        FieldCipher([("k0", os.urandom(size))])


@pytest.mark.parametrize("key_id", ["", "has space", "colon:id", "x" * 17, "ünï"])
def test_bad_key_ids_are_rejected(key_id: str) -> None:
    with pytest.raises(ValueError, match="key id"):
        FieldCipher([(key_id, _key())])


def test_a_keyring_needs_keys_with_distinct_ids() -> None:
    with pytest.raises(ValueError, match="at least one"):
        FieldCipher([])
    with pytest.raises(ValueError, match="repeated"):
        FieldCipher([("k0", _key()), ("k0", _key())])


def test_parse_keyring_reads_ids_in_order() -> None:
    new_key, old_key = _key(), _key()
    spec = (
        f"k2:{base64.urlsafe_b64encode(new_key).decode()}, "
        f"k1:{base64.b64encode(old_key).decode().rstrip('=')}"
    )
    assert parse_keyring(spec) == [("k2", new_key), ("k1", old_key)]


def test_parse_keyring_names_a_bare_key_k1() -> None:
    key = _key()
    assert parse_keyring(base64.b64encode(key).decode()) == [("k1", key)]


def test_generated_keys_parse_and_differ() -> None:
    first, second = generate_key(), generate_key()
    assert first != second
    (key_id, key), *_ = parse_keyring(first)
    assert key_id == "k1"
    assert len(key) == 32
    assert FieldCipher(parse_keyring(f"k1:{first}")).current_key_id == "k1"


def _secret_spec_fragments() -> list[tuple[str, str]]:
    """Malformed keyring specs, each with the secret-looking part it must not echo."""
    short = base64.b64encode(b"S3CRET-short-key-16b").decode()
    good = generate_key()
    return [
        (f"k1:{short}", short),
        (short, short),
        (f"k1:{good}!!", good),
        (f"{good},{good}", good),
        (f"bad id:{good}", good),
        (f"k1:{good},k1:{good}", good),
        (f"k1:{good[:-3]}", good[:-3]),
    ]


@pytest.mark.parametrize(("spec", "secret"), _secret_spec_fragments())
def test_parse_keyring_errors_never_echo_key_material(spec: str, secret: str) -> None:
    with pytest.raises(ValueError, match="keyring") as excinfo:
        parse_keyring(spec)
    message = str(excinfo.value)
    assert secret not in message
    assert secret[:8] not in message


@pytest.mark.parametrize("spec", ["", " ", ",", " , "])
def test_parse_keyring_rejects_an_empty_spec(spec: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        parse_keyring(spec)
