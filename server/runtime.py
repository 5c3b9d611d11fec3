"""Wiring: everything one server process runs, started and stopped in order.

Like centrifuge's `node.go`: the single place that knows how the parts fit together.
"""

from __future__ import annotations

import logging

from beanie import init_beanie
from pymongo import AsyncMongoClient

from server.config import Settings, resolve_jwt_secret
from server.domain.trust import TrustPolicy
from server.embedded_mongo import EmbeddedMongo
from server.metrics import COMMAND_COUNTER
from server.models import DOCUMENT_MODELS
from server.realtime.broker import Broker
from server.realtime.hub import Hub
from server.services.accounts import AccountService
from server.services.deadlines import DeadlineEnforcer
from server.services.login_throttle import LoginThrottle
from server.services.orders import OrderService
from server.services.publishing import ChangePublisher, OutboxRelay
from server.services.ratelimit import PollRateLimiter
from server.services.snapshots import OrderSnapshotCache
from server.services.tokens import TokenService

log = logging.getLogger("orderpulse")


async def connect_database(settings: Settings) -> tuple[AsyncMongoClient, EmbeddedMongo | None]:
    """Connect to `MONGODB_URL`, or start the embedded nx-27017 when it is unset; init Beanie."""
    embedded = None
    url = settings.mongodb_url
    if not url:
        embedded = EmbeddedMongo(settings.data_dir)
        # Started from this (the main) thread: the kernel's parent-death signal follows the
        # thread that forked, and the main thread lives as long as the server.
        url = embedded.start()
    client: AsyncMongoClient = AsyncMongoClient(url, tz_aware=True, event_listeners=[COMMAND_COUNTER])
    database = client.get_default_database(default=settings.mongodb_database)
    try:
        await init_beanie(database=database, document_models=DOCUMENT_MODELS)
    except BaseException:
        await client.close()
        if embedded:
            embedded.stop()
        raise
    return client, embedded


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        notice = resolve_jwt_secret(settings)
        if notice:
            log.warning(notice)
        self.tokens = TokenService(settings.jwt_secret or "", settings.jwt_algorithm,
                                   settings.access_token_lifetime)
        self.accounts = AccountService(
            self.tokens, settings.refresh_token_lifetime,
            TrustPolicy(settings.no_show_warning_threshold, settings.no_show_restriction_threshold,
                        settings.restriction_length),
            settings.user_cache_seconds)
        self.login_throttle = LoginThrottle(settings.login_max_failures_per_account,
                                            settings.login_max_failures_per_address,
                                            settings.login_failure_window_seconds)
        self.broker = Broker(settings.redis_url)
        self.accounts.use_broker(self.broker)
        self.publisher = ChangePublisher(self.broker, settings.orderpulse_failpoint)
        self.enforcer = DeadlineEnforcer(settings, self.publisher)
        self.orders = OrderService(settings, self.accounts, self.tokens, self.publisher, self.enforcer)
        self.snapshots = OrderSnapshotCache(self.broker)
        self.poll_limiter = PollRateLimiter(settings.poll_min_interval_seconds)
        self.relay = OutboxRelay(self.publisher, settings.outbox_relay_after_seconds)
        self.hub = Hub(settings, self.broker, self.accounts)
        self.client: AsyncMongoClient | None = None
        self.embedded: EmbeddedMongo | None = None

    async def start(self) -> None:
        self.client, self.embedded = await connect_database(self.settings)
        await self.broker.connect()
        await self.accounts.start()
        await self.hub.start()
        self.enforcer.start()
        self.relay.start()

    async def stop(self) -> None:
        await self.relay.stop()
        await self.enforcer.stop()
        await self.hub.stop()
        await self.broker.disconnect()
        if self.client is not None:
            await self.client.close()
        if self.embedded is not None:
            self.embedded.stop()

    async def database_ready(self) -> bool:
        try:
            assert self.client is not None
            await self.client.admin.command("ping")
            return True
        except Exception:
            return False
