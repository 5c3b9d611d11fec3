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
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from pymongo import MongoClient

from server.config import Settings
from server.domain.clock import utcnow
from server.domain.errors import ApiError
from server.embedded_mongo import free_loopback_port
from server.models import ClientApp, WebhookDelivery, WebhookEndpoint
from server.services import webhooks
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
