"""Web Push (issue 12) against a real push service played by a local HTTP server: it checks each
request as a push service does (RFC 8292 VAPID JWT signed by the key the server publishes, RFC
8291 aes128gcm body) and decrypts it with the browser's private key, so what the test reads is what
a phone would show."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

import http_ece
import httpx
import jwt
import pytest
from aiohttp import web
from bson import ObjectId
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from prometheus_client import generate_latest

from server.config import ConfigurationError, Settings, resolve_vapid_key
from server.domain.lifecycle import OrderStatus
from server.domain.notifications import Moment, moment_of, notification, reminder_due
from server.models import Order, PushDelivery, PushSubscription
from server.embedded_mongo import free_loopback_port
from server.runtime import PART_STOP_SECONDS
from server.services.push import LOOKUP_GATHER_SECONDS, EndpointPolicy
from tests.harness import TEST_JWT_SECRET, ServerProcess, create_admin, drop_database
from tests.support import PASSWORD, Api, metric_value, until, until_sync

FAST_RETRIES = {"push_service_hosts": "127.0.0.1", "push_retry_base_seconds": 0.01, "push_max_attempts": 3,
                "push_timeout_seconds": 1}


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Device:
    """A browser's side of one subscription: its key pair, its auth secret, and its endpoint."""

    def __init__(self, service: PushService, name: str) -> None:
        self.name = name
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = secrets.token_bytes(16)
        self.endpoint = f"{service.url}/push/{name}"

    def subscription(self) -> dict:
        public = self.key.public_key().public_bytes(serialization.Encoding.X962,
                                                    serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)}}


