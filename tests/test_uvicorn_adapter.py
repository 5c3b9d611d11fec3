"""The uvicorn adapter's one guard (server/uvicorn_adapter): on internals it does not expect it
warns once and runs uvicorn's own protocols, and a client cannot tell the difference.

The guard is checked on altered classes; the fallback runs for real in server processes, one with
ORDERPULSE_UVICORN_ADAPTER=off and one whose uvicorn reports another version, next to one with the
adapter: a socket's auth, subscribe, event, ping, refusal and keep-alive, and poll-status, compared."""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest_asyncio
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from server.config import Settings
from server.uvicorn_adapter import FALLBACK, STOCK, incompatibility, server_protocols
from server.uvicorn_adapter.http_limits import GuardedHttpToolsProtocol
from server.uvicorn_adapter.lean_websocket import LeanWebSocketProtocol
from tests.harness import REPO
from tests.realtime.conftest import Deployment, Watcher, deployment_env
from tests.realtime.test_keepalive import OP_CLOSE, OP_PING, HandClient
from tests.support import Actor, Api, StoreSetup, until

UNEXPECTED_VERSION = "0.55.0"
MODES = ("adapter", "off", "unexpected uvicorn")


# --- the guard -------------------------------------------------------------------------------------

def test_the_installed_uvicorn_is_the_one_the_adapter_expects():
    assert incompatibility() is None


def test_another_uvicorn_version_is_named():
    assert UNEXPECTED_VERSION in incompatibility(version=UNEXPECTED_VERSION)
    assert "0.53.2" in incompatibility(version="0.53.2")
    assert incompatibility(version="0.54.7") is None


def test_a_protocol_without_an_attribute_the_adapter_uses_is_refused():
    class NoFlowControl(WebSocketsSansIOProtocol):
        def __init__(self, config, server_state, app_state, _loop=None):
            super().__init__(config, server_state, app_state, _loop)
            del self.writable

    assert "writable" in incompatibility(ws_base=NoFlowControl)


def test_a_protocol_without_a_method_the_adapter_overrides_is_refused():
    stripped = type("Stripped", (), {name: getattr(HttpToolsProtocol, name)
                                      for name in ("__init__", "connection_made", "connection_lost")})
    assert "data_received" in incompatibility(http_base=stripped)


def test_a_method_with_other_parameters_is_refused():
    class OtherPong(WebSocketsSansIOProtocol):
        def handle_pong(self, event, now):  # type: ignore[override]
            pass

    assert "handle_pong" in incompatibility(ws_base=OtherPong)


def test_a_protocol_that_no_longer_calls_the_overridden_keepalive_is_refused():
    class OwnKeepalive(WebSocketsSansIOProtocol):
        def start_keepalive(self):
            pass

    assert "schedule_ping" in incompatibility(ws_base=OwnKeepalive)


def test_the_adapter_protocols_are_uvicorns_own_subclassed():
    protocols = server_protocols(Settings())
    assert protocols.adapted
    assert issubclass(protocols.http, GuardedHttpToolsProtocol) and protocols.ws is LeanWebSocketProtocol


def test_off_runs_uvicorns_own_protocols_with_one_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="orderpulse.uvicorn"):
        assert server_protocols(Settings(orderpulse_uvicorn_adapter="off")) == STOCK
    assert [r.getMessage() for r in caplog.records] == [f"ORDERPULSE_UVICORN_ADAPTER=off: {FALLBACK}."]


def test_an_unexpected_uvicorn_runs_its_own_protocols_with_one_warning(caplog, monkeypatch):
    monkeypatch.setattr(uvicorn, "__version__", UNEXPECTED_VERSION)
    with caplog.at_level(logging.WARNING, logger="orderpulse.uvicorn"):
        assert server_protocols(Settings()) == STOCK
    assert len(caplog.records) == 1
    assert UNEXPECTED_VERSION in caplog.records[0].getMessage() and FALLBACK in caplog.records[0].getMessage()


# --- the same answers from a real server, with and without the adapter -----------------------------

