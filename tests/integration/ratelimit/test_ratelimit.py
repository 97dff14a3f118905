"""Rate limiting against both backends: in memory (fake clock) and a real Redis (db 15)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator

import pytest
import redis
import redis.asyncio

from voxdialog.security.ratelimit import (
    Decision,
    Limit,
    LoginThrottle,
    MemoryRateLimiter,
    RateLimiter,
    RateLimiterUnavailable,
    RedisRateLimiter,
    make_rate_limiter,
)
from voxdialog.testing.clock import FakeClock

REDIS_URL = "redis://127.0.0.1:6379/15"
UNREACHABLE_REDIS_URL = "redis://127.0.0.1:1/0"
MINUTE = Limit(10, 60)


#: Where the fake clock starts: like a real monotonic reading, well away from zero.
CLOCK_START = 1_000.0


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis (db 15); fails under CI=true when it is down, skips otherwise."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        reason = f"Redis is not reachable at {REDIS_URL}: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """A plain client on the test database, to look at what the limiter stored."""
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def redis_limiter(
    redis_url: str, raw_redis: redis.asyncio.Redis
) -> AsyncIterator[RedisRateLimiter]:
    """A Redis limiter in a namespace of its own, whose keys are deleted afterwards."""
    limiter = RedisRateLimiter(redis_url, prefix=f"voxdialog:test:rl:{uuid.uuid4().hex}:")
    try:
        yield limiter
    finally:
        await limiter.aclose()
        async for key in raw_redis.scan_iter(match=f"{limiter.prefix}*"):
            await raw_redis.delete(key)


@pytest.fixture(params=["memory", "redis"])
def limiter(request: pytest.FixtureRequest) -> RateLimiter:
    """Each test that takes it runs once per backend (the memory one holds no resources)."""
    if request.param == "redis":
        redis_backed: RedisRateLimiter = request.getfixturevalue("redis_limiter")
        return redis_backed
    return MemoryRateLimiter(clock=FakeClock(CLOCK_START))


async def _hits(limiter: RateLimiter, key: str, limit: Limit, times: int) -> list[Decision]:
    return [await limiter.hit(key, limit) for _ in range(times)]


async def test_allows_the_count_then_denies(limiter: RateLimiter) -> None:
    limit = Limit(3, 60)
    allowed = await _hits(limiter, "tenant:t1:user:u1:api", limit, 3)
    assert [d.allowed for d in allowed] == [True, True, True]
    assert [d.remaining for d in allowed] == [2, 1, 0]
    assert all(d.retry_after_s == 0 for d in allowed)

    denied = await limiter.hit("tenant:t1:user:u1:api", limit)
    assert not denied.allowed
    assert denied.remaining == 0
    assert 0 < denied.retry_after_s <= 20


# Intervals such as 60/9 do not add up to exactly 60 in floating point.
@pytest.mark.parametrize("count", [7, 9, 11, 21, 39, 100])
async def test_a_full_burst_is_allowed_whatever_the_rounding(
    limiter: RateLimiter, count: int
) -> None:
    limit = Limit(count, 60)
    decisions = await _hits(limiter, "burst", limit, count + 1)
    assert [d.allowed for d in decisions] == [True] * count + [False]
    assert decisions[-2].remaining == 0


async def test_keys_do_not_interfere(limiter: RateLimiter) -> None:
    limit = Limit(2, 60)
    await _hits(limiter, "tenant:a:user:1:login", limit, 2)
    assert not (await limiter.hit("tenant:a:user:1:login", limit)).allowed
    assert (await limiter.hit("tenant:a:user:2:login", limit)).allowed
    assert (await limiter.hit("tenant:b:user:1:login", limit)).allowed


async def test_cost_counts_several_units(limiter: RateLimiter) -> None:
    first = await limiter.hit("bulk", MINUTE, cost=4)
    second = await limiter.hit("bulk", MINUTE, cost=4)
    assert (first.allowed, first.remaining) == (True, 6)
    assert (second.allowed, second.remaining) == (True, 2)

    too_much = await limiter.hit("bulk", MINUTE, cost=4)
    assert not too_much.allowed
    assert too_much.remaining == 2
    assert too_much.retry_after_s > 0

    rest = await limiter.hit("bulk", MINUTE, cost=2)
    assert (rest.allowed, rest.remaining) == (True, 0)


@pytest.mark.parametrize("cost", [0, -1, 11])
async def test_impossible_costs_are_refused(limiter: RateLimiter, cost: int) -> None:
    with pytest.raises(ValueError, match="cost"):
        await limiter.hit("k", MINUTE, cost=cost)


async def test_reset_forgets_the_key(limiter: RateLimiter) -> None:
    limit = Limit(2, 60)
    await _hits(limiter, "k", limit, 2)
    assert not (await limiter.hit("k", limit)).allowed
    await limiter.reset("k")
    fresh = await limiter.hit("k", limit)
    assert (fresh.allowed, fresh.remaining) == (True, 1)
    await limiter.reset("never-hit")


async def test_concurrent_hits_allow_exactly_the_limit(limiter: RateLimiter) -> None:
    decisions = await asyncio.gather(*(limiter.hit("burst", MINUTE) for _ in range(50)))
    assert sum(d.allowed for d in decisions) == 10
    assert all(d.retry_after_s > 0 for d in decisions if not d.allowed)


async def test_memory_allows_again_once_retry_after_has_passed() -> None:
    clock = FakeClock(CLOCK_START)
    limiter = MemoryRateLimiter(clock=clock)
    limit = Limit(2, 10)
    await _hits(limiter, "k", limit, 2)
    denied = await limiter.hit("k", limit)
    assert denied.retry_after_s == pytest.approx(5.0)

    clock.advance(denied.retry_after_s - 0.01)
    assert not (await limiter.hit("k", limit)).allowed
    clock.advance(0.01)
    assert (await limiter.hit("k", limit)).allowed
    # The sustained rate is one per 5 s; after a full idle window the whole burst is back.
    assert not (await limiter.hit("k", limit)).allowed
    clock.advance(10)
    assert [d.allowed for d in await _hits(limiter, "k", limit, 3)] == [True, True, False]


async def test_redis_allows_again_after_the_window(redis_limiter: RedisRateLimiter) -> None:
    limit = Limit(1, 0.2)
    denied = None
    for _ in range(50):
        decision = await redis_limiter.hit("tiny", limit)
        if not decision.allowed:
            denied = decision
            break
    assert denied is not None, "two back-to-back hits were never denied"
    assert 0 < denied.retry_after_s <= 0.2

    async with asyncio.timeout(10):
        while not (await redis_limiter.hit("tiny", limit)).allowed:
            await asyncio.sleep(0.02)


async def test_redis_keys_are_prefixed_and_expire(
    redis_limiter: RedisRateLimiter, raw_redis: redis.asyncio.Redis
) -> None:
    await redis_limiter.hit("tenant:t1:user:u1:login", Limit(5, 60))
    await _hits(redis_limiter, "tenant:t1:ip:198.51.100.4", Limit(2, 30), 2)

    keys = sorted([key async for key in raw_redis.scan_iter(match=f"{redis_limiter.prefix}*")])
    assert keys == [
        f"{redis_limiter.prefix}tenant:t1:ip:198.51.100.4",
        f"{redis_limiter.prefix}tenant:t1:user:u1:login",
    ]
    # One hit of 5 per 60 s fills the bucket again after 12 s; two of 2 per 30 s after 30 s.
    assert 0 < await raw_redis.pttl(keys[1]) <= 12_000
    assert 0 < await raw_redis.pttl(keys[0]) <= 30_000
    assert await raw_redis.ttl(keys[0]) > 0


async def test_unreachable_redis_raises_unavailable() -> None:
    limiter = RedisRateLimiter(UNREACHABLE_REDIS_URL)
    try:
        with pytest.raises(RateLimiterUnavailable):
            await limiter.hit("k", MINUTE)
        with pytest.raises(RateLimiterUnavailable):
            await limiter.reset("k")
        with pytest.raises(RateLimiterUnavailable):
            await LoginThrottle(limiter).allow("alice@example.com", "198.51.100.4")
    finally:
        await limiter.aclose()


async def test_make_rate_limiter_picks_the_backend() -> None:
    for url in (None, ""):
        memory = make_rate_limiter(url)
        assert isinstance(memory, MemoryRateLimiter)
        await memory.aclose()
    remote = make_rate_limiter(REDIS_URL)
    assert isinstance(remote, RedisRateLimiter)
    await remote.aclose()


async def test_memory_limiter_forgets_the_least_recently_used_keys() -> None:
    clock = FakeClock(CLOCK_START)
    limiter = MemoryRateLimiter(max_keys=3, clock=clock)
    limit = Limit(1, 60)
    for key in ("a", "b", "c"):
        await limiter.hit(key, limit)
    await limiter.hit("a", limit)  # denied, but a denial does not make "a" recently used
    await limiter.hit("d", limit)
    assert len(limiter) == 3
    assert (await limiter.hit("a", limit)).allowed  # "a" was the oldest: forgotten
    assert not (await limiter.hit("c", limit)).allowed
    assert not (await limiter.hit("d", limit)).allowed


async def test_memory_limiter_drops_keys_whose_bucket_is_full_again() -> None:
    clock = FakeClock(CLOCK_START)
    limiter = MemoryRateLimiter(clock=clock)
    for key in ("a", "b", "c"):
        await limiter.hit(key, Limit(1, 1))
    clock.advance(2)
    await limiter.hit("d", Limit(1, 1))
    assert len(limiter) == 1


@pytest.mark.parametrize(("count", "per_s"), [(0, 60), (-1, 60), (5, 0), (5, -1)])
def test_limits_must_be_positive(count: int, per_s: float) -> None:
    with pytest.raises(ValueError, match="count"):
        Limit(count, per_s)


async def test_login_blocks_an_account_from_one_address_not_from_others(
    limiter: RateLimiter,
) -> None:
    throttle = LoginThrottle(limiter)
    attempts = [await throttle.allow("alice@example.com", "198.51.100.4") for _ in range(5)]
    assert all(d.allowed for d in attempts)

    blocked = await throttle.allow("Alice@Example.COM", "198.51.100.4")
    assert not blocked.allowed
    assert blocked.retry_after_s > 0
    # Failures from one address do not use up the account's budget at another address.
    assert (await throttle.allow("alice@example.com", "203.0.113.9")).allowed
    assert (await throttle.allow("bob@example.com", "192.0.2.33")).allowed


async def test_an_attacker_cannot_lock_the_owner_out_of_their_own_address(
    limiter: RateLimiter,
) -> None:
    throttle = LoginThrottle(limiter, per_account=Limit(20, 86_400))
    home = "192.0.2.10"
    # An attacker spread over many addresses exhausts the account-wide ceiling ...
    spread = [await throttle.allow("owner@example.com", f"10.1.0.{n}") for n in range(40)]
    assert sum(d.allowed for d in spread) == 20
    assert not (await throttle.allow("owner@example.com", "10.2.0.1", trusted_ip=home)).allowed
    # ... but the address the owner last signed in from keeps its own budget.
    at_home = [await throttle.allow("owner@example.com", home, trusted_ip=home) for _ in range(6)]
    assert [d.allowed for d in at_home] == [True] * 5 + [False]
    await throttle.succeeded("owner@example.com", home)
    assert (await throttle.allow("owner@example.com", "10.2.0.1", trusted_ip=home)).allowed


async def test_login_blocks_an_ip_trying_many_accounts(limiter: RateLimiter) -> None:
    throttle = LoginThrottle(limiter, per_ip=Limit(20, 60))
    spraying = "198.51.100.77"
    attempts = [await throttle.allow(f"user{n}@example.com", spraying) for n in range(20)]
    assert all(d.allowed for d in attempts)

    blocked = await throttle.allow("user20@example.com", spraying)
    assert not blocked.allowed
    assert blocked.retry_after_s > 0
    assert (await throttle.allow("user20@example.com", "192.0.2.1")).allowed


async def test_a_blocked_ip_cannot_lock_other_peoples_accounts(limiter: RateLimiter) -> None:
    throttle = LoginThrottle(limiter, per_ip=Limit(2, 60))
    attacker = "198.51.100.66"
    await throttle.allow("x@example.com", attacker)
    await throttle.allow("y@example.com", attacker)
    for _ in range(10):
        assert not (await throttle.allow("victim@example.com", attacker)).allowed
    from_home = LoginThrottle(limiter, per_ip=Limit(20, 60))
    attempts = [await from_home.allow("victim@example.com", "192.0.2.50") for _ in range(5)]
    assert all(d.allowed for d in attempts)


async def test_login_groups_ipv6_clients_by_64(limiter: RateLimiter) -> None:
    throttle = LoginThrottle(limiter, per_ip=Limit(2, 60))
    assert (await throttle.allow("a@example.com", "2001:db8:1:2::1")).allowed
    assert (await throttle.allow("b@example.com", "2001:db8:1:2:ffff::9")).allowed
    assert not (await throttle.allow("c@example.com", "2001:db8:1:2::abcd")).allowed
    assert (await throttle.allow("c@example.com", "2001:db8:1:3::1")).allowed


async def test_login_success_forgives_the_account(limiter: RateLimiter) -> None:
    throttle = LoginThrottle(limiter)
    for _ in range(4):
        assert (await throttle.allow("carol@example.com", "198.51.100.4")).allowed
    await throttle.succeeded("CAROL@example.com", "198.51.100.4")
    after = [await throttle.allow("carol@example.com", "198.51.100.4") for _ in range(6)]
    assert [d.allowed for d in after] == [True] * 5 + [False]


@pytest.mark.parametrize(("rotate_ips", "allowed"), [(False, 5), (True, 20)])
async def test_100_consecutive_failures_are_mostly_refused(
    limiter: RateLimiter, rotate_ips: bool, allowed: int
) -> None:
    throttle = LoginThrottle(limiter)
    tried = 0
    for n in range(100):
        ip = f"10.0.{n // 250}.{n % 250}" if rotate_ips else "10.0.0.1"
        tried += (await throttle.allow("dave@example.com", ip)).allowed
    assert tried == allowed  # the default ceiling: 20 a day from all addresses together


async def test_login_keys_in_redis_hold_no_email(
    redis_limiter: RedisRateLimiter, raw_redis: redis.asyncio.Redis
) -> None:
    await LoginThrottle(redis_limiter).allow("Erin.Secret@Example.com", "198.51.100.4")
    keys = [key async for key in raw_redis.scan_iter(match=f"{redis_limiter.prefix}*")]
    digest = hashlib.sha256(b"erin.secret@example.com").hexdigest()[:32]
    assert sorted(keys) == [
        f"{redis_limiter.prefix}login:account:{digest}",
        f"{redis_limiter.prefix}login:ip:198.51.100.4",
        f"{redis_limiter.prefix}login:pair:{digest}:198.51.100.4",
    ]
    assert not any("erin" in key.casefold() or "example" in key for key in keys)
