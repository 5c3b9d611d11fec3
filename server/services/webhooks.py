"""Partner webhooks: signed, retried, per-order ordered callbacks for the orders a `/v1` client made.

Where events come from. Every change of a partner's order writes its event into the order in the
same atomic update as the change (`webhook_events`: the body built from the state at that version,
with `webhook_pending_at` as the mark): the compare-and-set of `order_lifecycle`, the insert of
`checkout`. A deadline's bulk cancellation cannot build per-order bodies inside its `update_many`,
so it marks `webhook_deadline` (the reason) instead; cancelled is terminal, so the order as read
later *is* its state at that version. A process that dies right after its write leaves the mark.

The relay (one task per process) turns an order's pending events into one delivery document per
matching endpoint, then clears the marks with a compare-and-set on the order's `version`. A unique
index on (endpoint, order, version) makes it idempotent, so the writing process relays at once
and any process relays marks older than a second. An order's events are relayed together and in
version order, so a delivery never exists before those of the order's earlier versions.

The sender (one task per process) claims due deliveries by compare-and-set on `attempt_count`
(one attempt at a time across processes; a claim lasts the timeout plus a margin, so a process
that dies mid-attempt leaves it to another), attempts them in version order per endpoint and
order (a later one waits while an earlier one is pending). Requests go through the guarded client
of `server.services.outbound` (no redirects, only checked addresses). Headers follow the Standard
Webhooks specification.

Slots. At most `WEBHOOK_MAX_IN_FLIGHT` attempts are in flight per process. An endpoint struggles
while its last attempt in this process failed, timed out or took longer than `SLOW_SECONDS`, or
one of its attempts has been unanswered that long: struggling endpoints together hold at most a
quarter of the slots, one attempt each, so however many hang, the rest stay free for endpoints
that answer. An endpoint that answers well holds up to `WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT`; one
not yet answered in this process holds one, so a process that restarts beside dead endpoints does
not hand them a healthy endpoint's share.
Each pass claims one delivery per endpoint in turn, starting one endpoint further each time, so
one endpoint's backlog never takes the slots before another endpoint's first delivery.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import logging
import random
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import aiohttp
import orjson
from beanie import PydanticObjectId, SortDirection
from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from server import metrics
from server.config import Settings
from server.domain import messages
from server.domain.clock import SYSTEM_CLOCK, Clock, as_utc
from server.domain.errors import Invalid, NotFound
from server.domain.lifecycle import CancellationReason, OrderStatus, PaymentStatus
from server.models import ClientApp, Order, WebhookDelivery, WebhookEndpoint
from server.models.base import stored_id
from server.models.order import PendingWebhookEvent
from server.models.webhook import DeliveryAttempt, SigningSecret
from server.services import order_store
from server.services.outage import MAYBE_OUTAGE, OutageLog
from server.services.outbound import AddressPolicy, GuardedClient, OutboundRefused
from server.views import partner_status, partner_view

log = logging.getLogger("orderpulse.webhooks")

EVENT_TYPES = ("order.completed", "order.failed", "order.expired", "order.updated")
_FINAL_EVENTS = {"COMPLETED": "order.completed", "FAILED": "order.failed", "EXPIRED": "order.expired"}
MAX_URL_LENGTH = 2000
RESOLVE_SECONDS = 3.0
# The relay looks for marks another process left after this long (the writer relays its own at once).
RELAY_AFTER_SECONDS = 1.0
# How often each process looks for due deliveries it was not told of (made or retried elsewhere).
POLL_SECONDS = 1.0
# A claim outlives the attempt's timeout by this much before another process may take it over.
CLAIM_MARGIN_SECONDS = 10.0
JITTER = 0.2  # each retry waits its step of the schedule, 20 % either way
MAX_RESPONSE_BYTES = 64 * 1024
STOP_SECONDS = 2.0
# An attempt unanswered this long makes its endpoint struggle (Standard Webhooks asks receivers to answer at once).
SLOW_SECONDS = 2.0
# The part of `WEBHOOK_MAX_IN_FLIGHT` struggling endpoints share.
STRUGGLING_SHARE = 0.25
PENDING, DELIVERING, SUCCEEDED, FAILED = "pending", "delivering", "succeeded", "failed"


# --- events -----------------------------------------------------------------------------------

def event_type(previous: str | None, status: str) -> str:
    """`order.completed`/`failed`/`expired` when the order reaches that status, `order.updated` otherwise."""
    return _FINAL_EVENTS[status] if status != previous and status in _FINAL_EVENTS else "order.updated"


def event_payload(order: Order, version: int, previous: str | None, zone: ZoneInfo) -> tuple[str, str]:
    """The event type and the exact body: `GET /v1/order/{id}`'s body for `order` (the state at
    `version`) plus `type`, `version` and `previousStatus`."""
    body = partner_view(order, zone)
    kind = event_type(previous, body["status"])
    return kind, orjson.dumps({"type": kind, **body, "version": version, "previousStatus": previous}).decode()


def _pending(order: Order, version: int, previous: str | None, zone: ZoneInfo) -> dict[str, Any]:
    kind, payload = event_payload(order, version, previous, zone)
    return PendingWebhookEvent(version=version, type=kind, payload=payload).model_dump()


def change_fields(before: Order, after: Order, version: int, zone: ZoneInfo, now: datetime) -> dict[str, Any]:
    """What a compare-and-set from `before` to `after` (at `version`) also `$set`s: the order's
    pending events with this change's appended (arrays are written whole: nx-27017 stores a
    `$push`ed sub-document as a string). Nothing for an order no partner made."""
    if not before.partner_client_id:
        return {}
    events = [event.model_dump() for event in before.webhook_events or []]
    events.append(_pending(after, version, partner_status(before), zone))
    return {"webhook_events": events, "webhook_pending_at": now}


def record_creation(order: Order, zone: ZoneInfo, now: datetime) -> None:
    """A partner's new order carries its first event (version 1) in its insert."""
    if order.id is None:
        order.id = PydanticObjectId()
    order.webhook_events = [PendingWebhookEvent(**_pending(order, order.version, None, zone))]
    order.webhook_pending_at = now


