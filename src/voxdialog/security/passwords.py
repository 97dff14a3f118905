"""Password policy (NIST SP 800-63B) and argon2id hashing kept off the event loop.

The policy has no composition rules: only length, a blocklist of common passwords and "not your
e-mail". Hashing is memory-hard on purpose (19 MiB per hash), so it runs in worker threads and at
most ``max_concurrent`` hashes run at once: a burst of logins must not exhaust memory or stall
the audio pipeline.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import threading
import weakref
from collections.abc import Callable
from typing import TypeVar

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128
#: How many entries of zxcvbn's password frequency list count as "too common".
COMMON_PASSWORD_COUNT = 3000

_T = TypeVar("_T")


class PasswordPolicyError(ValueError):
    """A chosen password breaks the policy; the message can be shown to the user as is."""


def check_password_policy(password: str, *, email: str | None = None) -> None:
    """Check a new password against the NIST SP 800-63B rules we apply.

    Args:
        password: The password the user chose.
        email: The user's e-mail address, when known; the password may not equal it or its
            local part.

    Raises:
        PasswordPolicyError: The password is too short, too long, too common or is the e-mail.
    """
    length = len(password)  # characters, not bytes: NIST counts what the user typed
    if length < MIN_PASSWORD_LENGTH:
        raise PasswordPolicyError(
            f"Password must be at least {MIN_PASSWORD_LENGTH} characters long."
        )
    if length > MAX_PASSWORD_LENGTH:
        raise PasswordPolicyError(
            f"Password must be at most {MAX_PASSWORD_LENGTH} characters long."
        )
    folded = password.casefold()
    if folded in _common_passwords():
        raise PasswordPolicyError("This password is too common; please choose another one.")
    if email and folded in _email_forms(email):
        raise PasswordPolicyError("Password must not be your e-mail address.")


@functools.cache
def _common_passwords() -> frozenset[str]:
    # Imported here: the frequency lists are large and only account endpoints need them.
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # type: ignore[import-untyped]

    ranked: list[str] = FREQUENCY_LISTS["passwords"]
    return frozenset(entry.casefold() for entry in ranked[:COMMON_PASSWORD_COUNT])


def _email_forms(email: str) -> set[str]:
    folded = email.strip().casefold()
    local_part = folded.rpartition("@")[0]
    return {form for form in (folded, local_part) if form}


class PasswordHasher:
    """argon2id hashing with OWASP minimum parameters, run in threads, at most N at once."""

    def __init__(
        self,
        *,
        time_cost: int = 2,
        memory_cost: int = 19456,
        parallelism: int = 1,
        hash_len: int = 32,
        salt_len: int = 16,
        max_concurrent: int = 2,
    ) -> None:
        """Create a hasher.

        Args:
            time_cost: argon2 iterations (OWASP minimum: 2).
            memory_cost: argon2 memory in KiB (OWASP minimum: 19456, i.e. 19 MiB).
            parallelism: argon2 lanes (OWASP: 1).
            hash_len: Length of the derived hash in bytes.
            salt_len: Length of the random salt in bytes.
            max_concurrent: Most hashes or verifications running at the same time.
        """
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self._argon2 = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            hash_len=hash_len,
            salt_len=salt_len,
            type=argon2.Type.ID,
        )
        self._max_concurrent = max_concurrent
        # asyncio.Semaphore binds to the first loop that waits on it, and tests (or a CLI calling
        # asyncio.run twice) use several loops: keep one per running loop. The server runs one
        # loop, so there the limit is global.
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        # Strong references to running jobs: the loop only keeps weak ones to tasks.
        self._in_flight: set[asyncio.Task[object]] = set()
        self._dummy_hash: str | None = None
        self._dummy_lock = threading.Lock()

    async def hash(self, password: str) -> str:
        """The argon2id hash of ``password`` in PHC string form (``$argon2id$v=19$m=...``)."""
        return await self._run_limited(lambda: self._argon2.hash(password))

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored_hash``.

        Args:
            stored_hash: The user's stored hash, or None when the user is unknown or has no
                password. None still costs one full verification against a fixed dummy hash,
                so the response time does not reveal whether the account exists.
            password: The password to check.

        Returns:
            True only for a match; False for a mismatch, a None or a malformed hash.
        """
        return await self._run_limited(lambda: self._verify_sync(stored_hash, password))

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether ``stored_hash`` was made with other parameters (or is unreadable)."""
        try:
            return self._argon2.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

    def _verify_sync(self, stored_hash: str | None, password: str) -> bool:
        if stored_hash is None:
            self._check(self._dummy(), password)
            return False
        return self._check(stored_hash, password)

    def _check(self, stored_hash: str, password: str) -> bool:
        try:
            return self._argon2.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def _dummy(self) -> str:
        # Made lazily (in a worker thread) so building a hasher never blocks; it hashes a random
        # secret nobody knows, so nothing can ever match it.
        with self._dummy_lock:
            if self._dummy_hash is None:
                self._dummy_hash = self._argon2.hash(secrets.token_urlsafe(32))
            return self._dummy_hash

    async def _run_limited(self, work: Callable[[], _T]) -> _T:
        slots = self._slots_for_running_loop()
        await slots.acquire()
        # The slot is released when the thread finishes, not when the caller stops waiting: a
        # cancelled request (client gone) cannot stop argon2 mid-hash, and releasing early would
        # let a flood of aborted logins run unbounded hashes at once.
        job: asyncio.Task[_T] = asyncio.create_task(asyncio.to_thread(work))
        self._in_flight.add(job)
        job.add_done_callback(functools.partial(self._finish, slots))
        return await asyncio.shield(job)

    def _finish(self, slots: asyncio.Semaphore, job: asyncio.Task[object]) -> None:
        slots.release()
        self._in_flight.discard(job)
        if not job.cancelled():
            job.exception()  # marks it retrieved: a caller that left must not cause a log line

    def _slots_for_running_loop(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = asyncio.Semaphore(self._max_concurrent)
            self._slots[loop] = slots
        return slots
