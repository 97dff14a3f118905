"""Rate limits per IP, per user and per tenant: in memory by default, in Redis when configured.

Both backends implement GCRA (the generic cell rate algorithm): a key stores one number, its
*theoretical arrival time* (TAT). A limit of ``count`` per ``per_s`` seconds spaces hits
``per_s / count`` apart and tolerates a burst of ``count``. A hit of cost ``c`` is allowed when
``max(TAT, now) + c * interval - now <= per_s``; an allowed hit moves the TAT forward, a denied
one changes nothing (so hammering a blocked key does not lengthen its block).

Callers namespace their keys (``"tenant:<tenant_id>:user:<id>:login"``); the Redis backend adds
its own prefix. When Redis cannot be reached, :meth:`RedisRateLimiter.hit` raises
:class:`RateLimiterUnavailable`; the caller chooses to fail open (serve, for ordinary traffic)
or closed (refuse, for login and other brute-forceable endpoints).
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from voxdialog.clock import Clock, MonotonicClock

#: Slack in seconds on the GCRA comparison, so float rounding never denies the last hit of a
#: burst. One microsecond is far below anything a rate limit can observe.
_TOLERANCE_S = 1e-6

#: KEYS[1]: the bucket. ARGV: emission interval (s), period (s), cost, tolerance (s).
#: Returns {allowed (0/1), remaining, retry_after_s as a string (Lua numbers become integers)}.
#: The clock is the Redis server's, so every node sharing the server agrees on "now".
_GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tolerance = tonumber(ARGV[4])
local ahead = 0
local stored = redis.call('GET', KEYS[1])
if stored then
  ahead = math.max(tonumber(stored) - now, 0)
end
local new_ahead = ahead + cost * interval
if new_ahead - period > tolerance then
  local remaining = math.floor((period - ahead) / interval + 1e-9)
  return {0, math.max(remaining, 0), string.format('%.6f', new_ahead - period)}
end
local ttl_ms = math.max(math.ceil(new_ahead * 1000), 1)
redis.call('SET', KEYS[1], string.format('%.17g', now + new_ahead), 'PX', ttl_ms)
local remaining = math.floor((period - new_ahead) / interval + 1e-9)
return {1, math.max(remaining, 0), '0'}
"""


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``count`` units per ``per_s`` seconds (a burst of ``count`` is allowed).

    Raises:
        ValueError: ``count`` below 1 or ``per_s`` not positive.
    """

    count: int
    per_s: float

    def __post_init__(self) -> None:
        if self.count < 1 or not self.per_s > 0:
            raise ValueError("a limit needs count >= 1 and per_s > 0")

    @property
    def interval_s(self) -> float:
        """Seconds between hits at the sustained rate."""
        return self.per_s / self.count


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one hit.

    Attributes:
        allowed: Whether the hit was accepted (and counted).
        remaining: Units still available right now after this hit.
        retry_after_s: Seconds until the same hit would be allowed; 0 when allowed.
    """

    allowed: bool
    remaining: int
    retry_after_s: float


class RateLimiterUnavailable(Exception):
    """The rate limit store cannot be reached; the caller decides to fail open or closed."""


class RateLimiter(Protocol):
    """A store of rate-limit state shared by every limit of the process (or cluster)."""

    async def hit(self, key: str, limit: Limit, *, cost: int = 1) -> Decision:
        """Count ``cost`` units against ``key`` if ``limit`` allows it."""
        ...

    async def reset(self, key: str) -> None:
        """Forget everything counted against ``key``."""
        ...

    async def ping(self) -> str:
        """Where the state lives (``memory`` or ``redis``), once the store has answered.

        Raises:
            RateLimiterUnavailable: The store cannot be reached.
        """
        ...

    async def aclose(self) -> None:
        """Release the store's resources."""
        ...


