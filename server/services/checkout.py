"""Checkout: pricing a cart, the signed checkout session, and creating the order it pays for."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from server.config import Settings
from server.domain import messages
from server.domain.access import Principal
from server.domain.cart import MAX_QUANTITY, CartLine
from server.domain.clock import SYSTEM_CLOCK, Clock, as_utc, iso_z, js_date_string
from server.domain.deadlines import next_deadline
from server.domain.errors import Conflict, Forbidden, Invalid
from server.domain.money import paise_to_rupees
from server.domain.slots import deferred_ready_around, order_weight
from server.domain.trust import TrustStanding, TrustTier
from server.domain.upi import new_payment_reference, normalise_transaction_id, payment_link
from server.models import Counter, MenuItem, Order, OrderItem, Store
from server.services import order_store
from server.services.accounts import AccountService
from server.services import slots
from server.services.deadlines import DeadlineEnforcer
from server.services.outage import upserted
from server.services.publishing import ChangePublisher
from server.services.tokens import TokenService
from server.services.webhooks import record_creation
from server.views import CheckoutSession, order_item_view


class CheckoutService:
    def __init__(self, settings: Settings, accounts: AccountService, tokens: TokenService,
                 publisher: ChangePublisher, enforcer: DeadlineEnforcer, clock: Clock = SYSTEM_CLOCK,
                 store_changed: Callable[[str], Awaitable[None]] | None = None) -> None:
        self._settings = settings
        # Publishes a store's catalog event: menu pages see its slot fill up (server/services/slots.py).
        self._store_changed = store_changed
        self._accounts = accounts
        self._tokens = tokens
        self._publisher = publisher
        self._enforcer = enforcer
        self._clock = clock

    async def checkout_session(self, principal: Principal, store_id: str, cart: list[CartLine],
                               special_instructions: str | None) -> CheckoutSession:
        """The priced cart, signed into a checkout token the order is later created from."""
        now = self._clock.now()
        standing = await self._accounts.trust_standing(principal.user_id, now)
        self._refuse_restricted(standing)
        store = await Store.get(store_id) if ObjectId.is_valid(store_id) else None
        if store is None:
            raise Invalid(messages.STORE_NOT_FOUND)
        if not store.is_active:
            raise Invalid(messages.CART_STORE_INACTIVE)
        if store.is_paused:
            raise Invalid(messages.STORE_PAUSED)
        if store.closes_at is not None and as_utc(store.closes_at) <= now:
            raise Invalid(messages.STORE_CLOSED)
        items, weight = await self._priced_items(store, cart)
        # A capped store's full slot sends the order to a later one (told here), or refuses it.
        slot = await slots.first_free(store, weight, now)
        deferred = slot is not None and slot > now
        total = sum(item.total_paise for item in items)
        reference = new_payment_reference()
        lifetime = self._settings.checkout_lifetime
        token = self._tokens.issue_checkout({
            "sub": principal.user_id, "jti": uuid.uuid4().hex, "storeId": str(store.id),
            "items": [[str(i.menu_item_id), i.quantity, i.price_paise] for i in items],
            "total": total, "ref": reference, "note": special_instructions,
        }, now, lifetime)
        return {
            "checkoutToken": token,
            "paymentReference": reference,
            "expiresInSeconds": int(lifetime.total_seconds()),
            "totalAmount": paise_to_rupees(total),
            "items": [order_item_view(item) for item in items],
            "specialInstructions": special_instructions,
            "store": {"id": str(store.id), "name": store.name, "location": store.location, "upiId": store.upi_id},
            "noShowPolicy": {
                "trustTier": standing.tier,
                "noShowCount": standing.no_show_count,
                "requiresCommitment": standing.requires_commitment,
                "commitmentWindowMinutes": self._settings.order_commitment_timeout_minutes,
                "unpaidTimeoutMinutes": self._settings.unpaid_order_timeout_minutes,
                "readyTimeoutMinutes": self._settings.ready_no_show_timeout_minutes,
            },
            "payment": {"mode": "direct_store_upi",
                        "upiLink": payment_link(store.upi_id, store.name, total, reference)},
            "slot": None if slot is None else {
                "deferred": deferred, "readyAround": iso_z(deferred_ready_around(slot)) if deferred else None},
        }

    async def _priced_items(self, store: Store, cart: list[CartLine]) -> tuple[list[OrderItem], int]:
        """The priced lines and the items they count for against the store's cap."""
        if not cart:
            raise Invalid(messages.CART_EMPTY)
        seen: set[str] = set()
        for line in cart:
            if not ObjectId.is_valid(line.menu_item_id):
                raise Invalid(messages.CART_ITEM_UNKNOWN.format(item_id=line.menu_item_id))
            if line.menu_item_id in seen:
                raise Invalid(messages.CART_DUPLICATE_ITEM.format(item_id=line.menu_item_id))
            seen.add(line.menu_item_id)
            if not 1 <= line.quantity <= MAX_QUANTITY:
                raise Invalid(messages.CART_QUANTITY)
        found = {str(item.id): item for item in
                 await MenuItem.find({"_id": {"$in": [ObjectId(i) for i in seen]}}).to_list()}
        priced = []
        weights = []
        for line in cart:
            menu_item = found.get(line.menu_item_id)
            if menu_item is None:
                raise Invalid(messages.CART_ITEM_UNKNOWN.format(item_id=line.menu_item_id))
            if menu_item.store_id != str(store.id):
                raise Invalid(messages.CART_ITEM_OTHER_STORE.format(item_id=line.menu_item_id))
            if not menu_item.is_available:
                raise Invalid(messages.CART_ITEM_UNAVAILABLE.format(name=menu_item.name))
            priced.append(OrderItem(menu_item_id=str(menu_item.id), name=menu_item.name,
                                    price_paise=menu_item.price_paise, quantity=line.quantity,
                                    total_paise=menu_item.price_paise * line.quantity))
            weights.append((line.quantity, menu_item.cap_weight))
        return priced, order_weight(weights)

    def _refuse_restricted(self, standing: TrustStanding) -> None:
        if standing.tier == TrustTier.RESTRICTED and standing.restricted_until is not None:
            until = js_date_string(standing.restricted_until, self._settings.zone)
            raise Forbidden(messages.RESTRICTED.format(until=until))

    async def create_order(self, principal: Principal, checkout_token: object, transaction_id: object, *,
                           partner_client_id: str | None = None) -> tuple[Order, bool]:
        """Returns the order and whether this call created it (False: the checkout's existing order).
        `partner_client_id`: the `/v1` client creating it, whose webhook endpoints hear of its changes."""
        if checkout_token is None or checkout_token == "":
            raise Invalid(messages.CHECKOUT_TOKEN_REQUIRED)
        if not isinstance(checkout_token, str):
            raise Invalid(messages.CHECKOUT_INVALID)
        claims = self._tokens.verify_checkout(checkout_token)
        if claims.get("sub") != principal.user_id:
            raise Invalid(messages.CHECKOUT_INVALID)
        transaction = normalise_transaction_id(transaction_id)
        existing = await order_store.by_checkout(claims["storeId"], claims["jti"])
        if existing is not None:
            return existing, False

        now = self._clock.now()
        user_id = principal.user_id
        standing = await self._accounts.trust_standing(user_id, now)
        self._refuse_restricted(standing)
        store, items, weight = await self._recheck_cart(claims)
        if store.closes_at is not None and as_utc(store.closes_at) <= now:
            raise Conflict(messages.STORE_CLOSED)
        if transaction and await order_store.transaction_taken(transaction, now=now,
                                                               checkout=(str(store.id), claims["jti"])):
            raise Conflict(messages.TRANSACTION_ID_TAKEN)
        claimed = await slots.claim(store, weight, now)

        order = Order(
            id=ObjectId(),  # known before the insert: a transaction id's claim names it
            order_number=await self._next_order_number(now),
            user_id=user_id, store_id=str(store.id), store_name=store.name, store_location=store.location,
            customer_first_name=principal.first_name,
            items=items, total_paise=claims["total"], special_instructions=claims.get("note"),
            payment_reference=claims["ref"], transaction_id=transaction, checkout_id=claims["jti"],
            requires_commitment=standing.requires_commitment,
            commitment_deadline_at=now + self._settings.commitment_timeout if standing.requires_commitment else None,
            created_at=now, updated_at=now, outbox_at=now, partner_client_id=partner_client_id,
            # A store closing for payments: the order must be paid by its closing at the latest.
            payment_due_by=as_utc(store.closes_at) if store.closes_at is not None else None,
        )
        if claimed is not None:
            order.slot_start, order.slot_weight, order.slot_held = claimed.start, claimed.weight, True
            order.slot_deferred = claimed.deferred
        order.next_deadline_at = next_deadline(order.deadline_view(), self._settings.unpaid_timeout)
        if partner_client_id:
            record_creation(order, self._settings.zone, now)
        transaction_claim = await order_store.claim_transaction(transaction, order, now) if transaction else None
        if transaction_claim == "taken":
            if claimed is not None:
                await slots.give_back(str(store.id), claimed)
            raise Conflict(messages.TRANSACTION_ID_TAKEN)
        try:
            await order_store.insert(order)
        except BaseException as exc:
            if transaction and transaction_claim == "claimed":
                await order_store.release_transaction(transaction, order)
            if not isinstance(exc, DuplicateKeyError):
                raise
            if claimed is not None:
                await slots.give_back(str(store.id), claimed)
            existing = await order_store.by_checkout(str(store.id), claims["jti"])
            if existing is not None:
                return existing, False
            raise
        await self._publisher.publish(order, created=True)
        if claimed is not None and (claimed.filled or claimed.deferred) and self._store_changed is not None:
            await self._store_changed(str(store.id))
        if order.next_deadline_at:
            self._enforcer.deadline_scheduled(order.next_deadline_at)
        return order, True

    async def _recheck_cart(self, claims: dict[str, Any]) -> tuple[Store, list[OrderItem], int]:
        """The cart must still be what the customer paid for."""
        store = await Store.get(claims["storeId"])
        if store is None or not store.is_active:
            raise Conflict(messages.CART_CHANGED)
        if store.is_paused:
            raise Conflict(messages.STORE_PAUSED)
        lines = claims["items"]
        found = {str(i.id): i for i in await MenuItem.find({"_id": {"$in": [ObjectId(l[0]) for l in lines]}}).to_list()}
        items = []
        weights = []
        for item_id, quantity, price in lines:
            menu_item = found.get(item_id)
            if (menu_item is None or not menu_item.is_available or menu_item.price_paise != price
                    or menu_item.store_id != str(store.id)):
                raise Conflict(messages.CART_CHANGED)
            items.append(OrderItem(menu_item_id=str(menu_item.id), name=menu_item.name, price_paise=price,
                                   quantity=quantity, total_paise=price * quantity))
            weights.append((quantity, menu_item.cap_weight))
        return store, items, order_weight(weights)

    async def _next_order_number(self, now: datetime) -> str:
        day = as_utc(now).astimezone(self._settings.zone).strftime("%Y%m%d")
        counter = upserted(await Counter.get_pymongo_collection().find_one_and_update(
            {"_id": f"order-number:{day}"}, {"$inc": {"seq": 1}}, upsert=True,
            return_document=ReturnDocument.AFTER))
        return f"ORD-{day}-{counter['seq']:03d}"
