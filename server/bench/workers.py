"""Client processes: each runs its own event loop so the client, not the server, stays idle.

The parent talks to each worker over a Pipe with plain picklable messages: it sends a spec,
the worker answers when ready, and the two step through the scenario's phases together.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import resource
from multiprocessing.connection import Connection
from typing import Any, Callable, Coroutine

WorkerMain = Callable[["Channel", Any], Coroutine[Any, Any, Any]]


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def run_loop(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine on uvloop when it is installed (it is, with uvicorn[standard])."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


class Channel:
    """The worker's end of its pipe, usable from the worker's event loop."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def send(self, message: Any) -> None:
        self.conn.send(message)

    async def recv(self) -> Any:
        return await asyncio.to_thread(self.conn.recv)


def _worker_entry(main: WorkerMain, conn: Connection, spec: Any, nice: int = 0) -> None:
    raise_fd_limit()
    if nice:
        os.nice(nice)
    channel = Channel(conn)
    try:
        result = run_loop(main(channel, spec))
        conn.send(("done", result))
    except BaseException as error:  # report every failure to the parent, then exit
        conn.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        conn.close()


class WorkerError(RuntimeError):
    """A client process failed or stopped answering."""


class WorkerPool:
    """N spawned client processes, each running `main(channel, spec)`, at `nice` (a lower CPU
    priority than the bench's, so that a server under test on the same cores gets them first)."""

    def __init__(self, main: WorkerMain, specs: list[Any], *, nice: int = 0) -> None:
        context = multiprocessing.get_context("spawn")
        self.conns: list[Connection] = []
        self.processes = []
        for spec in specs:
            parent, child = context.Pipe()
            process = context.Process(target=_worker_entry, args=(main, child, spec, nice), daemon=True)
            process.start()
            child.close()
            self.conns.append(parent)
            self.processes.append(process)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def broadcast(self, message: Any) -> None:
        for conn in self.conns:
            conn.send(message)

    async def gather(self, timeout: float) -> list[Any]:
        """The next message of every worker; a worker's failure or silence raises WorkerError."""
        return list(await asyncio.gather(*(self._next(c, timeout) for c in self.conns)))

    async def finish(self, timeout: float) -> list[Any]:
        """The final result of every worker (the value its main returned)."""
        results = await self.gather(timeout)
        out = []
        for message in results:
            if not (isinstance(message, tuple) and message and message[0] == "done"):
                raise WorkerError(f"expected a final result, got {message!r:.200}")
            out.append(message[1])
        return out

    async def collect(self, timeout: float, on_message: Callable[[int, Any], None]) -> list[Any]:
        """Read every worker's messages until each has sent its final result; pass the others on.

        `timeout` bounds the silence of any one worker, not the whole collection.
        """
        results: list[Any] = [None] * len(self.conns)

        async def drain(index: int, conn: Connection) -> None:
            while True:
                message = await self._next(conn, timeout)
                if isinstance(message, tuple) and message and message[0] == "done":
                    results[index] = message[1]
                    return
                on_message(index, message)

        await asyncio.gather(*(drain(i, c) for i, c in enumerate(self.conns)))
        return results

    async def until(self, kind: str, timeout: float, on_message: Callable[[int, Any], None]) -> list[Any]:
        """Each worker's first message tagged `kind`; messages before it go to on_message."""
        found: list[Any] = [None] * len(self.conns)

        async def read(index: int, conn: Connection) -> None:
            while True:
                message = await self._next(conn, timeout)
                if isinstance(message, tuple) and message and message[0] == kind:
                    found[index] = message
                    return
                on_message(index, message)

        await asyncio.gather(*(read(i, c) for i, c in enumerate(self.conns)))
        return found

    async def _next(self, conn: Connection, timeout: float) -> Any:
        ready = await asyncio.to_thread(conn.poll, timeout)
        if not ready:
            raise WorkerError(f"a client process sent nothing for {timeout:g} s")
        try:
            message = conn.recv()
        except EOFError as error:
            raise WorkerError("a client process exited without a result") from error
        if isinstance(message, tuple) and message and message[0] == "error":
            raise WorkerError(f"a client process failed: {message[1]}")
        return message

    def close(self) -> None:
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
        for conn in self.conns:
            conn.close()
