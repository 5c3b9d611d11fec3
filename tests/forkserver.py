"""`python -m server serve` without paying for its imports each time: a fork server for the suite.

A new server process takes about 0.7 s of CPU to become ready, 1.1 s under coverage's tracer,
nearly all of it imports, and the suite starts some seventy of them. This program imports them
once, then forks a child per request that becomes `orderpulse serve` exactly as the command
does: the given environment, working directory and log file, `server.cli.main(["serve"])`, and
its exit status. Coverage follows the fork (`patch = ["fork"]` in pyproject.toml), so each child
writes its own data as a started process does.

A child whose environment names a test failpoint (`ORDERPULSE_FAILPOINT`) has it installed before
it serves (tests/failpoints.py): the server itself has none.

Requests arrive as JSON lines on standard input; the answers ({"pid": ...} once forked,
{"exited": pid, "code": ...} once reaped, negative for a signal as in `subprocess`) leave as
JSON lines on standard output. When standard input closes (the test process is gone), the
children still running are stopped and this program exits. `tests.harness.ServerProcess` is
the one user; it falls back to a plain subprocess for environments this process cannot stand
for (see `tests.harness.forkable`).
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time
from typing import NoReturn

# Everything `orderpulse serve` imports on its way to serving, found by listing sys.modules in a
# server that had served pages, the API and a socket; what is missing here is imported by the
# child, which is slower but the same.
import anyio._backends._asyncio  # noqa: F401
import anyio.streams.memory  # noqa: F401
import httptools  # noqa: F401
import redis.asyncio  # noqa: F401
import uvicorn.lifespan.on  # noqa: F401
import uvicorn.loops.auto  # noqa: F401
import uvicorn.protocols.http.auto  # noqa: F401
import uvicorn.protocols.http.httptools_impl  # noqa: F401
import uvicorn.protocols.websockets.auto  # noqa: F401
import uvicorn.protocols.websockets.websockets_sansio_impl  # noqa: F401
import websockets.server  # noqa: F401

import server.app  # noqa: F401
import server.cli
import server.realtime.backends.redis  # noqa: F401
import server.runtime  # noqa: F401
import server.uvicorn_adapter  # noqa: F401
from tests import failpoints

try:
    import uvloop  # noqa: F401

    import uvicorn.loops.uvloop  # noqa: F401
except ImportError:  # uvloop is optional (uvicorn[standard] brings it where it builds)
    pass

STOP_GRACE_SECONDS = 10


def _save_import_coverage() -> None:
    """Write what the imports above ran now and measure nothing more here: each child measures
    itself from its fork. Saved now, not at exit, so the run's combine finds it."""
    try:
        import coverage
    except ImportError:
        return
    measuring = coverage.Coverage.current()
    if measuring is not None:
        measuring.stop()
        measuring.save()


def _become_server(request: dict, closing: list[int]) -> NoReturn:
    """In the child: the environment, directory and output `python -m server serve` would have."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C is KeyboardInterrupt, as in `python`
    # SIGTERM stays as the fork left it: coverage's handler (its `sigterm` setting) or the default.
    for fd in closing:
        os.close(fd)
    null = os.open(os.devnull, os.O_RDONLY)
    log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    failpoints.install(os.environ)
    sys.argv = [server.cli.__file__, *request["argv"]]
    # As server/__main__.py ends: through atexit, where coverage saves this process's data.
    sys.exit(server.cli.main(request["argv"]))


def main() -> int:
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # the wake-up byte is what matters
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is for the test run, which closes stdin
    requests = sys.stdin.buffer
    children: set[int] = set()

    def say(message: dict) -> None:
        try:
            sys.stdout.write(json.dumps(message) + "\n")
            sys.stdout.flush()
        except BrokenPipeError:  # the test process has gone; its children are stopped below
            pass

    def reap() -> None:
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            children.discard(pid)
            say({"exited": pid, "code": os.waitstatus_to_exitcode(status)})

    pending = b""
    while True:
        ready, _, _ = select.select([requests, wake_read], [], [])
        if wake_read in ready:
            os.read(wake_read, 512)
            reap()
        if requests not in ready:
            continue
        chunk = os.read(requests.fileno(), 65536)
        if not chunk:
            break
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            request = json.loads(line)
            pid = os.fork()
            if pid == 0:
                _become_server(request, [wake_read, wake_write])
            children.add(pid)
            say({"pid": pid})
        reap()

    # The test process has gone: stop what it left running, as its own subprocesses would be.
    for pid in children:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while children and time.monotonic() < deadline:
        select.select([wake_read], [], [], 0.1)
        reap()
    for pid in children:
        _signal(pid, signal.SIGKILL)
    return 0


def _signal(pid: int, number: int) -> None:
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    _save_import_coverage()
    code = main()
    sys.stdout.flush()
    os._exit(code)  # not through atexit: this process's coverage was saved after the imports
