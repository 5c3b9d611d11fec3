"""A small client for tests: people, a store with a menu, and orders, made through the API; and
`until`, the one way tests wait for something to happen."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

_sequence = itertools.count(1)
PASSWORD = "correct-horse-1"


class _Deadline:
    """The one waiting rule: keep trying until the condition holds, fail naming it after `timeout`."""

    def __init__(self, timeout: float, message: str) -> None:
        self.timeout, self.message = timeout, message
        self.at = time.monotonic() + timeout

    def check(self) -> None:
        if time.monotonic() > self.at:
            raise AssertionError(f"timed out after {self.timeout} s waiting for {self.message}")


async def until(condition: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02,
                message: str = "condition") -> Any:
    """Poll `condition` (sync or async) until it is truthy and return its value; fail naming
    `message` after `timeout` seconds."""
    deadline = _Deadline(timeout, message)
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        deadline.check()
        await asyncio.sleep(interval)


def until_sync(condition: Callable[[], Any], timeout: float = 5.0, interval: float = 0.05,
               message: str = "condition") -> Any:
    """`until` for code without an event loop (subprocess servers, browser helpers): blocks the thread."""
    deadline = _Deadline(timeout, message)
    while True:
        value = condition()
        if value:
            return value
        deadline.check()
        time.sleep(interval)


@dataclass
class Actor:
    user: dict[str, Any]
    access_token: str
    refresh_token: str

    @property
    def id(self) -> str:
        return self.user["id"]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


@dataclass
class StoreSetup:
    id: str
    staff: Actor
    menu: list[dict[str, Any]] = field(default_factory=list)


class Api:
    def __init__(self, client: httpx.AsyncClient, app=None) -> None:
        self.client = client
        self.app = app

    @property
    def runtime(self):
        return self.app.state.runtime

    async def request(self, method: str, path: str, actor: Actor | None = None, **kwargs) -> httpx.Response:
        headers = {**(actor.headers if actor else {}), **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def get(self, path: str, actor: Actor | None = None, **kwargs) -> httpx.Response:
        return await self.request("GET", path, actor, **kwargs)

    async def post(self, path: str, actor: Actor | None = None, **kwargs) -> httpx.Response:
        return await self.request("POST", path, actor, **kwargs)

    async def patch(self, path: str, actor: Actor | None = None, **kwargs) -> httpx.Response:
        return await self.request("PATCH", path, actor, **kwargs)

    async def login(self, email: str, password: str = PASSWORD) -> Actor:
        response = await self.post("/api/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        return Actor(data["user"], data["accessToken"], data["refreshToken"])

    async def customer(self, name: str = "Asha Rao", role: str = "student") -> Actor:
        n = next(_sequence)
        body = {"name": name, "email": f"customer{n}@campus.test", "password": PASSWORD, "role": role}
        body["registerNumber" if role == "student" else "employeeId"] = f"ID{n:05d}"
        response = await self.post("/api/auth/register", json=body)
        assert response.status_code == 201, response.text
        data = response.json()["data"]
        return Actor(data["user"], data["accessToken"], data["refreshToken"])

    async def admin(self) -> Actor:
        """Admins are made by the command line in production; here through the same service."""
        n = next(_sequence)
        email = f"admin{n}@campus.test"
        await self.runtime.accounts.create_user(name="Ada Admin", email=email, password=PASSWORD,
                                                role="admin", store_id=None)
        return await self.login(email)

    async def store(self, admin: Actor | None = None, menu: list[tuple[str, float]] | None = None) -> StoreSetup:
        admin = admin or await self.admin()
        n = next(_sequence)
        response = await self.post("/api/stores", admin, json={
            "name": f"Campus Cafe {n}", "location": "Building A, Ground Floor", "upiId": f"cafe{n}@upi"})
        assert response.status_code == 201, response.text
        store_id = response.json()["data"]["id"]
        email = f"staff{n}@campus.test"
        response = await self.post("/api/admin/users", admin, json={
            "name": "Kavya Staff", "email": email, "password": PASSWORD, "role": "store_employee",
            "storeId": store_id})
        assert response.status_code == 201, response.text
        staff = await self.login(email)
        setup = StoreSetup(store_id, staff)
        for name, price in menu or [("Paneer Burger", 120), ("French Fries", 80), ("Cold Coffee", 49.5)]:
            response = await self.post(f"/api/stores/{store_id}/menu", staff, json={"name": name, "price": price})
            assert response.status_code == 201, response.text
            setup.menu.append(response.json()["data"])
        return setup

    async def checkout(self, customer: Actor, store: StoreSetup, lines: list[tuple[int, int]] | None = None,
                       **extra) -> httpx.Response:
        lines = lines or [(0, 1)]
        items = [{"menuItemId": store.menu[i]["id"], "quantity": q} for i, q in lines]
        return await self.post("/api/orders/checkout-session", customer,
                               json={"storeId": store.id, "items": items, **extra})

    async def place_order(self, customer: Actor, store: StoreSetup, lines=None,
                          transaction_id: str | None = None, **extra) -> dict[str, Any]:
        response = await self.checkout(customer, store, lines, **extra)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = {"checkoutToken": response.json()["data"]["checkoutToken"]}
        if transaction_id:
            body["transactionId"] = transaction_id
        response = await self.post("/api/orders", customer, json=body)
        assert response.status_code == 201, response.text
        return response.json()["data"]

    async def advance(self, store: StoreSetup, order_id: str, *steps: str) -> httpx.Response:
        """Move an order through `paid`, `processing`, `ready` as the store's staff."""
        response = None
        for step in steps:
            if step == "paid":
                response = await self.patch(f"/api/orders/{order_id}/payment-status", store.staff,
                                            json={"paymentStatus": "success"})
            else:
                response = await self.patch(f"/api/orders/{order_id}/status", store.staff, json={"status": step})
            assert response.status_code == 200, response.text
        return response

    async def otp_of(self, customer: Actor, order_id: str) -> str:
        response = await self.get(f"/api/orders/{order_id}", customer)
        return response.json()["data"]["pickupOtp"]


def metric_value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples `name` in a `/metrics` text whose labels include `labels` (0 if none),
    read with prometheus_client's parser."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()))


async def order_read_times(api: Api, actor: Actor, order_id: str, *, count: int | None = None,
                           until: asyncio.Event | None = None) -> list[float]:
    """Seconds each `GET /api/orders/{id}` took, read one after another `count` times or until
    `until` is set: the database-backed route the flood tests time, idle and under attack."""
    samples: list[float] = []
    while (count is not None and len(samples) < count) or (until is not None and not until.is_set()):
        started = time.perf_counter()
        response = await api.get(f"/api/orders/{order_id}", actor)
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    assert len(samples) >= 5, samples
    return samples
