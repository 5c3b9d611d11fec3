"""Shared fixtures: one real nx-27017 for the session, a fresh database per test, and an
in-process app driven over ASGI (fast, and measured by coverage), on the system clock or on a
`clock` the test moves by hand."""

from __future__ import annotations

import itertools
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
from tests.harness import FAST_PASSWORD_COST, TEST_JWT_SECRET, RedisServer, as_settings, drop_database, start_mongo
from tests.support import Api

_emails = itertools.count()

# The longest modules, longest first (measured with --durations): pytest-xdist hands whole modules
# (`--dist loadfile`) to workers in collection order, so starting these first keeps one long
# module from running alone at the end while the other workers idle.
LONGEST_FIRST = (
    "tests/test_bench.py", "tests/test_schema_fuzz.py", "tests/browser/test_customer_journey.py",
    "tests/realtime/test_cluster.py", "tests/browser/test_reconnect.py", "tests/browser/test_watch_tier.py",
    "tests/test_database_outage.py", "tests/browser/test_live_flow.py", "tests/browser/test_admin_console.py",
    "tests/test_partner.py", "tests/realtime/test_slow_consumers.py", "tests/test_login_throttle.py",
    "tests/test_operations.py", "tests/test_account_admin.py", "tests/browser/test_screenshots.py",
    "tests/test_startup.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {module: position for position, module in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable: the rest keep their order


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
