"""A client that floods one server with subscribes, as finding 3 of issue 25 did: many sockets of one
account, each re-subscribing its orders and "My orders" just under the frame limit (20 a second).

Run as its own process (`python -m tests.realtime.flood URL TOKEN SOCKETS ORDER_IDS_FILE COUNT_FILE`),
so the test that measures the server's latency meanwhile shares no event loop with it. It reads and
drops every answer without parsing it, reconnects a socket the server closed (as a script would),
and writes how many answers it has had to COUNT_FILE every 50.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

FRAMES_PER_SECOND = 15
answers = 0


def answered(count_file: str) -> None:
    global answers
    answers += 1
    if answers % 50 == 0:
        with open(count_file + ".new", "w") as file:
            file.write(str(answers))
        os.replace(count_file + ".new", count_file)


async def one_socket(url: str, token: str, order_ids: list[str], count_file: str) -> None:
    frames = [json.dumps({"type": "subscribe", "orderIds": order_ids[i:i + 100]}) for i in range(0, len(order_ids), 100)]
    frames.append(json.dumps({"type": "subscribe", "mine": True}))
    while True:
        try:
            async with connect(f"{url}?token={token}", max_size=None, open_timeout=10) as socket:
                async def drain() -> None:
                    async for _ in socket:
                        answered(count_file)
                reader = asyncio.create_task(drain())
                n = 0
                while not reader.done():
                    await socket.send(frames[n % len(frames)])
                    n += 1
                    await asyncio.sleep(1 / FRAMES_PER_SECOND)
        except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError):
            pass
        await asyncio.sleep(0.2)


async def main(url: str, token: str, sockets: int, order_ids: list[str], count_file: str) -> None:
    await asyncio.gather(*(one_socket(url, token, order_ids, count_file) for _ in range(sockets)))


if __name__ == "__main__":
    url, token, sockets, ids_file, count_file = sys.argv[1:6]
    with open(ids_file) as file:
        ids = json.load(file)
    asyncio.run(main(url, token, int(sockets), ids, count_file))
