"""Order use cases: checkout, creation, the lifecycle, OTP pickup and commitment.

Each change is one compare-and-set on the order's `version` (so a lost race is a 409, never a
silent overwrite), then exactly one published event.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any
from urllib.parse import urlencode

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from server.config import Settings
from server.domain import messages
from server.domain.access import Principal, listing_scope, may_see_order
from server.domain.clock import as_utc, js_date_string, utcnow
from server.domain.deadlines import next_deadline
from server.domain.lifecycle import (
    CancellationReason, OrderStatus, PaymentStatus, TERMINAL, can_store_move,
    needs_commitment,
)
from server.domain.money import paise_to_rupees
from server.domain.trust import TrustStanding, TrustTier
from server.domain.errors import ApiError
from server.models import Counter, MenuItem, Order, OrderItem, Store
from server.services.accounts import AccountService
from server.services.deadlines import DeadlineEnforcer
from server.services.publishing import ChangePublisher
from server.services.tokens import TokenService

TRANSACTION_ID = re.compile(r"[A-Za-z0-9]{8,40}")
MAX_QUANTITY = 50
MAX_CART_LINES = 50
_FORWARD = [OrderStatus.PLACED, OrderStatus.ACCEPTED, OrderStatus.PROCESSING, OrderStatus.READY,
            OrderStatus.PICKED_UP]


@dataclass(frozen=True)
class CartLine:
    menu_item_id: str
    quantity: int


def normalise_transaction_id(value: object) -> str | None:
    """Upper-cased UPI transaction id, None when not provided; 400 when malformed."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not TRANSACTION_ID.fullmatch(value):
        raise ApiError(400, messages.TRANSACTION_ID_INVALID)
    return value.upper()


