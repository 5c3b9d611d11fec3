"""The keep-alive wheel (server/uvicorn_adapter/keepalive.py) on a real event loop whose clock the
test moves: every socket's pings and pong deadlines on one timer, at most a second late, never early."""

from __future__ import annotations

import asyncio
import math

import pytest

from server.uvicorn_adapter.keepalive import KeepaliveWheel


class SteppedLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock moves only when the test advances it; it counts the timers armed."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0
        self.timers: list[asyncio.TimerHandle] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when, callback, *args, context=None):  # type: ignore[override]
        handle = super().call_at(when, callback, *args, context=context)
        self.timers.append(handle)
        return handle

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.run_until_complete(asyncio.sleep(0))  # runs whatever is due now

    @property
    def pending_timers(self) -> int:
        return sum(1 for t in self.timers if not t.cancelled() and t.when() > self.now)


class Socket:
    """What the wheel drives: it records when it was pinged and when its pong deadline passed."""

    def __init__(self, loop: SteppedLoop) -> None:
        self.loop = loop
        self.pinged: list[float] = []
        self.timed_out: list[float] = []

    def send_keepalive_ping(self) -> None:
        self.pinged.append(self.loop.time())

    def keepalive_timeout(self) -> None:
        self.timed_out.append(self.loop.time())


@pytest.fixture
def loop():
    loop = SteppedLoop()
    yield loop
    loop.close()


def test_pings_due_within_one_second_go_out_on_one_wake_up(loop):
    wheel = KeepaliveWheel(loop)
    sockets = [Socket(loop) for _ in range(1000)]
    for n, socket in enumerate(sockets):
        wheel.add(wheel.pings, socket, delay=(n + 1) / 1000)
    assert loop.pending_timers == 1
    loop.advance(1.0)
    assert {tuple(s.pinged) for s in sockets} == {(1001.0,)}
    assert len(loop.timers) == 1 and loop.pending_timers == 0


@pytest.mark.parametrize("table, seen, delay", [("pings", "pinged", 2.3), ("pongs", "timed_out", 9.5)])
def test_a_ping_or_pong_deadline_is_never_early_and_at_most_a_second_late(loop, table, seen, delay):
    wheel = KeepaliveWheel(loop)
    socket = Socket(loop)
    wheel.add(getattr(wheel, table), socket, delay)
    loop.advance(delay)
    assert getattr(socket, seen) == []
    loop.advance(math.ceil(loop.now) - loop.now)
    assert getattr(socket, seen) == [math.ceil(1000 + delay)]


def test_an_answered_ping_never_times_out(loop):
    wheel = KeepaliveWheel(loop)
    answered, silent = Socket(loop), Socket(loop)
    slot = wheel.add(wheel.pongs, answered, delay=10)
    wheel.add(wheel.pongs, silent, delay=10)
    KeepaliveWheel.discard(wheel.pongs, answered, slot)
    loop.advance(10)
    assert answered.timed_out == [] and silent.timed_out == [1010.0]


def test_forgetting_the_last_socket_of_a_second_leaves_no_empty_bucket(loop):
    wheel = KeepaliveWheel(loop)
    socket = Socket(loop)
    slot = wheel.add(wheel.pings, socket, delay=5)
    KeepaliveWheel.discard(wheel.pings, socket, slot)
    KeepaliveWheel.discard(wheel.pings, socket, None)  # a socket with nothing due
    assert wheel.pings == {}


def test_an_earlier_deadline_moves_the_one_timer_forward_and_the_later_one_still_fires(loop):
    wheel = KeepaliveWheel(loop)
    late, early = Socket(loop), Socket(loop)
    wheel.add(wheel.pings, late, delay=5)
    wheel.add(wheel.pongs, early, delay=1)
    assert loop.pending_timers == 1
    loop.advance(1)
    assert early.timed_out == [1001.0] and late.pinged == []
    assert loop.pending_timers == 1
    loop.advance(4)
    assert late.pinged == [1005.0] and loop.pending_timers == 0


def test_sockets_due_in_different_seconds_wake_the_loop_once_per_second(loop):
    wheel = KeepaliveWheel(loop)
    sockets = [Socket(loop) for _ in range(30)]
    for n, socket in enumerate(sockets):
        wheel.add(wheel.pings, socket, delay=0.05 + n / 10)  # three seconds of pings, ten per second
    for _ in range(3):
        loop.advance(1)
    assert sorted({s.pinged[0] for s in sockets}) == [1001.0, 1002.0, 1003.0]
    assert len(loop.timers) == 3
