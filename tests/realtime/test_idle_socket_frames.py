"""What an open, idle WebSocket keeps in the server (README, "Memory per idle socket").

Every coroutine between uvicorn and the session's read is a frame kept for the socket's life, and
whatever the upgrade request carried stays as long as something refers to it. These tests look at
one real socket served by uvicorn with the lean protocol, in this process.
"""

from __future__ import annotations

import asyncio

from server.realtime.client import Subscriber
from server.realtime.session import SocketSession
from tests.realtime.conftest import Watcher, served
from tests.support import until


def session_of(api, order_id: str) -> SocketSession:
    """The session of the one socket watching `order_id`."""
    watchers: set[Subscriber] = api.app.runtime.hub._order_watchers.get(order_id, set())
    assert len(watchers) == 1
    (subscriber,) = watchers
    assert subscriber.abort is not None
    session = subscriber.abort.__self__
    assert isinstance(session, SocketSession)
    return session


def awaiting_chain(task: asyncio.Task) -> tuple[list[str], object]:
    """The coroutines a task is suspended in, outermost first, and what the innermost awaits."""
    names, awaited = [], task.get_coro()
    while asyncio.iscoroutine(awaited):
        names.append(awaited.__qualname__)
        awaited = awaited.cr_await
    return names, awaited


async def test_an_idle_socket_waits_in_two_coroutines_and_keeps_nothing_of_its_request(api_factory, clock):
    api = await api_factory(clock=clock)
    store = await api.store()
    dev = await api.customer("Dev Shah")
    order = await api.place_order(dev, store)
    async with served(api.app) as address:
        # The token in the query string, as a browser's WebSocket sends it; proxied by a trusted hop.
        watcher = await Watcher.open(f"ws://{address}/ws", dev.access_token,
                                     headers={"X-Forwarded-For": "203.0.113.7"})
        try:
            await watcher.subscribe(orderIds=[order["id"]])
            session = session_of(api, order["id"])
            task = session._reader
            assert task is not None
            await until(lambda: session._receiving, message="the session to wait for a frame")

            names, awaited = awaiting_chain(task)
            # uvicorn's task, then the session's read loop, waiting on the connection's message
            # itself: no middleware, app, endpoint or `receive` coroutine in between.
            assert names == ["WebSocketsSansIOProtocol.run_asgi", "SocketSession.run"]
            assert type(awaited).__name__ == "FutureIter"  # the `await` of a plain future

            websocket = session.ws
            # uvicorn's proxy-headers middleware still applied to the scope.
            assert websocket.scope["client"][0] == "203.0.113.7"
            # The token was read to sign in and is held nowhere in the request's scope or its parsed views.
            assert websocket.scope["query_string"] == b""
            assert websocket.scope["headers"] == []
            assert not {"_headers", "_query_params", "_url"} & set(vars(websocket))
            assert dev.access_token not in repr(websocket.scope)

            # A frame still reaches the session, and reading resumes for the next one.
            for n in range(3):
                assert (await watcher.ask({"type": "ping"}))["type"] == "pong", n
        finally:
            await watcher.close()
        await until(lambda: task.done(), message="the session to end with its socket")


async def test_a_clients_ping_is_answered_while_its_subscribe_waits(api_factory, clock, redis_server):
    """The session reads the connection's queue itself; reading from the peer still goes on while a
    frame is being handled (as through uvicorn's `receive`), so a slow subscribe does not leave the
    client's pings, or its pongs to the server's keep-alive, unread."""
    api = await api_factory(clock=clock, redis_url=redis_server.url)
    store = await api.store()
    dev = await api.customer("Dev Shah")
    first, second = [(await api.place_order(dev, store))["id"] for _ in range(2)]
    async with served(api.app) as address:
        watcher = await Watcher.open(f"ws://{address}/ws", dev.access_token)
        try:
            await watcher.subscribe(orderIds=[first])
            commands = api.runtime.broker._backend._commands
            await commands.acquire()  # the second order's channel waits for the broker connection
            try:
                answered = len(watcher.frames)
                await watcher.send({"type": "subscribe", "id": "slow", "orderIds": [second]})
                await until(lambda: f"order:{second}" in api.runtime.broker._listeners,
                            message="the subscribe to wait for the broker")
                pong = await watcher.connection.ping()
                await asyncio.wait_for(pong, 5)  # answered though the session is busy with the subscribe
                assert len(watcher.frames) == answered  # the subscribe is indeed still waiting
            finally:
                commands.release()
            await until(lambda: any(f.get("id") == "slow" for f in watcher.frames), message="the slow subscribe's answer")
        finally:
            await watcher.close()
