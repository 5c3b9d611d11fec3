"""Partner webhooks (README, "Webhooks"; PARTNER.md, "Webhooks"): every event delivered, signed, in
version order, retried, and never to an address the server may not reach.

The receiver is a real server in its own process (tests/webhook_receiver.py) that verifies each
request with the `standardwebhooks` library, as a partner would. In-process apps run on the system
clock here: the receiver checks each `webhook-timestamp` against its own clock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from statistics import median
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from aiohttp.abc import AbstractResolver, ResolveResult
from pymongo import MongoClient

from server.config import Settings
from server.domain.clock import utcnow
from server.domain.errors import Invalid
from server.embedded_mongo import free_loopback_port
from server.models import ClientApp, WebhookDelivery, WebhookEndpoint
from server.models.webhook import SigningSecret
from server.services import outbound, webhooks
from server.services.outbound import AddressPolicy, GuardedClient, OutboundRefused
from tests.harness import REPO, TEST_JWT_SECRET, ServerProcess, create_admin
from tests.support import PASSWORD, Actor, Api, StoreSetup, metric_value, until, until_sync

WEBHOOK_KEYS = ("type", "version", "previousStatus")


class Receiver:
    """tests/webhook_receiver.py in its own process, on one port across restarts."""

    def __init__(self) -> None:
        self.port = free_loopback_port()
        self.process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Receiver:
        self.process = subprocess.Popen([sys.executable, "-m", "tests.webhook_receiver", str(self.port)], cwd=REPO,
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "ready"
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def configure(self, path: str, **config) -> None:
        httpx.put(f"{self.url}/_control{path}", json=config, timeout=5).raise_for_status()

    def received(self, path: str | None = None) -> list[dict]:
        got = httpx.get(f"{self.url}/_control/received", timeout=5).json()
        return [request for request in got if path is None or request["path"] == path]

    async def areceived(self, path: str | None = None) -> list[dict]:
        return await asyncio.to_thread(self.received, path)


@pytest.fixture(scope="module")
def receiver():
    started = Receiver().start()
    yield started
    started.stop()


def unique_path() -> str:
    return f"/hook/{uuid.uuid4().hex[:10]}"


def body_of(request: dict) -> dict:
    return json.loads(request["body"])


def without_event_keys(body: dict) -> dict:
    return {key: value for key, value in body.items() if key not in WEBHOOK_KEYS}


# --- in-process: one app on the system clock ----------------------------------------------------

@dataclass
class Shop:
    api: Api
    store: StoreSetup
    customer: Actor
    settings: Settings

    @property
    def runtime(self):
        return self.api.runtime

    async def client(self) -> str:
        client = ClientApp(client_id=f"opc_test_{uuid.uuid4().hex}", name="Campus SuperApp", created_at=utcnow())
        await client.insert()
        return client.client_id

    async def endpoint(self, client_id: str, url: str, events: str | None = None) -> tuple[str, str]:
        endpoint, secret = await webhooks.add_endpoint(self.settings, client_id, url, events, utcnow())
        return endpoint.endpoint_id, secret

    def headers(self, client_id: str) -> dict[str, str]:
        return {"X-Client-ID": client_id, "Authorization": f"Bearer {self.customer.access_token}"}

    async def order(self, client_id: str) -> dict:
        checkout = await self.api.checkout(self.customer, self.store)
        response = await self.api.client.post("/v1/order", json={"checkoutToken": checkout.json()["data"]["checkoutToken"]},
                                              headers=self.headers(client_id))
        assert response.status_code == 201, response.text
        return response.json()

    async def get(self, client_id: str, order_id: str) -> dict:
        response = await self.api.client.get(f"/v1/order/{order_id}", headers=self.headers(client_id))
        assert response.status_code == 200, response.text
        return response.json()


async def shop_of(api_factory, **overrides) -> Shop:
    settings = {"webhook_allowed_hosts": "127.0.0.1", "webhook_retry_seconds": "0.2,0.2,0.2",
                "webhook_timeout_seconds": 2, **overrides}
    api = await api_factory(**settings)
    store, customer = await asyncio.gather(api.store(), api.customer())
    return Shop(api, store, customer, api.runtime.settings)


async def delivered(receiver: Receiver, path: str, count: int, timeout: float = 15) -> list[dict]:
    """The first `count` successful requests to `path`, once there are that many."""
    async def got():
        answered = [r for r in await receiver.areceived(path) if 200 <= r["status"] < 300]
        return answered if len(answered) >= count else None
    return await until(got, timeout=timeout, interval=0.05, message=f"{count} deliveries to {path}")


async def test_a_full_lifecycle_delivers_every_version_in_order_signed_with_bodies_equal_to_get(
        api_factory, receiver):
    shop = await shop_of(api_factory, unpaid_order_timeout_minutes=0.03)
    client_id = await shop.client()
    path = unique_path()
    _, secret = await shop.endpoint(client_id, receiver.url + path)
    receiver.configure(path, secrets=[secret])

    order = await shop.order(client_id)
    order_id = order["orderId"]
    seen = {1: await shop.get(client_id, order_id)}
    assert seen[1] == order
    for version, step in enumerate(("paid", "processing", "ready"), start=2):
        await shop.api.advance(shop.store, order_id, step)
        seen[version] = await shop.get(client_id, order_id)
    otp = await shop.api.otp_of(shop.customer, order_id)
    response = await shop.api.post(f"/api/orders/{order_id}/verify-otp", shop.store.staff, json={"otp": otp})
    assert response.status_code == 200, response.text
    seen[5] = await shop.get(client_id, order_id)
    # A second order the unpaid timeout cancels: the deadline's bulk cancellation delivers too.
    expiring = (await shop.order(client_id))["orderId"]
    expired_at_v1 = await shop.get(client_id, expiring)
    await until(lambda: _status_is(shop, client_id, expiring, "EXPIRED"), timeout=10, message="EXPIRED")
    expired = await shop.get(client_id, expiring)

    requests = await delivered(receiver, path, 7)
    assert all(request["verified"] == [True] for request in requests)
    assert len({request["headers"]["webhook-id"] for request in requests}) == 7
    bodies = [body_of(request) for request in requests]
    lifecycle = [body for body in bodies if body["orderId"] == order_id]
    assert [body["version"] for body in lifecycle] == [1, 2, 3, 4, 5]
    assert [body["type"] for body in lifecycle] == ["order.updated", "order.completed", "order.updated",
                                                   "order.updated", "order.updated"]
    assert [body["previousStatus"] for body in lifecycle] == [None, "STARTED", "COMPLETED", "COMPLETED", "COMPLETED"]
    for body in lifecycle:
        assert without_event_keys(body) == seen[body["version"]]
        assert list(body)[:1] == ["type"]
    deadline = [body for body in bodies if body["orderId"] == expiring]
    assert [(b["version"], b["type"], b["previousStatus"]) for b in deadline] == [
        (1, "order.updated", None), (2, "order.expired", "STARTED")]
    assert without_event_keys(deadline[0]) == expired_at_v1
    assert without_event_keys(deadline[1]) == expired
    # Orders made through /api are no partner's: no event.
    await shop.api.place_order(shop.customer, shop.store)
    assert await WebhookDelivery.find({"client_id": {"$ne": client_id}}).count() == 0


async def _status_is(shop: Shop, client_id: str, order_id: str, status: str) -> bool:
    return (await shop.get(client_id, order_id))["status"] == status


async def attempts_of(event_id: str) -> list:
    delivery = await WebhookDelivery.find_one({"event_id": event_id})
    return delivery.attempts if delivery else []


async def test_500_twice_then_200_is_delivered_on_the_third_attempt_with_the_same_webhook_id(
        api_factory, receiver):
    shop = await shop_of(api_factory)
    client_id = await shop.client()
    path = unique_path()
    endpoint_id, secret = await shop.endpoint(client_id, receiver.url + path)
    receiver.configure(path, secrets=[secret], statuses=[500, 500])
    counted = ("orderpulse_webhook_attempts_total", "orderpulse_webhook_retries_total",
               "orderpulse_webhook_delivery_seconds_count")
    text = await _metrics(shop)
    before = {name: metric_value(text, name) for name in counted}
    succeeded = metric_value(text, "orderpulse_webhook_deliveries_total", result="succeeded")

    await shop.order(client_id)

    await delivered(receiver, path, 1)
    requests = await receiver.areceived(path)
    assert [r["status"] for r in requests] == [500, 500, 200]
    assert len({r["headers"]["webhook-id"] for r in requests}) == 1
    assert all(r["verified"] == [True] for r in requests)
    delivery = await until(lambda: _finished(requests[0]["headers"]["webhook-id"]), message="the delivery's record")
    assert delivery.status == "succeeded"
    assert [a.status_code for a in delivery.attempts] == [500, 500, 200]
    assert delivery.attempts[0].error == "answered 500"
    async def counted_success():  # the counter moves just after the record is written
        text = await _metrics(shop)
        return text if metric_value(text, "orderpulse_webhook_deliveries_total", result="succeeded") > succeeded else None
    text = await until(counted_success, message="the success counted")
    assert {name: metric_value(text, name) - before[name] for name in counted} == {
        "orderpulse_webhook_attempts_total": 3, "orderpulse_webhook_retries_total": 2,
        "orderpulse_webhook_delivery_seconds_count": 3}
    assert metric_value(text, "orderpulse_webhook_deliveries_total", result="succeeded") == succeeded + 1
    log = await webhooks.deliveries(endpoint_id)
    assert [d.status for d in log] == ["succeeded"]


async def _finished(event_id: str):
    delivery = await WebhookDelivery.find_one({"event_id": event_id})
    return delivery if delivery is not None and delivery.status in ("succeeded", "failed") else None


async def _metrics(shop: Shop) -> str:
    return (await shop.api.client.get("/metrics")).text


async def test_a_receiver_that_is_down_gets_the_event_once_it_is_back_and_410_disables_the_endpoint(
        api_factory, caplog):
    receiver = Receiver()  # not started yet: the port refuses connections
    shop = await shop_of(api_factory, webhook_retry_seconds=",".join(["0.2"] * 30))
    client_id = await shop.client()
    path = unique_path()
    endpoint_id, secret = await shop.endpoint(client_id, receiver.url + path)
    order_id = (await shop.order(client_id))["orderId"]
    delivery = await until(lambda: _with_attempts(order_id, 2), message="two failed attempts while it is down")
    assert delivery.status in ("pending", "delivering")
    assert delivery.attempts[0].status_code is None and "connection failed" in delivery.attempts[0].error
    receiver.start()
    try:
        receiver.configure(path, secrets=[secret])
        first = (await delivered(receiver, path, 1))[0]
        assert first["headers"]["webhook-id"] == delivery.event_id and first["verified"] == [True]
        assert body_of(first)["version"] == 1

        receiver.configure(path, secrets=[secret], statuses=[410])
        with caplog.at_level(logging.WARNING, logger="orderpulse.webhooks"):
            await shop.api.advance(shop.store, order_id, "paid")
            gone = await until(lambda: _disabled(endpoint_id), message="the endpoint disabled by 410")
        assert gone.disabled_reason.startswith("gone")
        warnings = [r.getMessage() for r in caplog.records if r.name == "orderpulse.webhooks"]
        assert len(warnings) == 1 and endpoint_id in warnings[0] and secret not in warnings[0]
        assert path not in warnings[0]  # the host only: a path may carry the partner's token
        assert [r["status"] for r in await receiver.areceived(path)] == [200, 410]
        assert metric_value(await _metrics(shop), "orderpulse_webhook_endpoints_disabled_total", reason="gone") >= 1
        # A disabled endpoint is sent nothing more; enabled again, its pending deliveries go out.
        await shop.api.advance(shop.store, order_id, "processing")
        await until(lambda: WebhookDelivery.find_one({"order_id": order_id, "version": 3}),
                    message="the next event's delivery")
        assert len(await receiver.areceived(path)) == 2
        await webhooks.enable_endpoint(endpoint_id)
        third = (await delivered(receiver, path, 2))[1]
        assert body_of(third)["version"] == 3
        # Replayed by event id: the same webhook-id again.
        replayed = await webhooks.replay(endpoint_id, utcnow(), event=first["headers"]["webhook-id"])
        assert replayed == 1
        again = (await delivered(receiver, path, 3))[2]
        assert again["headers"]["webhook-id"] == first["headers"]["webhook-id"]
    finally:
        receiver.stop()


async def _with_attempts(order_id: str, count: int):
    delivery = await WebhookDelivery.find_one({"order_id": order_id, "version": 1})
    return delivery if delivery is not None and len(delivery.attempts) >= count else None


async def _disabled(endpoint_id: str):
    endpoint = await WebhookEndpoint.find_one({"endpoint_id": endpoint_id})
    return endpoint if not endpoint.enabled else None


async def test_a_spent_retry_schedule_fails_the_delivery_and_disables_the_endpoint(api_factory, receiver, caplog):
    shop = await shop_of(api_factory, webhook_retry_seconds="0.1,0.1")
    client_id = await shop.client()
    path = unique_path()
    endpoint_id, secret = await shop.endpoint(client_id, receiver.url + path)
    receiver.configure(path, secrets=[secret], statuses=[500] * 10)
    with caplog.at_level(logging.WARNING, logger="orderpulse.webhooks"):
        await shop.order(client_id)
        endpoint = await until(lambda: _disabled(endpoint_id), message="the endpoint disabled")
    assert endpoint.disabled_reason.startswith("retries spent: 3 attempts failed")
    assert [r["status"] for r in await receiver.areceived(path)] == [500, 500, 500]
    (delivery,) = await webhooks.deliveries(endpoint_id)
    assert delivery.status == "failed" and len(delivery.attempts) == 3
    assert sum(1 for r in caplog.records if r.name == "orderpulse.webhooks") == 1
    text = await _metrics(shop)
    assert metric_value(text, "orderpulse_webhook_endpoints_disabled_total", reason="retries_spent") >= 1
    assert metric_value(text, "orderpulse_webhook_deliveries_total", result="failed") >= 1


async def test_rotation_signs_with_both_secrets_during_the_grace_and_only_the_new_one_after(api_factory, receiver):
    grace_hours = 1.5 / 3600  # a second and a half
    shop = await shop_of(api_factory, webhook_rotation_grace_hours=grace_hours)
    client_id = await shop.client()
    path = unique_path()
    endpoint_id, old = await shop.endpoint(client_id, receiver.url + path)
    _, new = await webhooks.rotate_secret(endpoint_id, timedelta(hours=grace_hours), utcnow())
    assert new != old and new.startswith("whsec_")
    receiver.configure(path, secrets=[old, new])
    order_id = (await shop.order(client_id))["orderId"]
    during = (await delivered(receiver, path, 1))[0]
    assert during["verified"] == [True, True]
    assert len(during["headers"]["webhook-signature"].split(" ")) == 2
    expires = (await WebhookEndpoint.find_one({"endpoint_id": endpoint_id})).secrets[1].expires_at
    await until(lambda: utcnow() > expires, timeout=5, message="the grace period to end")
    await shop.api.advance(shop.store, order_id, "paid")
    after = (await delivered(receiver, path, 2))[1]
    assert after["verified"] == [False, True]
    assert len(after["headers"]["webhook-signature"].split(" ")) == 1


async def test_an_orders_later_event_waits_while_an_earlier_one_is_retried_and_other_orders_go_first(
        api_factory, receiver):
    shop = await shop_of(api_factory, webhook_retry_seconds="60")
    client_id = await shop.client()
    path = unique_path()
    _, secret = await shop.endpoint(client_id, receiver.url + path)
    receiver.configure(path, secrets=[secret], statuses=[500])
    waiting = (await shop.order(client_id))["orderId"]
    await until(lambda: _attempted(receiver, path, waiting, 1, status=500), message="v1's failed attempt")
    await shop.api.advance(shop.store, waiting, "paid")  # v2, due at once, behind v1's retry a minute away
    other = (await shop.order(client_id))["orderId"]
    failed = await shop.api.patch(f"/api/orders/{other}/payment-status", shop.store.staff,
                                  json={"paymentStatus": "failed"})
    assert failed.status_code == 200, failed.text

    # The other order's two events, made after v2, arrive while v2 has not been attempted.
    await delivered(receiver, path, 2)
    assert (await WebhookDelivery.find_one({"order_id": waiting, "version": 2})).attempts == []
    # v1's retry comes due (as if its minute had passed): v1, then v2.
    await WebhookDelivery.get_pymongo_collection().update_one(
        {"order_id": waiting, "version": 1, "status": "pending"}, {"$set": {"next_attempt_at": utcnow()}})
    requests = await delivered(receiver, path, 4)
    arrivals = [(body_of(r)["orderId"], body_of(r)["version"], body_of(r)["type"], r["status"])
                for r in await receiver.areceived(path)]
    assert arrivals == [(waiting, 1, "order.updated", 500), (other, 1, "order.updated", 200),
                        (other, 2, "order.failed", 200), (waiting, 1, "order.updated", 200),
                        (waiting, 2, "order.completed", 200)]
    assert all(r["verified"] == [True] for r in requests)


async def test_an_attempt_whose_process_died_is_claimed_by_another_only_once_its_claim_lapses(
        api_factory, receiver):
    shop = await shop_of(api_factory, webhook_timeout_seconds=20)
    client_id = await shop.client()
    path = unique_path()
    _, secret = await shop.endpoint(client_id, receiver.url + path)
    receiver.configure(path, secrets=[secret], hang=30)
    order_id = (await shop.order(client_id))["orderId"]
    await until(lambda: _attempted(receiver, path, order_id, 1), message="the first attempt in flight")
    await shop.runtime.webhooks.stop()  # this process dies mid-attempt: its claim stays
    receiver.configure(path, secrets=[secret])
    other = webhooks.WebhookDispatcher(shop.settings)
    try:
        await other.dispatch_due()
        claimed = await WebhookDelivery.find_one({"order_id": order_id})
        assert (claimed.status, claimed.attempt_count, claimed.attempts) == ("delivering", 1, [])
        # The claim's time (the timeout and its margin) passes.
        await WebhookDelivery.get_pymongo_collection().update_one(
            {"_id": claimed.id}, {"$set": {"next_attempt_at": utcnow()}})
        await other.dispatch_due()
        done = await until(lambda: _finished(claimed.event_id), message="the attempt made again")
    finally:
        await other.stop()
    assert (done.status, done.attempt_count, [a.status_code for a in done.attempts]) == ("succeeded", 2, [200])
    requests = await receiver.areceived(path)
    assert [r["headers"]["webhook-id"] for r in requests] == [claimed.event_id] * 2
    assert all(r["verified"] == [True] for r in requests)


async def test_attempts_in_flight_are_bounded_per_process_and_per_endpoint(api_factory, receiver):
    shop = await shop_of(api_factory, webhook_timeout_seconds=30, webhook_max_in_flight=3,
                         webhook_max_in_flight_per_endpoint=2)
    paths, clients = (unique_path(), unique_path()), []
    for path in paths:
        clients.append(await shop.client())
        await shop.endpoint(clients[-1], receiver.url + path)
        first = await shop.order(clients[-1])
        # An endpoint that has answered at once may hold more than one slot.
        answered = await until(lambda: _finished_order(first["orderId"]), message="the first event answered")
        assert answered.status == "succeeded"
        receiver.configure(path, hang=30)  # answers only after the attempts are stopped
    # Three events for each, all due at once: their endpoints are off while they are made.
    endpoints = WebhookEndpoint.get_pymongo_collection()
    await endpoints.update_many({"client_id": {"$in": clients}}, {"$set": {"enabled": False}})
    for client_id in clients:
        for _ in range(3):
            await shop.order(client_id)
    await until(lambda: _count(WebhookDelivery.find({"status": "pending"}), 6), message="six deliveries made")
    await endpoints.update_many({"client_id": {"$in": clients}}, {"$set": {"enabled": True}})

    async def three_arrived():
        got = [r for path in paths for r in await receiver.areceived(path)]
        return got if len(got) >= 2 + 3 else None
    await until(three_arrived, timeout=20, message="three attempts at the hanging receivers")
    claimed = await WebhookDelivery.find({"status": "delivering"}).to_list()
    assert len(claimed) == 3  # of six due: the process's three slots
    assert max(sum(1 for d in claimed if d.endpoint_id == e) for e in {d.endpoint_id for d in claimed}) == 2
    assert await WebhookDelivery.find({"status": "pending", "attempt_count": 0}).count() == 3


async def _finished_order(order_id: str):
    delivery = await WebhookDelivery.find_one({"order_id": order_id})
    return delivery if delivery is not None and delivery.status in ("succeeded", "failed") else None


async def _count(query, at_least: int) -> bool:
    return await query.count() >= at_least


async def _each_attempted(order_id: str, endpoints: int) -> bool:
    return sum(1 for d in await WebhookDelivery.find({"order_id": order_id}).to_list() if d.attempts) == endpoints


async def test_more_hanging_endpoints_than_the_slots_hold_delay_no_endpoint_that_answers(api_factory, receiver):
    """Six endpoints hang on every event, more than the process's four slots hold, beside one that
    answers at once. Once they struggle they share one slot, so change → receipt on the healthy
    endpoint stays what it was while they answered too (a ratio of two runs in this test)."""
    shop = await shop_of(api_factory, webhook_timeout_seconds=5, webhook_retry_seconds="60",
                         webhook_max_in_flight=4, webhook_max_in_flight_per_endpoint=2)
    hanging_client, healthy_client = await shop.client(), await shop.client()
    hanging = [unique_path() for _ in range(6)]
    hanging_ids = [(await shop.endpoint(hanging_client, receiver.url + path))[0] for path in hanging]
    healthy = unique_path()
    await shop.endpoint(healthy_client, receiver.url + healthy)
    most_hanging_at_once = 0

    async def run(rounds: int = 6) -> float:
        nonlocal most_hanging_at_once
        receipts = []
        for _ in range(rounds):
            await shop.order(hanging_client)  # an event for each of the six
            sent = time.time()
            order_id = (await shop.order(healthy_client))["orderId"]

            async def arrived():
                got = [r for r in await receiver.areceived(healthy) if body_of(r)["orderId"] == order_id]
                return got[0]["arrived"] if got else None
            receipts.append(await until(arrived, timeout=30, message="the healthy endpoint's event") - sent)
            hanging_now = await WebhookDelivery.find({"endpoint_id": {"$in": hanging_ids},
                                                      "status": "delivering"}).count()
            most_hanging_at_once = max(most_hanging_at_once, hanging_now)
        return median(receipts)

    alone = await run()  # the six answer at once too
    for path in hanging:
        receiver.configure(path, hang=6)  # past the 5 s timeout: every attempt there times out
    # Each of the six shows it hangs on its next event (four at once, then the other two).
    probe = (await shop.order(hanging_client))["orderId"]
    await until(lambda: _each_attempted(probe, 6), timeout=60, message="every hanging endpoint's first timeout")
    answered_before = len([r for path in hanging for r in await receiver.areceived(path)])
    most_hanging_at_once = 0
    beside = await run()
    assert beside < 5 * alone, (alone, beside)
    attempted = len([r for path in hanging for r in await receiver.areceived(path)]) - answered_before
    assert attempted >= 1 and most_hanging_at_once == 1  # they were tried meanwhile, in their one shared slot
    # Their backlog (six events a round, one attempt per timeout) waited behind that slot, not before others.
    assert await WebhookDelivery.find({"endpoint_id": {"$in": hanging_ids}, "status": "pending"}).count() >= 6 * 6


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9/hook", "http://[::1]:9/hook", "http://[::ffff:127.0.0.1]/hook", "http://10.1.2.3/hook",
    "http://192.168.0.10/hook", "http://172.16.5.4/hook", "http://169.254.169.254/latest/meta-data/",
    "http://100.100.100.200/hook", "http://0.0.0.0/hook", "http://224.0.0.1/hook", "http://localhost:9/hook",
])
async def test_loopback_private_link_local_metadata_and_names_resolving_to_them_are_refused(make_settings, url):
    with pytest.raises(Invalid) as refused:
        await webhooks.check_url(url, make_settings(webhook_allowed_hosts=""))
    assert "WEBHOOK_ALLOWED_HOSTS" in refused.value.message


async def test_listed_hosts_are_allowed_except_metadata_and_production_needs_https(make_settings):
    listed = make_settings(webhook_allowed_hosts="127.0.0.1,localhost,169.254.169.254")
    assert await webhooks.check_url("http://127.0.0.1:9/hook", listed) == "http://127.0.0.1:9/hook"
    assert await webhooks.check_url("http://localhost:9/hook", listed) == "http://localhost:9/hook"
    with pytest.raises(Invalid):
        await webhooks.check_url("http://169.254.169.254/latest/meta-data/", listed)  # metadata: never
    for bad in ("ftp://127.0.0.1/x", "http:///x", "127.0.0.1/x", "http://[::1/x", "http://127.0.0.1:99999/x",
                "http://127.0.0.1/" + "x" * 2000):
        with pytest.raises(Invalid):
            await webhooks.check_url(bad, listed)
    production = make_settings(orderpulse_env="production", webhook_allowed_hosts="127.0.0.1")
    with pytest.raises(Invalid) as refused:
        await webhooks.check_url("http://127.0.0.1:9/hook", production)
    assert refused.value.message == "url must be https:// in production."
    assert await webhooks.check_url("https://127.0.0.1:9/hook", production) == "https://127.0.0.1:9/hook"


async def test_at_delivery_a_name_now_resolving_to_loopback_is_refused_and_redirects_are_not_followed(
        api_factory, receiver):
    """The address connected to is checked, not the one seen at registration (DNS rebinding): an
    endpoint whose name resolves to loopback now is refused before anything is sent."""
    shop = await shop_of(api_factory, webhook_retry_seconds="30")
    client_id = await shop.client()
    rebound, redirecting, target = unique_path(), unique_path(), unique_path()
    endpoint_id, _ = await shop.endpoint(client_id, receiver.url + rebound)
    # As if `localhost` had resolved to a public address at registration.
    await WebhookEndpoint.get_pymongo_collection().update_one(
        {"endpoint_id": endpoint_id}, {"$set": {"url": f"http://localhost:{receiver.port}{rebound}"}})
    redirect_id, _ = await shop.endpoint(client_id, receiver.url + redirecting)
    receiver.configure(redirecting, statuses=[302], location=receiver.url + target)
    order_id = (await shop.order(client_id))["orderId"]

    async def both_tried():
        log = await WebhookDelivery.find({"order_id": order_id}).to_list()
        return {d.endpoint_id: d for d in log} if len(log) == 2 and all(d.attempts for d in log) else None
    log = await until(both_tried, message="an attempt on each endpoint")
    assert log[endpoint_id].attempts[0].error.startswith("refused")
    assert log[endpoint_id].attempts[0].status_code is None
    assert log[redirect_id].attempts[0].status_code == 302
    assert log[redirect_id].attempts[0].error == "answered 302 (redirects are not followed)"
    assert await receiver.areceived(rebound) == [] and await receiver.areceived(target) == []
    assert len(await receiver.areceived(redirecting)) == 1


class RebindingDns(AbstractResolver):
    """A name server under an attacker's control: each lookup of any name answers the next address."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.asked = 0

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
                      ) -> list[ResolveResult]:
        address = self.answers[min(self.asked, len(self.answers) - 1)]
        self.asked += 1
        return [{"hostname": host, "host": address, "port": port, "family": socket.AF_INET, "proto": 0,
                 "flags": socket.AI_NUMERICHOST}]

    async def close(self) -> None:
        pass


