"""Web Push: a customer's devices hear when their order is accepted, ready, about to become a
no-show, or cancelled, even with the page closed (W3C Push API, VAPID RFC 8292, RFC 8291
encryption through pywebpush).

Every moment reaches each subscription once however many processes see the change: the process
that inserts the `PushDelivery` claim (unique per subscription, order and moment) sends it. Sending
happens in background tasks with a timeout and a bound on how many wait, so a push service that
hangs never delays an API answer or the hub.
"""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import ipaddress
import json
import logging
from collections import OrderedDict
from datetime import datetime
from urllib.parse import urlsplit

from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid
from pymongo.errors import DuplicateKeyError

from server import metrics
from server.config import ConfigurationError, Settings
from server.domain import messages
from server.domain.clock import SYSTEM_CLOCK, Clock
from server.domain.errors import ApiError
from server.domain.lifecycle import OrderStatus
from server.domain.notifications import Moment, moment_of, notification, reminder_due
from server.models import Order, PushDelivery, PushSubscription

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger("orderpulse.push")

GONE = frozenset({404, 410})  # RFC 8030: the subscription has expired or been unsubscribed
RETRY_AFTER_MAX_SECONDS = 60.0
# Seconds a push service may keep a message for a device that is offline: a notice about lunch
# is worth little an hour later.
PUSH_TTL_SECONDS = 3600
HANDLED_REMEMBERED = 10_000


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
        self._session: aiohttp.ClientSession | None = None
        self._reminders: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        # (order, moment) pairs this process has already handled, so a reminder round or a
        # republished change does not claim again (oldest forgotten first).
        self._handled: OrderedDict[tuple[str, Moment], None] = OrderedDict()

    # --- subscriptions ----------------------------------------------------------------------

    async def subscribe(self, user_id: str, endpoint: str, p256dh: str, auth: str) -> PushSubscription:
        """Keep this device's subscription for `user_id`; a browser that was someone else's moves
        to whoever subscribed last (a shared device, a new sign-in)."""
        if not self.endpoints.allows(endpoint):
            raise ApiError(400, messages.PUSH_ENDPOINT_NOT_ALLOWED)
        owner = user_id
        existing = await PushSubscription.find_one({"endpoint": endpoint})
        if existing is not None:
            await existing.set({"user_id": owner, "p256dh": p256dh, "auth": auth})
            return existing
        subscription = PushSubscription(user_id=owner, endpoint=endpoint, p256dh=p256dh, auth=auth,
                                        created_at=self._clock.now())
        try:
            await subscription.insert()
        except DuplicateKeyError:  # the same browser subscribed twice at once
            return await self.subscribe(user_id, endpoint, p256dh, auth)
        metrics.PUSH_SUBSCRIPTIONS.labels("created").inc()
        return subscription

    async def unsubscribe(self, user_id: str, endpoint: str) -> None:
        result = await PushSubscription.find_one({"endpoint": endpoint, "user_id": user_id}).delete()
        if not result or not result.deleted_count:
            raise ApiError(404, messages.PUSH_SUBSCRIPTION_NOT_FOUND)
        metrics.PUSH_SUBSCRIPTIONS.labels("deleted").inc()

    # --- moments ----------------------------------------------------------------------------

    def order_changed(self, order: Order) -> None:
        """Called for every published change; the moment it reached, if any, is sent off the caller's path."""
        moment = moment_of(order.order_status)
        if moment is not None:
            self._spawn(order, moment)

    def _spawn(self, order: Order, moment: Moment) -> None:
        key = (str(order.id), moment)
        if key in self._handled:
            return
        self._handled[key] = None
        if len(self._handled) > HANDLED_REMEMBERED:
            self._handled.popitem(last=False)
        if len(self._pending) >= self._settings.push_max_pending:
            metrics.PUSH_NOTIFICATIONS.labels(moment.value, "dropped").inc()
            log.warning("push backlog full (%d); %s of order %s not sent", len(self._pending), moment, order.id)
            return
        task = asyncio.create_task(self._deliver(order, moment), name=f"push-{moment}-{order.id}")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _deliver(self, order: Order, moment: Moment) -> None:
        try:
            subscriptions = await PushSubscription.find({"user_id": order.user_id}).to_list()
            if not subscriptions:
                return
            now = self._clock.now()
            payload = json.dumps(notification(
                moment, order_id=str(order.id), order_number=order.order_number, store_name=order.store_name,
                cancellation_reason=order.cancellation_reason and str(order.cancellation_reason), ready_expires_at=order.ready_expires_at,
                now=now).payload())
            await asyncio.gather(*(self._claim_and_send(subscription, order, moment, payload, now)
                                   for subscription in subscriptions))
        except Exception:
            log.exception("push of %s for order %s failed", moment, order.id)

    async def _claim_and_send(self, subscription: PushSubscription, order: Order, moment: Moment,
                              payload: str, now: datetime) -> None:
        claim = PushDelivery(subscription_id=str(subscription.id), order_id=str(order.id), kind=moment.value,
                             status="sending", claimed_at=now)
        try:
            await claim.insert()
        except DuplicateKeyError:  # another process has it
            metrics.PUSH_NOTIFICATIONS.labels(moment.value, "claimed_elsewhere").inc()
            return
        status, attempts = await self._send_with_retries(subscription, payload)
        if status == "gone":
            await PushSubscription.find_one({"_id": subscription.id}).delete()
            metrics.PUSH_SUBSCRIPTIONS.labels("expired").inc()
        metrics.PUSH_NOTIFICATIONS.labels(moment.value, status).inc()
        await claim.set({"status": status, "attempts": attempts, "finished_at": self._clock.now()})

    async def _send_with_retries(self, subscription: PushSubscription, payload: str) -> tuple[str, int]:
        """sent, gone (404/410: forget the subscription) or failed (refused, or retries used up)."""
        # Imported on the first push, not at start-up: aiohttp and pywebpush cost every process
        # (each CLI command, each server start) a fifth of a second it may never need.
        import aiohttp
        from pywebpush import WebPushException, webpush_async

        settings = self._settings
        info = {"endpoint": subscription.endpoint, "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth}}
        for attempt in range(1, settings.push_max_attempts + 1):
            wait: float | None = None
            try:
                await asyncio.wait_for(webpush_async(
                    info, payload, vapid_private_key=self.vapid.signer, vapid_claims={"sub": self.vapid.subject},
                    ttl=PUSH_TTL_SECONDS, timeout=settings.push_timeout_seconds,
                    aiohttp_session=self._http()), settings.push_timeout_seconds)
                return "sent", attempt
            except WebPushException as exc:
                code = exc.status_code
                if code in GONE:
                    return "gone", attempt
                if code is not None and code != 429 and code < 500:
                    log.warning("push service refused a push with %s; not retried", code)
                    return "failed", attempt
                wait = _retry_after(exc.retry_after)
                metrics.PUSH_RETRIES.labels(str(code)).inc()
            except (TimeoutError, aiohttp.ClientError, OSError):
                metrics.PUSH_RETRIES.labels("unreachable").inc()
            if attempt < settings.push_max_attempts:
                backoff = settings.push_retry_base_seconds * 2 ** (attempt - 1)
                await self._clock.sleep(max(backoff, wait or 0))
        return "failed", settings.push_max_attempts

    def _http(self) -> aiohttp.ClientSession:
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

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
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def remind_once(self) -> int:
        """Send the reminder for each ready order now within its reminder window; returns how many."""
        now = self._clock.now()
        before = self._settings.push_reminder_minutes
        due = await Order.find({"order_status": OrderStatus.READY.value, "ready_expires_at": {"$gt": now}}).to_list()
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


def _retry_after(value: str | None) -> float | None:
    try:
        return min(float(value), RETRY_AFTER_MAX_SECONDS) if value else None
    except ValueError:
        return None