def deadline_fields(reason: CancellationReason, now: datetime) -> dict[str, Any]:
    """What a deadline's bulk cancellation also `$set`s on partners' orders."""
    return {"webhook_deadline": reason.value, "webhook_pending_at": now}


def _before_deadline(order: Order, reason: CancellationReason) -> Order:
    """The state a deadline's cancellation changed, as its filter required it (deadlines.py):
    placed and unpaid for the payment timeout, placed for the commitment one, ready for a no-show."""
    before: dict[str, Any] = {"order_status": OrderStatus.READY if reason == CancellationReason.NO_SHOW_TIMEOUT
                              else OrderStatus.PLACED, "cancellation_reason": None}
    if reason == CancellationReason.PAYMENT_TIMEOUT:
        before["payment_status"] = PaymentStatus.PENDING
    # Typed here: Beanie's Document derives from lazy_model's untyped LazyModel, so mypy reads pydantic's
    # methods on it as Any.
    as_read: Order = order.model_copy(update=before)
    return as_read


def deadline_event(order: Order, reason: CancellationReason, zone: ZoneInfo) -> dict[str, Any]:
    """The event of a deadline's bulk cancellation for `reason` (the order's `webhook_deadline`)."""
    return _pending(order, order.version, partner_status(_before_deadline(order, reason)), zone)


def event_id(endpoint_id: str, order_id: str, version: int) -> str:
    """The `webhook-id`: the same for every attempt and replay, whichever process relayed it."""
    return "msg_" + hashlib.sha256(f"{endpoint_id}:{order_id}:{version}".encode()).hexdigest()[:32]


# --- signatures -------------------------------------------------------------------------------

def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def signature(secret: str, message_id: str, timestamp: int, payload: str) -> str:
    """`v1,<base64 HMAC-SHA256 of id.timestamp.body>` keyed by the secret's base64 part (Standard Webhooks)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{message_id}.{timestamp}.{payload}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The current secret, and during a rotation's grace the previous ones."""
    return [s.secret for s in endpoint.secrets if s.expires_at is None or s.expires_at > now]


