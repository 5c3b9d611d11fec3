"""Schemathesis over `/openapi.json` of a real server process, as a customer, a store employee and an
admin: no 5xx, every answer in the documented shape, and the document states what the server
enforces (bounds, lengths, non-empty text, enums), so data the document calls valid is accepted
and data it calls invalid is refused.

Schemathesis runs as its command line against a `ServerProcess`: its own test runner drives
requests from threads of its own, which an in-process app on pytest-asyncio's session loop cannot
serve. The run is deterministic (derandomized) and small (a few examples per operation): about
35 s for the three callers, most of it the customer's coverage phase.
"""

from __future__ import annotations

import subprocess
import sys
import uuid

import httpx
import pytest
import pytest_asyncio

from tests.harness import ServerProcess, create_admin, drop_database, unmeasured_environ
from tests.support import PASSWORD, Actor, Api

# Statuses schemathesis expects by default, plus what the contracts answer on purpose.
POSITIVE = ["2xx", "3xx", "401", "403", "404", "409", "429"]
NEGATIVE = ["400", "401", "403", "404", "405", "406", "409", "415", "422", "428", "429"]


def _quoted(statuses: list[str]) -> str:
    return "[" + ", ".join(f'"{s}"' for s in statuses) + "]"


CONFIG = f"""
seed = 20240318
workers = 1
color = false

[generation]
max-examples = 2
deterministic = true
database = "none"

# PARTNER.md: a missing or empty X-Client-ID is 499 and an unknown one 498, checked before the
# bearer token, so a request without a token but with a made-up client id is a 498, not a 401.
# Event streams never end by themselves: schemathesis reads one until 20 events or 10 s. Every stream
# here opens with an event (the snapshot, the whole menu, CampusBite's "connected"): check that one.
[[operations]]
include-path-regex = "(/events|/api/notifications/subscribe)$"
max-stream-events = 1
request-timeout = 3

[[operations]]
include-path-regex = "^/v1/"
checks.missing_required_header.enabled = false
checks.positive_data_acceptance.expected-statuses = {_quoted(POSITIVE + ["498"])}
checks.negative_data_rejection.expected-statuses = {_quoted(NEGATIVE + ["498", "499"])}

# Well-formed requests the contracts refuse with a 400 for what no schema can know: a checkout
# token, store or menu item that does not exist (seed 001, API.md), a wrong pickup code, a step
# the order's state does not allow (seed 003's "does not require commitment", a skipped status),
# an admin disabling their own account, a push endpoint that is no known push service, a pace
# whose `delayMinutes` is written `0.0` (JSON Schema's `integer` admits a number with a zero
# fraction; the server takes whole numbers as JSON writes them, like every other whole number), a
# mailed reset or verification link that does not exist (CampusBite's 400), a webhook URL that does
# not resolve or resolves where webhooks may not go, or a partner client that does not exist, a
# webhook replay naming no scope or two (README, "Webhooks"), a role change of an account that is
# not staff, a profile change naming another email or role than the account's own.
[[operations]]
include-path-regex = "^(/api/users/profile|/api/admin/users/\\\\{{user_id\\\\}}/role|/api/push/subscriptions|/api/stores/\\\\{{store_id\\\\}}/pace|/v1/order|/api/orders|/api/orders/checkout-session|/api/orders/\\\\{{order_id\\\\}}/(status|payment-status|verify-otp|confirm-commitment|cancel)|/api/admin/users/\\\\{{user_id\\\\}}|/api/admin/webhooks|/api/admin/webhooks/\\\\{{endpoint_id\\\\}}/replay|/api/auth/(reset-password|verify-email)/\\\\{{token\\\\}})$"
checks.positive_data_acceptance.expected-statuses = {_quoted(POSITIVE + ["400", "498"])}
"""


@pytest_asyncio.fixture(scope="module")
async def target(mongo, tmp_path_factory):
    """A server with a store, its employee, a customer with an order, and an admin; their tokens."""
    database = f"t_fuzz_{uuid.uuid4().hex[:8]}"
    env = {"MONGODB_URL": mongo.url, "MONGODB_DATABASE": database, "POLL_MIN_INTERVAL_SECONDS": "0"}
    server = ServerProcess(env, tmp_path_factory.mktemp("fuzz")).start()
    try:
        create_admin(env, email="fuzz-admin@campus.edu", password=PASSWORD, name="Fuzz Admin")
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            api = Api(client)
            admin = await api.login("fuzz-admin@campus.edu")
            store = await api.store(admin)
            customer = await api.customer()
            await api.place_order(customer, store)
        yield server, {"customer": customer, "store_employee": store.staff, "admin": admin}
    finally:
        server.stop()
        drop_database(mongo.url, database)


# The coverage phase (every boundary and missing part of every operation, ~1,200 requests) runs
# once, as the customer; as staff and admin, the fuzzing and stateful phases reach what only they may.
PHASES = {"customer": "examples,coverage,fuzzing,stateful", "store_employee": "examples,fuzzing,stateful",
          "admin": "examples,fuzzing,stateful"}


@pytest.mark.parametrize("role", list(PHASES))
def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(target, role, tmp_path):
    server, actors = target
    actor: Actor = actors[role]
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    result = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", f"{server.url}/openapi.json",
         "-H", f"Authorization: Bearer {actor.access_token}", "--phases", PHASES[role],
         "--workers", "2", "--report-dir", str(tmp_path / "report")],
        # Schemathesis is not the code under test: it runs untraced.
        cwd=tmp_path, capture_output=True, text=True, timeout=170, env=unmeasured_environ())
    report = result.stdout[-12000:] + result.stderr[-3000:]
    assert result.returncode == 0, report
    log = server.log_path.read_text()
    assert "Traceback" not in log, log[-3000:]
