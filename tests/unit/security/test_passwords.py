"""Password policy (NIST 800-63B) and the argon2id hasher: parameters, timing-safe unknown
users, at most two hashes at once, and an event loop that keeps running meanwhile."""

from __future__ import annotations

import asyncio
import re
import threading

import argon2
import pytest
from zxcvbn.frequency_lists import FREQUENCY_LISTS  # type: ignore[import-untyped]

from voxdialog.security.passwords import (
    COMMON_PASSWORD_COUNT,
    PasswordHasher,
    PasswordPolicyError,
    check_password_policy,
)

_PHC_PREFIX = re.compile(r"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$")
_COMMON: list[str] = FREQUENCY_LISTS["passwords"][:COMMON_PASSWORD_COUNT]


def _cheap_hasher(**kwargs: int) -> PasswordHasher:
    # Real argon2id with small parameters, for tests about scheduling rather than strength.
    return PasswordHasher(time_cost=1, memory_cost=1024, **kwargs)


# --- policy ---------------------------------------------------------------------------------


@pytest.mark.parametrize("password", ["", "Xk7#pq2", "é" * 7])
def test_passwords_under_eight_characters_are_rejected(password: str) -> None:
    with pytest.raises(PasswordPolicyError, match="at least 8 characters"):
        check_password_policy(password)


@pytest.mark.parametrize("password", ["Xk7#pq2z" * 16 + "a", "é" * 129])
def test_passwords_over_128_characters_are_rejected(password: str) -> None:
    with pytest.raises(PasswordPolicyError, match="at most 128 characters"):
        check_password_policy(password)


@pytest.mark.parametrize(
    "password",
    [
        "Xk7#pq2z",  # exactly 8
        "é" * 8,  # 8 characters, 16 bytes
        "é" * 128,  # 128 characters, 256 bytes: characters count, not bytes
        "correct horse battery staple and a long tail of words, " + "x" * 20,  # 64+
        "lowercaseonlyisfine",  # no composition rules
    ],
)
def test_uncommon_passwords_of_8_to_128_characters_are_accepted(password: str) -> None:
    check_password_policy(password)


@pytest.mark.parametrize("password", ["password1", "qwerty123", "PassWord1", "QWERTY123"])
def test_common_passwords_are_rejected_case_insensitively(password: str) -> None:
    assert password.lower() in _COMMON  # the blocklist really holds it

    with pytest.raises(PasswordPolicyError, match="too common"):
        check_password_policy(password)


def test_every_long_enough_entry_of_the_blocklist_is_rejected() -> None:
    long_enough = [entry for entry in _COMMON if 8 <= len(entry) <= 128]
    assert long_enough

    for entry in long_enough:
        with pytest.raises(PasswordPolicyError):
            check_password_policy(entry)


def test_only_the_first_3000_common_passwords_are_blocked() -> None:
    blocked = {entry.casefold() for entry in _COMMON}
    rarer = next(
        entry
        for entry in FREQUENCY_LISTS["passwords"][COMMON_PASSWORD_COUNT:]
        if len(entry) >= 8 and entry.casefold() not in blocked
    )

    check_password_policy(rarer)


@pytest.mark.parametrize(
    "password", ["alice.smith@example.com", "ALICE.SMITH@EXAMPLE.COM", "Alice.Smith"]
)
def test_the_email_or_its_local_part_is_rejected(password: str) -> None:
    with pytest.raises(PasswordPolicyError, match="e-mail"):
        check_password_policy(password, email="Alice.Smith@example.com")


def test_a_password_unrelated_to_the_email_is_accepted() -> None:
    check_password_policy("Xk7#pq2z-voice", email="alice.smith@example.com")


def test_policy_errors_are_value_errors_with_a_message() -> None:
    with pytest.raises(ValueError, match=r"\w+") as caught:
        check_password_policy("short")

    assert isinstance(caught.value, PasswordPolicyError)


# --- hashing --------------------------------------------------------------------------------


async def test_a_hash_verifies_its_password_and_nothing_else() -> None:
    hasher = PasswordHasher()

    stored = await hasher.hash("Xk7#pq2z-voice")

    assert await hasher.verify(stored, "Xk7#pq2z-voice")
    assert not await hasher.verify(stored, "Xk7#pq2z-voicE")
    assert not await hasher.verify(stored, "")


async def test_hashes_are_salted() -> None:
    hasher = _cheap_hasher()

    assert await hasher.hash("same password") != await hasher.hash("same password")


async def test_default_hashes_are_argon2id_with_owasp_parameters() -> None:
    stored = await PasswordHasher().hash("Xk7#pq2z-voice")

    match = _PHC_PREFIX.match(stored)
    assert match is not None, stored.split("$")[1]
    assert tuple(int(group) for group in match.groups()) == (19456, 2, 1)


