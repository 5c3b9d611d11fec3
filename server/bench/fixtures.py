"""What a run creates through the API: customers, and per scenario a store with staff and orders.

Every name carries the run id, so runs never collide and a run never touches data it did not
create (or was explicitly given with --store-id / --staff-email / --customer-emails).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Awaitable, Iterable, TypeVar

from server.bench.api import Api, ApiError, Session
from server.bench.progress import Progress

T = TypeVar("T")

# Tokens older than this are refreshed before a scenario starts (access tokens live 15 min).
TOKEN_REFRESH_AFTER_SECONDS = 300.0
MENU_PRICE = 49.5


@dataclass
class Order:
    """An order the bench created, with the token of the customer who owns it."""

    id: str
    owner_token: str
    created_at: str | None = None


@dataclass
class StoreFixture:
    """A store the scenario drives, its staff sessions and one menu item to order."""

    id: str
    menu_item_id: str
    staff: list[Session]

    @property
    def staff_token(self) -> str:
        return self.staff[0].access_token


@dataclass
class Population:
    """The admin and customer sessions shared by every scenario of one run."""

    api: Api
    run_id: str
    admin: Session
    customers: list[Session]
    password: str
    reuse_store_id: str | None = None
    reuse_staff: list[tuple[str, str]] = field(default_factory=list)
    # 409s answered to the bench's own uncontended setup writes (a server-side race if non-zero).
    setup_conflicts: int = 0
    _stores_made: int = 0

    async def refresh_tokens(self) -> None:
        """Refresh every session older than TOKEN_REFRESH_AFTER_SECONDS (cheap: no password hash)."""
        now = time.monotonic()

        async def fresh(session: Session) -> Session:
            if now - session.issued_at < TOKEN_REFRESH_AFTER_SECONDS:
                return session
            try:
                return await self.api.refresh(session)
            except ApiError:
                return await self.api.login(session.email, session.password)

        self.admin = await fresh(self.admin)
        self.customers = await bounded_gather([fresh(c) for c in self.customers], 8)

    async def new_store(self, label: str, staff_count: int = 1) -> StoreFixture:
        """A fresh store (so its snapshot holds only this scenario's orders), or the given one."""
        api = self.api
        if self.reuse_store_id:
            staff = [await api.login(e, p) for e, p in self.reuse_staff]
            menu = [m for m in await api.menu(self.reuse_store_id) if m.get("isAvailable", True)]
            if menu:
                item_id = menu[0]["id"]
            else:
                item_id = (await api.add_menu_item(staff[0].access_token, self.reuse_store_id,
                                                   f"bench item {self.run_id}", MENU_PRICE))["id"]
            return StoreFixture(self.reuse_store_id, item_id, staff)
        self._stores_made += 1
        tag = f"{self.run_id}-{label}-{self._stores_made}"
        store = await api.create_store(self.admin.access_token, f"Bench {tag}", "Bench lab", "bench@upi")
        store_id = store["id"]
        item = await api.add_menu_item(self.admin.access_token, store_id, "Bench thali", MENU_PRICE)

        async def one_staff(i: int) -> Session:
            email = f"bench-{tag}-staff{i}@bench.orderpulse.demo"
            await api.create_staff(self.admin.access_token, f"Bench Staff {i}", email, self.password, store_id)
            return await api.login(email, self.password)

        staff = await bounded_gather([one_staff(i) for i in range(staff_count)], 4)
        return StoreFixture(store_id, item["id"], staff)

    async def create_orders(self, store: StoreFixture, count: int, *, accept: bool,
                            progress: Progress | None = None, concurrency: int = 32,
                            customers: list[Session] | None = None) -> list[Order]:
        """`count` orders spread over the customers; `accept` confirms payment (placed → accepted).

        Accepted orders have no pending deadline, so they never cancel behind a later scenario.
        """
        done = 0
        owners = customers or self.customers

        async def one(i: int) -> Order:
            nonlocal done
            customer = owners[i % len(owners)]
            checkout = await self.api.checkout(customer.access_token, store.id, store.menu_item_id)
            placed = await self.api.place_order(customer.access_token, checkout["checkoutToken"])
            if accept:
                await self.confirm_payment(store.staff[i % len(store.staff)].access_token, placed["id"])
            done += 1
            if progress:
                progress.update(f"created {done}/{count} orders")
            return Order(placed["id"], customer.access_token, placed.get("createdAt"))

        return await bounded_gather([one(i) for i in range(count)], concurrency)

    async def confirm_payment(self, staff_token: str, order_id: str) -> None:
        """Confirm payment; a 409 on an order nobody else touches is retried and counted."""
        for attempt in range(5):
            try:
                await self.api.set_payment(staff_token, order_id)
                return
            except ApiError as error:
                if error.status != 409 or attempt == 4:
                    raise
                self.setup_conflicts += 1
                await asyncio.sleep(0.05 * (attempt + 1))


async def build_population(api: Api, *, admin_email: str, admin_password: str, customers: int,
                           customer_emails: list[str], customer_password: str | None,
                           store_id: str | None, staff: list[tuple[str, str]],
                           progress: Progress) -> Population:
    """Sign in the admin, then register (or sign in) the customers, a few at a time."""
    run_id = datetime.now().strftime("%H%M%S") + "-" + secrets.token_hex(3)
    password = "bench-" + secrets.token_urlsafe(12)
    progress.update("signing in the admin")
    admin = await api.login(admin_email, admin_password)
    made = 0

    async def register(i: int) -> Session:
        nonlocal made
        session = await api.register_student(
            f"Bench Customer {i}", f"bench-{run_id}-c{i}@bench.orderpulse.demo", password,
            f"BENCH{run_id.replace('-', '').upper()}{i:05d}")
        made += 1
        progress.update(f"registered {made}/{customers} customers")
        return session

    if customer_emails:
        sessions = await bounded_gather(
            [api.login(e, customer_password or "") for e in customer_emails], 4)
    else:
        # Registration hashes a password (argon2, ~50-100 ms of server CPU): keep it gentle.
        sessions = await bounded_gather([register(i) for i in range(customers)], 4)
    return Population(api=api, run_id=run_id, admin=admin, customers=sessions, password=password,
                      reuse_store_id=store_id, reuse_staff=staff)


async def bounded_gather(jobs: Iterable[Awaitable[T]], limit: int) -> list[T]:
    """Await every job with at most `limit` running at once, keeping their order."""
    semaphore = asyncio.Semaphore(limit)

    async def run(job: Awaitable[T]) -> T:
        async with semaphore:
            return await job

    return list(await asyncio.gather(*(run(j) for j in jobs)))

