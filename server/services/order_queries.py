"""Reading orders: one order a caller may see (its due deadline enforced first), listings, the
pickup code its owner is shown."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from server.config import Settings
from server.domain import messages
from server.domain.access import Principal, listing_scope, may_see_order
from server.domain.clock import SYSTEM_CLOCK, Clock, as_utc
from server.domain.errors import Forbidden, NotFound
from server.domain.pickup_code import pickup_code, pickup_key
from server.models import Order
from server.services import order_store
from server.services.deadlines import DeadlineEnforcer


# How many orders a process keeps as it last wrote them (`WrittenOrders`): a store's whole day of
# active orders, at a few KiB each.
WRITTEN_ORDERS = 2048


class WrittenOrders:
    """Each order as this process's last compare-and-set returned it, the most recently written
    `size`: a kitchen's next move of an order it just moved can start from this copy instead of
    reading the order again. The copy may be stale (another process, or a bulk deadline
    cancellation, changed the order since): the move's compare-and-set on `version` then misses,
    and the move is made again on the order as read (`OrderLifecycle._from_copy`)."""

    def __init__(self, size: int = WRITTEN_ORDERS) -> None:
        self._size = size
        self._orders: OrderedDict[str, Order] = OrderedDict()

    def keep(self, order: Order) -> None:
        key = str(order.id)
        if order.partner_client_id:
            # A partner's order carries its pending webhook events, which the relay clears without
            # a new version: a copy would write delivered events back.
            self._orders.pop(key, None)
            return
        self._orders[key] = order
        self._orders.move_to_end(key)
        if len(self._orders) > self._size:
            self._orders.popitem(last=False)

    def get(self, order_id: str) -> Order | None:
        return self._orders.get(order_id)

    def holds(self, order: Order) -> bool:
        """Whether `order` is the very copy kept (not an order read since)."""
        return self._orders.get(str(order.id)) is order

    def forget(self, order_id: str) -> None:
        self._orders.pop(order_id, None)


class OrderQueries:
    def __init__(self, settings: Settings, enforcer: DeadlineEnforcer, clock: Clock = SYSTEM_CLOCK) -> None:
        self._enforcer = enforcer
        self._clock = clock
        self._pickup_key = pickup_key(settings.jwt_secret or "")
        self.written = WrittenOrders()

    async def visible_order(self, principal: Principal, order_id: str, forbidden: str = messages.ORDER_FORBIDDEN,
                            not_found: str = messages.ORDER_NOT_FOUND) -> Order:
        """The order, with its due deadline enforced; NotFound when absent, Forbidden when not the caller's."""
        order = await self.find(order_id, not_found)
        self.authorise(principal, str(order.user_id), str(order.store_id), forbidden)
        return await self.enforce_own_deadline(order)

    def written_copy(self, principal: Principal, order_id: str) -> Order | None:
        """The order as this process last wrote it, for a change to start from without a read, or
        None: not held, not the caller's to see, or its own deadline due (the read path then
        answers, refuses or enforces as always)."""
        order = self.written.get(order_id)
        if order is None or not may_see_order(principal, str(order.user_id), str(order.store_id)):
            return None
        if order.next_deadline_at is not None and as_utc(order.next_deadline_at) <= self._clock.now():
            return None
        return order

    @staticmethod
    def authorise(principal: Principal, user_id: str, store_id: str,
                  forbidden: str = messages.ORDER_FORBIDDEN) -> None:
        if not may_see_order(principal, user_id, store_id):
            raise Forbidden(forbidden)

    async def find(self, order_id: str, not_found: str = messages.ORDER_NOT_FOUND) -> Order:
        order = await order_store.get(order_id)
        if order is None:
            raise NotFound(not_found)
        return order

    async def enforce_own_deadline(self, order: Order) -> Order:
        """The order as it is once its own due deadline (if any) has been enforced."""
        if order.next_deadline_at is not None and as_utc(order.next_deadline_at) <= self._clock.now():
            if await self._enforcer.enforce_due(order_id=order.id):
                return await self.find(str(order.id))
        return order

    async def reread(self, order: Order) -> Order:
        """The order's current state, its due deadline enforced (a caller waiting on it)."""
        return await self.enforce_own_deadline(await self.find(str(order.id)))

    async def list_orders(self, principal: Principal, statuses: list[str], page: int, limit: int,
                          store_id: str | None) -> tuple[list[Order], int]:
        query: dict[str, Any] = listing_scope(principal, store_id)
        if statuses:
            query["order_status"] = {"$in": statuses}
        return await order_store.page(query, page, limit)

    def pickup_otp(self, order: Order) -> str | None:
        """The order's 6-digit pickup code (server/domain/pickup_code.py), None before it is ready."""
        if order.otp_nonce is None:
            return None
        return pickup_code(self._pickup_key, str(order.id), order.otp_nonce)
