"""`orderpulse serve --workers N`: N worker processes on one port under one supervisor.

The supervisor binds the port once (cli.bind_listener, so a taken port is one `error:` line), starts
what the workers share (the embedded nx-27017 when MONGODB_URL is unset, a local redis-server when
REDIS_URL is unset, a fresh PROMETHEUS_MULTIPROC_DIR), then runs each worker as
`python -m server serve --worker-fd FD`, which inherits the listening socket and serves it; the
kernel spreads new connections over the processes accepting on it.

Not uvicorn's `Multiprocess` supervisor: it pickles the uvicorn Config (our app object, with its
runtime, does not pickle) into `multiprocessing` spawn children, restarts a dead worker every
half second without backoff, and has no place for the shared database and broker to start
before the workers and stop after them. What is needed here is small: a process per worker, its
restart with backoff and one log line, and SIGTERM/SIGINT forwarded.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from server.config import ConfigurationError, Settings
from server.embedded_mongo import (RESTART_FIRST_DELAY_SECONDS, RESTART_MAX_DELAY_SECONDS, EmbeddedMongo,
                                   _die_with_parent, describe_exit, wait_for_exit)
from server.embedded_redis import EmbeddedRedis

log = logging.getLogger("orderpulse.workers")

# A worker's stop: the drain (instant: clients wait out their own retryAfterMs), uvicorn's grace
# and the runtime's bounded stop (server/cli.py, server/runtime.py) take well under this.
WORKER_STOP_SECONDS = 9.0
# The exit code of a configuration error: restarting a worker will not fix it.
CONFIGURATION_EXIT = 2


class Worker:
    def __init__(self, index: int, command: list[str], env: dict[str, str], fd: int) -> None:
        self.index, self.command, self.env, self.fd = index, command, env, fd
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command, env=self.env, pass_fds=(self.fd,),
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            # Its own process group: a terminal's Ctrl-C reaches the supervisor only, which forwards
            # one SIGTERM (a second SIGINT would make uvicorn skip its graceful shutdown).
            process_group=0)


class Supervisor:
    def __init__(self, settings: Settings, sock: socket.socket, workers: int, worker_args: list[str]) -> None:
        self.settings = settings
        self.sock = sock
        self.count = workers
        self.worker_args = worker_args
        self.mongo: EmbeddedMongo | None = None
        self.redis: EmbeddedRedis | None = None
        self.metrics_dir: str | None = None
        self.workers: list[Worker] = []
        self.stopping = False
        self.failed: int | None = None

    def start_shared(self) -> dict[str, str]:
        """Start what the workers share; the environment they run with."""
        env = dict(os.environ)
        if not self.settings.mongodb_url:
            self.mongo = EmbeddedMongo(self.settings.data_dir)
            try:
                env["MONGODB_URL"] = self.mongo.start()
            except RuntimeError as exc:
                raise ConfigurationError(f"The embedded MongoDB did not start: {exc}.") from None
        if not self.settings.redis_url:
            self.redis = EmbeddedRedis(self.settings.data_dir / "redis")
            env["REDIS_URL"] = self.redis.start()
        # Fresh each start: counters of a previous run's processes must not be summed in.
        self.metrics_dir = tempfile.mkdtemp(prefix="orderpulse-metrics-")
        env["PROMETHEUS_MULTIPROC_DIR"] = self.metrics_dir
        return env

    def stop_shared(self) -> None:
        if self.redis is not None:
            self.redis.stop()
        if self.mongo is not None:
            self.mongo.stop()
        if self.metrics_dir is not None:
            shutil.rmtree(self.metrics_dir, ignore_errors=True)

    async def run(self, env: dict[str, str]) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, stop.set)
        fd = self.sock.fileno()
        self.workers = [Worker(index, [sys.executable, "-m", "server", *self.worker_args, "--worker-fd", str(fd),
                                       "--worker-index", str(index)], env, fd) for index in range(self.count)]
        helpers = [asyncio.create_task(part.supervise()) for part in (self.mongo, self.redis) if part is not None]
        for worker in self.workers:
            worker.start()
        keepers = [asyncio.create_task(self._keep(worker, stop)) for worker in self.workers]
        hint = "  (kitchen: /kitchen, sign in: /login)" if self.worker_args[:1] == ["demo"] else ""
        print(f"Serving on http://{self.settings.host}:{self.settings.port} with {self.count} workers "
              f"(supervisor pid {os.getpid()}){hint}", flush=True)
        await stop.wait()
        self.stopping = True
        for worker in self.workers:
            if worker.process is not None and worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        done, _ = await asyncio.wait(keepers, timeout=WORKER_STOP_SECONDS)
        for worker in self.workers:
            if worker.process is not None and worker.process.poll() is None:
                log.warning("worker %d (pid %d) did not stop within %.0f s; killed", worker.index,
                            worker.process.pid, WORKER_STOP_SECONDS)
                worker.process.kill()
                worker.process.wait()
        for task in [*keepers, *helpers]:
            task.cancel()
        await asyncio.gather(*keepers, *helpers, return_exceptions=True)
        return self.failed or 0

    async def _keep(self, worker: Worker, stop: asyncio.Event) -> None:
        """Restart `worker` whenever it exits while the supervisor runs, with backoff."""
        delay = RESTART_FIRST_DELAY_SECONDS
        while True:
            assert worker.process is not None
            started = time.monotonic()
            code = await wait_for_exit(worker.process)
            self._forget_metrics(worker.process.pid)
            if self.stopping:
                return
            if code == CONFIGURATION_EXIT:
                log.error("worker %d exited with a configuration error; stopping", worker.index)
                self.failed = CONFIGURATION_EXIT
                stop.set()
                return
            if time.monotonic() - started > RESTART_MAX_DELAY_SECONDS:
                delay = RESTART_FIRST_DELAY_SECONDS
            worker.restarts += 1
            log.warning("worker %d (pid %d) %s; restarting in %.1f s (restart %d)", worker.index,
                        worker.process.pid, describe_exit(code), delay, worker.restarts)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_MAX_DELAY_SECONDS)
            if self.stopping:
                return
            worker.start()

    def _forget_metrics(self, pid: int) -> None:
        """Drop a dead worker's live gauges (its counters stay: the host did count them)."""
        if self.metrics_dir is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid, self.metrics_dir)


def supervise(settings: Settings, sock: socket.socket, workers: int, worker_args: list[str],
              before_workers: Callable[[str | None], None] | None = None) -> int:
    """Run `workers` workers on `sock` until SIGTERM or SIGINT; the exit code. `before_workers`
    (the demo's seeding) runs once with the shared database's URL before any worker starts."""
    supervisor = Supervisor(settings, sock, workers, worker_args)
    try:
        env = supervisor.start_shared()
        if before_workers is not None:
            before_workers(env["MONGODB_URL"] if "MONGODB_URL" in env else settings.mongodb_url)
        return asyncio.run(supervisor.run(env))
    finally:
        supervisor.stop_shared()