@pytest.mark.parametrize("answers, reaches", [(("127.0.0.1", "169.254.169.254"), True),
                                              (("169.254.169.254", "127.0.0.1"), False)])
async def test_the_sender_connects_to_the_address_it_checked_never_to_a_later_answer(monkeypatch, receiver,
                                                                                    answers, reaches):
    """DNS rebinding between check and connect: the name is looked up once per connection, and that
    answer is both what is checked and what is connected to (a metadata address is refused even for
    a listed name). A client that checked one lookup and connected by another would reach the
    metadata address in the first case and the receiver in the second."""
    dns = RebindingDns(*answers)
    monkeypatch.setattr(outbound, "ThreadedResolver", lambda: dns)
    path = unique_path()
    client = GuardedClient(AddressPolicy(["partner.test"]))
    try:
        if reaches:
            response = await client.post(f"http://partner.test:{receiver.port}{path}", data=b"{}")
            assert response.status == 200
            response.release()
        else:
            with pytest.raises(OutboundRefused):
                await client.post(f"http://partner.test:{receiver.port}{path}", data=b"{}")
    finally:
        await client.close()
    assert dns.asked == 1
    assert len(await receiver.areceived(path)) == (1 if reaches else 0)


async def test_a_hanging_receiver_delays_no_other_endpoint_and_no_api_answer(api_factory, receiver):
    """Change → receipt on a healthy endpoint, and the API's answers, with and without another
    endpoint hanging for the whole timeout on every event: compared as a ratio, in this test."""
    shop = await shop_of(api_factory, webhook_timeout_seconds=5, webhook_retry_seconds="60")
    slow_client, fast_client = await shop.client(), await shop.client()
    slow, fast = unique_path(), unique_path()
    await shop.endpoint(slow_client, receiver.url + slow)
    await shop.endpoint(fast_client, receiver.url + fast)

    async def run(rounds: int = 6) -> tuple[float, float]:
        receipts, answers = [], []
        for _ in range(rounds):
            await shop.order(slow_client)
            sent = time.time()
            order_id = (await shop.order(fast_client))["orderId"]
            answers.append(time.time() - sent)

            async def arrived():
                got = [r for r in await receiver.areceived(fast) if body_of(r)["orderId"] == order_id]
                return got[0]["arrived"] if got else None
            receipts.append(await until(arrived, timeout=20, message="the healthy endpoint's event") - sent)
        return median(receipts), median(answers)

    receipt_alone, answer_alone = await run()
    answered_slow = len(await receiver.areceived(slow))
    receiver.configure(slow, hang=6)  # past the 5 s timeout: every attempt there times out
    receipt_beside, answer_beside = await run()
    hung = (await receiver.areceived(slow))[answered_slow:]
    assert hung  # the slow endpoint was attempted, and hung, during the second run
    assert receipt_beside < 5 * receipt_alone, (receipt_alone, receipt_beside)
    assert answer_beside < 5 * answer_alone, (answer_alone, answer_beside)


