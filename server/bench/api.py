"""A small async client for the OrderPulse REST API (httpx, HTTP/1.1 keep-alive, orjson)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson


class ApiError(RuntimeError):
    """The server answered a setup call with something other than the expected status."""

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(f"{method} {path} answered {status}: {message}")
        self.status = status
        self.message = message


@dataclass
class Session:
    """A signed-in user: tokens plus the user record the server returned."""

    access_token: str
    refresh_token: str
    user: dict[str, Any]
    email: str
    password: str
    issued_at: float  # monotonic seconds

    @property
    def user_id(self) -> str:
        return str(self.user.get("id") or self.user.get("_id"))


def error_message(body: bytes) -> str:
    """The `message` of an error answer, or the start of a body that is not one."""
    try:
        return str(orjson.loads(body).get("message", ""))
    except (orjson.JSONDecodeError, AttributeError):
        return body[:200].decode("utf-8", "replace")


class Api:
    """REST calls the bench needs, each returning the envelope's `data`."""

    def __init__(self, base_url: str, *, connections: int = 64, timeout: float = 30.0) -> None:
        self.base_url = base_url
        self.http = httpx.AsyncClient(
            base_url=base_url,
            http1=True,
            http2=False,
            timeout=timeout,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            headers={"accept": "application/json"},
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def call(self, method: str, path: str, *, token: str | None = None, body: Any = None,
                   expect: tuple[int, ...] = (200, 201), timeout: float | None = None) -> Any:
        """Send one request; retry briefly on 503 and connection resets; return `data`. `timeout`:
        seconds for this call, instead of the client's."""
        headers = {}
        if token:
            headers["authorization"] = f"Bearer {token}"
        content = None
        if body is not None:
            content = orjson.dumps(body)
            headers["content-type"] = "application/json"
        for attempt in range(4):
            try:
                response = await self.http.request(method, path, content=content, headers=headers,
                                                   timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout)
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError):
                if attempt == 3:
                    raise
                await asyncio.sleep(0.2 * (attempt + 1))
                continue
            if response.status_code == 503 and attempt < 3:
                await asyncio.sleep(0.5 * (attempt + 1))
                continue
            break
        if response.status_code not in expect:
            raise ApiError(method, path, response.status_code, error_message(response.content))
        if not response.content:
            return None
        return orjson.loads(response.content).get("data")

    async def text(self, path: str) -> str:
        response = await self.http.get(path)
        response.raise_for_status()
        return response.text

    # Identity ---------------------------------------------------------------------------

    async def login(self, email: str, password: str) -> Session:
        data = await self.call("POST", "/api/auth/login", body={"email": email, "password": password})
        return _session(data, email, password)

    async def register_student(self, name: str, email: str, password: str, register_number: str) -> Session:
        data = await self.call("POST", "/api/auth/register", body={
            "name": name, "email": email, "password": password,
            "role": "student", "registerNumber": register_number,
        })
        return _session(data, email, password)

    async def refresh(self, session: Session) -> Session:
        data = await self.call("POST", "/api/auth/refresh", body={"refreshToken": session.refresh_token})
        return _session(data, session.email, session.password)

    async def create_staff(self, admin: str, name: str, email: str, password: str, store_id: str) -> dict[str, Any]:
        return await self.call("POST", "/api/admin/users", token=admin, body={
            "name": name, "email": email, "password": password,
            "role": "store_employee", "storeId": store_id,
        })

    # Stores and menu ----------------------------------------------------------------------

    async def create_store(self, admin: str, name: str, location: str, upi_id: str) -> dict[str, Any]:
        return await self.call("POST", "/api/stores", token=admin,
                               body={"name": name, "location": location, "upiId": upi_id})

    async def add_menu_item(self, token: str, store_id: str, name: str, price: float) -> dict[str, Any]:
        return await self.call("POST", f"/api/stores/{store_id}/menu", token=token,
                               body={"name": name, "price": price})

    async def menu(self, store_id: str) -> list[dict[str, Any]]:
        data = await self.call("GET", f"/api/stores/{store_id}/menu")
        if isinstance(data, dict):
            for key in ("items", "menu", "menuItems"):
                if isinstance(data.get(key), list):
                    return data[key]
        return list(data or [])

    # Orders -------------------------------------------------------------------------------

    async def checkout(self, token: str, store_id: str, menu_item_id: str, quantity: int = 1,
                       timeout: float | None = None) -> dict[str, Any]:
        return await self.call("POST", "/api/orders/checkout-session", token=token, body={
            "storeId": store_id, "items": [{"menuItemId": menu_item_id, "quantity": quantity}],
        }, timeout=timeout)

    async def place_order(self, token: str, checkout_token: str, timeout: float | None = None) -> dict[str, Any]:
        return await self.call("POST", "/api/orders", token=token, body={"checkoutToken": checkout_token},
                               timeout=timeout)

    async def set_payment(self, staff: str, order_id: str, status: str = "success") -> dict[str, Any]:
        return await self.call("PATCH", f"/api/orders/{order_id}/payment-status", token=staff,
                               body={"paymentStatus": status})

    async def set_status(self, staff: str, order_id: str, status: str) -> dict[str, Any]:
        return await self.call("PATCH", f"/api/orders/{order_id}/status", token=staff, body={"status": status})

    async def set_closing(self, staff: str, store_id: str, closes_at: str | None) -> dict[str, Any]:
        """Close the store for payments at `closes_at` (ISO 8601; None: open again). The call moves
        every unpaid order's deadline before it answers: thousands take longer than other calls."""
        return await self.call("PATCH", f"/api/stores/{store_id}/pace", token=staff, body={"closesAt": closes_at},
                               timeout=600.0)

    async def poll_status(self, token: str, order_id: str) -> dict[str, Any]:
        return await self.call("GET", f"/api/orders/{order_id}/poll-status", token=token)


def _session(data: dict[str, Any], email: str, password: str) -> Session:
    return Session(access_token=data["accessToken"], refresh_token=data["refreshToken"],
                   user=data.get("user") or {}, email=email, password=password,
                   issued_at=time.monotonic())
