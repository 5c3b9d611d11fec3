"""Wiring: everything one server process runs, started and stopped in order.

Like centrifuge's `node.go`: the single place that knows how the parts fit together.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

from pymongo.errors import PyMongoError
from redis.exceptions import RedisError

from server.config import ConfigurationError, Settings, resolve_password_cost, resolve_secrets
from server.database import (
    MongoClient, background_client, close_client, connect_database, disconnect_database, public_mongodb_url,
    without_credentials,
)
from server.domain.clock import SYSTEM_CLOCK, Clock
from server.domain.trust import TrustPolicy
from server.embedded_mongo import EmbeddedMongo
from server.realtime.board_feed import BoardFeed
from server.realtime.broker import Broker
from server.realtime.hub import Hub
from server.services.accounts import AccountService
from server.services.board import read_board
from server.services.catalog import publish_store_changed
from server.services.checkout import CheckoutService
from server.services.deadlines import DeadlineEnforcer
from server.services.store_closing import StoreClosing
from server.services.login_throttle import LoginThrottle
from server.services.order_lifecycle import OrderLifecycle
from server.services import order_store
from server.services.order_queries import OrderQueries
from server.services.outage import UNREACHABLE, StorageHealth, storage_failure_reason
from server.services.account_mail import AccountMail
from server.services.mail import Mailer, SmtpServer
from server.services.payment_qr import PaymentQrCodes
from server.services.publishing import ChangePublisher, OutboxRelay
from server.services.push import PushNotifier
from server.services.ratelimit import PollRateLimiter
from server.services.ready_times import ReadyTimes
from server.services.slots import SlotReleaser
from server.services.snapshots import OrderSnapshotCache
from server.services.subscriptions import SubscriptionService
from server.services.tokens import Passwords, TokenService
from server.services.webhooks import WebhookDispatcher

log = logging.getLogger("orderpulse")


# `/readyz` writes one document here to learn whether the database still stores writes.
READINESS_COLLECTION = "readiness"
# Each part gets this long to stop; together they stay well inside the 10 s a supervisor
# (systemd, Kubernetes) waits after SIGTERM before it kills the process.
PART_STOP_SECONDS = 2.0
# Connections of the deadline enforcer's client: it runs one batch at a time.
ENFORCER_POOL_SIZE = 4


async def _stop_part(what: str, work: Awaitable[Any], seconds: float = PART_STOP_SECONDS) -> None:
    """Await one part's stop for at most `seconds`; a part that fails or hangs is logged and left."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        log.warning("shutdown: %s did not stop within %.1f s; going on without it", what, seconds)
    elif not task.cancelled() and task.exception() is not None:
        log.warning("shutdown: stopping %s failed (%s)", what, type(task.exception()).__name__)


