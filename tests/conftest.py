"""Shared fixtures: one real nx-27017 for the session, a fresh database per test, and an
in-process app driven over ASGI (fast, and measured by coverage), on the system clock or on a
`clock` the test moves by hand."""

from __future__ import annotations

import compileall
import itertools
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from server.app import create_app
from server.config import Settings
from server.domain.clock import SYSTEM_CLOCK, Clock
from tests.clock import ManualClock
from tests.harness import (FAST_PASSWORD_COST, REPO, TEST_JWT_SECRET, RedisServer, as_settings, drop_database,
                           start_mongo)
from tests.support import Api

_emails = itertools.count()

# The longest modules, longest first (wall time of each in a full run on three workers): pytest-xdist
# hands whole modules (`--dist loadfile`) to workers in this order (`--no-loadscope-reorder` in
# pyproject.toml: by default it hands out the modules with the most tests first), so no long module
# starts near the end while the other workers idle. The rest keep their order and fill in.
# The browser modules come as one block: each worker then runs its share of them back to back
# under one Chromium (the `browser` fixture is per package, and a launch costs ~1.4 s of CPU).
LONGEST_FIRST = (
    "tests/test_bench.py", "tests/test_schema_fuzz.py",
    "tests/browser/test_watch_tier.py", "tests/browser/test_reconnect.py", "tests/browser/test_customer_journey.py",
    "tests/browser/test_admin_console.py", "tests/browser/test_live_flow.py", "tests/browser/test_screenshots.py",
    "tests/browser/test_api_docs.py", "tests/browser/test_ready_notice.py", "tests/browser/test_push_worker.py",
    "tests/realtime/test_cluster.py", "tests/test_database_outage.py", "tests/test_login_throttle.py",
    "tests/test_partner.py", "tests/test_operations.py", "tests/test_account_admin.py",
    "tests/realtime/test_slow_consumers.py", "tests/realtime/test_websocket.py", "tests/test_push.py",
    "tests/test_startup.py", "tests/test_simulation.py", "tests/realtime/test_keepalive.py",
    "tests/test_campusbite_compat.py", "tests/test_uvicorn_adapter.py", "tests/test_connection_limits.py",
    "tests/realtime/test_sse.py", "tests/test_log_secrets.py", "tests/test_lifecycle.py", "tests/test_create_order.py",
)


# Modules whose tests run OrderPulse only in server processes of their own, which coverage measures
# there: pytest-cov's `no_cover` pauses the tracer in the test process while they run, where it
# only doubled the CPU of their clients (Playwright, websockets, httpx); nothing of server/ runs
# in it (the total's missed lines are the same with and without).
OUT_OF_PROCESS = (
    "tests/browser/", "tests/test_bench.py", "tests/test_schema_fuzz.py", "tests/test_connection_limits.py",
    "tests/realtime/test_cluster.py", "tests/realtime/test_websocket.py", "tests/realtime/test_slow_consumers.py",
    "tests/realtime/test_sse.py", "tests/realtime/test_keepalive.py", "tests/realtime/test_my_orders.py",
    "tests/realtime/test_eta_frames.py",
)


def pytest_configure(config):
    """Bytecode for server/ before anything starts. The suite starts over a hundred server and
    command-line processes; where PYTHONDONTWRITEBYTECODE is set (it is on these machines) none
    leaves its bytecode behind, so each compiled all of server/ from source again (0.09 s of CPU)."""
    if sys.dont_write_bytecode and not hasattr(config, "workerinput"):  # once, in the controller
        compileall.compile_dir(REPO / "server", quiet=1)


def pytest_collection_modifyitems(config, items):
    rank = {module: position for position, module in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable: the rest keep their order
    for item in items:
        if item.nodeid.startswith(OUT_OF_PROCESS):
            item.add_marker(pytest.mark.no_cover)


@pytest.fixture(scope="session")
def mongo(tmp_path_factory):
    server = start_mongo(tmp_path_factory.mktemp("mongo"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.kill()


@pytest.fixture
def database_name(mongo):
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    drop_database(mongo.url, name)


@pytest.fixture
def make_settings(mongo, database_name, tmp_path):
    def build(**overrides) -> Settings:
        values = dict(mongodb_url=mongo.url, mongodb_database=database_name, jwt_secret=TEST_JWT_SECRET,
                      data_dir=Path(tmp_path), orderpulse_env="test", poll_min_interval_seconds=0,
                      **as_settings(FAST_PASSWORD_COST))
        values.update(overrides)
        return Settings(_env_file=None, **values)
    return build


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when the test says: pass it to `api_factory(clock=clock)`."""
    return ManualClock()


@pytest_asyncio.fixture
async def app_factory(make_settings):
    """Start apps in-process; each is stopped when the test ends."""
    stack = []

    async def start(clock: Clock = SYSTEM_CLOCK, **overrides):
        app = create_app(make_settings(**overrides), clock=clock)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        stack.append(lifespan)
        return app

    yield start
    for lifespan in reversed(stack):
        await lifespan.__aexit__(None, None, None)


@pytest_asyncio.fixture
async def api_factory(app_factory) -> AsyncIterator:
    clients = []

    async def build(clock: Clock = SYSTEM_CLOCK, **overrides) -> Api:
        app = await app_factory(clock=clock, **overrides)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://testserver")
        clients.append(client)
        return Api(client, app)

    yield build
    for client in clients:
        await client.aclose()


@pytest_asyncio.fixture
async def api(api_factory) -> Api:
    return await api_factory()
