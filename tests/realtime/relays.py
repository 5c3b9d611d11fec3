"""TCP relays to Redis that play a network between a server and Redis: the server's broker connects
to the relay, which connects on to the real redis-server and moves bytes between the two, shaped
by each relay's own rule (held for a delay, or held until the test lets them through)."""

from __future__ import annotations

import asyncio


class Relay:
    """Accepts connections on a loopback port and relays each to Redis: what goes from the client
    to Redis through `upstream`, what comes back through `downstream` (each a pipe of its own)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        """The redis:// URL to give the server instead of Redis's own."""
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return f"redis://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(self.host, self.port)
        for pipe in (self.upstream(reader, upstream_writer), self.downstream(upstream_reader, writer)):
            task = asyncio.create_task(pipe)
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def upstream(self, source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
        await self.pipe(source, target)

    async def downstream(self, source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
        await self.pipe(source, target)

    @staticmethod
    async def pipe(source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
        while chunk := await source.read(65536):
            target.write(chunk)
        target.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class SlowLink(Relay):
    """Holds every chunk, in each direction, for `delay` seconds."""

    def __init__(self, host: str, port: int, delay: float) -> None:
        super().__init__(host, port)
        self.delay = delay

    async def upstream(self, source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
        await self._delayed(source, target)

    async def downstream(self, source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
        await self._delayed(source, target)

    async def _delayed(self, source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, chunk = await held.get()
                await asyncio.sleep(max(0.0, due - loop.time()))
                if not chunk:
                    target.close()
                    return
                target.write(chunk)

        sending = asyncio.create_task(deliver())
        try:
            while chunk := await source.read(65536):
                held.put_nowait((loop.time() + self.delay, chunk))
            held.put_nowait((loop.time() + self.delay, b""))
            await sending
        except (ConnectionError, asyncio.CancelledError):
            sending.cancel()


class HeldSubscribes(Relay):
    """Can hold what the broker's listener connection sends (the one that subscribes) and let it
    through chunk by chunk; every other connection, and every answer, passes."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.holding = False
        self.held: list[tuple[asyncio.StreamWriter, bytes]] = []

    def holds(self, text: str) -> bool:
        return any(text.encode() in chunk for _, chunk in self.held)

    def hold(self) -> None:
        self.holding = True

    def release(self, count: int) -> None:
        """Let the first `count` held chunks through, in order; keep holding the rest."""
        for target, chunk in self.held[:count]:
            target.write(chunk)
        del self.held[:count]

    def open(self) -> None:
        self.holding = False
        self.release(len(self.held))

    async def upstream(self, source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
        listener = False
        while chunk := await source.read(65536):
            listener = listener or b"SUBSCRIBE" in chunk.upper()
            if listener and (self.holding or self.held):
                self.held.append((target, chunk))
            else:
                target.write(chunk)
        target.close()