@pytest_asyncio.fixture(scope="module")
async def servers(mongo, redis_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("adapter")
    # A uvicorn that reports another version, as a fresh install past the pin would.
    simulated = root / "unexpected-uvicorn"
    simulated.mkdir()
    (simulated / "sitecustomize.py").write_text(f"import uvicorn\nuvicorn.__version__ = {UNEXPECTED_VERSION!r}\n")
    path = os.pathsep.join(p for p in (str(simulated), os.environ.get("PYTHONPATH")) if p)
    deployment = Deployment(root, deployment_env(mongo, redis_server, WS_PING_INTERVAL_SECONDS="0.5",
                                                 WS_PING_TIMEOUT_SECONDS="0.5"), redis_server)
    processes = {"adapter": deployment.server(), "off": deployment.server(ORDERPULSE_UVICORN_ADAPTER="off"),
                 "unexpected uvicorn": deployment.server(PYTHONPATH=path)}
    try:
        await deployment.start(*processes.values())
        admin = await deployment.create_admin(processes["adapter"])
        store = await deployment.api(processes["adapter"]).store(admin)
        yield deployment, processes, store
    finally:
        await deployment.close()


async def observe(api: Api, ws_url: str, port: int, store: StoreSetup, customer: Actor) -> dict:
    """What a client sees of one server: frames with their ids normalised, statuses, close codes."""
    order = await api.place_order(customer, store)
    seen: dict = {}
    watcher = await Watcher.open(ws_url)
    try:
        seen["auth"] = await watcher.ask({"type": "auth", "token": customer.access_token})
        snapshot = await watcher.subscribe(orderIds=[order["id"]])
        seen["snapshot"] = [(e["id"] == order["id"], e["orderStatus"], e["version"]) for e in snapshot["orders"]]
        await api.advance(store, order["id"], "paid")
        event = await until(lambda: next((f for f in watcher.frames if f["type"] == "order"), None),
                            message="the order event")
        seen["event"] = (event["event"], event["version"], event["order"]["paymentStatus"], sorted(event["order"]))
        seen["pong"] = await watcher.ask({"type": "ping"})
        seen["refused"] = await watcher.ask({"type": "subscribe"})
        seen["second auth"] = await watcher.ask({"type": "auth", "token": customer.access_token})
    finally:
        await watcher.close()
    seen["keep-alive"] = await asyncio.gather(answered_pings(port, customer.access_token),
                                              unanswered_ping(port, customer.access_token))
    first = await api.get(f"/api/orders/{order['id']}/poll-status", customer)
    again = await api.get(f"/api/orders/{order['id']}/poll-status", customer,
                          headers={"If-None-Match": first.headers["etag"]})
    seen["poll"] = (first.status_code, sorted(first.json()["data"]), again.status_code, again.content)
    return seen


async def answered_pings(port: int, token: str, pings: int = 3) -> str:
    client = await HandClient.open(port, token)
    try:
        async with asyncio.timeout(15):
            for _ in range(pings):
                while (frame := await client.frame()) is not None and frame[0] != OP_PING:
                    assert frame[0] != OP_CLOSE, frame
                assert frame is not None, "dropped while answering pings"
                client.pong(frame[1])
        return f"open after {pings} answered pings"
    finally:
        client.close()


async def unanswered_ping(port: int, token: str) -> tuple[int, int, bytes]:
    client = await HandClient.open(port, token)
    try:
        pings = 0
        async with asyncio.timeout(15):
            while (frame := await client.frame()) is not None:
                if frame[0] == OP_PING:
                    pings += 1
                elif frame[0] == OP_CLOSE:
                    return pings, struct.unpack("!H", frame[1][:2])[0], frame[1][2:]
        raise AssertionError("the connection ended without a close frame")
    finally:
        client.close()


async def test_a_client_sees_the_same_with_and_without_the_adapter(servers):
    deployment, processes, store = servers
    apis = {mode: deployment.api(process) for mode, process in processes.items()}
    customers = {mode: await apis[mode].customer() for mode in MODES}
    seen = dict(zip(MODES, await asyncio.gather(*(
        observe(apis[mode], processes[mode].ws_url, processes[mode].port, store, customers[mode])
        for mode in MODES))))

    adapter = seen["adapter"]
    assert adapter["auth"]["type"] == "authenticated"
    assert adapter["snapshot"] == [(True, "placed", 1)]
    assert adapter["event"][:3] == ("updated", 2, "success")
    assert adapter["refused"]["type"] == "error" and adapter["keep-alive"][1] == (1, 1011, b"keepalive ping timeout")
    assert adapter["poll"][0] == 200 and adapter["poll"][2:] == (304, b"")
    assert seen["off"] == adapter
    assert seen["unexpected uvicorn"] == adapter


def test_only_the_servers_without_the_adapter_warn_once_naming_why(servers):
    _, processes, _ = servers
    logs = {mode: Path(process.log_path).read_text() for mode, process in processes.items()}
    assert FALLBACK not in logs["adapter"]
    assert logs["off"].count(FALLBACK) == 1 and "ORDERPULSE_UVICORN_ADAPTER=off" in logs["off"]
    assert logs["unexpected uvicorn"].count(FALLBACK) == 1
    assert f"uvicorn {UNEXPECTED_VERSION} is installed" in logs["unexpected uvicorn"]


def test_a_bad_adapter_setting_is_one_line_naming_it(tmp_path):
    result = subprocess.run([sys.executable, "-m", "server", "serve"], cwd=REPO, capture_output=True, text=True,
                            timeout=60, env={**os.environ, "ORDERPULSE_UVICORN_ADAPTER": "maybe",
                                             "DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "ORDERPULSE_UVICORN_ADAPTER" in lines[0], result.stderr
