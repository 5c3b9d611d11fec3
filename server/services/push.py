"""Web Push: a customer's devices hear when their order is accepted, ready, about to become a
no-show, or cancelled, even with the page closed (W3C Push API, VAPID RFC 8292, RFC 8291
encryption through pywebpush).

Every moment reaches each subscription once however many processes see the change: the process
that inserts the `PushDelivery` claim (unique per subscription, order and moment) sends it. Sending
happens in background tasks with a timeout and a bound on how many pushes are in flight in the
process (`PUSH_MAX_PENDING`, counted per subscription, so one account's many devices cannot exceed
it), so a push service that hangs never delays an API answer or the hub. Pushes go through the
guarded client of `server.services.outbound`: no redirect is followed and no private address is
reached unless its host is listed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import fnmatch
import ipaddress
import json
import logging
from collections import OrderedDict, defaultdict
from collections.abc import Coroutine
from datetime import datetime
from urllib.parse import urlsplit

from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from beanie import SortDirection
from py_vapid import Vapid
from pymongo.errors import DuplicateKeyError

from server import metrics
from server.config import ConfigurationError, Settings
from server.domain import messages
from server.domain.clock import SYSTEM_CLOCK, Clock
from server.domain.errors import Invalid, NotFound
from server.domain.notifications import Moment, moment_of, notification, reminder_due
from server.models import Order, PushDelivery, PushSubscription
from server.services import order_store

if TYPE_CHECKING:
    from server.services.outbound import GuardedClient

log = logging.getLogger("orderpulse.push")

GONE = frozenset({404, 410})  # RFC 8030: the subscription has expired or been unsubscribed
RETRY_AFTER_MAX_SECONDS = 60.0
# Seconds a push service may keep a message for a device that is offline: a notice about lunch
# is worth little an hour later.
PUSH_TTL_SECONDS = 3600
HANDLED_REMEMBERED = 10_000
# Changes whose owners' devices one query reads (a store's closing cancels thousands at once).
LOOKUP_BATCH = 500
# How long the first change waits for others before their owners' devices are read together. A
# busy kitchen's changes come milliseconds apart, and most owners have no device registered: one
# query per change was a third of the change path's database commands at 200 changes/s. Web
# Push itself takes seconds to reach a phone, so a notice 50 ms later is not noticed.
LOOKUP_GATHER_SECONDS = 0.05


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class EndpointPolicy:
    """Which push services this server sends to: https on a listed host (`*.` for subdomains); a
    loopback host only when listed, for a test's own push service."""

    def __init__(self, hosts: str) -> None:
        self._patterns = [host.strip().lower() for host in hosts.split(",") if host.strip()]

    def allows(self, endpoint: str) -> bool:
        try:
            parts = urlsplit(endpoint)
            host = (parts.hostname or "").lower()
            port = parts.port
        except ValueError:
            return False
        if not host or parts.username or parts.password:
            return False
        names = {host} if port is None else {host, f"{host}:{port}"}
        if not any(fnmatch.fnmatchcase(name, pattern) for name in names for pattern in self._patterns):
            return False
        return parts.scheme == "https" or (parts.scheme == "http" and _loopback(host))


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class VapidKey:
    """The server's VAPID identity: signs each push; its public key goes to the pages."""

    def __init__(self, pem: str, subject: str) -> None:
        if not subject.startswith(("mailto:", "https://")):
            raise ConfigurationError("VAPID_SUBJECT must be a mailto: or https: contact for push services.")
        try:
            self.signer = Vapid.from_pem(pem.encode())
        except Exception:
            raise ConfigurationError("VAPID_PRIVATE_KEY is not a P-256 private key in PEM form.") from None
        self.subject = subject
        self.public_key = _b64url(self.signer.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))