class PushService:
    """A push service on loopback. Per device: a list of statuses to answer in turn (then 201), or
    "hang" to never answer, or a `Location` to redirect every push to with a 307. Verified and
    decrypted messages are kept per device; `most_in_flight` is the most pushes it held at once."""

    def __init__(self) -> None:
        self.devices: dict[str, Device] = {}
        self.received: dict[str, list[dict]] = {}
        self.refused: list[str] = []
        self.answers: dict[str, list[int | str]] = {}
        self.hits: dict[str, int] = {}
        self.redirects: dict[str, str] = {}
        self.in_flight = 0
        self.most_in_flight = 0
        self.vapid_public_key: str | None = None
        self.released = asyncio.Event()  # ends every hanging answer, so the service can stop
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> PushService:
        app = web.Application()
        app.router.add_post("/push/{name}", self._push)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        self.released.set()
        if self.runner is not None:
            await self.runner.cleanup()

    def device(self, name: str) -> Device:
        device = self.devices[name] = Device(self, name)
        return device

    def moments(self, name: str) -> list[str]:
        return [message["moment"] for message in self.received.get(name, [])]

    async def _push(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.hits[name] = self.hits.get(name, 0) + 1
        if name in self.redirects:
            return web.Response(status=307, headers={"Location": self.redirects[name]})
        queued = self.answers.get(name)
        answer = queued.pop(0) if queued else 201
        if answer == "hang":
            await self.released.wait()
            return web.Response(status=503)
        body = await request.read()
        problem = self._check(request, body, self.devices[name])
        if problem:
            self.refused.append(problem)
            return web.Response(status=400, text=problem)
        if answer != 201:
            return web.Response(status=int(answer), headers={"Retry-After": "0"} if answer == 429 else {})
        device = self.devices[name]
        plain = http_ece.decrypt(body, private_key=device.key, auth_secret=device.auth, version="aes128gcm")
        self.received.setdefault(name, []).append(json.loads(plain))
        return web.Response(status=201)

    def _check(self, request: web.Request, body: bytes, device: Device) -> str | None:
        """What a push service refuses: a bad VAPID signature or claims, a wrong encoding, no TTL."""
        scheme, _, params = request.headers.get("Authorization", "").partition(" ")
        fields = dict(part.strip().split("=", 1) for part in params.split(",") if "=" in part)
        if scheme != "vapid" or "t" not in fields or "k" not in fields:
            return "no VAPID authorization"
        if self.vapid_public_key is not None and fields["k"] != self.vapid_public_key:
            return "signed by another key than the one the server publishes"
        raw = base64.urlsafe_b64decode(fields["k"] + "=" * (-len(fields["k"]) % 4))
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        try:
            claims = jwt.decode(fields["t"], key, algorithms=["ES256"], audience=self.url)
        except jwt.PyJWTError as exc:
            return f"bad VAPID JWT: {exc}"
        if not str(claims.get("sub", "")).startswith(("mailto:", "https://")):
            return "VAPID sub is not a contact"
        if claims["exp"] > time.time() + 24 * 3600:
            return "VAPID exp more than 24 h ahead"
        if request.headers.get("Content-Encoding") != "aes128gcm" or "TTL" not in request.headers:
            return "not an RFC 8291 message"
        return None


@pytest.fixture
async def push_service():
    service = await PushService().start()
    yield service
    await service.stop()


async def subscribed(api: Api, service: PushService, name: str = "phone"):
    """A customer whose device subscribed through the API, with the server's VAPID key known."""
    customer = await api.customer()
    key = (await api.get("/api/push/public-key")).json()["data"]["publicKey"]
    service.vapid_public_key = key
    device = service.device(name)
    response = await api.post("/api/push/subscriptions", customer, json=device.subscription())
    assert response.status_code == 201, response.text
    return customer, device


async def test_accepted_ready_and_cancelled_reach_the_device_once_each_without_the_pickup_code(
        api_factory, push_service):
    api = await api_factory(**FAST_RETRIES)
    customer, device = await subscribed(api, push_service)
    store = await api.store()
    order = await api.place_order(customer, store)
    await api.advance(store, order["id"], "paid", "processing", "ready")
    await until(lambda: push_service.moments("phone") == ["accepted", "ready"], message="accepted and ready")
    code = await api.otp_of(customer, order["id"])

    accepted, ready = push_service.received["phone"]
    assert accepted["title"] == f"Order {order['orderNumber']} accepted"
    assert ready == {"title": f"Order {order['orderNumber']} is ready",
                     "body": f"Pick it up at {store_name(order)}. Open the order for your pickup code.",
                     "url": f"/track/{order['id']}", "tag": f"order-{order['id']}", "moment": "ready"}
    assert all(code not in json.dumps(message) for message in push_service.received["phone"])

    second = await api.place_order(customer, store)
    response = await api.post(f"/api/orders/{second['id']}/cancel", customer)
    assert response.status_code == 200, response.text
    await until(lambda: len(push_service.received["phone"]) == 3, message="the cancellation")
    cancelled = push_service.received["phone"][2]
    assert cancelled["moment"] == "cancelled" and cancelled["body"] == "You cancelled it."
    assert push_service.refused == []
    await api.runtime.push.drain()
    assert push_service.hits["phone"] == 3  # each moment once, however often the order was published


def device_reads(monkeypatch) -> list[dict]:
    """The filters of every read of push subscriptions from now on, in order."""
    reads: list[dict] = []
    find = PushSubscription.find

    def counted(*args, **kwargs):
        reads.append(args[0])
        return find(*args, **kwargs)

    monkeypatch.setattr(PushSubscription, "find", counted)
    return reads


async def test_the_devices_of_many_changes_at_once_are_read_in_one_query(api_factory, push_service, monkeypatch):
    """A store's closing cancels its unpaid orders in batches of hundreds, each change told to the
    notifier in the same moment: their owners' devices are read together, not once per order (one
    query per order held the deadline enforcer back behind thousands of them)."""
    api = await api_factory(**FAST_RETRIES)
    store = await api.store()
    owners = [await subscribed(api, push_service, f"m{n}") for n in range(6)]
    orders = [await Order.get(ObjectId((await api.place_order(customer, store))["id"])) for customer, _ in owners]
    reads = device_reads(monkeypatch)
    for order in orders:  # as the enforcer's batch publishes them, one after another
        order.order_status = OrderStatus.CANCELLED
        api.runtime.push.order_changed(order)
    await api.runtime.push.drain()
    assert reads == [{"user_id": {"$in": reads[0]["user_id"]["$in"]}}]
    assert sorted(reads[0]["user_id"]["$in"]) == sorted(order.user_id for order in orders)
    assert [push_service.moments(f"m{n}") for n in range(6)] == [["cancelled"]] * 6


async def test_changes_a_few_milliseconds_apart_share_one_query(api_factory, push_service, monkeypatch):
    """A busy kitchen's changes come milliseconds apart, not in one moment: the first waits
    LOOKUP_GATHER_SECONDS for those right behind it, and their owners' devices are read together
    (one query per change was a third of the change path's database commands at 200 changes/s)."""
    api = await api_factory(**FAST_RETRIES)
    store = await api.store()
    owners = [await subscribed(api, push_service, f"g{n}") for n in range(4)]
    orders = [await Order.get(ObjectId((await api.place_order(customer, store))["id"])) for customer, _ in owners]
    await api.runtime.push.drain()
    reads = device_reads(monkeypatch)
    for order in orders:
        order.order_status = OrderStatus.ACCEPTED
        api.runtime.push.order_changed(order)
        await asyncio.sleep(LOOKUP_GATHER_SECONDS / 10)  # each change's request, one after another
    await api.runtime.push.drain()
    assert len(reads) == 1 and sorted(reads[0]["user_id"]["$in"]) == sorted(order.user_id for order in orders)
    assert [push_service.moments(f"g{n}") for n in range(4)] == [["accepted"]] * 4


def store_name(order: dict) -> str:
    return order["store"]["name"]


async def test_a_410_deletes_the_subscription_and_nothing_more_is_sent_to_it(api_factory, push_service):
    api = await api_factory(**FAST_RETRIES)
    customer, device = await subscribed(api, push_service)
    push_service.answers["phone"] = [410]
    store = await api.store()
    order = await api.place_order(customer, store)
    before = metric_value(metrics_text(), "orderpulse_push_subscriptions_total", change="expired")
    await api.advance(store, order["id"], "paid")
    await until(async_not(lambda: PushSubscription.find_one({"endpoint": device.endpoint})),
                message="the subscription to be deleted")
    await api.runtime.push.drain()
    assert metric_value(metrics_text(), "orderpulse_push_subscriptions_total", change="expired") == before + 1
    await api.advance(store, order["id"], "processing", "ready")
    await api.runtime.push.drain()
    assert push_service.hits["phone"] == 1 and push_service.received.get("phone") is None


async def test_a_busy_push_service_is_retried_with_backoff_and_a_dead_one_given_up(api_factory, push_service):
    api = await api_factory(**FAST_RETRIES)
    customer, _ = await subscribed(api, push_service, "busy")
    push_service.answers["busy"] = [503, 429]  # then 201
    store = await api.store()
    order = await api.place_order(customer, store)
    await api.advance(store, order["id"], "paid")
    await until(lambda: push_service.moments("busy") == ["accepted"], message="the retried push")
    assert push_service.hits["busy"] == 3

    # A device whose push service is down: every attempt fails to connect, then it is given up.
    other, dead = await subscribed(api, push_service, "dead")
    dead.endpoint = f"http://127.0.0.1:{closed_port()}/push/dead"
    await PushSubscription.find_one({"user_id": other.id}).set({"endpoint": dead.endpoint})
    given_up = metric_value(metrics_text(), "orderpulse_push_notifications_total", moment="accepted", result="failed")
    unreachable = metric_value(metrics_text(), "orderpulse_push_retries_total", status="unreachable")
    order = await api.place_order(other, store)
    await api.advance(store, order["id"], "paid")
    await until(lambda: PushDelivery.find_one({"order_id": order["id"], "status": "failed"}),
                message="the push to be given up")
    assert metric_value(metrics_text(), "orderpulse_push_notifications_total",
                        moment="accepted", result="failed") == given_up + 1
    # Three attempts: two failures are followed by a retry, the third ends it.
    assert metric_value(metrics_text(), "orderpulse_push_retries_total", status="unreachable") == unreachable + 3
    assert (await PushDelivery.find_one({"order_id": order["id"]})).attempts == 3


async def test_a_push_service_that_hangs_delays_no_api_answer(api_factory, push_service):
    # The push would wait 300 s: only a send off the request's path lets these answers arrive.
    api = await api_factory(**{**FAST_RETRIES, "push_timeout_seconds": 300, "push_max_attempts": 1})
    customer, _ = await subscribed(api, push_service, "hung")
    push_service.answers["hung"] = ["hang", "hang"]
    store = await api.store()
    order = await api.place_order(customer, store)
    paid = asyncio.create_task(api.advance(store, order["id"], "paid"))
    await until(lambda: push_service.hits.get("hung") == 1, message="the push to hang")
    await until(paid.done, message="the payment's answer while its push hangs")
    ready = asyncio.create_task(api.advance(store, order["id"], "processing", "ready"))
    await until(ready.done, message="the next changes' answers")
    assert (await api.get(f"/api/orders/{order['id']}", customer)).status_code == 200
    await until(lambda: push_service.hits.get("hung") == 2, message="the second push to hang")
    assert push_service.received.get("hung") is None  # both still held by the push service


async def test_subscribing_checks_the_body_and_the_push_service(api_factory, push_service):
    api = await api_factory(**FAST_RETRIES)
    customer = await api.customer()
    good = push_service.device("phone").subscription()

    assert (await api.post("/api/push/subscriptions", json=good)).status_code == 401
    cases = [
        ({**good, "keys": {**good["keys"], "p256dh": "abc"}},
         "keys.p256dh must be a base64url uncompressed P-256 public key (65 bytes)."),
        ({**good, "keys": {**good["keys"], "auth": b64url(b"x" * 15)}}, "keys.auth must be a base64url 16-byte auth secret."),
        ({"endpoint": good["endpoint"]}, "keys is required."),
        ({**good, "endpoint": "https://push.attacker.example/x"},
         "endpoint must be the https address of a known push service."),
        ({**good, "endpoint": "http://10.0.0.5/internal"}, "endpoint must be the https address of a known push service."),
    ]
    for body, message in cases:
        response = await api.post("/api/push/subscriptions", customer, json=body)
        assert (response.status_code, response.json()["message"]) == (400, message), body
    assert await PushSubscription.find({"user_id": customer.id}).count() == 0

    assert (await api.post("/api/push/subscriptions", customer, json=good)).status_code == 201
    again = await api.post("/api/push/subscriptions", customer, json=good)  # the same browser again
    assert again.status_code == 201
    assert await PushSubscription.find({"endpoint": good["endpoint"]}).count() == 1

    # Someone else cannot remove it; its owner can, once.
    stranger = await api.customer()
    gone = await api.request("DELETE", "/api/push/subscriptions", stranger, json={"endpoint": good["endpoint"]})
    assert (gone.status_code, gone.json()["message"]) == (404, "Push subscription not found.")
    removed = await api.request("DELETE", "/api/push/subscriptions", customer, json={"endpoint": good["endpoint"]})
    assert removed.status_code == 200
    assert (await api.request("DELETE", "/api/push/subscriptions", customer,
                              json={"endpoint": good["endpoint"]})).status_code == 404


def test_only_listed_push_services_over_https_are_sent_to():
    policy = EndpointPolicy("fcm.googleapis.com,*.push.services.mozilla.com,127.0.0.1")
    assert policy.allows("https://fcm.googleapis.com/fcm/send/abc")
    assert policy.allows("https://updates.push.services.mozilla.com/wpush/v2/x")
    assert policy.allows("http://127.0.0.1:9000/push/x")  # a listed loopback host: a test's push service
    assert not policy.allows("http://fcm.googleapis.com/fcm/send/abc")  # not https
    assert not policy.allows("https://push.services.mozilla.com.evil.example/x")
    assert not policy.allows("https://user:pw@fcm.googleapis.com/x")
    assert not policy.allows("http://localhost:9000/x")  # loopback, but not listed
    assert not policy.allows("not a url")


def test_moments_and_words_without_a_database():
    assert [moment_of(status) for status in ("placed", "accepted", "processing", "ready", "picked_up", "cancelled")] \
        == [None, Moment.ACCEPTED, None, Moment.READY, None, Moment.CANCELLED]
    now = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)
    assert reminder_due(now + timedelta(minutes=4), now, 5)
    assert not reminder_due(now + timedelta(minutes=6), now, 5)
    assert not reminder_due(now - timedelta(seconds=1), now, 5)  # already a no-show
    assert not reminder_due(None, now, 5)
    reminder = notification(Moment.PICKUP_REMINDER, order_id="o1", order_number="ORD-1", store_name="Cafe",
                            ready_expires_at=now + timedelta(seconds=150), now=now)
    assert reminder.body == "Pick it up at Cafe within 3 min, or it will be cancelled as a no-show."
    for reason, body in (("payment_timeout", "The payment wasn't confirmed in time, so Cafe cancelled it."),
                         ("no_show_timeout", "It wasn't picked up in time, so Cafe cancelled it."),
                         (None, "Cafe cancelled it.")):
        assert notification(Moment.CANCELLED, order_id="o1", order_number="ORD-1", store_name="Cafe",
                            cancellation_reason=reason).body == body


