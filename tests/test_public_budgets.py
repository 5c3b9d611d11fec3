"""Public answers that cost real work are bounded per process (issue 25): a flood of `/readyz`
costs at most a few test writes a second, and `/metrics` renders at most a few times a second."""

from __future__ import annotations

import asyncio
import time

from server.http.ops_routes import CHECKS_PER_SECOND
from server.runtime import READINESS_COLLECTION


async def _probe_writes(api) -> int:
    runtime = api.runtime
    database = runtime.client.get_default_database(default=runtime.settings.mongodb_database)
    probe = await database[READINESS_COLLECTION].find_one({"_id": "probe"})
    return probe["writes"] if probe else 0


async def test_a_flood_of_readiness_probes_costs_a_bounded_number_of_database_writes(api):
    assert (await api.get("/readyz")).status_code == 200
    before = await _probe_writes(api)
    started = time.monotonic()
    answers = []
    for _ in range(10):  # ten waves of 20 probes at once
        answers += await asyncio.gather(*(api.get("/readyz") for _ in range(20)))
    elapsed = time.monotonic() - started
    assert {a.status_code for a in answers} == {200}
    assert all(a.json()["status"] == "ready" for a in answers)
    writes = await _probe_writes(api) - before
    assert writes <= 2 * CHECKS_PER_SECOND + CHECKS_PER_SECOND * elapsed + 1, (writes, elapsed)


async def test_metrics_past_their_budget_are_429_with_retry_after(api_factory, clock):
    api = await api_factory(clock=clock)  # time stands still: the budget cannot refill meanwhile
    answers = [await api.get("/metrics") for _ in range(3 * CHECKS_PER_SECOND)]
    codes = [a.status_code for a in answers]
    assert codes == [200] * (2 * CHECKS_PER_SECOND) + [429] * CHECKS_PER_SECOND, codes
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.headers["Retry-After"] == "1"
    assert refused.json()["message"] == "Metrics are rendered at most 20 times a second. Try again in 1 s."
