"""The embedded MongoDB default: an `nx-27017` wire-protocol server run as a child process.

Used only when `MONGODB_URL` is unset. The child dies with its parent: on a clean shutdown we
stop it, and on a crash of the server the kernel sends it SIGTERM (PR_SET_PDEATHSIG), so no
orphan keeps the data directory locked. While the server runs, `supervise()` restarts a child
that died, on the same port and data directory, so the driver reconnects by itself.
"""

from __future__ import annotations

import asyncio
import ctypes
import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from server import metrics
from server.config import ConfigurationError

log = logging.getLogger("orderpulse.embedded_mongo")

# nx-27017 hands every command to a thread of asyncio's default pool (`asyncio.to_thread`), where
# its handler then takes one lock per database: commands run one at a time anyway, and the hand-off
# through the GIL to and from up to six threads costs more CPU than the command and holds each
# command up behind the interpreter's 5 ms switch interval when another is busy. Run them on the
# server's own event-loop thread instead (nx-27017 looks `asyncio.to_thread` up at each call).
_LAUNCH = (
    "import asyncio\n"
    "async def _on_the_loop(func, /, *args, **kwargs):\n"
    "    return func(*args, **kwargs)\n"
    "asyncio.to_thread = _on_the_loop\n"
    "from nx_27017.nx_27017 import main\n"
    # Its modules' objects live as long as it does: out of the cyclic collector's full passes,
    # which otherwise walk them with every command waiting (README, *Garbage collection pauses*).
    "import gc\n"
    "gc.collect()\n"
    "gc.freeze()\n"
    "main()\n"
)
LOCK_FILE_NAME = "mongo.lock"
# Restart backoff: the first restart comes quickly, a child that keeps dying is retried ever
# more slowly, and one that ran longer than the cap starts the sequence again.
RESTART_FIRST_DELAY_SECONDS = 0.5
RESTART_MAX_DELAY_SECONDS = 10.0
RESTART_ANSWER_TIMEOUT_SECONDS = 30.0
EXIT_POLL_SECONDS = 0.5


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def describe_exit(returncode: int) -> str:
    """`killed by SIGKILL` or `exited with code 1`, for one log line."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


# What the embedded database inherits from the server's environment: what finds and runs Python,
# and the locale. Not the server's settings (JWT_SECRET, VAPID_PRIVATE_KEY, a MONGODB_URL's
# password) or anything else it has no use for.
DATABASE_ENVIRONMENT = {"PATH", "HOME", "USER", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP", "PYTHONPATH",
                        "PYTHONHOME", "PYTHONUTF8", "PYTHONIOENCODING", "PYTHONPYCACHEPREFIX", "VIRTUAL_ENV"}


def database_environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key in DATABASE_ENVIRONMENT or key.startswith("LC_")}


async def wait_for_exit(process: subprocess.Popen[bytes]) -> int:
    """Wait without blocking the loop until `process` exits, reap it, and return its code."""
    if process.returncode is None:
        try:
            pidfd = os.pidfd_open(process.pid)
        except (AttributeError, OSError):  # not Linux 5.3+, or already reaped
            pidfd = None
        if pidfd is None:
            while process.poll() is None:
                await asyncio.sleep(EXIT_POLL_SECONDS)
        else:
            loop = asyncio.get_running_loop()
            exited: asyncio.Future[None] = loop.create_future()

            def mark_exited() -> None:
                if not exited.done():
                    exited.set_result(None)

            loop.add_reader(pidfd, mark_exited)
            try:
                if process.poll() is None:
                    await exited
            finally:
                loop.remove_reader(pidfd)
                os.close(pidfd)
    return process.wait()  # reaps: no zombie is left behind


class EmbeddedMongo:
    """One nx-27017 process serving a data directory on a free loopback port."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_loopback_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._lock: IO[str] | None = None

    @property
    def pid_file(self) -> Path:
        return self.data_dir / f"nx-27017-{self.port}.pid"

    @property
    def lock_file(self) -> Path:
        return self.data_dir / LOCK_FILE_NAME

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def _log_path(self) -> Path:
        return self.data_dir / "nx-27017.log"

    def _acquire_lock(self) -> None:
        """Own the data directory, or refuse: two servers on one SQLite store would corrupt it."""
        if self._lock is not None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.lock_file, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().split()
            handle.close()
            pid = holder[0] if holder and holder[0].isdigit() else None
            url = holder[1] if len(holder) > 1 and holder[1].startswith("mongodb://") else None
            raise ConfigurationError(
                f"Another OrderPulse process{f' (pid {pid})' if pid else ''} is using the embedded database in "
                f"{self.data_dir}{f' at {url}' if url else ''}; stop it, "
                f"{f'set MONGODB_URL={url} to share it, ' if url else ''}or give this one another DATA_DIR.") from None
        handle.truncate(0)
        handle.write(f"{os.getpid()} {self.url}\n")  # who holds it and where, for the refusal above
        handle.flush()
        self._lock = handle

    def _release_lock(self) -> None:
        handle, self._lock = self._lock, None
        if handle is not None:
            handle.close()  # closing the only descriptor releases the flock

    def _spawn(self) -> None:
        # Called from the main thread only: the kernel's parent-death signal follows the thread
        # that forked, and the main thread lives as long as the server.
        db_dir = self.data_dir / "mongo"
        db_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-c", _LAUNCH,
            "--data-dir", str(db_dir),
            "--host", "127.0.0.1", "--port", str(self.port),
            "--log-file", str(self._log_path),
            # nx-27017's daemon bookkeeping, unused here; one file per port so a stale one left
            # by a killed run (whose PID may since belong to another process) never blocks a start.
            "--pid-file", str(self.pid_file),
        ]
        self.pid_file.unlink(missing_ok=True)
        with open(self.data_dir / "nx-27017.stderr", "ab") as stderr:
            self.process = subprocess.Popen(
                command,
                env=database_environment(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
                # Its own process group: a Ctrl-C meant for the server must not kill the database
                # under a shutdown that still needs it (the server stops it last).
                process_group=0,
            )

    def _exit_error(self) -> RuntimeError:
        assert self.process is not None
        return RuntimeError(f"nx-27017 {describe_exit(self.process.returncode)}; see {self._log_path}")

    def start(self, timeout: float = 30.0) -> str:
        """Lock the data directory, start the child and wait until it answers; returns its URL."""
        self._acquire_lock()
        try:
            self._spawn()
            assert self.process is not None
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise self._exit_error()
                if self._answers():
                    log.info("embedded MongoDB (nx-27017) serving %s on %s", self.data_dir / "mongo", self.url)
                    return self.url
                time.sleep(0.05)
            raise RuntimeError(f"nx-27017 did not answer on {self.url} within {timeout:.0f} s")
        except BaseException:
            self.stop()
            raise

    async def _restart(self, timeout: float) -> None:
        """Start a new child on the same port and data; raises RuntimeError if it does not answer."""
        self._spawn()
        process = self.process
        assert process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise self._exit_error()
            if await asyncio.to_thread(self._answers):
                return
            await asyncio.sleep(0.05)
        self._terminate(process, 2.0)
        raise RuntimeError(f"nx-27017 did not answer on {self.url} within {timeout:.0f} s")

    async def supervise(self) -> None:
        """Restart the child whenever it dies, with backoff, until cancelled; one log line each."""
        delay = RESTART_FIRST_DELAY_SECONDS
        while True:
            process = self.process
            if process is None:
                return
            started = time.monotonic()
            cause = describe_exit(await wait_for_exit(process))
            died = time.monotonic()
            if died - started > RESTART_MAX_DELAY_SECONDS:
                delay = RESTART_FIRST_DELAY_SECONDS
            while True:
                await asyncio.sleep(delay)
                self.restarts += 1
                try:
                    await self._restart(RESTART_ANSWER_TIMEOUT_SECONDS)
                except Exception as exc:  # whatever went wrong, the supervisor must keep trying
                    delay = min(delay * 2, RESTART_MAX_DELAY_SECONDS)
                    log.warning("embedded MongoDB (nx-27017) restart %d failed: %s; next attempt in %.1f s",
                                self.restarts, exc, delay)
                    continue
                log.warning("embedded MongoDB (nx-27017) %s; restarted on %s after %.1f s (restart %d)",
                            cause, self.url, time.monotonic() - died, self.restarts)
                metrics.EMBEDDED_MONGO_RESTARTS.inc()
                delay = min(delay * 2, RESTART_MAX_DELAY_SECONDS)
                break

    def _answers(self) -> bool:
        """True once the server completes a `ping` over the wire protocol."""
        from pymongo import MongoClient
        from pymongo.errors import PyMongoError

        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                pass
        except OSError:
            return False
        client: MongoClient[dict[str, Any]] = MongoClient(self.url, serverSelectionTimeoutMS=500, connectTimeoutMS=500)
        try:
            client.admin.command("ping")
            return True
        except PyMongoError:
            return False
        finally:
            client.close()

    @staticmethod
    def _terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
        if process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the child (SIGTERM, then SIGKILL after `timeout`) and release the data directory."""
        process, self.process = self.process, None
        try:
            if process is not None:
                self._terminate(process, timeout)
            self.pid_file.unlink(missing_ok=True)
        finally:
            self._release_lock()
