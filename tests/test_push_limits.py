"""Web Push under attack (issue 25, findings 2, 5 and 9): a customer's devices are capped, one
change cannot fan out past PUSH_MAX_PENDING, the push service's answers cannot steer the server to
another address, and a browser key off the P-256 curve is refused. The push service is the real
local one of tests/test_push.py."""

from __future__ import annotations

import asyncio
import ipaddress
import logging

import pytest
from aiohttp import web

from server.models import PushDelivery, PushSubscription
from server.services.outbound import AddressPolicy, GuardedClient, OutboundRefused
from tests.test_push import FAST_RETRIES, PushService, b64url, metrics_text, push_service, subscribed  # noqa: F401
from tests.support import metric_value, until

# 0x04, then the point (0, 1): y² = 1 is not x³ - 3x + b on P-256.
OFF_CURVE = b64url(b"\x04" + bytes(32) + bytes(31) + b"\x01")


class Target:
    """A loopback server a redirect or a rebound name would reach: it records every request."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> Target:
        async def record(request: web.Request) -> web.Response:
            self.requests.append(f"{request.method} {request.path}")
            return web.Response(status=201)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", record)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def target():
    server = await Target().start()
    yield server
    await server.stop()


async def test_an_account_keeps_at_most_ten_devices_the_least_recently_registered_replaced(api_factory, push_service):
    api = await api_factory(**FAST_RETRIES)
    replaced = metric_value(metrics_text(), "orderpulse_push_subscriptions_total", change="replaced")
    customer, first = await subscribed(api, push_service, "d0")
    devices = [first] + [push_service.device(f"d{n}") for n in range(1, 200)]
    for device in devices[1:]:  # the attack: 200 self-made subscriptions, each answered 201
        response = await api.post("/api/push/subscriptions", customer, json=device.subscription())
        assert response.status_code == 201, response.text
    kept = {s.endpoint for s in await PushSubscription.find({"user_id": customer.id}).to_list()}
    assert kept == {device.endpoint for device in devices[-10:]}

    # The same browser again is still a 201; it becomes the most recent, so the next new device
    # replaces another.
    again = await api.post("/api/push/subscriptions", customer, json=devices[-10].subscription())
    assert again.status_code == 201
    newest = push_service.device("newest")
    assert (await api.post("/api/push/subscriptions", customer, json=newest.subscription())).status_code == 201
    kept = {s.endpoint for s in await PushSubscription.find({"user_id": customer.id}).to_list()}
    assert kept == {device.endpoint for device in [devices[-10], *devices[-8:], newest]}
    assert metric_value(metrics_text(), "orderpulse_push_subscriptions_total", change="replaced") == replaced + 191


async def test_concurrent_registrations_of_one_account_end_at_the_cap(api_factory, push_service):
    api = await api_factory(**{**FAST_RETRIES, "push_max_subscriptions_per_account": 5})
    customer, _ = await subscribed(api, push_service, "first")
    replaced = metric_value(metrics_text(), "orderpulse_push_subscriptions_total", change="replaced")
    devices = [push_service.device(f"c{n}") for n in range(60)]
    answers = await asyncio.gather(*(api.post("/api/push/subscriptions", customer, json=device.subscription())
                                     for device in devices))
    assert {answer.status_code for answer in answers} == {201}
    assert await PushSubscription.find({"user_id": customer.id}).count() == 5
    assert metric_value(metrics_text(), "orderpulse_push_subscriptions_total", change="replaced") == replaced + 56


async def test_pushes_in_flight_stay_within_push_max_pending_across_devices_and_changes(api_factory, push_service):
    api = await api_factory(**{**FAST_RETRIES, "push_max_pending": 4, "push_max_subscriptions_per_account": 12,
                               "push_max_attempts": 1, "push_timeout_seconds": 30})
    customer, _ = await subscribed(api, push_service, "h0")
    for n in range(1, 12):
        device = push_service.device(f"h{n}")
        assert (await api.post("/api/push/subscriptions", customer, json=device.subscription())).status_code == 201
    for n in range(12):
        push_service.answers[f"h{n}"] = ["hang", "hang"]  # one for each order's push
    store = await api.store()
    orders = [await api.place_order(customer, store) for _ in range(2)]
    dropped_before = metric_value(metrics_text(), "orderpulse_push_notifications_total", result="dropped")

    await asyncio.gather(*(api.advance(store, order["id"], "paid") for order in orders))  # 24 pushes wanted
    await until(lambda: sum(push_service.hits.values()) >= 4, message="pushes held by the push service")

    def dropped() -> float:
        return metric_value(metrics_text(), "orderpulse_push_notifications_total", result="dropped") - dropped_before

    await until(lambda: dropped() or sum(push_service.hits.values()) == 24,
                message="the pushes past the bound to be dropped and counted")
    push_service.released.set()
    await api.runtime.push.drain()
    assert push_service.most_in_flight == 4
    assert sum(push_service.hits.values()) == 4 and dropped() >= 1


async def test_a_redirect_from_a_listed_push_service_is_not_followed(api_factory, push_service, target, caplog):
    api = await api_factory(**FAST_RETRIES)
    customer, device = await subscribed(api, push_service, "moved")
    push_service.redirects["moved"] = f"{target.url}/stolen"  # loopback, and 127.0.0.1 is even listed
    store = await api.store()
    order = await api.place_order(customer, store)
    with caplog.at_level(logging.WARNING, logger="orderpulse.push"):
        await api.advance(store, order["id"], "paid")
        claim = await until(lambda: PushDelivery.find_one({"order_id": order["id"], "status": {"$ne": "sending"}}),
                            message="the redirected push to end")
    assert push_service.hits["moved"] == 1 and target.requests == []
    assert claim.status == "failed"
    warnings = [r.getMessage() for r in caplog.records if r.name == "orderpulse.push"]
    assert warnings == ["push service 127.0.0.1 answered a redirect (307); not followed"]
    assert device.endpoint.rsplit("/", 1)[1] not in warnings[0]


async def test_a_push_host_that_resolves_to_loopback_is_refused_unless_listed_by_name(api_factory, push_service):
    # `local*` admits the endpoint's name, but a wildcard never reaches a private address.
    api = await api_factory(**{**FAST_RETRIES, "push_service_hosts": "127.0.0.1,local*"})
    customer, device = await subscribed(api, push_service, "rebound")
    listed = device.endpoint
    device.endpoint = listed.replace("127.0.0.1", "localhost")
    moved = await api.post("/api/push/subscriptions", customer, json=device.subscription())
    assert moved.status_code == 201, moved.text
    removed = await api.request("DELETE", "/api/push/subscriptions", customer, json={"endpoint": listed})
    assert removed.status_code == 200
    store = await api.store()
    order = await api.place_order(customer, store)
    await api.advance(store, order["id"], "paid")
    claim = await until(lambda: PushDelivery.find_one({"order_id": order["id"], "status": {"$ne": "sending"}}),
                        message="the push to end")
    assert push_service.hits == {}
    assert (claim.status, claim.attempts) == ("failed", 1)  # refused at once, not retried


async def test_the_guarded_client_connects_only_to_checked_addresses(target):
    client = GuardedClient(AddressPolicy.from_patterns("127.0.0.1,*.example.com"))
    try:
        port = target.url.rsplit(":", 1)[1]
        for url in (f"http://localhost:{port}/a", f"http://[::ffff:127.0.0.1]:{port}/b", "http://169.254.169.254/c"):
            with pytest.raises(OutboundRefused):
                await client.post(url, data=b"secret")
        assert target.requests == []
        answer = await client.post(f"{target.url}/listed", data=b"ok")  # listed by its exact name
        assert answer.status == 201 and target.requests == ["POST /listed"]
    finally:
        await client.close()

    policy = AddressPolicy.from_patterns("metadata.internal,10.0.0.5:8443,*.corp.example")
    address = ipaddress.ip_address
    assert policy.allows("push.example.org", address("142.250.1.1"))
    assert policy.allows("10.0.0.5", address("10.0.0.5"))
    assert not policy.allows("x.corp.example", address("10.1.2.3"))  # a wildcard never reaches private
    for never in ("169.254.169.254", "fd00:ec2::254", "224.0.0.1", "0.0.0.0", "::"):
        assert not policy.allows("metadata.internal", address(never)), never
    for private in ("127.0.0.1", "::1", "10.1.1.1", "172.16.0.1", "192.168.1.1", "169.254.1.1", "fe80::1",
                    "fc00::1", "100.64.0.1", "::ffff:10.0.0.1", "64:ff9b::a00:1", "2002:7f00:1::1"):
        assert not policy.allows("push.example.org", address(private)), private


async def test_an_off_curve_browser_key_is_a_400_and_changes_nothing(api_factory, push_service):
    api = await api_factory(**FAST_RETRIES)
    customer, device = await subscribed(api, push_service)
    stored = await PushSubscription.find_one({"endpoint": device.endpoint})
    bad = device.subscription()
    bad["keys"]["p256dh"] = OFF_CURVE
    for body in (bad, {**bad, "endpoint": f"{push_service.url}/push/other"}):
        response = await api.post("/api/push/subscriptions", customer, json=body)
        assert (response.status_code, response.json()["message"]) == (
            400, "keys.p256dh must be a point on the P-256 curve (a browser's push key)."), response.text
    assert await PushSubscription.find({"user_id": customer.id}).count() == 1
    assert (await PushSubscription.find_one({"endpoint": device.endpoint})).p256dh == stored.p256dh


async def test_a_stored_off_curve_key_fails_its_push_once_without_a_traceback(api_factory, push_service, caplog):
    api = await api_factory(**FAST_RETRIES)
    customer, device = await subscribed(api, push_service)
    # Stored before keys were checked on the curve.
    await PushSubscription.find_one({"endpoint": device.endpoint}).set({"p256dh": OFF_CURVE})
    store = await api.store()
    order = await api.place_order(customer, store)
    with caplog.at_level(logging.WARNING, logger="orderpulse.push"):
        await api.advance(store, order["id"], "paid")
        claim = await until(lambda: PushDelivery.find_one({"order_id": order["id"], "status": {"$ne": "sending"}}),
                            message="the push's claim to be marked")
        await api.runtime.push.drain()
    assert claim.status == "invalid"
    assert await PushSubscription.find_one({"endpoint": device.endpoint}) is None  # no push can reach it
    records = [r for r in caplog.records if r.name == "orderpulse.push"]
    assert [r.exc_info for r in records] == [None] and "Traceback" not in caplog.text
    assert push_service.hits == {}