# --- administration ---------------------------------------------------------------------------

def parse_events(text: str | None) -> list[str]:
    """`order.completed,order.failed` → a list; blank means every type."""
    events = [part.strip() for part in (text or "").split(",") if part.strip()]
    if any(event not in EVENT_TYPES for event in events):
        raise Invalid(messages.WEBHOOK_EVENTS_INVALID.format(types=", ".join(EVENT_TYPES)))
    return list(dict.fromkeys(events))


def address_policy(settings: Settings) -> AddressPolicy:
    return AddressPolicy(settings.webhook_allowed_hosts.split(","))


async def check_url(url: str, settings: Settings) -> str:
    """Refuse a URL the sender could not or may not reach. The sender checks again on every
    connection (a name may resolve elsewhere later); this tells the admin now."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # a port that is no number raises here
    except ValueError:
        parts = urlsplit("")
    if len(url) > MAX_URL_LENGTH or parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(messages.WEBHOOK_URL_INVALID.format(maximum=MAX_URL_LENGTH))
    if settings.orderpulse_env == "production" and parts.scheme != "https":
        raise Invalid(messages.WEBHOOK_URL_NOT_HTTPS)
    host = parts.hostname
    policy = address_policy(settings)
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            found = await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo(
                host, parts.port or 443, type=socket.SOCK_STREAM), RESOLVE_SECONDS)
        except (OSError, TimeoutError, UnicodeError):
            raise Invalid(messages.WEBHOOK_URL_UNRESOLVED.format(host=host)) from None
        addresses = [ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in found]
    if not any(policy.allows(host, address) for address in addresses):
        raise Invalid(messages.WEBHOOK_URL_REFUSED.format(host=host))
    return url.strip()


def _find_endpoint_id(endpoint_id: str) -> dict[str, Any]:
    return {"endpoint_id": endpoint_id[:100]}


async def endpoint(endpoint_id: str) -> WebhookEndpoint:
    found = await WebhookEndpoint.find_one(_find_endpoint_id(endpoint_id))
    if found is None:
        raise NotFound(messages.WEBHOOK_ENDPOINT_NOT_FOUND)
    return found


async def add_endpoint(settings: Settings, client_id: str, url: str, events: str | None,
                       now: datetime) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint for a partner client; returns it and its secret (shown once)."""
    if len(client_id) > 100 or await ClientApp.find_one({"client_id": client_id, "is_active": True}) is None:
        raise Invalid(messages.WEBHOOK_CLIENT_UNKNOWN)
    chosen = parse_events(events)
    url = await check_url(url, settings)
    secret = new_secret()
    created = WebhookEndpoint(endpoint_id="ep_" + secrets.token_urlsafe(12), client_id=client_id, url=url,
                              events=chosen, secrets=[SigningSecret(secret=secret, created_at=now)], created_at=now)
    return await created.insert(), secret


async def list_endpoints(client_id: str | None = None) -> list[WebhookEndpoint]:
    query = {"client_id": client_id[:100]} if client_id else {}
    return await WebhookEndpoint.find(query).sort([("_id", SortDirection.DESCENDING)]).limit(500).to_list()


async def remove_endpoint(endpoint_id: str) -> None:
    found = await endpoint(endpoint_id)
    await WebhookEndpoint.get_pymongo_collection().delete_one({"_id": found.id})
    await WebhookDelivery.get_pymongo_collection().delete_many({"endpoint_id": found.endpoint_id})


async def rotate_secret(endpoint_id: str, grace: timedelta, now: datetime) -> tuple[WebhookEndpoint, str]:
    """A new secret signs from now on; the current one also signs until `now + grace`."""
    found = await endpoint(endpoint_id)
    secret = new_secret()
    kept = [s.model_copy(update={"expires_at": s.expires_at or now + grace}) for s in found.secrets
            if s.expires_at is None or s.expires_at > now]
    found.secrets = [SigningSecret(secret=secret, created_at=now), *kept]
    await WebhookEndpoint.get_pymongo_collection().update_one(
        {"_id": found.id}, {"$set": {"secrets": [s.model_dump(exclude_none=True) for s in found.secrets]}})
    return found, secret


