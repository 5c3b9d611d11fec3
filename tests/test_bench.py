"""orderpulse-bench against real server processes, every scenario at a tiny size.

These check that the tool runs end to end and that its numbers are coherent (counts add up,
percentiles are ordered, nothing is lost); they never assert speed.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import uuid

import pytest

from server.bench.cli import main, parse_overrides
from server.bench.floors import server_frame
from server.bench.loadgen import LoadResult, choose_client
from server.bench.scenarios.poll import merged
from server.bench.stats import worst_series
from server.bench.metrics import MetricsSnapshot, histogram_delta
from server.bench.rawhttp import RawPool, build_with_body
from server.bench.target import TargetRefused, parse_targets
from server.bench.workers import WorkerPool
from server.embedded_mongo import free_loopback_port
from tests.harness import ServerProcess, create_admin, drop_database, unmeasured_environ

pytestmark = pytest.mark.timeout(240)

ADMIN_EMAIL = "bench-admin@orderpulse.demo"
ADMIN_PASSWORD = "bench-admin-password"
TINY = ["--customers", "2", "--duration", "1", "--warmup", "0.2", "--concurrency", "4", "--orders", "16",
        "--processes", "2", "--sockets", "24", "--hold", "0.5", "--subscribers", "6", "--rate", "30",
        "--settle", "0.5", "--poll-interval", "0.5", "--max-wait", "30", "--grace", "1", "--quiet"]


def _env(mongo) -> dict[str, str]:
    # Development, as `orderpulse demo` runs: it refuses the `.test` emails a test server accepts.
    return {"MONGODB_URL": mongo.url, "MONGODB_DATABASE": f"bench_{uuid.uuid4().hex[:10]}",
            "ORDERPULSE_ENV": "development", "POLL_MIN_INTERVAL_SECONDS": "0",
            "UNPAID_ORDER_TIMEOUT_MINUTES": "0.2", "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
            # The fan-out test opens and subscribes 200 sockets as two staff accounts at once.
            "WS_MAX_SOCKETS_PER_STAFF_ACCOUNT": "200", "WS_SUBSCRIBE_READS_BURST": "200",
            "WS_SUBSCRIBES_BURST": "200"}


def _admin_args() -> list[str]:
    return ["--admin-email", ADMIN_EMAIL, "--admin-password", ADMIN_PASSWORD]


@pytest.fixture(autouse=True)
def _untraced(monkeypatch):
    """The bench's own processes (load clients, floor servers) start without coverage's tracer, as
    they run outside the suite: server/bench is not measured, and a tracer would skew its ratios."""
    for name in os.environ.keys() - unmeasured_environ().keys():
        monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def server_pair(mongo, redis_server, tmp_path_factory):
    """Two servers on one database and Redis, for the module: each run makes its own store and people."""
    env = {**_env(mongo), "REDIS_URL": redis_server.url}
    create_admin(env, email=ADMIN_EMAIL, password=ADMIN_PASSWORD, name="Bench Admin")
    root = tmp_path_factory.mktemp("bench")
    pair = [ServerProcess(env, root / f"server{i}").start() for i in range(2)]
    yield pair
    for process in pair:
        process.stop()
    drop_database(env["MONGODB_URL"], env["MONGODB_DATABASE"])


@pytest.fixture
def partner_server(mongo, tmp_path):
    """One server whose unpaid timeout outlasts the webhooks scenario's setup (placing its orders and
    waiting for their creation events): none of its orders is cancelled before its payment."""
    env = {**_env(mongo), "UNPAID_ORDER_TIMEOUT_MINUTES": "120"}
    create_admin(env, email=ADMIN_EMAIL, password=ADMIN_PASSWORD, name="Bench Admin")
    server = ServerProcess(env, tmp_path / "server").start()
    yield server
    server.stop()
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


def test_an_unreachable_server_is_one_line(capsys):
    port = free_loopback_port()
    assert main(["poll", "--url", f"http://127.0.0.1:{port}", "--quiet"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "orderpulse-bench: cannot reach the server: ConnectError: All connection attempts failed"]


def test_every_scenario_reports_coherent_results(server_pair, tmp_path):
    out, charts = tmp_path / "bench.json", tmp_path / "charts"
    # Two processes sharing Redis: changes go to the first, subscribers (fanout, latency,
    # deadlines) listen on the second, so every event crosses processes.
    first, second = server_pair
    code = main(["all", "--urls", f"{first.url},{second.url}", "--server-pid", str(first.process.pid),
                 *_admin_args(), *TINY, "--set", "sockets.sockets=20", "--set", "poll.slices=2",
                 "--set", "webhooks.orders=4", "--set", "webhooks.settle=20", "--set", "deadlines.burst_orders=8",
                 "--json", str(out), "--plot", str(charts)])
    assert code == 0
    scenarios = {s["scenario"]: s for s in json.loads(out.read_text())["scenarios"]}
    assert list(scenarios) == ["poll", "sockets", "fanout", "latency", "checkout", "push-vs-poll", "deadlines",
                               "eta", "webhooks", "report"]
    assert "MONGODB_URL" in scenarios["report"]["notes"][0]  # it writes to the database only when told where
    assert _value(scenarios["eta"], "orders") == 16  # the shared --orders; a simulation, no server

    poll = scenarios["poll"]
    assert poll["params"]["client"].startswith("wrk" if shutil.which("wrk") else "python")
    _assert_poll_and_its_floor(poll)
    assert len(poll["params"]["sliceRatios"]) == 2  # server and floor measured in two alternating pairs

    sockets = scenarios["sockets"]
    assert _value(sockets, "sockets_open") == 20 and _value(sockets, "dropped") == 0  # --set over --sockets 24
    assert isinstance(_value(sockets, "kib_per_socket"), float)

    for name, subscribers in (("fanout", 6), ("latency", 1)):
        push = scenarios[name]
        assert push["params"]["subscribeUrl"] == second.url
        made = _value(push, "changes_ok")
        assert made == 30 and _value(push, "change_errors") == 0
        assert _value(push, "deliveries") == made * subscribers
        assert _value(push, "missing") == 0 and _value(push, "out_of_order") == 0
        assert _ordered(push["distributions"]["delivery"])
        # Where the tail sits: every change's worst receipt, by half-second of sending.
        worst = push["timelines"]["send→receipt worst ms by send time"]
        assert worst and all(ms >= 0 for _, ms in worst) and max(ms for _, ms in worst) > 0
    fanout = scenarios["fanout"]
    assert _value(fanout, "server_events") >= 30
    # The floor: the same 6 subscribers and 30 events through a raw send loop, and the ratios to it.
    assert _value(fanout, "floor_subscribers") == 6
    assert _value(fanout, "floor_deliveries") == 30 * 6 and _value(fanout, "floor_missing") == 0
    assert fanout["params"]["floorFrameBytes"] > 100  # a real event frame's size was measured
    assert _ordered(fanout["distributions"]["floor_send_to_receipt"])
    for ratio in ("floor_ratio_fanout", "floor_ratio_p50", "floor_ratio_p99"):
        assert _value(fanout, ratio) > 0, ratio

    pvp = scenarios["push-vs-poll"]
    assert _value(pvp, "sockets_open") == 16
    assert _value(pvp, "polls") > 0 and _value(pvp, "poll_failures") == 0
    assert _value(pvp, "poll_cpu_s") >= 0 and _value(pvp, "socket_cpu_s") >= 0

    deadlines = scenarios["deadlines"]
    assert deadlines["params"]["unpaidTimeoutMinutes"] == 0.2
    assert _value(deadlines, "cancelled") == _value(deadlines, "orders") == 16
    assert deadlines["params"]["cancellationReasons"] == {"payment_timeout": 16}
    assert not math.isnan(deadlines["distributions"]["lateness"]["p99"])
    assert _value(deadlines, "early") == 0 and _value(deadlines, "cancelled_at_missing") == 0
    assert _ordered(deadlines["distributions"]["server_lateness"])
    assert _value(deadlines, "burst_placed") == 8 and _value(deadlines, "burst_refused") == 0
    _assert_costs(deadlines, first.process.pid, per_call=False)

    checkout = scenarios["checkout"]
    assert _value(checkout, "placed") == 16 and _value(checkout, "refused") == 0

    hooks = scenarios["webhooks"]
    # This pair's 12 s unpaid timeout may cancel an order before its change on a loaded machine; that every
    # change is made and delivered is asserted beside a longer timeout (test_webhooks_delivers_every_change...).
    assert _value(hooks, "changes") + _value(hooks, "change_errors") == 4
    assert _value(hooks, "webhooks_received") == _value(hooks, "changes")

    assert {p.name for p in charts.iterdir()} >= {"bench-poll-latency.png", "bench-fanout-latency.png",
                                                  "bench-deadlines-latency.png"}


def _assert_costs(scenario: dict, server_pid: int, *, per_call: bool = True) -> None:
    """Server and database CPU per 1,000 operations and database commands, all read, none negative."""
    found = scenario["params"]["cpuProcesses"]
    assert server_pid in found["server"] and found["database"] not in (None, server_pid)
    for key in ("cpu_server_per_1000_s", "cpu_database_per_1000_s"):
        assert _value(scenario, key) >= 0, key
    assert _value(scenario, "db_commands_per_call") > 0
    assert scenario["measurements"]["db_commands_per_call"]["label"].endswith(
        "per API call" if per_call else "per cancellation")


def _assert_poll_and_its_floor(poll: dict) -> None:
    """Every answer a 2xx, no errors, and the bare Starlette floor measured with the same client."""
    assert _value(poll, "polls") > 0
    assert _value(poll, "status_ok") == _value(poll, "polls") and _value(poll, "status_other") == 0
    assert _value(poll, "client_errors") == 0
    assert _ordered(poll["distributions"]["poll"])
    assert _value(poll, "db_reads_per_poll") >= 0
    assert poll["params"]["floorStatusCounts"]
    assert _value(poll, "floor_rps") > 0 and _ordered(poll["distributions"]["floor"])
    assert _value(poll, "floor_ratio_rps") == pytest.approx(_value(poll, "throughput_rps") / _value(poll, "floor_rps"))
    assert _value(poll, "floor_ratio_p99") > 0


def test_the_report_scenario_times_the_report_of_a_seeded_store(server_pair, mongo, monkeypatch, tmp_path):
    out = tmp_path / "report.json"
    first, _ = server_pair
    monkeypatch.setenv("MONGODB_URL", mongo.url)
    monkeypatch.setenv("MONGODB_DATABASE", first.env["MONGODB_DATABASE"])
    code = main(["report", "--url", first.url, *_admin_args(), "--customers", "1", "--orders", "1200", "--quiet",
                 "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())["scenarios"][0]
    assert report["params"]["orders"] == 1200 and report["atTargetSize"] is False
    assert _value(report, "day_orders") == 500 and _value(report, "report_bytes") > 500
    for name in ("report_json", "report_csv"):
        assert report["distributions"][name]["count"] == 20 and _ordered(report["distributions"][name])


def test_poll_with_the_python_client_reports_its_floor(server_pair, tmp_path):
    out = tmp_path / "poll.json"
    first, _ = server_pair
    code = main(["all", "--only", "poll", "--url", first.url, "--client", "python", *_admin_args(), *TINY,
                 "--json", str(out)])
    assert code == 0
    poll = json.loads(out.read_text())["scenarios"][0]
    assert poll["params"]["client"] == "python"
    _assert_poll_and_its_floor(poll)
    assert _value(poll, "bad_bodies") == 0 and _value(poll, "status_429") == 0
    assert poll["timelines"]["throughput req/s"]


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (.ci/run installs it)")
def test_poll_pipelined_through_wrk_counts_every_answer_and_the_load_generators_cpu(server_pair, tmp_path):
    out = tmp_path / "poll.json"
    first, _ = server_pair
    code = main(["all", "--only", "poll", "--url", first.url, "--server-pid", str(first.process.pid),
                 "--client", "wrk", "--set", "poll.pipeline=4", *_admin_args(), *TINY, "--json", str(out)])
    assert code == 0
    poll = json.loads(out.read_text())["scenarios"][0]
    assert poll["params"]["pipeline"] == 4
    assert _value(poll, "polls") > 0 and _value(poll, "client_errors") == 0
    assert _value(poll, "status_ok") == _value(poll, "polls") and _value(poll, "status_other") == 0
    assert _value(poll, "floor_rps") > 0
    # wrk times pipelined batches, not requests: no percentiles, and a note says why.
    assert "p50" not in poll["distributions"]["poll"] and any("pipelined" in note for note in poll["notes"])
    # wrk is a child the bench waits for: its own CPU is counted, beside the server's.
    assert _value(poll, "client_cpu_per_poll_us") > 0 and _value(poll, "server_cpu_per_poll_us") > 0


def test_without_wrk_auto_falls_back_to_python_and_wrk_is_refused_in_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH holding no wrk
    assert choose_client("auto") is None
    assert main(["poll", "--client", "wrk", "--quiet"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "orderpulse-bench: --client wrk: wrk is not installed (apt-get install wrk)"]


def test_set_gives_one_scenario_its_own_size():
    assert parse_overrides(["poll.orders=500", "push-vs-poll.duration=30", "poll.client=python"]) == {
        "poll": {"orders": 500, "client": "python"}, "push-vs-poll": {"duration": 30.0}}
    for wrong in ("poll.sockets=5", "poll.orders", "nothing.orders=5", "poll.orders=many"):
        with pytest.raises(ValueError, match="--set"):
            parse_overrides([wrong])


def test_metrics_are_read_with_the_prometheus_parser():
    before = MetricsSnapshot.parse('orderpulse_fanout_seconds_bucket{le="0.01"} 1\n'
                                   'orderpulse_fanout_seconds_bucket{le="+Inf"} 1\n'
                                   'orderpulse_fanout_seconds_count 1\norderpulse_fanout_seconds_sum 0.004\n')
    after = MetricsSnapshot.parse(
        '# HELP orderpulse_fanout_seconds Time to fan out one event.\n# TYPE orderpulse_fanout_seconds histogram\n'
        'orderpulse_fanout_seconds_bucket{le="0.01"} 3.0\norderpulse_fanout_seconds_bucket{le="+Inf"} 4.0\n'
        'orderpulse_fanout_seconds_count 4.0\norderpulse_fanout_seconds_sum 0.034\n'
        'orderpulse_db_commands_total{command="find",db="a \\"quoted\\" name"} 7.0\n')
    fanned = histogram_delta(before, after, "orderpulse_fanout_seconds")
    assert (fanned.count, fanned.buckets) == (3, [(0.01, 2.0), (math.inf, 3.0)])
    assert fanned.mean == pytest.approx(0.01)
    assert after.label_values("orderpulse_db_commands_total", "db") == {'a "quoted" name': 7.0}



def test_eta_needs_no_server_and_reports_both_estimates_beside_the_baseline(tmp_path, capsys):
    out = tmp_path / "eta.json"
    port = free_loopback_port()  # nothing listens: the simulation must not try to reach it
    assert main(["eta", "--url", f"http://127.0.0.1:{port}", "--orders", "400", "--quiet", "--json", str(out)]) == 0
    (eta,) = json.loads(out.read_text())["scenarios"]
    assert eta["params"]["cooks"] == 3 and _value(eta, "orders") == 400
    for key in ("first", "live"):
        assert 0 < _value(eta, f"{key}_mae_min") < _value(eta, "baseline_mae_min")
        assert _value(eta, f"{key}_improvement") > 0
    assert _ordered(eta["distributions"]["estimate_error_minutes"])


def test_checkout_reports_orders_per_second_beside_its_floor_and_where_the_time_goes(server_pair, tmp_path):
    out = tmp_path / "checkout.json"
    first, _ = server_pair
    code = main(["checkout", "--url", first.url, *_admin_args(), "--customers", "2", "--orders", "50",
                 "--concurrency", "8", "--quiet", "--json", str(out)])
    assert code == 0
    (checkout,) = json.loads(out.read_text())["scenarios"]
    assert checkout["params"]["concurrency"] == 8 and checkout["atTargetSize"] is False
    assert _value(checkout, "placed") == 50 and _value(checkout, "refused") == 0
    assert _value(checkout, "orders_per_second") > 0 and _value(checkout, "floor_orders_per_second") > 0
    assert checkout["distributions"]["place"]["count"] == 50 and _ordered(checkout["distributions"]["place"])
    assert checkout["distributions"]["floor_place"]["count"] == 50
    assert _value(checkout, "floor_ratio_rate") > 0 and _value(checkout, "floor_ratio_p99") > 0
    # The server's pid is found by the port it listens on, the database by the port it is connected to.
    _assert_costs(checkout, first.process.pid)
    assert checkout["params"]["windowDbCommands"]["insert"] >= 50


def test_fanout_reports_the_transport_floor_and_the_node_peer(server_pair, tmp_path):
    out = tmp_path / "fanout.json"
    first, _ = server_pair
    code = main(["fanout", "--url", first.url, *_admin_args(), "--customers", "1", "--subscribers", "200",
                 "--rate", "10", "--duration", "1", "--processes", "2", "--settle", "0.5", "--quiet",
                 "--json", str(out)])
    assert code == 0
    (fanout,) = json.loads(out.read_text())["scenarios"]
    assert _value(fanout, "subscribers") == 200 and _value(fanout, "missing") == 0
    assert fanout["params"]["clientNice"] == 10  # the clients give the servers measured the cores first
    _assert_costs(fanout, first.process.pid)
    peers = ["floor"] + (["node"] if "nodePeer" in fanout["params"] else [])
    if "node" not in peers:
        assert any("Node ws peer is skipped" in note for note in fanout["notes"])
    for key in peers:
        assert _value(fanout, f"{key}_subscribers") == 200
        assert _value(fanout, f"{key}_deliveries") == 10 * 200 and _value(fanout, f"{key}_missing") == 0
        assert _ordered(fanout["distributions"][f"{key}_send_to_receipt"])
        for ratio in ("fanout", "p50", "p99"):
            assert _value(fanout, f"{key}_ratio_{ratio}") > 0, (key, ratio)


def test_webhooks_delivers_every_change_it_makes_and_times_it_beside_the_socket_event(partner_server, tmp_path):
    out = tmp_path / "webhooks.json"
    code = main(["webhooks", "--url", partner_server.url, *_admin_args(), "--customers", "1", "--orders", "4",
                 "--rate", "30", "--settle", "20", "--quiet", "--json", str(out)])
    assert code == 0
    (hooks,) = json.loads(out.read_text())["scenarios"]
    assert hooks["notes"] == []  # every creation event arrived
    assert _value(hooks, "changes") == 4 and _value(hooks, "change_errors") == 0
    assert _value(hooks, "webhooks_received") == 4 and _value(hooks, "webhook_rate") > 0
    assert _value(hooks, "requests") >= 4 + 4  # each order's creation and its payment
    for name in ("webhook", "socket"):
        assert hooks["distributions"][name]["count"] == 4 and _ordered(hooks["distributions"][name]), name


def test_the_transport_floor_frames_every_payload_length_as_rfc_6455_says():
    from websockets.frames import Frame, Opcode

    for size in (0, 125, 126, 65535, 65536):
        payload = b"x" * size
        assert server_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False), size


async def test_the_change_drivers_pool_sends_again_when_the_server_closed_a_kept_alive_connection():
    # The server answers each connection's first request and closes it on the second without an
    # answer, as a server timing out an idle keep-alive connection does while a request is on its way.
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(2)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()
            await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the pool closed it first: nothing of this test's must end in the shared loop's log
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = RawPool("127.0.0.1", port, 1)
    request = build_with_body("PATCH", f"127.0.0.1:{port}", "/api/orders/x/status", "t", b"{}")
    try:
        assert await pool.request(request) == (200, b"{}")
        assert await pool.request(request) == (200, b"{}")  # sent again on a new connection
        assert connections == 2
    finally:
        pool.close()
        server.close()
        await server.wait_closed()


def test_the_worst_series_keeps_the_largest_sample_of_each_bucket_in_milliseconds():
    samples = [(10.1, 0.002), (10.3, 0.009), (11.2, 0.004), (9.0, 1.0)]  # the last is before start
    assert worst_series(samples, 10.0, bucket=0.5) == [(0.25, 9.0), (0.75, 0.0), (1.25, 4.0)]
    assert worst_series([], 10.0) == []


async def _report_niceness(channel, spec) -> int:
    return os.nice(0)


async def test_client_processes_run_at_the_cpu_priority_asked():
    with WorkerPool(_report_niceness, [None, None], nice=5) as pool:
        niceness = await pool.finish(timeout=60)
    assert niceness == [min(19, os.nice(0) + 5)] * 2


def test_slices_of_a_load_add_up_to_one_result():
    """`poll --set slices=N`: the server's and the floor's slices are each summed into one figure."""
    def run(answers: int, seconds: float, p99: float, peak: float, cpu: float) -> LoadResult:
        return LoadResult("wrk", seconds, answers, answers, {"2xx/3xx": answers}, {},
                          {"count": answers, "p50": 1.0, "p99": p99, "max": peak}, answers + 10,
                          client_cpu_seconds=cpu)

    whole = merged([run(1000, 2.0, 4.0, 9.0, 0.5), run(3000, 2.0, 8.0, 20.0, 1.0)])
    assert (whole.answers, whole.measured_seconds, whole.rps, whole.total_requests) == (4000, 4.0, 1000.0, 4020)
    assert whole.latency == {"count": 4000, "p50": 1.0, "p99": 7.0, "max": 20.0}
    assert whole.statuses == {"2xx/3xx": 4000} and whole.client_cpu_seconds == 1.5