class MemoryRateLimiter:
    """GCRA in process memory; one float per key, at most ``max_keys`` keys.

    Beyond ``max_keys`` the least recently hit keys are dropped (their state is forgotten,
    which can only let a dropped key through earlier). No coroutine switch happens inside a
    hit, so concurrent coroutines on one event loop see consistent counts.

    Args:
        max_keys: Bound on the number of keys remembered.
        clock: The monotonic clock to read (the real one unless a test injects another).
    """

    def __init__(self, *, max_keys: int = 100_000, clock: Clock | None = None) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self._max_keys = max_keys
        self._clock = clock if clock is not None else MonotonicClock()
        self._tats: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        """How many keys are remembered."""
        return len(self._tats)

    async def hit(self, key: str, limit: Limit, *, cost: int = 1) -> Decision:
        """Count ``cost`` units against ``key`` if ``limit`` allows it.

        Raises:
            ValueError: ``cost`` below 1 or above ``limit.count`` (it could never be allowed).
        """
        _check_cost(limit, cost)
        now = self._clock.now()
        ahead = max(self._tats.get(key, now) - now, 0.0)
        new_ahead = ahead + cost * limit.interval_s
        if new_ahead - limit.per_s > _TOLERANCE_S:
            return Decision(False, _remaining(limit, ahead), new_ahead - limit.per_s)
        self._tats[key] = now + new_ahead
        self._tats.move_to_end(key)
        self._evict(now)
        return Decision(True, _remaining(limit, new_ahead), 0.0)

    async def reset(self, key: str) -> None:
        """Forget everything counted against ``key``."""
        self._tats.pop(key, None)

    async def ping(self) -> str:
        """Always there: it is this process's memory."""
        return "memory"

    async def aclose(self) -> None:
        """Drop all state."""
        self._tats.clear()

    def _evict(self, now: float) -> None:
        # The oldest entries are usually already back to a full bucket: dropping those loses
        # nothing. Past the bound, the least recently used go even if still limited.
        while self._tats:
            oldest_key, oldest_tat = next(iter(self._tats.items()))
            if oldest_tat > now and len(self._tats) <= self._max_keys:
                return
            del self._tats[oldest_key]


class RedisRateLimiter:
    """GCRA in Redis, atomic through one Lua script; keys expire once their bucket is full.

    Args:
        url: ``redis://host:port/db`` (``rediss://`` for TLS).
        prefix: Prepended to every caller key, so the limiter owns a namespace.
        timeout_s: Connect and socket timeout; past it a hit raises
            :class:`RateLimiterUnavailable` rather than stalling the request.
    """

    def __init__(self, url: str, *, prefix: str = "voxdialog:rl:", timeout_s: float = 1.0) -> None:
        self._prefix = prefix
        # One immediate retry replaces a pooled connection the server has dropped; no backoff,
        # since a limiter that waits seconds for Redis stalls every request behind it.
        self._redis = Redis.from_url(
            url,
            socket_connect_timeout=timeout_s,
            socket_timeout=timeout_s,
            retry=Retry(NoBackoff(), 1),
        )
        self._gcra = self._redis.register_script(_GCRA_LUA)

    @property
    def prefix(self) -> str:
        """The namespace added in front of every key."""
        return self._prefix

    async def hit(self, key: str, limit: Limit, *, cost: int = 1) -> Decision:
        """Count ``cost`` units against ``key`` if ``limit`` allows it.

        Raises:
            ValueError: ``cost`` below 1 or above ``limit.count``.
            RateLimiterUnavailable: Redis cannot be reached or timed out.
        """
        _check_cost(limit, cost)
        args = [repr(limit.interval_s), repr(limit.per_s), str(cost), repr(_TOLERANCE_S)]
        try:
            allowed, remaining, retry_after = await self._gcra(keys=[self._prefix + key], args=args)
        except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
            raise RateLimiterUnavailable("the Redis rate limit store is unreachable") from exc
        return Decision(bool(allowed), int(remaining), float(retry_after))

    async def reset(self, key: str) -> None:
        """Forget everything counted against ``key``.

        Raises:
            RateLimiterUnavailable: Redis cannot be reached or timed out.
        """
        try:
            await self._redis.delete(self._prefix + key)
        except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
            raise RateLimiterUnavailable("the Redis rate limit store is unreachable") from exc

    async def ping(self) -> str:
        """Ask Redis for a PONG.

        Raises:
            RateLimiterUnavailable: Redis cannot be reached or timed out.
        """
        try:
            await self._redis.ping()
        except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
            raise RateLimiterUnavailable("the Redis rate limit store is unreachable") from exc
        return "redis"

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()