async def enable_endpoint(endpoint_id: str) -> WebhookEndpoint:
    found = await endpoint(endpoint_id)
    await WebhookEndpoint.get_pymongo_collection().update_one(
        {"_id": found.id}, {"$set": {"enabled": True}, "$unset": {"disabled_reason": "", "disabled_at": ""}})
    return await endpoint(endpoint_id)


async def delivery_counts(endpoint_id: str) -> dict[str, int]:
    collection = WebhookDelivery.get_pymongo_collection()
    return {status: await collection.count_documents({"endpoint_id": endpoint_id, "status": status})
            for status in (PENDING, FAILED)}


async def deliveries(endpoint_id: str, *, limit: int = 50, order_id: str | None = None) -> list[WebhookDelivery]:
    """An endpoint's delivery log, newest first."""
    found = await endpoint(endpoint_id)
    query: dict[str, Any] = {"endpoint_id": found.endpoint_id}
    if order_id:
        query["order_id"] = order_id[:24]
    newest_first = [("created_at", SortDirection.DESCENDING), ("version", SortDirection.DESCENDING)]
    return await WebhookDelivery.find(query).sort(newest_first).limit(limit).to_list()


async def replay(endpoint_id: str, now: datetime, *, event: str | None = None, order_id: str | None = None,
                 since: datetime | None = None, until: datetime | None = None) -> int:
    """Send finished deliveries again (same `webhook-id`, a fresh retry schedule): one event, one
    order's events, or those made in a time range. Pending ones are already on their way."""
    if sum(value is not None for value in (event, order_id, since)) != 1 or (until is not None and since is None):
        raise Invalid(messages.WEBHOOK_REPLAY_SCOPE)
    found = await endpoint(endpoint_id)
    since, until = (as_utc(since) if since else None), (as_utc(until) if until else None)
    query: dict[str, Any] = {"endpoint_id": found.endpoint_id, "status": {"$in": [SUCCEEDED, FAILED]}}
    if event is not None:
        query["event_id"] = event[:100]
    elif order_id is not None:
        query["order_id"] = order_id[:24]
    elif since is not None:
        # Read, then check the range to the millisecond here: some servers compare dates to the second.
        query["created_at"] = {"$gte": since - timedelta(seconds=1)}
    collection = WebhookDelivery.get_pymongo_collection()
    chosen = [doc async for doc in collection.find(query, {"created_at": 1, "attempts": 1, "attempt_count": 1})
              if since is None or since <= as_utc(doc["created_at"]) <= (until or now)]
    replayed = 0
    for doc in chosen:
        result = await collection.update_one(
            {"_id": doc["_id"], "attempt_count": doc.get("attempt_count", 0), "status": {"$in": [SUCCEEDED, FAILED]}},
            {"$set": {"status": PENDING, "next_attempt_at": now, "retry_base": len(doc.get("attempts") or [])},
             "$unset": {"finished_at": ""}})
        replayed += result.modified_count
    return replayed


# --- the relay and the sender -----------------------------------------------------------------

