"""`HeadHolder` (server/uvicorn_adapter/http_limits.py): an answer's head and body leave in one
transport write, and a head whose body is not written in the same event-loop step (a stream, a
`100 Continue`) still leaves at the end of that step."""

from __future__ import annotations

import asyncio

from server.uvicorn_adapter.http_limits import JOIN_BODY_BYTES, HeadHolder


class RecordingTransport(asyncio.Transport):
    """A transport that keeps what was written to it, one entry per write call."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:  # type: ignore[override]
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


async def test_a_head_and_its_body_leave_in_one_write():
    transport = RecordingTransport()
    holder = HeadHolder(transport, asyncio.get_running_loop())
    holder.write(b"HTTP/1.1 200 OK\r\n\r\n")
    holder.write(b'{"ok":true}')
    assert transport.writes == [b'HTTP/1.1 200 OK\r\n\r\n{"ok":true}']
    await asyncio.sleep(0)  # the end-of-step flush finds nothing left
    assert len(transport.writes) == 1


async def test_a_head_without_a_body_in_the_same_step_leaves_at_the_end_of_the_step():
    transport = RecordingTransport()
    holder = HeadHolder(transport, asyncio.get_running_loop())
    holder.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    assert transport.writes == []
    await asyncio.sleep(0)
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"]
    holder.write(b"5\r\nhello\r\n")
    holder.write(b"0\r\n\r\n")
    assert transport.writes[1:] == [b"5\r\nhello\r\n", b"0\r\n\r\n"]


async def test_a_large_body_is_not_copied_onto_its_head():
    transport = RecordingTransport()
    holder = HeadHolder(transport, asyncio.get_running_loop())
    body = b"x" * (JOIN_BODY_BYTES + 1)
    holder.write(b"HTTP/1.1 200 OK\r\n\r\n")
    holder.write(body)
    assert transport.writes == [b"HTTP/1.1 200 OK\r\n\r\n", body]


async def test_closing_sends_a_held_head_first():
    transport = RecordingTransport()
    holder = HeadHolder(transport, asyncio.get_running_loop())
    holder.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    holder.close()
    assert transport.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"] and transport.closed
    await asyncio.sleep(0)
    assert len(transport.writes) == 1
