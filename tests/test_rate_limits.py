"""The poll-status interval per caller and order (server/services/ratelimit.py), on a clock the
test moves: no server, no sleeping."""

from __future__ import annotations

from server.services.ratelimit import PollRateLimiter
from tests.clock import ManualClock


def test_a_second_poll_within_the_interval_waits_for_the_rest_of_it_rounded_up():
    clock = ManualClock()
    limiter = PollRateLimiter(2.5, clock=clock)
    assert limiter.retry_after("alice", "order-1") is None
    clock.advance(0.2)
    assert limiter.retry_after("alice", "order-1") == 3  # 2.3 s left
    clock.advance(1.8)
    assert limiter.retry_after("alice", "order-1") == 1  # 0.5 s left: never "0"
    clock.advance(0.5)
    assert limiter.retry_after("alice", "order-1") is None  # the refused polls did not restart it


def test_the_limit_is_per_caller_and_per_order():
    clock = ManualClock()
    limiter = PollRateLimiter(1, clock=clock)
    assert limiter.retry_after("alice", "order-1") is None
    assert limiter.retry_after("alice", "order-2") is None
    assert limiter.retry_after("staff", "order-1") is None
    assert limiter.retry_after("alice", "order-1") == 1


def test_an_interval_of_zero_turns_the_limit_off():
    limiter = PollRateLimiter(0, clock=ManualClock())
    assert all(limiter.retry_after("alice", "order-1") is None for _ in range(3))


def test_a_full_table_forgets_only_callers_whose_interval_has_passed():
    clock = ManualClock()
    limiter = PollRateLimiter(1, max_keys=3, clock=clock)
    for order in ("old-1", "old-2"):
        assert limiter.retry_after("alice", order) is None
    clock.advance(1)
    assert limiter.retry_after("alice", "recent") is None
    assert limiter.retry_after("alice", "new") is None  # the table is full: the two old ones go
    assert limiter.retry_after("alice", "recent") == 1  # still remembered
    assert limiter.retry_after("alice", "old-1") is None