def make_rate_limiter(redis_url: str | None) -> RateLimiter:
    """A Redis limiter when ``redis_url`` is set (shared by every node), else an in-memory one."""
    if redis_url:
        return RedisRateLimiter(redis_url)
    return MemoryRateLimiter()


class LoginThrottle:
    """Brute-force guard for logins: per account and address, per address, per account.

    Every attempt counts against its address (any account) and against its account from that
    address (:meth:`allow`), so failures from one address never use up the budget of the
    owner's other addresses. All addresses together also share a per-account ceiling (NIST
    800-63B 5.2.2: well under 100 consecutive failures), except the address the account last
    signed in from: an attacker elsewhere can exhaust the ceiling but cannot lock the owner out
    at home. A successful login forgives its account (:meth:`succeeded`) but not its address,
    so one valid account cannot launder an address that is guessing others. Accounts are keyed
    by a hash of the case-folded email, so no address reaches Redis; IPv6 clients are grouped
    by /64, the block one host usually holds.

    Args:
        limiter: Where the counts live.
        per_pair: Attempts allowed per account from one address.
        per_ip: Attempts allowed per client address (or IPv6 /64), whatever the account.
        per_account: Attempts allowed per account from every address but its trusted one.
    """

    def __init__(
        self,
        limiter: RateLimiter,
        *,
        per_pair: Limit = Limit(5, 60),
        per_ip: Limit = Limit(20, 60),
        per_account: Limit = Limit(20, 86_400),
    ) -> None:
        self._limiter = limiter
        self._per_pair = per_pair
        self._per_ip = per_ip
        self._per_account = per_account

    async def allow(self, email: str, ip: str, *, trusted_ip: str | None = None) -> Decision:
        """Count one login attempt; allowed only when each of its limits has room.

        A limit that refuses stops the count there, so a refused attempt uses up nothing
        further: a blocked address cannot keep draining the account's ceiling.

        Args:
            email: The account tried.
            ip: The client address.
            trusted_ip: The address the account last signed in from (None: unknown account
                or never signed in); attempts from it skip the account-wide ceiling.

        Raises:
            RateLimiterUnavailable: The store is unreachable (login should fail closed).
        """
        address = _ip_key(ip)
        keys = [(address, self._per_ip), (_pair_key(email, address), self._per_pair)]
        if trusted_ip is None or _ip_key(trusted_ip) != address:
            keys.append((_account_key(email), self._per_account))
        remaining: list[int] = []
        for key, limit in keys:
            decision = await self._limiter.hit(key, limit)
            if not decision.allowed:
                return decision
            remaining.append(decision.remaining)
        return Decision(True, min(remaining), 0.0)

    async def succeeded(self, email: str, ip: str) -> None:
        """Forget the failed attempts against this account after a successful login."""
        await self._limiter.reset(_account_key(email))
        await self._limiter.reset(_pair_key(email, _ip_key(ip)))


def _account_digest(email: str) -> str:
    return hashlib.sha256(email.strip().casefold().encode()).hexdigest()[:32]


def _account_key(email: str) -> str:
    return f"login:account:{_account_digest(email)}"


def _pair_key(email: str, address_key: str) -> str:
    return f"login:pair:{_account_digest(email)}:{address_key.removeprefix('login:ip:')}"


def _ip_key(ip: str) -> str:
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return f"login:ip:{ip.strip()}"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"login:ip:{address.ipv4_mapped}"
        return f"login:ip:{ipaddress.IPv6Network((address, 64), strict=False)}"
    return f"login:ip:{address}"


def _check_cost(limit: Limit, cost: int) -> None:
    if not 1 <= cost <= limit.count:
        raise ValueError(f"cost must be between 1 and the limit's count ({limit.count})")


def _remaining(limit: Limit, ahead: float) -> int:
    # The small epsilon keeps float error from turning 4.0 into 3.999... and floor to 3.
    return max(math.floor((limit.per_s - ahead) / limit.interval_s + 1e-9), 0)
