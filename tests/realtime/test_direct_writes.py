"""The fan-out writes an event's frame straight to a socket only while the connection takes it:
`LeanSocket.open`, kept by the lean protocol (server/uvicorn_adapter/lean_websocket.py) after
everything that may change it. One real socket served by uvicorn, in this process."""

from __future__ import annotations

from tests.realtime.conftest import Watcher, served
from tests.realtime.test_idle_socket_frames import session_of
from tests.support import until


async def test_a_socket_is_written_directly_only_while_it_is_open_and_not_pushing_back(api_factory, clock):
    api = await api_factory(clock=clock)
    store = await api.store()
    dev = await api.customer("Dev Shah")
    order = await api.place_order(dev, store)
    async with served(api.app) as address:
        watcher = await Watcher.open(f"ws://{address}/ws", dev.access_token)
        await watcher.subscribe(orderIds=[order["id"]])
        session = session_of(api, order["id"])
        direct = session._socket
        assert direct is not None and direct.open
        protocol = direct._protocol
        assert protocol.orderpulse_socket() is direct  # one per connection

        # The transport pushes back: nothing is written directly, the event waits in the queue.
        protocol.pause_writing()
        assert not direct.open and not direct.try_write(b"")
        await api.advance(store, order["id"], "paid")
        assert not session.sub.queue_empty
        protocol.resume_writing()
        assert direct.open
        await until(lambda: watcher.status(order["id"]) == "accepted", message="the queued event")

        # While open, the event goes out from the fan-out itself.
        await api.advance(store, order["id"], "processing")
        assert session.sub.queue_empty
        await until(lambda: watcher.status(order["id"]) == "processing", message="the direct event")

        # The peer closes: from its close frame on, nothing more is written, and once the
        # connection is gone the protocol no longer refers to its socket (no cycle to collect).
        await watcher.close()
        await until(lambda: protocol._direct is None, message="the connection to end")
        assert not direct.open and not direct.try_write(b"")