@dataclass
class _Outcome:
    status_code: int | None
    latency_ms: float
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookDispatcher:
    """Per process: the relay from orders to deliveries, and the sender of deliveries."""

    def __init__(self, settings: Settings, clock: Clock = SYSTEM_CLOCK) -> None:
        self._settings = settings
        self._clock = clock
        self._schedule = settings.webhook_retry_schedule
        self._client = GuardedClient(address_policy(settings))
        self._to_relay: set[ObjectId] = set()
        self._relay_wake = asyncio.Event()
        self._send_wake = asyncio.Event()
        # Per endpoint, when each of its attempts in flight started: real monotonic seconds, as the
        # attempt's timeout runs on real time whatever clock the process was given.
        self._in_flight: dict[str, list[float]] = {}
        # Endpoints whose last attempt in this process answered 2xx within SLOW_SECONDS, and those
        # whose last one did not; an endpoint in neither has not been attempted here yet.
        self._answering: set[str] = set()
        self._struggling: set[str] = set()
        self._first_turn = 0
        self._attempts: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._relay_outage = OutageLog(log, "webhook relay pass")
        self._send_outage = OutageLog(log, "webhook delivery pass")

    # The publisher tells of every change this process made (ChangePublisher.watch): relay it now.
    def order_changed(self, order: Order) -> None:
        if order.partner_client_id and (order.webhook_events or order.webhook_deadline):
            self._to_relay.add(stored_id(order))
            self._relay_wake.set()

    def start(self) -> None:
        self._stopping = False
        self._tasks = [asyncio.create_task(self._relay_loop(), name="webhook-relay"),
                       asyncio.create_task(self._send_loop(), name="webhook-sender")]

    async def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Stop both loops and the attempts in flight (their claims lapse, and another process or the
        next start makes them again, under the same `webhook-id`)."""
        self._stopping = True
        tasks, self._tasks = [*self._tasks, *self._attempts], []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        await self._client.close()

    # --- relay ---

    async def relay_order(self, order_id: ObjectId) -> int:
        """Turn one order's pending events into deliveries, then clear its marks; returns how many
        deliveries this call created."""
        order = await order_store.with_webhook_marks(order_id)
        if order is None:
            return 0
        events = [event.model_dump() for event in order.webhook_events or []]
        if order.webhook_deadline:
            events.append(deadline_event(order, CancellationReason(order.webhook_deadline), self._settings.zone))
        endpoints = await WebhookEndpoint.find({"client_id": order.partner_client_id}).to_list()
        now = self._clock.now()
        created = 0
        for event in sorted(events, key=lambda event: event["version"]):
            for target in endpoints:
                if target.events and event["type"] not in target.events:
                    continue
                delivery = WebhookDelivery(
                    event_id=event_id(target.endpoint_id, str(order.id), event["version"]),
                    endpoint_id=target.endpoint_id, client_id=target.client_id, order_id=str(order.id),
                    version=event["version"], type=event["type"], payload=event["payload"],
                    next_attempt_at=now, created_at=now)
                try:
                    await delivery.insert()
                    created += 1
                except DuplicateKeyError:
                    pass  # another relay (or an earlier pass of this one) made it
        # Cleared only if no change came in meanwhile: that change rewrote the marks, and is relayed next.
        await order_store.clear_webhook_marks(order)
        if created:
            self._send_wake.set()
        return created

    async def relay_stale(self) -> int:
        """Relay marks older than a second: left by a process that died, or missed."""
        cutoff = self._clock.now() - timedelta(seconds=RELAY_AFTER_SECONDS)
        stale = await order_store.stale_webhook_marks(cutoff, 200)
        for order_id in stale:
            await self.relay_order(order_id)
        return len(stale)

    async def _relay_loop(self) -> None:
        next_scan = 0.0
        while not self._stopping:
            self._relay_wake.clear()
            mine, self._to_relay = self._to_relay, set()
            try:
                for order_id in sorted(mine):
                    await self.relay_order(order_id)
                    mine.discard(order_id)
                if self._clock.monotonic() >= next_scan:
                    next_scan = self._clock.monotonic() + RELAY_AFTER_SECONDS
                    await self.relay_stale()
                self._relay_outage.succeeded()
            except asyncio.CancelledError:
                raise
            except MAYBE_OUTAGE as exc:
                self._to_relay |= mine
                self._relay_outage.failed(exc, RELAY_AFTER_SECONDS)
            except Exception:
                self._to_relay |= mine
                log.exception("webhook relay pass failed")
            if self._stopping:
                return
            if not self._to_relay:
                await self._clock.sleep(max(0.0, next_scan - self._clock.monotonic()), self._relay_wake)
            else:
                await self._clock.sleep(RELAY_AFTER_SECONDS, self._relay_wake)

    # --- sender ---

    def _struggles(self, endpoint_id: str, now: float) -> bool:
        return endpoint_id in self._struggling or any(
            now - started > SLOW_SECONDS for started in self._in_flight.get(endpoint_id, ()))

    def _free(self, endpoint_id: str) -> int:
        """How many more attempts `endpoint_id` may start in this process now."""
        now = time.monotonic()
        budget = self._settings.webhook_max_in_flight
        free = budget - sum(len(started) for started in self._in_flight.values())
        own = len(self._in_flight.get(endpoint_id, ()))
        if self._struggles(endpoint_id, now):
            shared = sum(len(started) for other, started in self._in_flight.items() if self._struggles(other, now))
            return min(free, max(1, int(budget * STRUGGLING_SHARE)) - shared, 1 - own)
        if endpoint_id in self._answering:
            return min(free, self._settings.webhook_max_in_flight_per_endpoint - own)
        return min(free, 1 - own)

    async def dispatch_due(self) -> float:
        """Claim and start what is due on every enabled endpoint; returns seconds until the next due one."""
        now = self._clock.now()
        wait = POLL_SECONDS
        endpoints = await WebhookEndpoint.find({}).to_list()
        # What a removed endpoint did is forgotten; a disabled one is remembered for when it is enabled.
        existing = {target.endpoint_id for target in endpoints}
        self._answering &= existing
        self._struggling &= existing
        targets = [target for target in endpoints if target.enabled]
        if targets:
            first = self._first_turn % len(targets)
            targets = targets[first:] + targets[:first]
            self._first_turn = first + 1
        queues: list[tuple[WebhookEndpoint, list[WebhookDelivery]]] = []
        for target in targets:
            free = self._free(target.endpoint_id)
            if free <= 0:
                continue
            candidates = await WebhookDelivery.find(
                {"endpoint_id": target.endpoint_id, "status": {"$in": [PENDING, DELIVERING]}}
            ).sort([("next_attempt_at", SortDirection.ASCENDING), ("version", SortDirection.ASCENDING)]) \
                .limit(free * 2 + 10).to_list()
            due = [delivery for delivery in candidates if delivery.next_attempt_at <= now]
            for delivery in candidates:
                if delivery.next_attempt_at > now:
                    wait = min(wait, (delivery.next_attempt_at - now).total_seconds())
            held = await self._held(target.endpoint_id, due, now)
            queues.append((target, [delivery for delivery in due if delivery.id not in held]))
        while queues:
            waiting = []
            for target, queue in queues:
                if not queue or self._free(target.endpoint_id) <= 0:
                    continue
                claimed = await self._claim(queue.pop(0), now)
                if claimed is not None:
                    self._start(target, claimed)
                waiting.append((target, queue))
            queues = waiting
        return max(0.0, wait)

    def _start(self, target: WebhookEndpoint, delivery: WebhookDelivery) -> None:
        started = time.monotonic()
        self._in_flight.setdefault(target.endpoint_id, []).append(started)
        task = asyncio.create_task(self._attempt(target, delivery, started), name="webhook-attempt")
        self._attempts.add(task)
        task.add_done_callback(self._attempts.discard)

    async def _held(self, endpoint_id: str, due: list[WebhookDelivery], now: datetime) -> set[PydanticObjectId]:
        """The due deliveries an earlier event of the same order is still on its way before (one
        query for all of them). Each held one moves behind the one it waits for, so other orders'
        deliveries come first; it is released when that one finishes (`_next_of_order`)."""
        if not due:
            return set()
        earliest: dict[str, dict[str, Any]] = {}
        async for row in WebhookDelivery.get_pymongo_collection().find(
                {"endpoint_id": endpoint_id, "order_id": {"$in": list({d.order_id for d in due})},
                 "status": {"$in": [PENDING, DELIVERING]}}, {"order_id": 1, "version": 1, "next_attempt_at": 1}):
            if row["order_id"] not in earliest or row["version"] < earliest[row["order_id"]]["version"]:
                earliest[row["order_id"]] = row
        # A delivery finished meanwhile (by another process) is in no row: nothing holds the others then.
        held = {stored_id(delivery) for delivery in due
                if delivery.version > earliest.get(delivery.order_id, {}).get("version", delivery.version)}
        for delivery in due:
            if delivery.id in held:
                first = earliest[delivery.order_id]
                behind = max(as_utc(first["next_attempt_at"]), now) + timedelta(seconds=POLL_SECONDS)
                await WebhookDelivery.get_pymongo_collection().update_one(
                    {"_id": delivery.id, "attempt_count": delivery.attempt_count, "status": PENDING},
                    {"$set": {"next_attempt_at": behind}})
        return held

    async def _claim(self, delivery: WebhookDelivery, now: datetime) -> WebhookDelivery | None:
        until = now + timedelta(seconds=self._settings.webhook_timeout_seconds + CLAIM_MARGIN_SECONDS)
        document = await WebhookDelivery.get_pymongo_collection().find_one_and_update(
            {"_id": delivery.id, "attempt_count": delivery.attempt_count, "status": delivery.status},
            {"$set": {"status": DELIVERING, "next_attempt_at": until}, "$inc": {"attempt_count": 1}},
            return_document=ReturnDocument.AFTER)
        return WebhookDelivery.model_validate(document) if document is not None else None

    async def _attempt(self, target: WebhookEndpoint, delivery: WebhookDelivery, started: float) -> None:
        try:
            outcome = await self._send(target, delivery)
            answered = outcome.succeeded and time.monotonic() - started <= SLOW_SECONDS
            (self._answering if answered else self._struggling).add(target.endpoint_id)
            (self._struggling if answered else self._answering).discard(target.endpoint_id)
            await self._record(target, delivery, outcome)
        except asyncio.CancelledError:
            raise
        except MAYBE_OUTAGE as exc:
            self._send_outage.failed(exc, POLL_SECONDS)  # the claim lapses and the attempt is made again
        except Exception:
            log.exception("webhook delivery %s failed unexpectedly", delivery.event_id)
        finally:
            self._in_flight[target.endpoint_id].remove(started)
            if not self._in_flight[target.endpoint_id]:
                del self._in_flight[target.endpoint_id]
            self._send_wake.set()

    async def _send(self, target: WebhookEndpoint, delivery: WebhookDelivery) -> _Outcome:
        now = self._clock.now()
        timestamp = int(now.timestamp())
        headers = {
            "content-type": "application/json",
            "user-agent": "OrderPulse-Webhooks/1",
            "webhook-id": delivery.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": " ".join(signature(secret, delivery.event_id, timestamp, delivery.payload)
                                          for secret in signing_secrets(target, now)),
        }
        metrics.WEBHOOK_ATTEMPTS.inc()
        started = time.perf_counter()
        status_code: int | None = None
        error: str | None = None
        if self._settings.orderpulse_env == "production" and urlsplit(target.url).scheme != "https":
            # Registered before the server ran in production: refused like any unreachable address.
            return _Outcome(None, 0.0, "refused: https is required in production")
        try:
            response = await self._client.post(
                target.url, data=delivery.payload.encode(), headers=headers,
                timeout=aiohttp.ClientTimeout(total=self._settings.webhook_timeout_seconds))
            try:
                status_code = response.status
                await response.content.read(MAX_RESPONSE_BYTES)
            finally:
                response.release()
        except OutboundRefused:
            error = "refused: the host resolves only to addresses webhooks may not reach"
        except TimeoutError:
            error = f"no answer within {self._settings.webhook_timeout_seconds:g} s"
        except aiohttp.ClientError as exc:
            error = f"connection failed ({type(exc).__name__})"
        except OSError as exc:
            error = f"connection failed ({exc.strerror or type(exc).__name__})"
        latency = time.perf_counter() - started
        metrics.WEBHOOK_SECONDS.observe(latency)
        if status_code is not None and not 200 <= status_code < 300:
            error = f"answered {status_code}" + (" (redirects are not followed)" if 300 <= status_code < 400 else "")
        return _Outcome(status_code, round(latency * 1000, 1), error)

    async def _record(self, target: WebhookEndpoint, delivery: WebhookDelivery, outcome: _Outcome) -> None:
        now = self._clock.now()
        attempt = DeliveryAttempt(at=now, status_code=outcome.status_code, latency_ms=outcome.latency_ms,
                                  error=outcome.error)
        attempts = [*delivery.attempts, attempt]
        made = len(attempts) - delivery.retry_base
        changes: dict[str, Any] = {"attempts": [a.model_dump(exclude_none=True) for a in attempts]}
        disable: str | None = None
        if outcome.succeeded:
            changes.update(status=SUCCEEDED, finished_at=now)
        elif outcome.status_code == 410:
            changes.update(status=FAILED, finished_at=now)
            disable = "gone: the endpoint answered 410"
        elif made > len(self._schedule):
            changes.update(status=FAILED, finished_at=now)
            disable = f"retries spent: {made} attempts failed, the last: {outcome.error}"
        else:
            step = self._schedule[made - 1] * random.uniform(1 - JITTER, 1 + JITTER)
            changes.update(status=PENDING, next_attempt_at=now + timedelta(seconds=step))
        result = await WebhookDelivery.get_pymongo_collection().update_one(
            {"_id": delivery.id, "attempt_count": delivery.attempt_count, "status": DELIVERING},
            {"$set": changes})
        if not result.modified_count:
            return  # the claim lapsed and another process took it over: its outcome stands
        if outcome.succeeded:
            metrics.WEBHOOK_DELIVERIES.labels("succeeded").inc()
        elif changes["status"] == FAILED:
            metrics.WEBHOOK_DELIVERIES.labels("failed").inc()
        else:
            metrics.WEBHOOK_RETRIES.inc()
        if changes["status"] != PENDING:
            await self._next_of_order(delivery, now)
        if disable is not None:
            await self._disable(target, disable, now)

    async def _next_of_order(self, delivery: WebhookDelivery, now: datetime) -> None:
        """The order's next event for this endpoint, held behind this one, may go now."""
        later = await WebhookDelivery.find(
            {"endpoint_id": delivery.endpoint_id, "order_id": delivery.order_id,
             "version": {"$gt": delivery.version}, "status": PENDING}
        ).sort([("version", SortDirection.ASCENDING)]).limit(1).to_list()
        if later:
            await WebhookDelivery.get_pymongo_collection().update_one(
                {"_id": later[0].id, "attempt_count": later[0].attempt_count, "status": PENDING},
                {"$set": {"next_attempt_at": now}})

    async def _disable(self, target: WebhookEndpoint, reason: str, now: datetime) -> None:
        result = await WebhookEndpoint.get_pymongo_collection().update_one(
            {"_id": target.id, "enabled": True},
            {"$set": {"enabled": False, "disabled_reason": reason, "disabled_at": now}})
        if result.modified_count:
            kind = "gone" if reason.startswith("gone") else "retries_spent"
            metrics.WEBHOOK_ENDPOINTS_DISABLED.labels(kind).inc()
            # The host only: a URL's path or query may carry the partner's own token.
            log.warning("webhook endpoint %s of client %s (host %s) disabled: %s; "
                        "`orderpulse webhook enable %s` sends its pending deliveries again",
                        target.endpoint_id, target.client_id, urlsplit(target.url).hostname, reason,
                        target.endpoint_id)

    async def _send_loop(self) -> None:
        while not self._stopping:
            self._send_wake.clear()
            try:
                wait = await self.dispatch_due()
                self._send_outage.succeeded()
            except asyncio.CancelledError:
                raise
            except MAYBE_OUTAGE as exc:
                self._send_outage.failed(exc, POLL_SECONDS)
                wait = POLL_SECONDS
            except Exception:
                log.exception("webhook delivery pass failed")
                wait = POLL_SECONDS
            if self._stopping:
                return
            await self._clock.sleep(min(wait, POLL_SECONDS), self._send_wake)