def test_the_vapid_key_is_kept_in_development_and_required_in_production(tmp_path):
    first, notice = resolve_vapid_key(Settings(_env_file=None, data_dir=tmp_path, orderpulse_env="development"))
    assert notice is not None and "generated" in notice
    assert oct((tmp_path / "vapid-private-key.pem").stat().st_mode & 0o777) == "0o600"
    second, notice = resolve_vapid_key(Settings(_env_file=None, data_dir=tmp_path, orderpulse_env="development"))
    assert notice is not None and "using the VAPID key kept" in notice
    assert second.vapid_private_key == first.vapid_private_key
    with pytest.raises(ConfigurationError, match="VAPID_PRIVATE_KEY must be set"):
        resolve_vapid_key(Settings(_env_file=None, data_dir=tmp_path / "p", orderpulse_env="production"))


def test_a_bad_vapid_key_stops_the_server_with_one_line(tmp_path, mongo):
    env = {**os.environ, "MONGODB_URL": mongo.url, "JWT_SECRET": TEST_JWT_SECRET, "DATA_DIR": str(tmp_path),
           "VAPID_PRIVATE_KEY": "not a key", "ORDERPULSE_ENV": "test", "PORT": str(free_loopback_port())}
    result = subprocess.run([sys.executable, "-m", "server", "serve"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].endswith(
        "VAPID_PRIVATE_KEY is not a P-256 private key in PEM form."), result.stderr
    assert "Traceback" not in result.stderr


async def test_two_processes_send_the_pickup_reminder_once(mongo, redis_server, tmp_path, push_service):
    database = f"t_push_{uuid.uuid4().hex[:8]}"
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    env = {"MONGODB_URL": mongo.url, "MONGODB_DATABASE": database, "REDIS_URL": redis_server.url,
           "VAPID_PRIVATE_KEY": key, "PUSH_SERVICE_HOSTS": "127.0.0.1", "PUSH_REMINDER_CHECK_SECONDS": "0.1",
           # Ready for 12 s; reminded in its last 11.4 s, so at once and by both processes.
           "READY_NO_SHOW_TIMEOUT_MINUTES": "0.2", "PUSH_REMINDER_MINUTES": "0.19"}
    servers = [ServerProcess(env, tmp_path / f"s{i}").start() for i in range(2)]
    try:
        async with httpx.AsyncClient(base_url=servers[0].url, timeout=30) as client:
            api = Api(client)
            create_admin(env, email="push-admin@campus.test", password=PASSWORD, name="Push Admin")
            admin = await api.login("push-admin@campus.test")
            customer, _ = await subscribed(api, push_service)
            store = await api.store(admin)
            order = await api.place_order(customer, store)
            await api.advance(store, order["id"], "paid", "processing", "ready")
            await until(lambda: "pickup_reminder" in push_service.moments("phone"), message="the reminder", timeout=10)

        def both_tried() -> bool:
            counts = [metric_value(httpx.get(f"{s.url}/metrics").text, "orderpulse_push_notifications_total",
                                   moment="pickup_reminder") for s in servers]
            return all(count >= 1 for count in counts)

        until_sync(both_tried, 10, message="both processes to try the reminder")
        assert push_service.moments("phone") == ["accepted", "ready", "pickup_reminder"]
        reminder = push_service.received["phone"][2]
        assert reminder["title"] == f"Order {order['orderNumber']} is waiting for you"
        assert push_service.hits["phone"] == 3 and push_service.refused == []
    finally:
        for server in servers:
            server.stop()
        drop_database(mongo.url, database)


def metrics_text() -> str:
    """This process's metrics (the in-process app's), as /metrics serves them."""
    return generate_latest().decode()


def async_not(condition):
    async def negated():
        return not await condition()
    return negated


def closed_port() -> int:
    return free_loopback_port()


async def test_the_notifier_stops_at_once_even_when_a_round_swallows_the_cancellation(api, monkeypatch):
    """pymongo 4.20 can swallow a cancellation that lands inside a query: about one test teardown in
    three waited out the runtime's 2 s bound for the notifier, its loop left running. A round that
    swallows it, as the driver did, must not keep the loop alive."""
    push = api.runtime.push
    inside = asyncio.Event()

    async def round_that_swallows_the_cancellation() -> int:
        inside.set()
        try:
            await asyncio.get_running_loop().create_future()  # a query that never answers
        except asyncio.CancelledError:
            pass
        return 0

    await push.stop()
    monkeypatch.setattr(push, "remind_once", round_that_swallows_the_cancellation)
    push.start()
    reminders = push._reminders
    await inside.wait()
    stopping = asyncio.ensure_future(push.stop())
    done, _ = await asyncio.wait({stopping}, timeout=PART_STOP_SECONDS)
    assert done and reminders.done()
