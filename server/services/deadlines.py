"""Enforcing deadlines: one asyncio task per process, sleeping until the next one is due.

A pass works in bounded batches: it reads the orders whose next deadline has come (one sorted
query on `next_deadline_at` for up to `PASS_BATCHES` batches of `BATCH_SIZE`), and for each batch
decides each order's due deadline by the domain rule, then claims them with one `update_many` per
kind of deadline whose filter is the compare-and-set on
their state: an order is cancelled by whichever process matches it first, and no other process can
match it again, so a cancellation (and a no-show) is recorded exactly once however many enforcers
race. The claim tags the orders with the batch, so that exactly that batch publishes their events,
one per order; a record of the batch, written before the claim and removed once its events are
out, lets any process's outbox relay publish a batch whose pass died (instead of an outbox mark on
each order, which would be cleared by a second write of every cancelled order). The enforcer talks to the database through a client of its own (`start`), so a
burst of requests holding the request pool's connections cannot delay a pass.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import uuid
from collections import defaultdict
from datetime import datetime
from enum import Enum
from typing import Any

from bson import ObjectId

from server import metrics
from server.config import Settings
from server.domain.clock import SYSTEM_CLOCK, Clock
from server.domain.deadlines import DeadlineView, due_deadline
from server.domain.lifecycle import CancellationReason, OrderStatus, PaymentStatus, transition
from server.services import order_store
from server.services.outage import MAYBE_OUTAGE, OutageLog
from server.services.publishing import ChangePublisher, publish_deadline_batch
from server.services.webhooks import deadline_fields

log = logging.getLogger("orderpulse.deadlines")


def _stored(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


# How often the database is asked for the next deadline: covers deadlines set by other
# processes (each also enforces its own) and by a process that died.
MAX_SLEEP_SECONDS = 5.0
MAX_SCHEDULED = 100_000
RETRY_SECONDS = 1.0
STOP_SECONDS = 2.0
# Orders one batch reads and claims: bounds the work (and the event loop's time) between two looks
# at the clock, so each batch's `cancelledAt` is the moment its claim was written.
BATCH_SIZE = 500
# Batches one read of the due orders feeds (at most 10,000 rows of the fields their deadlines
# depend on, in memory for the pass).
PASS_BATCHES = 20


def state_filter(reason: CancellationReason) -> dict[str, Any]:
    """The state an order must still be in for this deadline to apply: the compare-and-set.

    A deadline can only move earlier while the state stays the same (a store's closing time), so
    once a read has found it passed, this filter alone decides who cancels.
    """
    if reason == CancellationReason.PAYMENT_TIMEOUT:
        return {"order_status": OrderStatus.PLACED.value, "payment_status": PaymentStatus.PENDING.value}
    if reason == CancellationReason.COMMITMENT_TIMEOUT:
        return {"order_status": OrderStatus.PLACED.value, "requires_commitment": True,
                "is_commitment_confirmed": False}
    return {"order_status": OrderStatus.READY.value, "is_otp_verified": False}


def _deadline_view(row: dict[str, Any]) -> DeadlineView:
    """What the deadlines of an order read by `order_store.due` depend on."""
    return DeadlineView(
        order_status=OrderStatus(row["order_status"]), payment_status=PaymentStatus(row["payment_status"]),
        created_at=row["created_at"], requires_commitment=bool(row.get("requires_commitment")),
        is_commitment_confirmed=bool(row.get("is_commitment_confirmed")),
        commitment_deadline_at=row.get("commitment_deadline_at"), ready_expires_at=row.get("ready_expires_at"),
        is_otp_verified=bool(row.get("is_otp_verified")), payment_due_by=row.get("payment_due_by"))


class DeadlineEnforcer:
    """Cancels the orders whose deadline has passed, sleeping on `clock` until the next one."""

    def __init__(self, settings: Settings, publisher: ChangePublisher, clock: Clock = SYSTEM_CLOCK,
                 batch_size: int = BATCH_SIZE) -> None:
        self._settings = settings
        self._publisher = publisher
        self._clock = clock
        self._batch_size = batch_size
        # The orders collection on the enforcer's own client once started with one; None: the
        # request path's (before `start`, or for a pass run by hand).
        self._orders: Any = None
        self._wake = asyncio.Event()
        self._next_wake: datetime | None = None
        # Deadlines set by this process, soonest first; the database is asked only every
        # MAX_SLEEP_SECONDS (for deadlines set elsewhere), not after every pass.
        self._scheduled: list[datetime] = []
        self._resync_due = 0.0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._outage = OutageLog(log, "deadline pass")

    def start(self, orders: Any = None) -> None:
        """Run the loop; `orders`: the orders collection on a client of the enforcer's own."""
        self._orders = orders
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="deadline-enforcer")

    async def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Cancel the loop and wait for it at most `timeout`: a pass stuck on the database
        must not hold a shutdown."""
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=timeout)

    def deadline_scheduled(self, when: datetime) -> None:
        """A change in this process set a deadline: wake early if it is nearer than the planned one."""
        if len(self._scheduled) < MAX_SCHEDULED:
            heapq.heappush(self._scheduled, when)
        if self._next_wake is None or when < self._next_wake:
            self._wake.set()

    async def enforce_due(self, now: datetime | None = None,
                          order_id: ObjectId | None = None) -> int:
        """Cancel every order (or just `order_id`) whose deadline has passed, batch by batch;
        returns how many. Each batch is cancelled at `now`, or at the clock's time when it starts.

        The due orders are read once for up to `PASS_BATCHES` batches: the embedded engine scans
        every match of a range read, so reading them batch by batch cost a 10,000-order closing
        twenty reads of 175-300 ms each (README, *Deadlines that fall together*)."""
        # A read enforcing its own order stays on the request path's client: the enforcer's few
        # connections are kept for its passes.
        orders = self._orders if order_id is None else None
        size = self._batch_size
        cancelled = 0
        while True:
            due = await order_store.due(now or self._clock.now(), size * PASS_BATCHES, order_id, orders=orders)
            for start in range(0, len(due), size):
                claimed, batch = await self._claim_batch(due[start:start + size], now or self._clock.now(), orders)
                cancelled += claimed
                if batch is not None:
                    # Published before the next claim: publishing while claiming the next batch was
                    # measured to cancel sooner but deliver later (README, *Deadlines that fall together*).
                    await publish_deadline_batch(self._publisher, batch, orders)
                # A batch that claimed nothing was taken by another process, which goes on with the
                # rest; one order's own enforcement is one batch.
                if not claimed or order_id is not None:
                    return cancelled
            if len(due) < size * PASS_BATCHES:
                return cancelled

    async def _claim_batch(self, due: list[dict[str, Any]], now: datetime, orders: Any) -> tuple[int, str | None]:
        """Claim one batch of orders read as due: how many this process claimed, and the batch to
        publish when it claimed any. Deadlines only pass, and each claim's filter is the state the
        rule saw, so a row read a moment before decides as a fresh read would."""
        # The domain rule names each order's passed deadline; partners' orders are claimed apart,
        # marked for their webhook event in the same update.
        groups: defaultdict[tuple[CancellationReason, bool], list[ObjectId]] = defaultdict(list)
        for row in due:
            passed = due_deadline(_deadline_view(row), self._settings.unpaid_timeout, now)
            if passed is not None:
                groups[(passed.reason, bool(row.get("partner_client_id")))].append(row["_id"])
        if not groups:
            return 0, None
        batch = uuid.uuid4().hex
        # Recorded first: if this process dies between the claim and the last event, any process's
        # relay publishes the batch (order_store.open_deadline_batch).
        await order_store.open_deadline_batch(batch, now, orders=orders)
        claimed = 0
        for (reason, partner), ids in groups.items():
            state = state_filter(reason)
            cancel = transition(OrderStatus(state["order_status"]), OrderStatus.CANCELLED, now, reason=reason)
            changes: dict[str, Any] = {**{key: _stored(value) for key, value in cancel.items()},
                                       "updated_at": now, "deadline_batch": batch}
            if partner:
                changes.update(deadline_fields(reason, now))
            modified = await order_store.cancel_due(ids, state, changes, orders=orders)
            if modified:
                metrics.DEADLINES_ENFORCED.labels(reason.value).inc(modified)
                claimed += modified
        if not claimed:
            await order_store.close_deadline_batch(batch, orders=orders)
            return 0, None
        await order_store.deadline_batch_claimed(batch, self._clock.now(), orders=orders)
        return claimed, batch

    async def _seconds_until_next(self, after: datetime) -> float:
        while self._scheduled and self._scheduled[0] <= after:
            heapq.heappop(self._scheduled)
        if self._clock.monotonic() >= self._resync_due or len(self._scheduled) >= MAX_SCHEDULED:
            self._resync_due = self._clock.monotonic() + MAX_SLEEP_SECONDS
            found = await order_store.next_deadline_after(after, orders=self._orders)
            if found is not None:
                heapq.heappush(self._scheduled, found)
        self._next_wake = self._scheduled[0] if self._scheduled else None
        until_resync = max(0.0, self._resync_due - self._clock.monotonic())
        if self._next_wake is None:
            return until_resync
        return min(until_resync, max(0.0, (self._next_wake - self._clock.now()).total_seconds()))

    async def _run(self) -> None:
        # Checked as well as cancelled: the loop ends even if a cancellation is swallowed below.
        while not self._stopping:
            self._wake.clear()
            try:
                now = self._clock.now()
                await self.enforce_due()  # each batch is cancelled at the time it starts
                delay = await self._seconds_until_next(now)
                self._outage.succeeded()
            except asyncio.CancelledError:
                raise
            except MAYBE_OUTAGE as exc:
                self._outage.failed(exc, RETRY_SECONDS)
                delay = RETRY_SECONDS
            except Exception:
                log.exception("deadline pass failed; retrying in 1 s")
                delay = RETRY_SECONDS
            if self._stopping:
                return
            if delay <= 0:
                continue
            await self._clock.sleep(delay, self._wake)
