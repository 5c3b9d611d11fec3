"""The ready-time estimator's rules (server/domain/eta.py), without a database: time is passed in."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from server.bench.scenarios.eta import simulate
from server.domain.eta import (
    DEFAULT_COOKS, DEFAULT_PREP_MINUTES, Active, Finished, Kitchen, QueueWatch, baseline, estimate,
    finished_from_spans, learn,
)

NOON = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def test_a_new_store_uses_the_defaults():
    assert learn([], NOON) == Kitchen(DEFAULT_PREP_MINUTES, DEFAULT_COOKS, learned=False)
    estimates = estimate([Active("a", NOON, NOON)], learn([], NOON), NOON)
    assert estimates == {"a": NOON + minutes(DEFAULT_PREP_MINUTES)}


def test_prep_time_is_learned_from_orders_nobody_was_ahead_of_and_cooks_from_how_queues_slowed_them():
    history = [Finished(NOON - minutes(100 - i), NOON - minutes(100 - i) + minutes(6), 0) for i in range(10)]
    # With 2 cooks of 6 minutes, each order ahead added about 3 minutes.
    history += [Finished(NOON - minutes(50), NOON - minutes(50) + minutes(6 + 3 * k), k) for k in (2, 3, 4, 5, 6)]
    kitchen = learn(history, NOON)
    assert kitchen.learned and kitchen.prep_minutes == 6 and kitchen.cooks == 2


def test_the_queue_runs_forward_first_come_first_served_on_each_cook():
    kitchen = Kitchen(prep_minutes=10, cooks=2, learned=True)
    active = [Active("first", NOON - minutes(4), NOON - minutes(5)), Active("second", NOON - minutes(2), NOON - minutes(3)),
              Active("third", NOON, NOON), Active("placed", None, NOON - minutes(1))]
    estimates = estimate(active, kitchen, NOON)
    assert estimates["first"] == NOON + minutes(6)  # being cooked: 10 minutes after it was accepted
    assert estimates["second"] == NOON + minutes(8)
    assert estimates["third"] == NOON + minutes(16)  # the first cook free takes it
    assert estimates["placed"] == NOON + minutes(18)  # not yet accepted: after every accepted order


def test_an_overdue_order_is_still_expected_a_little_later_not_in_the_past():
    kitchen = Kitchen(prep_minutes=10, cooks=1, learned=True)
    estimates = estimate([Active("slow", NOON - minutes(30), NOON - minutes(30))], kitchen, NOON)
    assert NOON < estimates["slow"] <= NOON + minutes(2)


def test_a_declared_delay_moves_every_estimate():
    kitchen = Kitchen(prep_minutes=10, cooks=1, learned=True)
    active = [Active("a", NOON, NOON), Active("b", NOON, NOON + minutes(1))]
    plain, busy = estimate(active, kitchen, NOON), estimate(active, kitchen, NOON, delay_minutes=10)
    assert all(busy[key] - plain[key] == minutes(10) for key in plain)


def test_an_order_finishing_or_leaving_moves_those_behind_it_forward():
    kitchen = Kitchen(prep_minutes=10, cooks=1, learned=True)
    queue = [Active("a", NOON, NOON), Active("b", NOON, NOON + minutes(1)), Active("c", NOON, NOON + minutes(2))]
    before = estimate(queue, kitchen, NOON)["c"]
    after = estimate([queue[0], queue[2]], kitchen, NOON)["c"]  # b was cancelled
    assert before - after == minutes(10)


def test_the_watch_records_how_many_were_ahead_and_forgets_cancelled_orders():
    watch = QueueWatch()
    watch.on_accepted("a", NOON)
    watch.on_accepted("b", NOON + minutes(1))
    watch.on_gone("b")
    watch.on_accepted("c", NOON + minutes(2))
    watch.on_ready("a", NOON + minutes(7))
    watch.on_ready("c", NOON + minutes(12))
    assert watch.history == [Finished(NOON, NOON + minutes(7), 0), Finished(NOON + minutes(2), NOON + minutes(12), 1)]
    assert baseline(watch.history, NOON) == NOON + minutes(8.5)
    # The same orders read back from their times count the same queue.
    assert finished_from_spans([(NOON, NOON + minutes(7)), (NOON + minutes(2), NOON + minutes(12)),
                                (NOON + minutes(3), None)]) == watch.history


def test_over_simulated_lunch_rushes_the_estimate_beats_the_stores_average_wait():
    outcome = simulate(orders=600, cooks=3, seed=7)
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    assert len(outcome["errors"]) == 600
    assert mean(outcome["errors"]) < 0.7 * mean(outcome["naive"])
    assert mean(outcome["live"]) < mean(outcome["errors"])
