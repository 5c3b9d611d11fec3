"""orderpulse-bench against real server processes, every scenario at a tiny size.

These check that the tool runs end to end and that its numbers are coherent (counts add up,
percentiles are ordered, nothing is lost); they never assert speed.
"""

from __future__ import annotations

import json
import math
import uuid

import pytest

from server.bench.cli import main
from server.bench.target import TargetRefused, parse_targets
from tests.harness import ServerProcess, create_user_cli, drop_database

pytestmark = pytest.mark.timeout(150)

ADMIN_EMAIL = "bench-admin@orderpulse.test"
ADMIN_PASSWORD = "bench-admin-password"
TINY = ["--customers", "2", "--duration", "1.5", "--warmup", "0.3", "--concurrency", "4", "--orders", "16",
        "--processes", "2", "--sockets", "24", "--hold", "1", "--subscribers", "6", "--rate", "20",
        "--settle", "1", "--poll-interval", "0.5", "--max-wait", "30", "--grace", "1.5", "--quiet"]


def _env(mongo) -> dict[str, str]:
    return {"MONGODB_URL": mongo.url, "MONGODB_DATABASE": f"bench_{uuid.uuid4().hex[:10]}",
            "POLL_MIN_INTERVAL_SECONDS": "0", "UNPAID_ORDER_TIMEOUT_MINUTES": "0.05"}


def _admin_args() -> list[str]:
    return ["--admin-email", ADMIN_EMAIL, "--admin-password", ADMIN_PASSWORD]


@pytest.fixture
def server_pair(mongo, redis_server, tmp_path):
    env = {**_env(mongo), "REDIS_URL": redis_server.url}
    create_user_cli(env, role="admin", email=ADMIN_EMAIL, password=ADMIN_PASSWORD, name="Bench Admin")
    pair = [ServerProcess(env, tmp_path / f"server{i}").start() for i in range(2)]
    yield pair
    for process in pair:
        process.stop()
    drop_database(env["MONGODB_URL"], env["MONGODB_DATABASE"])


def _value(scenario: dict, key: str):
    return scenario["measurements"][key]["value"]


def _ordered(distribution: dict) -> bool:
    return distribution["p50"] <= distribution["p90"] <= distribution["p99"] <= distribution["max"]


def test_refuses_hosts_other_than_loopback():
    with pytest.raises(TargetRefused):
        parse_targets("http://192.0.2.10:8000", allow_remote=False)
    assert parse_targets("http://127.0.0.1:8000,http://localhost:8001", allow_remote=False)[1].port == 8001
    assert main(["poll", "--url", "http://192.0.2.10:8000", "--quiet"]) == 2


def test_every_scenario_reports_coherent_results(server_pair, tmp_path):
    out, charts = tmp_path / "bench.json", tmp_path / "charts"
    # Two processes sharing Redis: changes go to the first, subscribers (fanout, latency,
    # deadlines) listen on the second, so every event crosses processes.
    first, second = server_pair
    code = main(["all", "--urls", f"{first.url},{second.url}", "--server-pid", str(first.process.pid),
                 *_admin_args(), *TINY, "--json", str(out), "--plot", str(charts)])
    assert code == 0
    scenarios = {s["scenario"]: s for s in json.loads(out.read_text())["scenarios"]}
    assert list(scenarios) == ["poll", "sockets", "fanout", "latency", "push-vs-poll", "deadlines"]

    poll = scenarios["poll"]
    assert _value(poll, "polls") > 0
    assert _value(poll, "status_200") == _value(poll, "polls")
    assert _value(poll, "bad_bodies") == 0 and _value(poll, "client_errors") == 0
    assert _ordered(poll["distributions"]["poll"])
    assert _value(poll, "db_reads_per_poll") >= 0

    sockets = scenarios["sockets"]
    assert _value(sockets, "sockets_open") == 24 and _value(sockets, "dropped") == 0
    assert isinstance(_value(sockets, "kib_per_socket"), float)

    for name, subscribers in (("fanout", 6), ("latency", 1)):
        push = scenarios[name]
        assert push["params"]["subscribeUrl"] == second.url
        made = _value(push, "changes_ok")
        assert made == 30 and _value(push, "change_errors") == 0
        assert _value(push, "deliveries") == made * subscribers
        assert _value(push, "missing") == 0 and _value(push, "out_of_order") == 0
        assert _ordered(push["distributions"]["delivery"])
    assert _value(scenarios["fanout"], "server_events") >= 30

    pvp = scenarios["push-vs-poll"]
    assert _value(pvp, "sockets_open") == 16
    assert _value(pvp, "polls") > 0 and _value(pvp, "poll_failures") == 0
    assert _value(pvp, "poll_cpu_s") >= 0 and _value(pvp, "socket_cpu_s") >= 0

    deadlines = scenarios["deadlines"]
    assert deadlines["params"]["unpaidTimeoutMinutes"] == 0.05
    assert _value(deadlines, "cancelled") == _value(deadlines, "orders") == 16
    assert deadlines["params"]["cancellationReasons"] == {"payment_timeout": 16}
    assert not math.isnan(deadlines["distributions"]["lateness"]["p99"])

    assert {p.name for p in charts.iterdir()} >= {"bench-poll-latency.png", "bench-poll-timeline.png",
                                                  "bench-fanout-latency.png", "bench-deadlines-latency.png"}

