"""eta: how close the ready-time estimate comes, replayed over simulated lunch rushes.

No server is needed: the estimate is a pure rule (server/domain/eta.py), so the scenario runs it on
a simulated kitchen and compares it with what really happened. Each simulated day runs 11:00 to
14:30: orders arrive as a Poisson process whose rate climbs to a lunch peak with class-break
bursts; a few cooks prepare them first come first served, each order taking a log-normal time
(skewed: most are quick, a few take much longer). Every order is accepted when it arrives and is
estimated then, from what the estimator could know at that moment (the queue, and the orders
already finished). The error is |estimate - real ready time|, beside a naive baseline: the store's
average accepted → ready time so far.
"""

from __future__ import annotations

import heapq
import math
import random
import statistics
from datetime import datetime, timedelta, timezone
from typing import Any

from server.bench.report import ScenarioResult
from server.bench.scenarios import Context
from server.domain.eta import Active, QueueWatch, baseline, estimate, learn

NAME = "eta"
HELP = "ready-time estimate error over simulated lunch rushes, against the store's average wait"
NEEDS_SERVER = False
DEFAULTS = {"orders": 3000, "cooks": 3, "seed": 1}
TARGET_IMPROVEMENT = 0.30  # at least 30 % lower error than the baseline
TARGET_SHARE = 0.20  # error under 20 % of the mean wait
TARGET_ORDERS = 2000

PREP_MEDIAN_MINUTES = 6.0
PREP_SIGMA = 0.55  # log-normal: mean about 7 min, 1 in 20 orders over 15 min


def arrival_rate(minute_of_day: float) -> float:
    """Orders per minute at a campus outlet: quiet at 11:00, a peak around 12:30 to 13:30, and
    bursts in the ten minutes after each class ends (on the hour)."""
    peak = 0.55 * math.exp(-(((minute_of_day - 780) / 45) ** 2))
    burst = 0.35 if minute_of_day % 60 < 10 else 0.0
    return 0.12 + peak + burst


def simulate(orders: int, cooks: int, seed: int) -> dict[str, list[float]]:
    """Per order, in minutes: the error of the first estimate (made when it was accepted), the
    time-averaged error of the live estimate (recomputed at every change of the queue, as the
    tracking page shows it), the baseline's error, and the real wait."""
    rng = random.Random(seed)
    first: list[float] = []
    live: list[float] = []
    naive: list[float] = []
    waits: list[float] = []
    day = datetime(2026, 12, 1, tzinfo=timezone.utc)
    watch = QueueWatch()  # one store: each day starts with the last days' history
    while len(first) < orders:
        day += timedelta(days=1)
        arrivals: list[datetime] = []
        minute = 660.0
        while minute < 870 and len(first) + len(arrivals) < orders:
            # Thinning: candidate arrivals at the highest rate, each kept at the current rate.
            minute += rng.expovariate(1.3)
            if rng.random() < arrival_rate(minute) / 1.3:
                arrivals.append(day + timedelta(minutes=minute))
        free = [day + timedelta(minutes=660)] * cooks
        pending: list[tuple[datetime, str]] = []  # (real ready time, order) of accepted orders
        truth: dict[str, tuple[datetime, datetime]] = {}  # order → (accepted, real ready)
        shown: dict[str, datetime] = {}  # the live estimate of each active order
        area: dict[str, float] = {}  # minutes × minutes of live error so far
        last = day
        events = [(at, 1, f"{day:%j}-{i}") for i, at in enumerate(arrivals)]
        heapq.heapify(events)
        while events or pending:
            at, kind, order_id = _next(events, pending)
            for active_id, guess in shown.items():
                area[active_id] += abs((guess - truth[active_id][1]).total_seconds()) / 60 * \
                    (at - last).total_seconds() / 60
            last = at
            if kind == 0:  # ready
                watch.on_ready(order_id, at)
                accepted, ready = truth.pop(order_id)
                wait = (ready - accepted).total_seconds() / 60
                live.append(area.pop(order_id) / wait if wait else 0.0)
                shown.pop(order_id)
            else:
                watch.on_accepted(order_id, at)
                start = max(at, heapq.heappop(free))
                ready = start + timedelta(minutes=rng.lognormvariate(math.log(PREP_MEDIAN_MINUTES), PREP_SIGMA))
                heapq.heappush(free, ready)
                heapq.heappush(pending, (ready, order_id))
                truth[order_id] = (at, ready)
                area[order_id] = 0.0
            kitchen = learn(watch.history, at)
            shown = estimate([Active(oid, since, since) for oid, (since, _) in watch.accepted.items()], kitchen, at)
            if kind == 1:
                first.append(abs((shown[order_id] - ready).total_seconds()) / 60)
                naive.append(abs((baseline(watch.history, at) - ready).total_seconds()) / 60)
                waits.append((ready - at).total_seconds() / 60)
    return {"errors": first, "live": live, "naive": naive, "waits": waits}


def _next(events: list[Any], pending: list[Any]) -> tuple[datetime, int, str]:
    """The next event of the day: an arrival (1) or an order becoming ready (0), in time order."""
    if events and (not pending or events[0][0] <= pending[0][0]):
        return heapq.heappop(events)
    ready, order_id = heapq.heappop(pending)
    return ready, 0, order_id


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"count": len(values), "p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "max": ordered[-1],
            "mean": statistics.fmean(values)}


async def run(ctx: Context) -> ScenarioResult:
    orders, cooks, seed = int(ctx.option("orders")), int(ctx.option("cooks")), int(ctx.option("seed"))
    result = ScenarioResult(NAME, {"orders": orders, "cooks": cooks, "seed": seed,
                                   "prepMedianMinutes": PREP_MEDIAN_MINUTES, "prepSigma": PREP_SIGMA},
                            at_target_size=orders >= TARGET_ORDERS)
    ctx.progress.note(f"simulating {orders:,} orders, {cooks} cooks")
    outcome = simulate(orders, cooks, seed)
    error = statistics.fmean(outcome["errors"])
    live = statistics.fmean(outcome["live"])
    naive = statistics.fmean(outcome["naive"])
    wait = statistics.fmean(outcome["waits"])
    result.add("orders", "orders simulated", float(len(outcome["errors"])))
    result.add("mean_wait_min", "mean wait, accepted to ready", wait, "min")
    result.add("baseline_mae_min", "baseline's mean absolute error (store's average wait)", naive, "min")
    for key, label, value in (("first", "first estimate (at acceptance)", error),
                              ("live", "live estimate (recomputed, time-averaged)", live)):
        improvement = 1 - value / naive if naive else float("nan")
        share = value / wait if wait else float("nan")
        result.add(f"{key}_mae_min", f"{label}: mean absolute error", value, "min")
        result.add(f"{key}_improvement", f"{label}: error below the baseline's", improvement * 100, "%",
                   f">= {TARGET_IMPROVEMENT:.0%}", improvement >= TARGET_IMPROVEMENT)
        result.add(f"{key}_error_share", f"{label}: error as a share of the mean wait", share * 100, "%",
                   f"< {TARGET_SHARE:.0%}", share < TARGET_SHARE)
    # In minutes, under the distributions' usual names (their unit is milliseconds elsewhere).
    result.distributions["estimate_error_minutes"] = _summary(outcome["errors"])
    result.distributions["live_error_minutes"] = _summary(outcome["live"])
    result.distributions["baseline_error_minutes"] = _summary(outcome["naive"])
    result.distributions["wait_minutes"] = _summary(outcome["waits"])
    return result
