"""MongoDB going away: the embedded child is restarted, requests get a quick 503 meanwhile,
the server recovers by itself, shutdown stays bounded, and start-up fails in one clear line."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from server.config import ConfigurationError, Settings
from server.domain import messages
from server.embedded_mongo import EmbeddedMongo, free_loopback_port
from server.database import connect_database, public_mongodb_url
from tests.harness import REPO, TEST_JWT_SECRET, ServerProcess, start_mongo
from tests.support import metric_value, until, until_sync

PASSWORD = "correct-horse-1"
UNAVAILABLE = {"success": False, "message": messages.DATABASE_UNAVAILABLE}
# Real time is measured on purpose in the outage tests: the bug was requests held for the
# driver's default 30 s, and the contract is an answer within 2 s (asserted with headroom).
QUICK_ANSWER_SECONDS = 5.0


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as listing:
            return [int(child) for child in listing.read().split()]
    except FileNotFoundError:
        return []


def process_state(pid: int) -> str | None:
    """The /proc state letter (`Z` for a zombie), or None once the process is gone (reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def port_of(pid: int) -> int | None:
    """The port an nx-27017 process serves; None while the child has not exec'd it yet."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            arguments = cmdline.read().decode().split("\0")
    except FileNotFoundError:
        return None
    return int(arguments[arguments.index("--port") + 1]) if "--port" in arguments else None


def mongo_processes_of(data_dir: Path) -> list[int]:
    """Live nx-27017 processes serving `data_dir`, whoever their parent is."""
    found = []
    needle = str((data_dir / "mongo").resolve())
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    if process_state(int(entry.name)) not in (None, "Z"):
                        found.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                pass
    return found


def established_to(port: int) -> int:
    """How many TCP connections to 127.0.0.1:`port` the kernel has established."""
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return sum(1 for row in rows if row[1] == f"0100007F:{port:04X}" and row[3] == "01")


def embedded_server(data_dir: Path) -> ServerProcess:
    server = ServerProcess({}, data_dir)
    server.env.pop("MONGODB_URL", None)
    return server


def register(url: str, email: str) -> dict:
    response = httpx.post(f"{url}/api/auth/register", json={
        "name": "Asha Rao", "email": email, "password": PASSWORD, "role": "student", "registerNumber": "21CS0001"},
        timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["data"]


def login(url: str, email: str, timeout: float = 30) -> httpx.Response:
    return httpx.post(f"{url}/api/auth/login", json={"email": email, "password": PASSWORD}, timeout=timeout)


def timed(call, *args, **kwargs) -> tuple[float, httpx.Response]:
    started = time.monotonic()
    response = call(*args, **kwargs)
    return time.monotonic() - started, response


def logged_in(url: str, email: str):
    try:
        return login(url, email, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_killed_embedded_database_is_reaped_and_restarted_on_the_same_port(tmp_path):
    server = embedded_server(tmp_path).start()
    try:
        register(server.url, "kept@campus.test")
        (first,) = children(server.process.pid)
        port = port_of(first)
        os.kill(first, signal.SIGKILL)

        second = until_sync(lambda: next((c for c in children(server.process.pid) if c != first and port_of(c)),
                                         None), 30, message="a new nx-27017 child")
        assert port_of(second) == port, "the driver reconnects only to the same port"
        until_sync(lambda: process_state(first) is None, 10, message="the killed child to be reaped")
        # The same client reconnects to the same data: the account made before the kill signs in.
        until_sync(lambda: logged_in(server.url, "kept@campus.test"), 30, message="sign-in after the restart")
        assert httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200
        assert metric_value(httpx.get(f"{server.url}/metrics", timeout=5).text,
                            "orderpulse_embedded_mongo_restarts_total") == 1
        log = server.log_path.read_text()
        restarts = re.findall(rf"killed by SIGKILL; restarted on mongodb://127\.0\.0\.1:{port} .*\n(.*)",
                              log, re.MULTILINE)
        assert len(restarts) == 1, log
        assert not restarts[0].startswith("Traceback"), log
    finally:
        server.stop()


async def test_a_restart_that_fails_is_retried_with_a_longer_wait_each_time(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="orderpulse.embedded_mongo")
    mongo = EmbeddedMongo(tmp_path)
    mongo.start()
    supervisor = asyncio.create_task(mongo.supervise())
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        mongo.process.kill()
        # Hold the port as soon as the dead child lets go of it, so that restarts fail to bind.
        def hold_the_port() -> bool:
            try:
                blocker.bind(("127.0.0.1", mongo.port))
                return True
            except OSError:
                return False

        await until(hold_the_port, timeout=5, interval=0.01, message="the killed child to release its port")
        blocker.listen()

        def failures() -> list[float]:
            return [float(delay) for delay in re.findall(r"failed: .*; next attempt in ([\d.]+) s", caplog.text)]

        await until(lambda: len(failures()) >= 2, timeout=30, message="two failed restarts")
        blocker.close()
        await until(lambda: "restarted on" in caplog.text, timeout=30, message="the restart")
        assert failures()[:2] == [1.0, 2.0], caplog.text
        assert f"restarted on {mongo.url}" in caplog.text and "Traceback" not in caplog.text
        assert mongo.running
    finally:
        blocker.close()
        supervisor.cancel()
        await asyncio.gather(supervisor, return_exceptions=True)
        mongo.stop()


def test_an_external_database_that_goes_away_gets_quick_503s_and_the_server_recovers(tmp_path):
    mongo = start_mongo(tmp_path / "mongo")
    server = ServerProcess({"MONGODB_URL": mongo.url, "MONGODB_DATABASE": "outage"}, tmp_path / "server").start()
    try:
        register(server.url, "back@campus.test")
        mongo.process.kill()
        mongo.process.wait()

        took_ready, ready = timed(httpx.get, f"{server.url}/readyz", timeout=60)
        assert ready.status_code == 503 and ready.json()["database"] is False
        took_api, api = timed(login, server.url, "back@campus.test", 60)
        assert api.status_code == 503 and api.json() == UNAVAILABLE, api.text
        assert int(api.headers["retry-after"]) > 0
        took_partner, partner = timed(httpx.get, f"{server.url}/v1/order/0123456789abcdef01234567",
                                      headers={"X-Client-ID": "opc_" + "a" * 24}, timeout=60)
        assert partner.status_code == 503 and partner.json() == {"error": messages.DATABASE_UNAVAILABLE}
        assert partner.headers["retry-after"]
        assert max(took_ready, took_api, took_partner) < QUICK_ANSWER_SECONDS, (took_ready, took_api, took_partner)
        metrics = httpx.get(f"{server.url}/metrics", timeout=5).text
        assert metric_value(metrics, "orderpulse_http_requests_total", method="POST", route="/api/auth/login",
                            status="503") >= 1, metrics

        mongo.start()  # the same instance: same port, same data
        until_sync(lambda: httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200, 30, message="readiness")
        assert login(server.url, "back@campus.test").status_code == 200
        log = server.log_path.read_text()
        assert "database unreachable (" in log
        # An unreachable database is not a full disk: readiness's test write is not tried then.
        assert "storage" not in log and metric_value(metrics, "orderpulse_storage_refusing_writes") == 0, log
    finally:
        server.stop()
        mongo.stop()


@pytest.mark.parametrize("database", ["embedded", "external"])
def test_sigterm_ends_the_server_within_10_s_after_its_database_was_killed(tmp_path, database):
    mongo = None
    if database == "embedded":
        server = embedded_server(tmp_path / "server").start()
        (child,) = children(server.process.pid)
    else:
        mongo = start_mongo(tmp_path / "mongo")
        server = ServerProcess({"MONGODB_URL": mongo.url, "MONGODB_DATABASE": "sigterm"}, tmp_path / "server").start()
        child = mongo.process.pid
    done = threading.Event()

    def keep_calling() -> None:
        """Requests that need the dead database, one after another, until the server is gone."""
        while not done.is_set():
            try:
                login(server.url, "leaving@campus.test", timeout=60)
            except httpx.HTTPError:
                return

    in_flight = threading.Thread(target=keep_calling)
    try:
        register(server.url, "leaving@campus.test")
        os.kill(child, signal.SIGKILL)
        until_sync(lambda: process_state(child) in (None, "Z"), 10, message="the database to die")
        # Requests that need the dead database are in flight when the signal comes.
        in_flight.start()
        until_sync(lambda: established_to(server.port), 10, message="the request to reach the server")
        server.process.send_signal(signal.SIGTERM)
        try:
            server.wait_exit(10)
        except subprocess.TimeoutExpired:
            pytest.fail("the server was still running 10 s after SIGTERM:\n" + server.log_path.read_text()[-3000:])
        # Nothing is left behind, not even a child the supervisor was restarting meanwhile.
        until_sync(lambda: not mongo_processes_of(tmp_path / "server"), 10, message="no nx-27017 left running")
    finally:
        server.kill()
        done.set()
        if in_flight.is_alive():
            in_flight.join(60)
        if mongo is not None:
            mongo.stop()


def test_a_second_server_on_the_same_embedded_database_is_refused_before_it_seeds_anything(tmp_path):
    first = embedded_server(tmp_path).start()
    try:
        env = {**first.env, "PORT": str(free_loopback_port())}
        second = subprocess.run([sys.executable, "-m", "server", "demo"], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=60)
        output = second.stdout + second.stderr
        assert second.returncode != 0 and len(output.strip().splitlines()) == 1, output
        assert f"Another OrderPulse process (pid {first.process.pid}) is using the embedded database in " \
               f"{tmp_path.resolve()}" in output, output
        assert f"set MONGODB_URL=mongodb://127.0.0.1:{port_of(children(first.process.pid)[0])} to share it" in output
        assert "Demo store" not in output
        # The first server still owns its database, and nothing was seeded into it.
        assert httpx.get(f"{first.url}/readyz", timeout=5).status_code == 200
        demo_login = httpx.post(f"{first.url}/api/auth/login",
                                json={"email": "staff@orderpulse.demo", "password": "staff-demo-1"}, timeout=30)
        assert demo_login.status_code == 401
        assert len(children(first.process.pid)) == 1
    finally:
        first.stop()


async def test_an_unreachable_mongodb_url_fails_fast_without_showing_credentials(tmp_path):
    port = free_loopback_port()  # nothing listens there
    url = f"mongodb://orderpulse:hunter2-secret@127.0.0.1:{port}/shop?authSource=admin&appName=x"
    settings = Settings(_env_file=None, mongodb_url=url, data_dir=tmp_path, jwt_secret=TEST_JWT_SECRET,
                        mongodb_startup_timeout_seconds=1)
    with pytest.raises(ConfigurationError) as raised:
        await connect_database(settings)
    message = str(raised.value)
    assert message.startswith(f"Cannot reach MongoDB at mongodb://127.0.0.1:{port}/shop: ")
    assert message.endswith("Check MONGODB_URL.") and "\n" not in message
    assert "hunter2" not in message and "orderpulse:" not in message

    env = {**os.environ, "MONGODB_URL": url, "DATA_DIR": str(tmp_path), "JWT_SECRET": TEST_JWT_SECRET,
           "PORT": str(free_loopback_port()), "LOG_LEVEL": "warning"}
    try:
        result = subprocess.run([sys.executable, "-m", "server", "serve"], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("start-up against a closed port did not end within 10 s")
    output = result.stdout + result.stderr
    assert result.returncode != 0 and len(output.strip().splitlines()) == 1, output
    assert f"Cannot reach MongoDB at mongodb://127.0.0.1:{port}/shop" in output, output
    assert "hunter2" not in output


def test_the_url_in_messages_has_no_user_password_or_options():
    assert public_mongodb_url("mongodb://u:p@h1:1,h2:2/db?replicaSet=rs0&x=1") == "mongodb://h1:1,h2:2/db"
    assert public_mongodb_url("mongodb+srv://user:pa@ss@cluster.example/orders") == "mongodb+srv://cluster.example/orders"
    assert public_mongodb_url("mongodb://127.0.0.1:27017") == "mongodb://127.0.0.1:27017"
    assert "secret" not in public_mongodb_url("not a url with secret")


async def test_a_database_that_stalls_briefly_answers_late_rather_than_503(tmp_path, api_factory):
    """The timeouts leave room for a slow but live database: a 2.5 s stall is waited out."""
    mongo = start_mongo(tmp_path / "mongo")
    try:
        api = await api_factory(mongodb_url=mongo.url)
        customer = await api.customer()
        os.kill(mongo.process.pid, signal.SIGSTOP)
        try:
            # Signing in reads the account and writes a refresh token: no cache can answer it.
            request = asyncio.create_task(api.post("/api/auth/login", json={
                "email": customer.user["email"], "password": PASSWORD}))
            # Real time on purpose: the stall must outlast the 0.75 s server-selection timeout.
            await asyncio.sleep(2.5)
            assert not request.done()
        finally:
            os.kill(mongo.process.pid, signal.SIGCONT)
        response = await request
        assert response.status_code == 200, response.text
    finally:
        mongo.stop()