# --- real server processes: crashes, restarts, two processes -----------------------------------

def orderpulse(env: dict[str, str], *args: str) -> list[str]:
    """The `orderpulse` command line as an operator runs it; its output lines."""
    done = subprocess.run([sys.executable, "-m", "server", *args], check=False, cwd=REPO,
                          env={**os.environ, "JWT_SECRET": TEST_JWT_SECRET, **env},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@dataclass
class Deployment:
    env: dict[str, str]
    data_dir: Path
    servers: list[ServerProcess]
    http: httpx.AsyncClient
    api: Api
    store: StoreSetup
    customer: Actor
    client_id: str
    endpoint_id: str
    secret: str
    path: str

    def server(self, **env: str) -> ServerProcess:
        process = ServerProcess({**self.env, **env}, self.data_dir / f"server-{len(self.servers)}")
        self.servers.append(process)
        return process

    def headers(self) -> dict[str, str]:
        return {"X-Client-ID": self.client_id, "Authorization": f"Bearer {self.customer.access_token}"}

    async def checkout_token(self) -> str:
        return (await self.api.checkout(self.customer, self.store)).json()["data"]["checkoutToken"]

    async def order(self, through: ServerProcess) -> str:
        response = await self.http.post(f"{through.url}/v1/order", headers=self.headers(),
                                        json={"checkoutToken": await self.checkout_token()})
        assert response.status_code == 201, response.text
        return response.json()["orderId"]

    async def pay(self, through: ServerProcess, order_id: str) -> None:
        response = await self.http.patch(f"{through.url}/api/orders/{order_id}/payment-status",
                                         headers=self.store.staff.headers, json={"paymentStatus": "success"})
        assert response.status_code == 200, response.text


@pytest_asyncio.fixture
async def deployment(mongo, tmp_path, receiver):
    """A server process, an admin, a store, a customer, and a partner client with an endpoint on
    the receiver, both registered with the command line."""
    env = {"MONGODB_URL": mongo.url, "MONGODB_DATABASE": f"t_webhooks_{uuid.uuid4().hex[:8]}",
           "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1", "WEBHOOK_RETRY_SECONDS": "1,1,1,1,1,1,1,1,1,1",
           "WEBHOOK_TIMEOUT_SECONDS": "2"}
    path = unique_path()
    email = f"admin-{uuid.uuid4().hex[:8]}@campus.test"
    first = ServerProcess(env, tmp_path / "server-0")
    servers = [first]  # and those the test starts
    mongo_client = MongoClient(mongo.url)
    try:
        await asyncio.gather(asyncio.to_thread(first.start),
                             asyncio.to_thread(create_admin, env, email=email, password=PASSWORD, name="Ada Admin"))
        (client_id,) = await asyncio.to_thread(orderpulse, env, "client", "create", "--name", "Campus SuperApp")
        endpoint_id, secret = await asyncio.to_thread(
            orderpulse, env, "webhook", "add", "--client", client_id, "--url", receiver.url + path)
        receiver.configure(path, secrets=[secret])
        async with httpx.AsyncClient(base_url=first.url, timeout=30) as http:
            api = Api(http)
            store, customer = await asyncio.gather(api.store(await api.login(email)), api.customer())
            yield Deployment(env, tmp_path, servers, http, api, store, customer, client_id, endpoint_id, secret,
                             path)
    finally:
        for server in servers:
            server.kill()
        mongo_client.drop_database(env["MONGODB_DATABASE"])
        mongo_client.close()


def ids_by_event(requests: list[dict]) -> dict[tuple[str, int], set[str]]:
    ids: dict[tuple[str, int], set[str]] = defaultdict(set)
    for request in requests:
        body = body_of(request)
        ids[body["orderId"], body["version"]].add(request["headers"]["webhook-id"])
    return ids


async def test_killed_between_a_change_and_its_delivery_and_again_mid_retry_every_event_arrives_once(
        deployment, receiver):
    d = deployment
    survivor = d.servers[0]
    crashing = d.server(ORDERPULSE_FAILPOINT="after_write_before_publish").start()
    try:
        # The process that writes the order dies right after its write, before it tells anyone.
        with pytest.raises(httpx.TransportError):
            await d.http.post(f"{crashing.url}/v1/order", headers=d.headers(),
                              json={"checkoutToken": await d.checkout_token()})
        assert crashing.wait_exit() == -9
        first = (await delivered(receiver, d.path, 1, timeout=20))[0]
        order_id = body_of(first)["orderId"]
        assert body_of(first)["version"] == 1 and first["verified"] == [True]

        # Mid-retry: the receiver fails, the only process is SIGKILLed after a failed attempt.
        receiver.configure(d.path, secrets=[d.secret], statuses=[500] * 50)
        await d.pay(survivor, order_id)
        await until(lambda: _attempted(receiver, d.path, order_id, 2), timeout=20, message="a failed attempt of v2")
        survivor.kill()
        receiver.configure(d.path, secrets=[d.secret])
        survivor.start()
        await until(lambda: _attempted(receiver, d.path, order_id, 2, status=200), timeout=30,
                    message="v2 delivered after the restart")
    finally:
        crashing.kill()
    requests = await receiver.areceived(d.path)
    assert all(request["verified"] == [True] for request in requests)
    ids = ids_by_event(requests)
    assert set(ids) == {(order_id, 1), (order_id, 2)}
    assert all(len(event_ids) == 1 for event_ids in ids.values()), ids
    # The delivery log, through the command line: v2's failed attempts, then its success.
    log = [json.loads(line) for line in await asyncio.to_thread(
        orderpulse, d.env, "webhook", "deliveries", d.endpoint_id, "--order", order_id)]
    assert [(entry["version"], entry["status"]) for entry in log] == [(2, "succeeded"), (1, "succeeded")]
    assert log[0]["attempts"][0]["statusCode"] == 500 and log[0]["attempts"][-1]["statusCode"] == 200


async def _attempted(receiver: Receiver, path: str, order_id: str, version: int, status: int | None = None) -> bool:
    return any(body_of(r)["orderId"] == order_id and body_of(r)["version"] == version
               and (status is None or r["status"] == status) for r in await receiver.areceived(path))


async def test_two_server_processes_make_each_attempt_once(deployment, receiver):
    d = deployment
    first = d.servers[0]
    second = d.server().start()
    try:
        receiver.configure(d.path, secrets=[d.secret], statuses=[500] * 6)
        orders = []
        for through in (first, second, first, second):
            order_id = await d.order(through)
            await d.pay(second if through is first else first, order_id)
            orders.append(order_id)
        requests = await until(lambda: _all_delivered(receiver, d.path, len(orders) * 2), timeout=40,
                               message="every event delivered")
    finally:
        second.stop()
    per_event = defaultdict(list)
    for request in requests:
        per_event[request["headers"]["webhook-id"]].append(request["status"])
    log = {line["eventId"]: line for line in map(json.loads, await asyncio.to_thread(
        orderpulse, d.env, "webhook", "deliveries", d.endpoint_id))}
    assert set(log) == set(per_event) and len(log) == 8
    for event_id, statuses in per_event.items():
        # Each attempt reached the receiver once: as many requests as attempts recorded, one success.
        assert statuses == [attempt["statusCode"] for attempt in log[event_id]["attempts"]], event_id
        assert statuses.count(200) == 1
    assert sum(len(statuses) for statuses in per_event.values()) == 8 + 6
    # In version order per order.
    for order_id in orders:
        versions = [body_of(r)["version"] for r in requests if body_of(r)["orderId"] == order_id and r["status"] == 200]
        assert versions == [1, 2]


async def _all_delivered(receiver: Receiver, path: str, count: int):
    requests = await receiver.areceived(path)
    return requests if sum(1 for r in requests if r["status"] == 200) >= count else None


# --- the admin API ---------------------------------------------------------------------------

async def test_the_admin_api_adds_lists_rotates_logs_replays_and_removes_endpoints_for_admins_only(
        api_factory, receiver):
    from server.http.openapi import openapi_document
    from tests.test_openapi import check

    document = openapi_document()
    shop = await shop_of(api_factory)
    admin = await shop.api.admin()
    client_id = await shop.client()
    path = unique_path()
    base = "/api/admin/webhooks"

    refused = await shop.api.post(base, shop.customer, json={"clientId": client_id, "url": receiver.url + path})
    assert refused.status_code == 403
    assert (await shop.api.get(base, shop.store.staff)).status_code == 403
    bad = await shop.api.post(base, admin, json={"clientId": client_id, "url": receiver.url + path,
                                                 "events": "order.shipped"})
    assert bad.status_code == 400 and "order.completed" in bad.json()["message"]
    check(document, base, "post", bad)
    unknown = await shop.api.post(base, admin, json={"clientId": "opc_nobody", "url": receiver.url + path})
    assert unknown.status_code == 400
    added = await shop.api.post(base, admin, json={"clientId": client_id, "url": receiver.url + path,
                                                   "events": "order.updated,order.completed"})
    assert added.status_code == 201, added.text
    check(document, base, "post", added)
    endpoint = added.json()["data"]
    endpoint_id, secret = endpoint["endpointId"], endpoint["secret"]
    assert endpoint["events"] == ["order.updated", "order.completed"] and secret.startswith("whsec_")
    listed = await shop.api.get(f"{base}?clientId={client_id}", admin)
    check(document, base, "get", listed)
    assert [e["endpointId"] for e in listed.json()["data"]] == [endpoint_id]
    assert secret not in listed.text

    receiver.configure(path, secrets=[secret])
    order_id = (await shop.order(client_id))["orderId"]
    await shop.api.advance(shop.store, order_id, "paid")
    await delivered(receiver, path, 2)
    log = await until(lambda: _log_finished(shop, admin, endpoint_id, 2), message="the log of two deliveries")
    check(document, f"{base}/{{endpoint_id}}/deliveries", "get", log)
    assert [(d["version"], d["type"], d["status"]) for d in log.json()["data"]] == [
        (2, "order.completed", "succeeded"), (1, "order.updated", "succeeded")]

    rotated = await shop.api.post(f"{base}/{endpoint_id}/rotate", admin)
    check(document, f"{base}/{{endpoint_id}}/rotate", "post", rotated)
    new = rotated.json()["data"]["secret"]
    receiver.configure(path, secrets=[secret, new])
    replayed = await shop.api.post(f"{base}/{endpoint_id}/replay", admin, json={"orderId": order_id})
    check(document, f"{base}/{{endpoint_id}}/replay", "post", replayed)
    assert replayed.json()["data"] == {"replayed": 2}
    again = (await delivered(receiver, path, 4))[2:]
    assert sorted(body_of(r)["version"] for r in again) == [1, 2]
    assert all(r["verified"] == [True, True] for r in again)
    finished = await until(lambda: _finished_again(endpoint_id, 2), message="the replays' records")
    first, second = sorted(finished, key=lambda delivery: delivery.version)
    assert first.created_at < second.created_at
    moment = first.created_at.isoformat()  # a range of one instant: v1's delivery only
    by_time = await shop.api.post(f"{base}/{endpoint_id}/replay", admin, json={"since": moment, "until": moment})
    assert by_time.json()["data"] == {"replayed": 1}
    by_event = await shop.api.post(f"{base}/{endpoint_id}/replay", admin, json={"eventId": second.event_id})
    assert by_event.json()["data"] == {"replayed": 1}
    replays = (await delivered(receiver, path, 6))[4:]
    assert [(body_of(r)["version"], r["headers"]["webhook-id"]) for r in replays] == [
        (1, first.event_id), (2, second.event_id)]
    for body in ({}, {"eventId": "msg_x", "orderId": order_id}, {"until": "2030-01-01T00:00:00Z"}):
        wrong = await shop.api.post(f"{base}/{endpoint_id}/replay", admin, json=body)
        assert wrong.status_code == 400, body
    assert (await shop.api.post(f"{base}/{endpoint_id}/replay", admin, json={"since": "yesterday"})).status_code == 400

    removed = await shop.api.request("DELETE", f"{base}/{endpoint_id}", admin)
    check(document, f"{base}/{{endpoint_id}}", "delete", removed)
    gone = await shop.api.get(f"{base}/{endpoint_id}/deliveries", admin)
    assert gone.status_code == 404
    check(document, f"{base}/{{endpoint_id}}/deliveries", "get", gone)
    assert await WebhookDelivery.find({"endpoint_id": endpoint_id}).count() == 0


async def _finished_again(endpoint_id: str, attempts: int | None):
    """The endpoint's deliveries once each has succeeded (its `attempts`-th attempt, if given)."""
    found = await WebhookDelivery.find({"endpoint_id": endpoint_id}).to_list()
    done = all(d.status == "succeeded" and attempts in (None, len(d.attempts)) for d in found)
    return found if found and done else None


async def _log_finished(shop: Shop, admin: Actor, endpoint_id: str, count: int):
    log = await shop.api.get(f"/api/admin/webhooks/{endpoint_id}/deliveries", admin)
    finished = [d for d in log.json()["data"] if d["status"] == "succeeded"]
    return log if len(finished) >= count else None


async def test_the_command_line_adds_lists_rotates_replays_by_time_order_and_event_and_removes(
        api_factory, receiver):
    shop = await shop_of(api_factory)
    env = {"MONGODB_URL": shop.settings.mongodb_url, "MONGODB_DATABASE": shop.settings.mongodb_database,
           "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"}

    async def cli(*args: str) -> list[str]:
        return await asyncio.to_thread(orderpulse, env, "webhook", *args)

    client_id = await shop.client()
    path = unique_path()
    endpoint_id, secret = await cli("add", "--client", client_id, "--url", receiver.url + path,
                                    "--events", "order.updated")
    assert endpoint_id.startswith("ep_") and secret.startswith("whsec_")
    receiver.configure(path, secrets=[secret])
    (listed,) = await cli("list", "--client", client_id)
    assert secret not in listed
    assert {key: json.loads(listed)[key] for key in ("endpointId", "clientId", "events", "enabled")} == {
        "endpointId": endpoint_id, "clientId": client_id, "events": ["order.updated"], "enabled": True}
    first, second = (await shop.order(client_id))["orderId"], (await shop.order(client_id))["orderId"]
    await delivered(receiver, path, 2)
    made = await until(lambda: _finished_again(endpoint_id, 1), message="both deliveries recorded")
    early, late = sorted(made, key=lambda delivery: delivery.created_at)
    assert (early.order_id, late.order_id) == (first, second) and early.created_at < late.created_at

    (new,) = await cli("rotate", endpoint_id)
    assert new.startswith("whsec_") and new != secret
    receiver.configure(path, secrets=[secret, new])
    moment = early.created_at.isoformat()
    assert await cli("replay", endpoint_id, "--since", moment, "--until", moment) == ["1 deliveries scheduled again"]
    assert (await delivered(receiver, path, 3))[2]["headers"]["webhook-id"] == early.event_id
    await until(lambda: _finished_again(endpoint_id, None), message="the replay recorded")
    assert await cli("replay", endpoint_id, "--order", second) == ["1 deliveries scheduled again"]
    assert await cli("replay", endpoint_id, "--event", early.event_id) == ["1 deliveries scheduled again"]
    replays = (await delivered(receiver, path, 5))[2:]
    assert [r["headers"]["webhook-id"] for r in replays] == [early.event_id, late.event_id, early.event_id]
    assert all(r["verified"] == [True, True] for r in replays)

    assert await cli("remove", endpoint_id) == [f"removed {endpoint_id}"]
    assert await cli("list", "--client", client_id) == []


def test_a_bad_webhook_setting_is_one_error_line_and_exit_2():
    for name, value in (("WEBHOOK_RETRY_SECONDS", "5,soon"), ("WEBHOOK_TIMEOUT_SECONDS", "0")):
        done = subprocess.run([sys.executable, "-m", "server", "serve"], cwd=REPO, capture_output=True, text=True,
                              env={**os.environ, name: value}, timeout=60)
        assert done.returncode == 2
        assert done.stderr.startswith(f"error: {name}") and done.stderr.count("\n") == 1, done.stderr


def test_a_signing_secret_is_redacted_from_any_log_line():
    from server.logging_filter import redact

    secret = webhooks.new_secret()
    assert secret not in redact(f"endpoint ep_1 rotated to {secret} (was {webhooks.new_secret()})")
    assert "ep_1" in redact(f"endpoint ep_1 rotated to {secret}")


async def test_in_production_an_http_endpoint_registered_earlier_is_sent_nothing(api_factory, make_settings,
                                                                                 receiver):
    await api_factory()  # the documents' collections
    path = unique_path()
    dispatcher = webhooks.WebhookDispatcher(make_settings(orderpulse_env="production",
                                                          webhook_allowed_hosts="127.0.0.1"))
    now = utcnow()
    endpoint = WebhookEndpoint(endpoint_id="ep_x", client_id="opc_x", url=receiver.url + path,
                               secrets=[SigningSecret(secret=webhooks.new_secret(), created_at=now)],
                               created_at=now)
    delivery = WebhookDelivery(event_id="msg_x", endpoint_id="ep_x", client_id="opc_x", order_id="0" * 24,
                               version=1, type="order.updated", payload="{}", next_attempt_at=now, created_at=now)
    try:
        outcome = await dispatcher._send(endpoint, delivery)
    finally:
        await dispatcher.stop()
    assert outcome.status_code is None and outcome.error == "refused: https is required in production"
    assert await receiver.areceived(path) == []