class Runtime:
    def __init__(self, settings: Settings, clock: Clock = SYSTEM_CLOCK) -> None:
        # Passed to the parts that read the time, so in-process tests can move it.
        self.clock = clock
        settings, notices = resolve_secrets(settings)
        for notice in notices:
            log.warning(notice)
        self.settings = settings
        self.tokens = TokenService(settings.jwt_secret or "", settings.jwt_algorithm,
                                   settings.access_token_lifetime, clock=clock)
        self.accounts = AccountService(
            self.tokens, settings.refresh_token_lifetime,
            TrustPolicy(settings.no_show_warning_threshold, settings.no_show_restriction_threshold,
                        settings.restriction_length),
            settings.user_cache_seconds, clock=clock, passwords=Passwords(resolve_password_cost(settings)),
            refresh_reuse_seconds=settings.refresh_reuse_seconds)
        self.mailer = Mailer(settings.mail_from, SmtpServer.from_url(settings.smtp_url) if settings.smtp_url else None,
                             settings.data_dir / "outbox", clock=clock)
        self.account_mail = AccountMail(
            self.accounts, self.mailer, public_url=settings.link_origin,
            link_lifetime=timedelta(minutes=settings.account_link_minutes),
            per_account_per_hour=settings.mail_per_account_per_hour,
            per_address_per_hour=settings.mail_per_address_per_hour, clock=clock)
        self.login_throttle = LoginThrottle(settings.login_max_failures_per_account,
                                            settings.login_max_failures_per_address,
                                            settings.login_failure_window_seconds, clock=clock)
        self.broker = Broker(settings.redis_url, liveness=settings.broker_liveness_seconds)
        self.accounts.use_bus(self.broker)
        self.publisher = ChangePublisher(self.broker)
        self.enforcer = DeadlineEnforcer(settings, self.publisher, clock=clock)
        self.push = PushNotifier(settings, clock=clock)
        self.publisher.watch(self.push.order_changed)
        self.ready_times = ReadyTimes(clock=clock, bus=self.broker, push_seconds=settings.eta_push_seconds)
        self.publisher.watch(self.ready_times.order_changed)
        # Order caps: a ready or cancelled order gives its items back to its slot (server/services/slots.py).
        self.slots = SlotReleaser(lambda store_id: publish_store_changed(self.broker, store_id))
        self.publisher.watch(self.slots.order_changed)
        # Partner webhooks: relays the events changes wrote into partners' orders, and sends them.
        self.webhooks = WebhookDispatcher(settings, clock=clock)
        self.publisher.watch(self.webhooks.order_changed)
        # Orders: reading them (and the deadline due on a read), checking out, changing them.
        self.orders = OrderQueries(settings, self.enforcer, clock=clock)
        self.checkout = CheckoutService(settings, self.accounts, self.tokens, self.publisher, self.enforcer, clock=clock,
                                        store_changed=lambda store_id: publish_store_changed(self.broker, store_id))
        self.lifecycle = OrderLifecycle(settings, self.orders, self.publisher, self.enforcer, clock=clock)
        self.store_closing = StoreClosing(settings, self.publisher, self.enforcer, self.broker, clock=clock)
        self.snapshots = OrderSnapshotCache(self.broker, clock=clock)
        self.poll_limiter = PollRateLimiter(settings.poll_min_interval_seconds, clock=clock)
        self.payment_qr = PaymentQrCodes(settings.qr_codes_per_minute, settings.qr_max_waiting, clock=clock)
        self.relay = OutboxRelay(self.publisher, settings.outbox_relay_after_seconds, clock=clock)
        self.subscriptions = SubscriptionService(clock=clock, ready_times=self.ready_times)
        self.hub = Hub(settings, self.broker, self.subscriptions)
        self.accounts.on_account_changed(self.hub.account_changed)
        # Pickup boards: each store's board re-read when its orders change (server/realtime/board_feed.py).
        self.board_feed = BoardFeed(self.broker, read_board)
        # Whether the database last stored a write: `/readyz` and the 503 of a refused write.
        self.storage = StorageHealth(log)
        self.client: MongoClient | None = None
        self._enforcer_client: MongoClient | None = None
        self.embedded: EmbeddedMongo | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._broker_connected = False

    async def start(self) -> None:
        self.client, self.embedded = await connect_database(self.settings)
        if self.embedded is not None:
            self._supervisor = asyncio.create_task(self.embedded.supervise(), name="embedded-mongo-supervisor")
        try:
            await self._start_parts()
        except BaseException:
            await self.stop()
            raise

    async def _start_parts(self) -> None:
        await order_store.create_indexes()  # the orders' indexes are declared beside their queries
        self._broker_connected = True
        try:
            await self.broker.connect()
        except (RedisError, OSError) as exc:
            url = self.settings.redis_url or ""
            raise ConfigurationError(f"Cannot use Redis at {public_mongodb_url(url)}: "
                                     f"{without_credentials(str(exc) or type(exc).__name__, url).rstrip('. ')}. "
                                     "Check REDIS_URL.") from None
        await self.accounts.start()
        await self.hub.start()
        # The enforcer's own client: a request burst cannot hold the connections a deadline needs.
        url = self.settings.mongodb_url or (self.embedded.url if self.embedded is not None else "")
        self._enforcer_client = background_client(self.settings, url, ENFORCER_POOL_SIZE)
        database = self._enforcer_client.get_default_database(default=self.settings.mongodb_database)
        self.enforcer.start(order_store.orders_in(database))
        self.relay.start()
        self.push.start()
        self.webhooks.start()

    async def stop(self) -> None:
        """Stop every part within a bound, whatever the database and broker are doing."""
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:  # first, so a database stopped below is not restarted
            supervisor.cancel()
            await asyncio.wait({supervisor}, timeout=PART_STOP_SECONDS)
        await asyncio.gather(_stop_part("outbox relay", self.relay.stop()),
                             _stop_part("deadline enforcer", self.enforcer.stop()),
                             _stop_part("hub", self.hub.stop()),
                             _stop_part("pickup boards", self.board_feed.stop()),
                             _stop_part("push notifier", self.push.stop()),
                             _stop_part("webhooks", self.webhooks.stop()),
                             _stop_part("ready-time pushes", self.ready_times.stop()),
                             _stop_part("slot releases", self.slots.stop()))
        self.payment_qr.stop()
        await _stop_part("mail", self.mailer.drain(PART_STOP_SECONDS))
        if self._broker_connected:
            self._broker_connected = False
            await _stop_part("broker", self.broker.disconnect())
        enforcer_client, self._enforcer_client = self._enforcer_client, None
        if enforcer_client is not None:
            await close_client(enforcer_client)
        client, self.client = self.client, None
        embedded, self.embedded = self.embedded, None
        if client is not None:  # set together with `embedded` by `connect_database`
            await disconnect_database(client, embedded)

    async def database_ready(self) -> bool:
        """True when MongoDB answers a ping within `READINESS_TIMEOUT_SECONDS`."""
        if self.client is None or (self.embedded is not None and not self.embedded.running):
            return False
        try:
            # Not `pymongo.timeout()`: with it the driver waits for a server in half-second steps
            # past the limit.
            await asyncio.wait_for(self.client.admin.command("ping"), self.settings.readiness_timeout_seconds)
            return True
        except Exception:
            return False

    async def storage_problem(self) -> str | None:
        """Why MongoDB did not store one small write within `READINESS_TIMEOUT_SECONDS`, or None
        when it did: a full or read-only disk still answers pings. Asked once a ping was answered;
        an unreachable database is `database_ready`'s to report."""
        if self.client is None:
            return None
        timeout = self.settings.readiness_timeout_seconds
        probes = self.client.get_default_database(default=self.settings.mongodb_database)[READINESS_COLLECTION]
        try:
            result = await asyncio.wait_for(
                probes.update_one({"_id": "probe"}, {"$inc": {"writes": 1}}, upsert=True), timeout)
        except UNREACHABLE:
            return None
        except TimeoutError:
            problem = f"a test write got no answer within {timeout:g} s"
        except PyMongoError as exc:
            problem = storage_failure_reason(exc) or f"a test write was refused ({type(exc).__name__})"
        else:
            if result.matched_count or result.upserted_id is not None:
                self.storage.succeeded()
                return None
            problem = "a test write was acknowledged but not stored"
        self.storage.failed(problem, "/readyz")
        return problem
