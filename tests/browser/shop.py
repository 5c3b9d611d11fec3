"""A small API client for browser tests: builds a store, its staff and customers, and places
orders the way a real client does (checkout session, then POST /api/orders)."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support import until_sync

_counter = itertools.count(1)


@dataclass
class Account:
    email: str
    password: str
    name: str
    role: str
    token: str = ""
    user: dict[str, Any] = field(default_factory=dict)


class Shop:
    """A store with a menu, one staff member and helpers to drive orders through the API."""

    def __init__(self, base_url: str, admin_email: str, admin_password: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=15)
        self.admin = Account(admin_email, admin_password, "Admin", "admin")
        self.login(self.admin)
        suffix = secrets.token_hex(3)
        self.store = self.call(self.admin, "POST", "/api/stores", json={
            "name": "Campus Cafe", "location": "Building A, Ground Floor", "upiId": "campuscafe@upi"})
        self.menu: dict[str, dict[str, Any]] = {}
        for name, price, category in [("Paneer Burger", 120, "Burgers"), ("French Fries", 80, "Sides"),
                                      ("Cold Coffee", 49.5, "Drinks"), ("Masala Dosa", 60, "South Indian"),
                                      ("Veg Sandwich", 45, "Snacks"), ("Lemon Soda", 30, "Drinks")]:
            item = self.call(self.admin, "POST", f"/api/stores/{self.store['id']}/menu",
                             json={"name": name, "price": price, "category": category})
            self.menu[name] = item
        self.staff = Account(f"staff-{suffix}@campus.test", "staff-pass-1", "Kavya Staff", "store_employee")
        self.call(self.admin, "POST", "/api/admin/users", json={
            "name": self.staff.name, "email": self.staff.email, "password": self.staff.password,
            "role": "store_employee", "storeId": self.store["id"]})
        self.login(self.staff)

    def close(self) -> None:
        self.http.close()

    # -- accounts ----------------------------------------------------------------------------

    def login(self, account: Account) -> Account:
        data = self.call(None, "POST", "/api/auth/login", json={"email": account.email, "password": account.password})
        account.token = data["accessToken"]
        account.user = data["user"]
        return account

    def customer(self, name: str = "Asha Rao", role: str = "student") -> Account:
        """Register a fresh customer and sign them in."""
        n = next(_counter)
        account = Account(f"customer{n}-{secrets.token_hex(3)}@campus.test", "student-pass-1", name, role)
        body: dict[str, Any] = {"name": name, "email": account.email, "password": account.password, "role": role}
        body["registerNumber" if role == "student" else "employeeId"] = f"21CS{n:04d}"
        self.call(None, "POST", "/api/auth/register", json=body)
        return self.login(account)

    # -- orders ------------------------------------------------------------------------------

    def place_order(self, customer: Account, items: dict[str, int] | None = None,
                    instructions: str | None = None) -> dict[str, Any]:
        items = items or {"Paneer Burger": 1, "French Fries": 1, "Cold Coffee": 1}
        cart = [{"menuItemId": self.menu[name]["id"], "quantity": qty} for name, qty in items.items()]
        session_body: dict[str, Any] = {"storeId": self.store["id"], "items": cart}
        if instructions:
            session_body["specialInstructions"] = instructions
        session = self.call(customer, "POST", "/api/orders/checkout-session", json=session_body)
        transaction = f"UPI{secrets.token_hex(5).upper()}"
        return self.call(customer, "POST", "/api/orders",
                         json={"checkoutToken": session["checkoutToken"], "transactionId": transaction})

    def order(self, account: Account, order_id: str) -> dict[str, Any]:
        return self.call(account, "GET", f"/api/orders/{order_id}")

    def verify_payment(self, order_id: str) -> dict[str, Any]:
        return self.call(self.staff, "PATCH", f"/api/orders/{order_id}/payment-status", json={"paymentStatus": "success"})

    def set_status(self, order_id: str, status: str) -> dict[str, Any]:
        return self.call(self.staff, "PATCH", f"/api/orders/{order_id}/status", json={"status": status})

    def confirm_commitment(self, customer: Account, order_id: str) -> dict[str, Any]:
        return self.call(customer, "POST", f"/api/orders/{order_id}/confirm-commitment")

    def to_ready(self, order_id: str) -> None:
        """Verify payment, then walk the order to `ready` (it is accepted on payment)."""
        self.verify_payment(order_id)
        self.set_status(order_id, "processing")
        self.set_status(order_id, "ready")

    def wait_for_status(self, account: Account, order_id: str, status: str, timeout: float = 15) -> dict[str, Any]:
        return until_sync(lambda: (order := self.order(account, order_id))["orderStatus"] == status and order,
                          timeout, interval=0.1, message=f"order {order_id} to be {status}")

    def me(self, account: Account) -> dict[str, Any]:
        return self.call(account, "GET", "/api/users/me")

    # -- plumbing ----------------------------------------------------------------------------

    def call(self, account: Account | None, method: str, path: str, **kwargs: Any) -> Any:
        headers = kwargs.pop("headers", {})
        if account is not None:
            headers["Authorization"] = f"Bearer {account.token}"
        response = self.http.request(method, path, headers=headers, **kwargs)
        if response.status_code == 401 and account is not None and account.token:
            self.login(account)
            headers["Authorization"] = f"Bearer {account.token}"
            response = self.http.request(method, path, headers=headers, **kwargs)
        if response.status_code >= 400:
            raise AssertionError(f"{method} {path} -> {response.status_code}: {response.text}")
        body = response.json()
        return body.get("data", body)
