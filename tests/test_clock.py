"""How the parts sleep on a clock (server/domain/clock.py), and the manual clock tests move."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from server.domain.clock import SYSTEM_CLOCK
from tests.clock import ManualClock


def test_the_system_clock_reads_utc_to_the_millisecond():
    now = SYSTEM_CLOCK.now()
    assert now.tzinfo == timezone.utc and now.microsecond % 1000 == 0


async def test_a_system_clock_sleep_ends_as_soon_as_it_is_woken():
    wake = asyncio.Event()
    sleeping = asyncio.create_task(SYSTEM_CLOCK.sleep(60, wake))
    await asyncio.sleep(0)
    wake.set()
    await asyncio.wait_for(sleeping, 5)


def test_advancing_moves_both_readings_by_the_same_milliseconds():
    clock = ManualClock(datetime(2024, 3, 18, 14, 30, tzinfo=timezone.utc))
    before = clock.monotonic()
    clock.advance(1.2346)
    assert clock.now() == datetime(2024, 3, 18, 14, 30, 1, 235000, tzinfo=timezone.utc)
    assert clock.monotonic() - before == pytest.approx(1.235)


async def test_a_manual_sleep_ends_once_the_clock_passes_its_time_and_not_before():
    clock = ManualClock()
    sleeping = asyncio.create_task(clock.sleep(10))
    await asyncio.sleep(0)
    clock.advance(9.999)
    await asyncio.sleep(0)
    assert not sleeping.done()
    clock.advance(0.001)
    await asyncio.wait_for(sleeping, 5)


async def test_a_manual_sleep_ends_when_woken():
    clock = ManualClock()
    wake = asyncio.Event()
    sleeping = asyncio.create_task(clock.sleep(10, wake))
    await asyncio.sleep(0)
    wake.set()
    await asyncio.wait_for(sleeping, 5)
    await asyncio.wait_for(clock.sleep(10, wake), 5)  # already set: no sleep at all