def _mongo(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


class OrderService:
    def __init__(self, settings: Settings, accounts: AccountService, tokens: TokenService,
                 publisher: ChangePublisher, enforcer: DeadlineEnforcer) -> None:
        self._settings = settings
        self._accounts = accounts
        self._tokens = tokens
        self._publisher = publisher
        self._enforcer = enforcer
        self._otp_key = hashlib.sha256(b"pickup-otp:" + (settings.jwt_secret or "").encode()).digest()

    # --- checkout -------------------------------------------------------------------------

    async def checkout_session(self, principal: Principal, store_id: str, cart: list[CartLine],
                               special_instructions: str | None) -> dict[str, Any]:
        now = utcnow()
        standing = await self._accounts.trust_standing(principal.user_id, now)
        self._refuse_restricted(standing)
        store = await Store.get(store_id) if ObjectId.is_valid(store_id) else None
        if store is None:
            raise ApiError(400, messages.STORE_NOT_FOUND)
        if not store.is_active:
            raise ApiError(400, messages.CART_STORE_INACTIVE)
        items = await self._priced_items(store, cart)
        total = sum(item.total_paise for item in items)
        reference = "CBPAY" + secrets.token_hex(5).upper()
        lifetime = self._settings.checkout_lifetime
        token = self._tokens.issue_checkout({
            "sub": principal.user_id, "jti": uuid.uuid4().hex, "storeId": str(store.id),
            "items": [[str(i.menu_item_id), i.quantity, i.price_paise] for i in items],
            "total": total, "ref": reference, "note": special_instructions,
        }, now, lifetime)
        amount = paise_to_rupees(total)
        upi_link = "upi://pay?" + urlencode({"pa": store.upi_id, "pn": store.name, "am": f"{total / 100:.2f}",
                                             "cu": "INR", "tn": reference})
        return {
            "checkoutToken": token,
            "paymentReference": reference,
            "expiresInSeconds": int(lifetime.total_seconds()),
            "totalAmount": amount,
            "items": [self._item_view(item) for item in items],
            "specialInstructions": special_instructions,
            "store": {"id": str(store.id), "name": store.name, "location": store.location, "upiId": store.upi_id},
            "noShowPolicy": {
                "trustTier": standing.tier.value,
                "noShowCount": standing.no_show_count,
                "requiresCommitment": standing.requires_commitment,
                "commitmentWindowMinutes": self._settings.order_commitment_timeout_minutes,
                "unpaidTimeoutMinutes": self._settings.unpaid_order_timeout_minutes,
                "readyTimeoutMinutes": self._settings.ready_no_show_timeout_minutes,
            },
            "payment": {"mode": "direct_store_upi", "upiLink": upi_link},
        }

    @staticmethod
    def _item_view(item: OrderItem) -> dict[str, Any]:
        return {"menuItemId": str(item.menu_item_id), "name": item.name,
                "price": paise_to_rupees(item.price_paise), "quantity": item.quantity,
                "total": paise_to_rupees(item.total_paise)}

    async def _priced_items(self, store: Store, cart: list[CartLine]) -> list[OrderItem]:
        if not cart:
            raise ApiError(400, messages.CART_EMPTY)
        seen: set[str] = set()
        for line in cart:
            if not ObjectId.is_valid(line.menu_item_id):
                raise ApiError(400, messages.CART_ITEM_UNKNOWN.format(item_id=line.menu_item_id))
            if line.menu_item_id in seen:
                raise ApiError(400, messages.CART_DUPLICATE_ITEM.format(item_id=line.menu_item_id))
            seen.add(line.menu_item_id)
            if not 1 <= line.quantity <= MAX_QUANTITY:
                raise ApiError(400, messages.CART_QUANTITY)
        found = {str(item.id): item for item in
                 await MenuItem.find({"_id": {"$in": [ObjectId(i) for i in seen]}}).to_list()}
        priced = []
        for line in cart:
            menu_item = found.get(line.menu_item_id)
            if menu_item is None:
                raise ApiError(400, messages.CART_ITEM_UNKNOWN.format(item_id=line.menu_item_id))
            if menu_item.store_id != str(store.id):
                raise ApiError(400, messages.CART_ITEM_OTHER_STORE.format(item_id=line.menu_item_id))
            if not menu_item.is_available:
                raise ApiError(400, messages.CART_ITEM_UNAVAILABLE.format(name=menu_item.name))
            priced.append(OrderItem(menu_item_id=str(menu_item.id), name=menu_item.name,
                                    price_paise=menu_item.price_paise, quantity=line.quantity,
                                    total_paise=menu_item.price_paise * line.quantity))
        return priced

    def _refuse_restricted(self, standing: TrustStanding) -> None:
        if standing.tier == TrustTier.RESTRICTED and standing.restricted_until is not None:
            until = js_date_string(standing.restricted_until, self._settings.zone)
            raise ApiError(403, messages.RESTRICTED.format(until=until))

    # --- creation -------------------------------------------------------------------------

    async def create_order(self, principal: Principal, checkout_token: object,
                           transaction_id: object) -> tuple[Order, bool]:
        """Returns the order and whether this call created it (False: the checkout's existing order)."""
        if checkout_token is None or checkout_token == "":
            raise ApiError(400, messages.CHECKOUT_TOKEN_REQUIRED)
        if not isinstance(checkout_token, str):
            raise ApiError(400, messages.CHECKOUT_INVALID)
        claims = self._tokens.verify_checkout(checkout_token)
        if claims.get("sub") != principal.user_id:
            raise ApiError(400, messages.CHECKOUT_INVALID)
        transaction = normalise_transaction_id(transaction_id)
        existing = await Order.find_one({"checkout_id": claims["jti"]})
        if existing is not None:
            return existing, False

        now = utcnow()
        user_id = principal.user_id
        standing = await self._accounts.trust_standing(user_id, now)
        self._refuse_restricted(standing)
        store, items = await self._recheck_cart(claims)
        if transaction and await Order.find_one({"transaction_id": transaction}) is not None:
            raise ApiError(409, messages.TRANSACTION_ID_TAKEN)

        order = Order(
            order_number=await self._next_order_number(now),
            user_id=user_id, store_id=str(store.id), store_name=store.name, store_location=store.location,
            customer_first_name=principal.first_name,
            items=items, total_paise=claims["total"], special_instructions=claims.get("note"),
            payment_reference=claims["ref"], transaction_id=transaction, checkout_id=claims["jti"],
            requires_commitment=standing.requires_commitment,
            commitment_deadline_at=now + self._settings.commitment_timeout if standing.requires_commitment else None,
            created_at=now, updated_at=now, outbox_at=now,
        )
        order.next_deadline_at = next_deadline(order.deadline_view(), self._settings.unpaid_timeout)
        try:
            await order.insert()
        except DuplicateKeyError as exc:
            existing = await Order.find_one({"checkout_id": claims["jti"]})
            if existing is not None:
                return existing, False
            if "transaction_id" in str(exc):
                raise ApiError(409, messages.TRANSACTION_ID_TAKEN) from None
            raise
        self._publisher.written()
        await self._publisher.publish(order, created=True)
        if order.next_deadline_at:
            self._enforcer.deadline_scheduled(order.next_deadline_at)
        return order, True

    async def _recheck_cart(self, claims: dict[str, Any]) -> tuple[Store, list[OrderItem]]:
        """The cart must still be what the customer paid for."""
        store = await Store.get(claims["storeId"])
        if store is None or not store.is_active:
            raise ApiError(409, messages.CART_CHANGED)
        lines = claims["items"]
        found = {str(i.id): i for i in await MenuItem.find({"_id": {"$in": [ObjectId(l[0]) for l in lines]}}).to_list()}
        items = []
        for item_id, quantity, price in lines:
            menu_item = found.get(item_id)
            if (menu_item is None or not menu_item.is_available or menu_item.price_paise != price
                    or menu_item.store_id != str(store.id)):
                raise ApiError(409, messages.CART_CHANGED)
            items.append(OrderItem(menu_item_id=str(menu_item.id), name=menu_item.name, price_paise=price,
                                   quantity=quantity, total_paise=price * quantity))
        return store, items

    async def _next_order_number(self, now: datetime) -> str:
        day = as_utc(now).astimezone(self._settings.zone).strftime("%Y%m%d")
        counter = await Counter.get_pymongo_collection().find_one_and_update(
            {"_id": f"order-number:{day}"}, {"$inc": {"seq": 1}}, upsert=True,
            return_document=ReturnDocument.AFTER)
        return f"ORD-{day}-{counter['seq']:03d}"

    # --- reading ------------------------------------------------------------------------------

    async def visible_order(self, principal: Principal, order_id: str,
                            forbidden: str = messages.ORDER_FORBIDDEN) -> Order:
        """The order, with its due deadline enforced; 404 when absent, 403 when not the caller's."""
        order = await self._find(order_id)
        self.authorise(principal, str(order.user_id), str(order.store_id), forbidden)
        return await self.enforce_own_deadline(order)

    @staticmethod
    def authorise(principal: Principal, user_id: str, store_id: str,
                  forbidden: str = messages.ORDER_FORBIDDEN) -> None:
        if not may_see_order(principal, user_id, store_id):
            raise ApiError(403, forbidden)

    async def _find(self, order_id: str) -> Order:
        order = await Order.get(order_id) if ObjectId.is_valid(order_id) else None
        if order is None:
            raise ApiError(404, messages.ORDER_NOT_FOUND)
        return order

    async def enforce_own_deadline(self, order: Order) -> Order:
        if order.next_deadline_at is not None and as_utc(order.next_deadline_at) <= utcnow():
            if await self._enforcer.enforce_due(order_id=order.id):
                return await self._find(str(order.id))
        return order

    async def list_orders(self, principal: Principal, statuses: list[str], page: int, limit: int,
                          store_id: str | None) -> tuple[list[Order], int]:
        query: dict[str, Any] = listing_scope(principal, store_id)
        if statuses:
            query["order_status"] = {"$in": statuses}
        total = await Order.find(query).count()
        orders = await Order.find(query).sort([("created_at", -1)]).skip((page - 1) * limit).limit(limit).to_list()
        return orders, total

    def pickup_otp(self, order: Order) -> str | None:
        """The 6-digit code, derived from the order's random nonce and the server secret.

        The database holds only the nonce, so a copy of it reveals no code, yet the owner can
        reload the page and see the code again.
        """
        if order.otp_nonce is None:
            return None
        mac = hmac.new(self._otp_key, f"{order.id}:{order.otp_nonce}".encode(), hashlib.sha256).digest()
        return f"{int.from_bytes(mac[:8], 'big') % 1_000_000:06d}"

    # --- changes ----------------------------------------------------------------------------

    async def _commit(self, order: Order, changes: dict[str, Any]) -> Order:
        """Compare-and-set on `version`, then publish exactly one event."""
        now = utcnow()
        changes = {**changes, "updated_at": now}
        after = order.model_copy(update=changes)
        deadline = next_deadline(after.deadline_view(), self._settings.unpaid_timeout)
        set_doc = {key: _mongo(value) for key, value in changes.items() if value is not None}
        set_doc["outbox_at"] = now
        unset_doc = {key: "" for key, value in changes.items() if value is None}
        if deadline is None:
            unset_doc["next_deadline_at"] = ""
        else:
            set_doc["next_deadline_at"] = deadline
        update: dict[str, Any] = {"$set": set_doc, "$inc": {"version": 1}}
        if unset_doc:
            update["$unset"] = unset_doc
        try:
            document = await Order.get_pymongo_collection().find_one_and_update(
                {"_id": order.id, "version": order.version}, update, return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:
            raise ApiError(409, messages.TRANSACTION_ID_TAKEN) from None
        if document is None:
            raise ApiError(409, messages.STATUS_CONFLICT)
        updated = Order.model_validate(document)
        self._publisher.written()
        await self._publisher.publish(updated)
        if deadline is not None:
            self._enforcer.deadline_scheduled(deadline)
        return updated

    async def update_payment(self, principal: Principal, order_id: str, payment_status: str,
                             transaction_id: object) -> tuple[Order, str]:
        order = await self.visible_order(principal, order_id)
        transaction = normalise_transaction_id(transaction_id)
        if order.payment_status != PaymentStatus.PENDING:
            raise ApiError(409, messages.PAYMENT_ALREADY_FINAL.format(status=order.payment_status.value))
        if order.order_status != OrderStatus.PLACED:
            raise ApiError(409, messages.PAYMENT_NOT_OPEN)
        now = utcnow()
        if payment_status == PaymentStatus.FAILED:
            changes = {"payment_status": PaymentStatus.FAILED, "order_status": OrderStatus.CANCELLED,
                       "cancelled_at": now, "cancellation_reason": CancellationReason.PAYMENT_FAILED}
            return await self._commit(order, changes), messages.PAYMENT_FAILED_CANCELLED
        changes: dict[str, Any] = {"payment_status": PaymentStatus.SUCCESS, "paid_at": now}
        if transaction:
            if await Order.find_one({"transaction_id": transaction, "_id": {"$ne": order.id}}) is not None:
                raise ApiError(409, messages.TRANSACTION_ID_TAKEN)
            changes["transaction_id"] = transaction
        if needs_commitment(order.requires_commitment, order.is_commitment_confirmed):
            return await self._commit(order, changes), messages.PAYMENT_WAITING_COMMITMENT
        changes.update(order_status=OrderStatus.ACCEPTED, accepted_at=now)
        return await self._commit(order, changes), messages.PAYMENT_UPDATED

    async def update_status(self, principal: Principal, order_id: str, target: OrderStatus,
                            note: str | None) -> Order:
        order = await self.visible_order(principal, order_id)
        current = order.order_status
        if target == OrderStatus.PICKED_UP:
            raise ApiError(400, messages.PICKUP_NEEDS_OTP)
        if not can_store_move(current, target):
            # A target at or behind the current state means the caller's view is stale.
            stale = current in TERMINAL or (
                target in _FORWARD and _FORWARD.index(target) <= _FORWARD.index(current))
            if stale:
                raise ApiError(409, messages.STATUS_CONFLICT)
            raise ApiError(400, messages.INVALID_TRANSITION.format(current=current.value, target=target.value))
        now = utcnow()
        changes: dict[str, Any] = {"order_status": target}
        if target == OrderStatus.ACCEPTED:
            if order.payment_status != PaymentStatus.SUCCESS:
                raise ApiError(400, messages.ACCEPT_NEEDS_PAYMENT)
            if needs_commitment(order.requires_commitment, order.is_commitment_confirmed):
                raise ApiError(400, messages.ACCEPT_NEEDS_COMMITMENT)
            changes["accepted_at"] = now
        elif target == OrderStatus.READY:
            changes.update(ready_at=now, ready_expires_at=now + self._settings.ready_timeout,
                           otp_nonce=secrets.token_hex(16), otp_failed_attempts=0)
        elif target == OrderStatus.CANCELLED:
            changes.update(cancelled_at=now, cancellation_reason=CancellationReason.STORE_CANCELLED,
                           cancellation_note=note)
        return await self._commit(order, changes)

    async def verify_otp(self, principal: Principal, order_id: str, otp: str) -> Order:
        order = await self.visible_order(principal, order_id)
        now = utcnow()
        if order.otp_locked_until is not None and as_utc(order.otp_locked_until) > now:
            raise self._otp_locked(as_utc(order.otp_locked_until), now)
        expected = self.pickup_otp(order)
        if order.order_status != OrderStatus.READY or expected is None:
            raise ApiError(400, messages.OTP_INVALID)
        await self._claim_otp_attempt(order, now)
        if not hmac.compare_digest(expected, otp):
            raise ApiError(400, messages.OTP_INVALID)
        return await self._commit(order, {"order_status": OrderStatus.PICKED_UP, "is_otp_verified": True,
                                          "picked_up_at": now, "otp_failed_attempts": 0,
                                          "otp_locked_until": None})

    async def _claim_otp_attempt(self, order: Order, now: datetime) -> None:
        """Count one attempt before any code is compared; 429 when the window's attempts are spent.

        Each claim is one atomic update whose filter is the limit, so however many requests
        arrive at once on however many processes, at most `otp_max_attempts` get to compare;
        the claim that takes the last attempt sets the lock in the same update. A right code
        resets the count (in `verify_otp`'s commit); a wrong one leaves it counted.
        """
        collection = Order.get_pymongo_collection()
        limit = self._settings.otp_max_attempts
        lock_until = now + timedelta(seconds=self._settings.otp_lockout_seconds)
        for _ in range(3):
            if await collection.find_one_and_update(
                    {"_id": order.id, "otp_failed_attempts": {"$lt": limit - 1}},
                    {"$inc": {"otp_failed_attempts": 1}}, projection={"_id": 1}) is not None:
                return
            if await collection.find_one_and_update(
                    {"_id": order.id, "otp_failed_attempts": limit - 1},
                    {"$inc": {"otp_failed_attempts": 1}, "$set": {"otp_locked_until": lock_until}},
                    projection={"_id": 1}) is not None:
                return
            # Every attempt of the window is taken: locked until the lock ends.
            raw = await collection.find_one({"_id": order.id}, {"otp_locked_until": 1, "otp_failed_attempts": 1})
            stored = (raw or {}).get("otp_locked_until")
            if raw is None or stored is None or as_utc(stored) > now:
                raise self._otp_locked(as_utc(stored) if stored is not None else lock_until, now)
            # The lock has ended: exactly one caller opens the next window (the filter matches
            # the stored lock as read, in whatever form the database keeps it), then all retry.
            await collection.update_one(
                {"_id": order.id, "otp_locked_until": stored, "otp_failed_attempts": {"$gte": limit}},
                {"$set": {"otp_failed_attempts": 0}, "$unset": {"otp_locked_until": ""}})
        raise self._otp_locked(lock_until, now)

    def _otp_locked(self, until: datetime, now: datetime) -> ApiError:
        wait = max(1, int((until - now).total_seconds() + 0.999))
        return ApiError(429, messages.OTP_LOCKED.format(seconds=wait), headers={"Retry-After": str(wait)})

    async def cancel_by_customer(self, principal: Principal, order_id: str) -> Order:
        order = await self.visible_order(principal, order_id)
        if order.order_status != OrderStatus.PLACED or order.payment_status != PaymentStatus.PENDING:
            raise ApiError(409, messages.CANCEL_NOT_ALLOWED)
        return await self._commit(order, {"order_status": OrderStatus.CANCELLED, "cancelled_at": utcnow(),
                                          "cancellation_reason": CancellationReason.CUSTOMER_CANCELLED})

    async def confirm_commitment(self, principal: Principal, order_id: str) -> Order:
        order = await self._find(order_id)
        if str(order.user_id) != principal.user_id:
            raise ApiError(403, messages.COMMITMENT_FORBIDDEN)
        order = await self.enforce_own_deadline(order)
        if order.cancellation_reason == CancellationReason.COMMITMENT_TIMEOUT:
            raise ApiError(400, messages.COMMITMENT_EXPIRED)
        if not order.requires_commitment:
            raise ApiError(400, messages.COMMITMENT_NOT_REQUIRED)
        if order.is_commitment_confirmed:
            raise ApiError(400, messages.COMMITMENT_ALREADY)
        if order.order_status != OrderStatus.PLACED:
            raise ApiError(400, messages.COMMITMENT_NOT_OPEN)
        now = utcnow()
        changes: dict[str, Any] = {"is_commitment_confirmed": True, "commitment_confirmed_at": now}
        if order.payment_status == PaymentStatus.SUCCESS:
            # Payment was verified while we waited for the customer: the order can go ahead.
            changes.update(order_status=OrderStatus.ACCEPTED, accepted_at=now)
        return await self._commit(order, changes)