class PushNotifier:
    def __init__(self, settings: Settings, clock: Clock = SYSTEM_CLOCK) -> None:
        self._settings = settings
        self._clock = clock
        self.vapid = VapidKey(settings.vapid_private_key or "", settings.vapid_subject or "")
        self.endpoints = EndpointPolicy(settings.push_service_hosts)
        self._pending: set[asyncio.Task[None]] = set()
        # Pushes in flight (claimed or being sent), plus the changes whose subscriptions are being
        # looked up: at most PUSH_MAX_PENDING, whatever the number of changes and devices.
        self._in_flight = 0
        self._client: GuardedClient | None = None
        self._reminders: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        # (order, moment) pairs this process has already handled, so a reminder round or a
        # republished change does not claim again (oldest forgotten first).
        self._handled: OrderedDict[tuple[str, Moment], None] = OrderedDict()
        # Changes waiting for their owners' devices to be read, one query for many (`_look_up`).
        self._lookups: list[tuple[Order, Moment]] = []
        self._looking_up: asyncio.Task[None] | None = None

    # --- subscriptions ----------------------------------------------------------------------

    async def subscribe(self, user_id: str, endpoint: str, p256dh: str, auth: str) -> PushSubscription:
        """Keep this device's subscription for `user_id`; a browser that was someone else's moves
        to whoever subscribed last (a shared device, a new sign-in). Past
        PUSH_MAX_SUBSCRIPTIONS_PER_ACCOUNT the account's least recently registered devices are
        forgotten: browsers re-subscribe per device, and a lost phone never unsubscribes, so
        refusing the new device would punish the one in hand."""
        if not self.endpoints.allows(endpoint):
            raise Invalid(messages.PUSH_ENDPOINT_NOT_ALLOWED)
        if not _on_curve(p256dh):
            raise Invalid(messages.PUSH_KEY_NOT_ON_CURVE)
        now = self._clock.now()
        registered_ms = int(now.timestamp() * 1000)
        existing = await PushSubscription.find_one({"endpoint": endpoint})
        if existing is not None:
            await existing.set({"user_id": user_id, "p256dh": p256dh, "auth": auth, "registered_ms": registered_ms})
            await self._forget_beyond_cap(user_id)
            return existing
        subscription = PushSubscription(user_id=user_id, endpoint=endpoint, p256dh=p256dh, auth=auth,
                                        created_at=now, registered_ms=registered_ms)
        try:
            await subscription.insert()
        except DuplicateKeyError:  # the same browser subscribed twice at once
            return await self.subscribe(user_id, endpoint, p256dh, auth)
        metrics.PUSH_SUBSCRIPTIONS.labels("created").inc()
        await self._forget_beyond_cap(user_id)
        return subscription

    async def _forget_beyond_cap(self, user_id: str) -> None:
        """Delete the account's subscriptions beyond the newest PUSH_MAX_SUBSCRIPTIONS_PER_ACCOUNT.
        Every registration inserts first and trims after, so however many race, the last trim sees
        every insert and the account ends with at most the cap (no transaction, no lock)."""
        beyond = await PushSubscription.find({"user_id": user_id}).sort(
            [("registered_ms", SortDirection.DESCENDING), ("_id", SortDirection.DESCENDING)]
        ).skip(self._settings.push_max_subscriptions_per_account).to_list()
        if beyond:
            result = await PushSubscription.find({"_id": {"$in": [subscription.id for subscription in beyond]}}).delete()
            # Racing trims may pick the same subscriptions; only those this one deleted are counted.
            metrics.PUSH_SUBSCRIPTIONS.labels("replaced").inc(result.deleted_count if result else 0)

    async def unsubscribe(self, user_id: str, endpoint: str) -> None:
        result = await PushSubscription.find_one({"endpoint": endpoint, "user_id": user_id}).delete()
        if not result or not result.deleted_count:
            raise NotFound(messages.PUSH_SUBSCRIPTION_NOT_FOUND)
        metrics.PUSH_SUBSCRIPTIONS.labels("deleted").inc()

    # --- moments ----------------------------------------------------------------------------

    def order_changed(self, order: Order) -> None:
        """Called for every published change; the moment it reached, if any, is sent off the caller's path."""
        moment = moment_of(order.order_status, len(order.ready_undos or ()))
        if moment is not None:
            self._spawn(order, moment)

    def _spawn(self, order: Order, moment: Moment) -> None:
        key = (str(order.id), moment)
        if key in self._handled:
            return
        self._handled[key] = None
        if len(self._handled) > HANDLED_REMEMBERED:
            self._handled.popitem(last=False)
        if not self._reserve():
            metrics.PUSH_NOTIFICATIONS.labels(moment.value, "dropped").inc()
            log.warning("push backlog full (%d in flight); %s of order %s not sent", self._in_flight, moment, order.id)
            return
        self._lookups.append((order, moment))
        if self._looking_up is None or self._looking_up.done():
            self._looking_up = asyncio.create_task(self._look_up(), name="push-lookups")
            self._pending.add(self._looking_up)
            self._looking_up.add_done_callback(self._pending.discard)

    def _reserve(self) -> bool:
        """Take one of the PUSH_MAX_PENDING places, if one is free; the work started on it gives it
        back when it ends."""
        if self._in_flight >= self._settings.push_max_pending:
            return False
        self._in_flight += 1
        return True

    def _start(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _look_up(self) -> None:
        """Read the devices of the owners of every change waiting, up to LOOKUP_BATCH changes per
        query, and start one push per device, each on a place of its own (those past the bound are
        dropped and counted). One query per change had a store's closing, thousands of deadlines
        at once, send thousands of look-ups that held the database's deadline work back; the first
        change waits `LOOKUP_GATHER_SECONDS` for the changes right behind it (a scheduling pause,
        not a deadline: real time, not the injected clock)."""
        await asyncio.sleep(LOOKUP_GATHER_SECONDS)
        while self._lookups:
            batch, self._lookups = self._lookups[:LOOKUP_BATCH], self._lookups[LOOKUP_BATCH:]
            try:
                owners = list({order.user_id for order, _ in batch})
                found = await PushSubscription.find({"user_id": {"$in": owners}}).to_list()
            except Exception:  # the database is down: these moments are lost, as a dead process would lose them
                log.warning("push of %d changes skipped: their devices could not be read", len(batch),
                            exc_info=log.isEnabledFor(logging.DEBUG))
                continue
            finally:
                self._in_flight -= len(batch)  # the look-ups' places are free before their pushes take theirs
            devices: defaultdict[str, list[PushSubscription]] = defaultdict(list)
            for subscription in found:
                devices[str(subscription.user_id)].append(subscription)
            now = self._clock.now()
            for order, moment in batch:
                subscriptions = devices.get(str(order.user_id))
                if subscriptions:
                    self._push(order, moment, subscriptions, now)

    def _push(self, order: Order, moment: Moment, subscriptions: list[PushSubscription], now: datetime) -> None:
        payload = json.dumps(notification(
            moment, order_id=str(order.id), order_number=order.order_number, store_name=order.store_name,
            cancellation_reason=order.cancellation_reason and str(order.cancellation_reason),
            ready_expires_at=order.ready_expires_at, now=now).payload())
        dropped = 0
        for subscription in subscriptions:
            if self._reserve():
                self._start(self._claim_and_send(subscription, order, moment, payload, now),
                            f"push-{moment}-{order.id}-{subscription.id}")
            else:
                dropped += 1
        if dropped:
            metrics.PUSH_NOTIFICATIONS.labels(moment.value, "dropped").inc(dropped)
            log.warning("push backlog full (%d in flight); %s of order %s not sent to %d of %d devices",
                        self._in_flight, moment, order.id, dropped, len(subscriptions))

    async def _claim_and_send(self, subscription: PushSubscription, order: Order, moment: Moment,
                              payload: str, now: datetime) -> None:
        try:
            await self._claim_and_send_on_place(subscription, order, moment, payload, now)
        finally:
            self._in_flight -= 1

    async def _claim_and_send_on_place(self, subscription: PushSubscription, order: Order, moment: Moment,
                                       payload: str, now: datetime) -> None:
        claim = PushDelivery(subscription_id=str(subscription.id), order_id=str(order.id), kind=moment.value,
                             status="sending", claimed_at=now)
        try:
            await claim.insert()
        except DuplicateKeyError:  # another process has it
            metrics.PUSH_NOTIFICATIONS.labels(moment.value, "claimed_elsewhere").inc()
            return
        except Exception:  # the database is down: nothing claimed, nothing sent
            log.warning("push of %s for order %s not claimed", moment, order.id, exc_info=log.isEnabledFor(logging.DEBUG))
            return
        try:
            status, attempts = await self._send_with_retries(subscription, payload)
        except Exception as exc:  # whatever went wrong, the claim is marked: it never stays "sending"
            log.warning("push of %s for order %s failed (%s)", moment, order.id, type(exc).__name__,
                        exc_info=log.isEnabledFor(logging.DEBUG))
            status, attempts = "failed", 1
        metrics.PUSH_NOTIFICATIONS.labels(moment.value, status).inc()
        try:
            if status in ("gone", "invalid"):
                await PushSubscription.find_one({"_id": subscription.id}).delete()
                metrics.PUSH_SUBSCRIPTIONS.labels("expired" if status == "gone" else "invalid").inc()
            await claim.set({"status": status, "attempts": attempts, "finished_at": self._clock.now()})
        except Exception:  # the database went away meanwhile: the claim keeps "sending", the push was tried
            log.warning("push of %s for order %s: its result was not recorded", moment, order.id,
                        exc_info=log.isEnabledFor(logging.DEBUG))

    async def _send_with_retries(self, subscription: PushSubscription, payload: str) -> tuple[str, int]:
        """sent, gone (404/410: forget the subscription), invalid (its keys cannot be encrypted to:
        forget it too) or failed (refused, redirected, or retries used up)."""
        # Imported on the first push, not at start-up: aiohttp and pywebpush cost every process
        # (each CLI command, each server start) a fifth of a second it may never need.
        import aiohttp
        from pywebpush import WebPushException, webpush_async

        from server.services.outbound import OutboundRefused

        settings = self._settings
        if not _on_curve(subscription.p256dh):  # stored before keys were checked on the curve
            log.warning("push not sent: the subscription's p256dh is not a P-256 public key; it is forgotten")
            return "invalid", 0
        info = {"endpoint": subscription.endpoint, "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth}}
        for attempt in range(1, settings.push_max_attempts + 1):
            wait: float | None = None
            try:
                await asyncio.wait_for(webpush_async(
                    info, payload, vapid_private_key=self.vapid.signer, vapid_claims={"sub": self.vapid.subject},
                    ttl=PUSH_TTL_SECONDS, timeout=settings.push_timeout_seconds,
                    # pywebpush only calls the session's `post`, which the guarded client has.
                    aiohttp_session=self._http()), settings.push_timeout_seconds)
                return "sent", attempt
            except WebPushException as exc:
                code = exc.status_code
                if code is None:  # pywebpush refused the subscription's keys before sending
                    log.warning("push not sent: the subscription's keys are unusable (%s)", exc.message)
                    return "invalid", attempt
                if code in GONE:
                    return "gone", attempt
                if 300 <= code < 400:
                    log.warning("push service %s answered a redirect (%s); not followed", _host(subscription), code)
                    return "failed", attempt
                if code != 429 and code < 500:
                    log.warning("push service refused a push with %s; not retried", code)
                    return "failed", attempt
                wait = _retry_after(exc.retry_after)
                metrics.PUSH_RETRIES.labels(str(code)).inc()
            except OutboundRefused:
                log.warning("push service %s resolves to an address pushes may not reach; not sent", _host(subscription))
                return "failed", attempt
            except (TimeoutError, aiohttp.ClientError, OSError):
                metrics.PUSH_RETRIES.labels("unreachable").inc()
            if attempt < settings.push_max_attempts:
                backoff = settings.push_retry_base_seconds * 2 ** (attempt - 1)
                await self._clock.sleep(max(backoff, wait or 0))
        return "failed", settings.push_max_attempts

    def _http(self) -> GuardedClient:
        from server.services.outbound import AddressPolicy, GuardedClient

        if self._client is None:
            self._client = GuardedClient(AddressPolicy.from_patterns(self._settings.push_service_hosts))
        return self._client

    # --- the pickup reminder ----------------------------------------------------------------

    def start(self) -> None:
        self._stopping.clear()
        self._reminders = asyncio.create_task(self._remind_forever(), name="push-reminders")

    async def stop(self) -> None:
        self._stopping.set()
        tasks = [task for task in (self._reminders, *self._pending) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._reminders = None
        self._lookups.clear()
        self._in_flight = 0  # a task cancelled before it began never gave its place back
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def remind_once(self) -> int:
        """Send the reminder for each ready order now within its reminder window; returns how many."""
        now = self._clock.now()
        before = self._settings.push_reminder_minutes
        due = await order_store.ready_not_expired(now)
        count = 0
        for order in due:
            if reminder_due(order.ready_expires_at, now, before):
                self._spawn(order, Moment.PICKUP_REMINDER)
                count += 1
        return count

    async def _remind_forever(self) -> None:
        # Stopped by the event as well as cancelled: the driver can swallow a cancellation that
        # lands inside a query (pymongo 4.20), and the loop would then sleep a whole round on.
        while not self._stopping.is_set():
            try:
                await self.remind_once()
            except Exception:  # the database is down: the next round tries again
                log.warning("pickup reminders skipped a round", exc_info=log.isEnabledFor(logging.DEBUG))
            await self._clock.sleep(self._settings.push_reminder_check_seconds, self._stopping)

    async def drain(self) -> None:
        """Wait for every push in flight (tests read what was sent once it is all done)."""
        while self._pending:
            await asyncio.gather(*tuple(self._pending), return_exceptions=True)


def _on_curve(p256dh: str) -> bool:
    """Whether a browser's p256dh is a point on P-256: the request checks only its size and prefix,
    and encrypting to a point off the curve fails on every push."""
    try:
        raw = base64.urlsafe_b64decode(p256dh + "=" * (-len(p256dh) % 4))
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except (binascii.Error, ValueError):
        return False
    return True


def _host(subscription: PushSubscription) -> str:
    """The push service's host, for a log line: the endpoint's path is the device's secret address."""
    return urlsplit(subscription.endpoint).hostname or "?"


def _retry_after(value: str | None) -> float | None:
    try:
        return min(float(value), RETRY_AFTER_MAX_SECONDS) if value else None
    except ValueError:
        return None
