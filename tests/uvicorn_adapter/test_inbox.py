"""The lean protocol's receive queue and `writable` flag (server/uvicorn_adapter/lean_websocket.py)
behave as the asyncio.Queue and asyncio.Event they replace, for one reader and one writer."""

from __future__ import annotations

import asyncio

import pytest

from server.uvicorn_adapter.lean_websocket import Inbox, Writable


async def test_messages_come_out_in_the_order_they_went_in_whether_or_not_the_reader_waits():
    inbox = Inbox(asyncio.get_running_loop())
    waiting = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)  # the reader is waiting before anything arrives
    for n in range(3):
        inbox.put_nowait({"type": "websocket.receive", "text": str(n)})
    assert [(await waiting)["text"], (await inbox.get())["text"], (await inbox.get())["text"]] == ["0", "1", "2"]
    assert inbox.empty()


async def test_a_message_put_after_the_reader_was_cancelled_waits_for_the_next_read():
    inbox = Inbox(asyncio.get_running_loop())
    reader = asyncio.ensure_future(inbox.get())
    reader.cancel()
    inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
    assert not inbox.empty()
    assert await inbox.get() == {"type": "websocket.disconnect", "code": 1000}


async def test_two_readers_at_once_are_refused():
    inbox = Inbox(asyncio.get_running_loop())
    first = inbox.get()
    with pytest.raises(RuntimeError):
        inbox.get()
    inbox.put_nowait({"type": "websocket.connect"})
    assert await first == {"type": "websocket.connect"}


async def test_writes_wait_while_the_connection_pushes_back_and_go_on_when_it_drains():
    writable = Writable(asyncio.get_running_loop())
    assert writable.is_set() and await writable.wait() is True
    writable.clear()
    cancelled, waiting = asyncio.ensure_future(writable.wait()), asyncio.ensure_future(writable.wait())
    cancelled.cancel()
    await asyncio.sleep(0)
    assert not waiting.done()
    writable.set()
    assert await waiting is True
    assert writable.is_set()