async def test_an_unknown_user_still_costs_an_argon2_verification(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked: list[str] = []
    real_verify = argon2.PasswordHasher.verify

    def counting_verify(
        self: argon2.PasswordHasher, stored: str | bytes, password: str | bytes
    ) -> bool:
        checked.append(str(stored))
        return real_verify(self, stored, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", counting_verify)
    hasher = PasswordHasher()

    assert not await hasher.verify(None, "Xk7#pq2z-voice")
    assert not await hasher.verify(None, "another guess!")

    assert len(checked) == 2
    assert all(_PHC_PREFIX.match(stored) for stored in checked)
    assert checked[0] == checked[1]  # one dummy hash, computed once


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "not a hash",
        "$argon2id$v=19$m=19456,t=2,p=1$garbage",
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",  # bcrypt
    ],
)
async def test_a_malformed_stored_hash_verifies_false_without_raising(stored: str) -> None:
    assert not await _cheap_hasher().verify(stored, "Xk7#pq2z-voice")


async def test_needs_rehash_flags_other_parameters_and_unreadable_hashes() -> None:
    hasher = PasswordHasher()

    assert not hasher.needs_rehash(await hasher.hash("Xk7#pq2z-voice"))
    assert hasher.needs_rehash(await _cheap_hasher().hash("Xk7#pq2z-voice"))
    assert hasher.needs_rehash("not a hash")


# --- scheduling -----------------------------------------------------------------------------


class _HashProbe:
    """Stands in for argon2's hash (patched on the class, so no self): records overlaps."""

    def __init__(self, *, pair_up: bool = False) -> None:
        self.running = 0
        self.most_running = 0
        self.calls = 0
        self.release = threading.Event()
        # A barrier of two proves two hashes really overlap (it fails if they never do).
        self._pair = threading.Barrier(2, timeout=10) if pair_up else None
        self._lock = threading.Lock()

    def hash(self, password: str | bytes, **_: object) -> str:
        with self._lock:
            self.calls += 1
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            if self._pair is not None:
                self._pair.wait()
            else:
                self.release.wait(timeout=10)
            return f"hashed:{password!r}"
        finally:
            with self._lock:
                self.running -= 1


async def test_at_most_two_hashes_run_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = _HashProbe(pair_up=True)
    monkeypatch.setattr(argon2.PasswordHasher, "hash", probe.hash)
    hasher = PasswordHasher()

    results = await asyncio.gather(*(hasher.hash(f"password {i}") for i in range(6)))

    assert len(set(results)) == 6
    assert probe.most_running == 2


async def test_a_cancelled_caller_keeps_its_slot_until_the_hash_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    probe = _HashProbe()
    monkeypatch.setattr(argon2.PasswordHasher, "hash", probe.hash)
    hasher = PasswordHasher()
    try:
        first = [asyncio.create_task(hasher.hash(f"password {i}")) for i in range(2)]
        while probe.running < 2:
            await asyncio.sleep(0.005)
        for task in first:
            task.cancel()
        for task in first:
            with pytest.raises(asyncio.CancelledError):
                await task

        third = asyncio.create_task(hasher.hash("password 3"))
        await asyncio.sleep(0.05)  # room for the third to start, were a slot free
        assert probe.calls == 2
    finally:
        probe.release.set()

    assert await third == "hashed:'password 3'"
    assert probe.most_running == 2


async def test_the_event_loop_keeps_running_during_a_hash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    probe = _HashProbe()
    monkeypatch.setattr(argon2.PasswordHasher, "hash", probe.hash)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            if ticks == 3:
                probe.release.set()  # the hash can only end once the loop has ticked
            await asyncio.sleep(0)

    ticking = asyncio.create_task(ticker())
    try:
        await PasswordHasher().hash("Xk7#pq2z-voice")
        assert probe.release.is_set()
    finally:
        ticking.cancel()
        probe.release.set()

    assert ticks > 0


async def test_the_event_loop_keeps_running_during_a_real_hash() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticking = asyncio.create_task(ticker())
    await PasswordHasher().hash("Xk7#pq2z-voice")
    ticking.cancel()

    assert ticks > 0


def test_one_hasher_serves_several_event_loops() -> None:
    hasher = _cheap_hasher(max_concurrent=1)

    async def burst() -> list[str]:
        # More callers than slots, so each loop has to wait on its own semaphore.
        return await asyncio.gather(*(hasher.hash(f"password {i}") for i in range(3)))

    assert len(asyncio.run(burst())) == 3
    assert len(asyncio.run(burst())) == 3
