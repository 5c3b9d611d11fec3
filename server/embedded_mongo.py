"""The embedded MongoDB default: an `nx-27017` wire-protocol server run as a child process.

Used only when `MONGODB_URL` is unset. The child dies with its parent: on a clean shutdown we
stop it, on Ctrl-C it gets the same signal, and on a crash of the server the kernel sends it
SIGTERM (PR_SET_PDEATHSIG), so no orphan keeps the data directory locked.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger("orderpulse.embedded_mongo")

_LAUNCH = "from nx_27017.nx_27017 import main; main()"


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class EmbeddedMongo:
    """One nx-27017 process serving a data directory on a free loopback port."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_loopback_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid_file(self) -> Path:
        return self.data_dir / f"nx-27017-{self.port}.pid"

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> str:
        db_dir = self.data_dir / "mongo"
        db_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.data_dir / "nx-27017.log"
        command = [
            sys.executable, "-c", _LAUNCH,
            "--data-dir", str(db_dir),
            "--host", "127.0.0.1", "--port", str(self.port),
            "--log-file", str(log_path),
            # nx-27017's daemon bookkeeping, unused here; one file per port so a stale one left
            # by a killed run (whose PID may since belong to another process) never blocks a start.
            "--pid-file", str(self.pid_file),
        ]
        self.pid_file.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.data_dir / "nx-27017.stderr", "ab"),
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"nx-27017 exited with code {self.process.returncode}; see {log_path}"
                )
            if self._answers():
                log.info("embedded MongoDB (nx-27017) serving %s on %s", db_dir, self.url)
                return self.url
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nx-27017 did not answer on {self.url} within {timeout:.0f} s")

    def _answers(self) -> bool:
        """True once the server completes a `ping` over the wire protocol."""
        from pymongo import MongoClient
        from pymongo.errors import PyMongoError

        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                pass
        except OSError:
            return False
        client = MongoClient(self.url, serverSelectionTimeoutMS=500, connectTimeoutMS=500)
        try:
            client.admin.command("ping")
            return True
        except PyMongoError:
            return False
        finally:
            client.close()

    def stop(self, timeout: float = 5.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self.pid_file.unlink(missing_ok=True)
