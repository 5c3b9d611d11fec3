"""Enforcing deadlines: one asyncio task per process, sleeping until the next one is due.

For every kind of deadline a pass reads the orders that look due, checks each deadline to the
millisecond, then cancels them with one `update_many` whose filter is the compare-and-set on
their state: an order is cancelled by whichever process matches it first, and no other process
can match it again, so a no-show is recorded exactly once however many enforcers race. Cancelled orders are tagged
with the enforcing pass so that exactly that pass publishes their events.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from bson import ObjectId

from server import metrics
from server.config import Settings
from server.domain.clock import SYSTEM_CLOCK, Clock, as_utc
from server.domain.lifecycle import CancellationReason, OrderStatus, PaymentStatus, transition
from server.services import order_store
from server.services.outage import MAYBE_OUTAGE, OutageLog
from server.services.publishing import ChangePublisher
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


@dataclass(frozen=True)
class DeadlineKind:
    reason: CancellationReason
    timeout: timedelta

    def state_filter(self) -> dict[str, Any]:
        """The state an order must still be in for this deadline to apply: the compare-and-set.

        None of these deadlines can move while the state stays the same, so once a read has
        found the deadline passed, this filter alone decides who cancels.
        """
        if self.reason == CancellationReason.PAYMENT_TIMEOUT:
            return {"order_status": OrderStatus.PLACED.value, "payment_status": PaymentStatus.PENDING.value}
        if self.reason == CancellationReason.COMMITMENT_TIMEOUT:
            return {"order_status": OrderStatus.PLACED.value, "requires_commitment": True,
                    "is_commitment_confirmed": False}
        return {"order_status": OrderStatus.READY.value, "is_otp_verified": False}

    @property
    def field(self) -> str:
        return {CancellationReason.PAYMENT_TIMEOUT: "created_at",
                CancellationReason.COMMITMENT_TIMEOUT: "commitment_deadline_at"}.get(self.reason, "ready_expires_at")

    def deadline(self, document: dict[str, Any], unpaid_timeout: timedelta) -> datetime:
        moment = as_utc(document[self.field])
        return moment + unpaid_timeout if self.reason == CancellationReason.PAYMENT_TIMEOUT else moment

    def due_limit(self, now: datetime, unpaid_timeout: timedelta) -> datetime:
        """The latest `field` of an order whose deadline has come by `now`."""
        return now - unpaid_timeout if self.reason == CancellationReason.PAYMENT_TIMEOUT else now

    def due_filter(self, now: datetime, unpaid_timeout: timedelta) -> dict[str, Any]:
        return {**self.state_filter(), self.field: {"$lte": self.due_limit(now, unpaid_timeout)}}


class DeadlineEnforcer:
    """Cancels the orders whose deadline has passed, sleeping on `clock` until the next one."""

    def __init__(self, settings: Settings, publisher: ChangePublisher, clock: Clock = SYSTEM_CLOCK) -> None:
        self._settings = settings
        self._publisher = publisher
        self._clock = clock
        # Both placed-order deadlines run from creation: the shorter timeout always falls first.
        self._kinds = sorted(
            [
                DeadlineKind(CancellationReason.PAYMENT_TIMEOUT, settings.unpaid_timeout),
                DeadlineKind(CancellationReason.COMMITMENT_TIMEOUT, settings.commitment_timeout),
                DeadlineKind(CancellationReason.NO_SHOW_TIMEOUT, settings.ready_timeout),
            ],
            key=lambda kind: kind.timeout,
        )
        self._wake = asyncio.Event()
        self._next_wake: datetime | None = None
        # Deadlines set by this process, soonest first; the database is asked only every
        # MAX_SLEEP_SECONDS (for deadlines set elsewhere), not after every pass.
        self._scheduled: list[datetime] = []
        self._resync_due = 0.0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._outage = OutageLog(log, "deadline pass")

    def start(self) -> None:
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
        """Cancel every order (or just `order_id`) whose deadline has passed; returns how many."""
        now = now or self._clock.now()
        batch = uuid.uuid4().hex
        cancelled = 0
        for kind in self._kinds:
            # Read which orders are due, then compare-and-set on their state alone: portable
            # across MongoDB and nx-27017, whose update filters mishandle dates (see README).
            due = await order_store.due(kind.state_filter(), kind.field,
                                        kind.due_limit(now, self._settings.unpaid_timeout), now, order_id)
            if not due:
                continue
            cancel = transition(OrderStatus(kind.state_filter()["order_status"]), OrderStatus.CANCELLED, now,
                                reason=kind.reason)
            changes: dict[str, Any] = {**{key: _stored(value) for key, value in cancel.items()},
                                       "updated_at": now, "outbox_at": now, "deadline_batch": batch}
            # Partners' orders are cancelled apart, marked for their webhook event in the same update.
            partners = [doc["_id"] for doc in due if doc.get("partner_client_id")]
            others = [doc["_id"] for doc in due if not doc.get("partner_client_id")]
            for ids, marks in ((others, {}), (partners, deadline_fields(kind.reason, now))):
                if not ids:
                    continue
                modified = await order_store.cancel_due(ids, kind.state_filter(), {**changes, **marks})
                if modified:
                    metrics.DEADLINES_ENFORCED.labels(kind.reason.value).inc(modified)
                    cancelled += modified
        if cancelled:
            await self._publish_batch(batch)
        return cancelled

    async def _publish_batch(self, batch: str) -> None:
        for order in await order_store.deadline_batch(batch):
            await self._publisher.broadcast(order)
        # Cancelled is terminal: nothing else can have changed these orders since.
        await order_store.finish_deadline_batch(batch)

    async def _seconds_until_next(self, after: datetime) -> float:
        while self._scheduled and self._scheduled[0] <= after:
            heapq.heappop(self._scheduled)
        if self._clock.monotonic() >= self._resync_due or len(self._scheduled) >= MAX_SCHEDULED:
            self._resync_due = self._clock.monotonic() + MAX_SLEEP_SECONDS
            found = await order_store.next_deadline_after(after)
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
                await self.enforce_due(now)
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
