"""`orderpulse demo --simulate`: simulated customers order at a lunch-rush pace, some never pick up.

Only the customers are simulated. The store side is left to the person at the kitchen display:
they verify payment, prepare, mark ready and enter the pickup code a customer at the counter reads
out (printed on the demo's console). Orders nobody works, and customers who never come, meet their
deadlines, so a newcomer sees unpaid timeouts and no-shows act.

Pacing is a non-homogeneous Poisson process over a simulated service day (11:00 to 15:00, the
simulation starting at 12:00) with a lunch peak around 12:30 and a second one around 13:30,
compressed in time by `speed`; arrivals are drawn by thinning, from a seeded generator, and waited
for on the injected Clock.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from server.domain.access import Principal
from server.domain.cart import CartLine
from server.domain.clock import Clock
from server.domain.errors import NotFound, OrderPulseError
from server.domain.lifecycle import OrderStatus

if TYPE_CHECKING:
    from server.services.checkout import CheckoutService
    from server.services.order_lifecycle import OrderLifecycle
    from server.services.order_queries import OrderQueries

log = logging.getLogger("orderpulse.simulation")

HOUR = 3600.0


@dataclass(frozen=True)
class Peak:
    at_hour: float  # local hour of day, 12.5 is 12:30
    extra_per_hour: float  # orders per hour added at the top of the peak
    spread_hours: float  # standard deviation of the bell around it


@dataclass(frozen=True)
class RushProfile:
    """Orders per simulated hour across the service day: a base rate plus bell-shaped peaks."""

    opens_at_hour: float = 11.0
    closes_at_hour: float = 15.0
    # About 85 orders a day, up to ~80 an hour at 12:30: one busy campus counter.
    base_per_hour: float = 8.0
    peaks: tuple[Peak, ...] = (Peak(12.5, 50.0, 0.3), Peak(13.5, 25.0, 0.25))

    def rate(self, hour: float) -> float:
        """Expected orders per simulated hour at `hour` (0 while closed)."""
        if not self.opens_at_hour <= hour < self.closes_at_hour:
            return 0.0
        return self.base_per_hour + sum(
            peak.extra_per_hour * math.exp(-((hour - peak.at_hour) ** 2) / (2 * peak.spread_hours ** 2))
            for peak in self.peaks)

    @property
    def highest_rate(self) -> float:
        """A bound on `rate` over the day, for thinning."""
        return self.base_per_hour + sum(peak.extra_per_hour for peak in self.peaks)


class LunchRush:
    """The simulated hour of day and when the next customer orders; the day starts again at closing."""

    def __init__(self, profile: RushProfile, rng: random.Random, start_hour: float | None = None) -> None:
        self.profile = profile
        self._rng = rng
        self.hour = profile.opens_at_hour if start_hour is None else start_hour

    def next_arrival(self) -> float:
        """Advance to the next order and return the simulated hours since the previous one."""
        profile, elapsed = self.profile, 0.0
        while True:
            step = self._rng.expovariate(profile.highest_rate)
            elapsed += step
            self.hour += step
            if self.hour >= profile.closes_at_hour:
                # After closing comes the next day's opening at once: a demo has no night.
                self.hour = profile.opens_at_hour + (self.hour - profile.closes_at_hour)
            if self._rng.random() * profile.highest_rate <= profile.rate(self.hour):
                return elapsed


@dataclass
class SimulatedCustomer:
    principal: Principal
    will_pick_up: bool = True


@dataclass
class _Pending:
    order_id: str
    customer: SimulatedCustomer
    announced: bool = False


@dataclass
class Simulation:
    """Simulated customers of one store, placing orders through the same services the API uses."""

    store_id: str
    customers: list[Principal]
    checkout: CheckoutService
    lifecycle: OrderLifecycle
    orders: OrderQueries
    menu: Callable[[], Awaitable[list[str]]]  # the ids of the store's items available now
    clock: Clock
    speed: float = 4.0
    no_show_rate: float = 0.15
    say: Callable[[str], None] = print
    profile: RushProfile = field(default_factory=RushProfile)
    # How often, in real seconds, ready orders are checked for a customer coming to the counter.
    counter_check_seconds: float = 2.0
    seed: int = 11
    # The simulated day starts shortly before the rush, so a newcomer sees it within minutes.
    start_hour: float = 12.0
    placed: list[str] = field(default_factory=list)
    _pending: list[_Pending] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Pacing draws from its own generator, so the schedule does not depend on what is ordered.
        self.rush = LunchRush(self.profile, random.Random(self.seed), self.start_hour)
        self.rng = random.Random(self.seed + 1)

    def real_seconds(self, simulated_hours: float) -> float:
        """Simulated time on the clock: `speed` simulated seconds pass in one real second."""
        return simulated_hours * HOUR / self.speed

    async def run(self, stop: asyncio.Event) -> None:
        """Place orders until `stop` is set; a refused order (store closed, item sold out, a
        restricted customer) is skipped as a real customer would give up."""
        while not stop.is_set():
            gap = self.real_seconds(self.rush.next_arrival())
            await self._watch_counter(gap, stop)
            if stop.is_set():
                return
            try:
                await self.place_one()
            except OrderPulseError as refused:
                log.info("simulated order refused: %s", refused.message)
            except Exception:
                log.exception("simulated order failed")

    async def place_one(self) -> str | None:
        """One customer orders one to three available items; returns the order id, or None."""
        available = await self.menu()
        if not available or not self.customers:
            return None
        principal = self.rng.choice(self.customers)
        picks = self.rng.sample(available, k=min(len(available), self.rng.choice((1, 1, 2, 2, 3))))
        cart = [CartLine(item_id, self.rng.choice((1, 1, 1, 2))) for item_id in picks]
        session = await self.checkout.checkout_session(principal, self.store_id, cart, None)
        paid_by_upi = self.rng.random() < 0.7
        # Not from the seeded generator: a second demo run on the same database must not reuse one.
        transaction = secrets.token_hex(6).upper() if paid_by_upi else None
        order, _ = await self.checkout.create_order(principal, session["checkoutToken"], transaction)
        customer = SimulatedCustomer(principal, will_pick_up=self.rng.random() >= self.no_show_rate)
        if order.requires_commitment and customer.will_pick_up:
            await self.lifecycle.confirm_commitment(principal, str(order.id))
        self.placed.append(str(order.id))
        if customer.will_pick_up:
            self._pending.append(_Pending(str(order.id), customer))
        return str(order.id)

    async def _watch_counter(self, seconds: float, stop: asyncio.Event) -> None:
        """Wait `seconds`, meanwhile sending customers whose order is ready to the counter."""
        deadline = self.clock.monotonic() + seconds
        while not stop.is_set():
            try:
                await self.announce_arrivals()
            except Exception:  # a database blip: the counter is checked again next time
                log.warning("could not check the simulated customers' ready orders")
            left = deadline - self.clock.monotonic()
            if left <= 0:
                return
            await self.clock.sleep(min(left, self.counter_check_seconds), stop)

    async def announce_arrivals(self) -> None:
        """A customer whose order became ready comes to the counter and reads out the pickup code."""
        still: list[_Pending] = []
        for pending in self._pending:
            try:
                order = await self.orders.find(pending.order_id)
            except NotFound:
                continue
            if order.order_status == OrderStatus.READY and not pending.announced:
                code = self.orders.pickup_otp(order)
                self.say(f"At the counter: {pending.customer.principal.name} for order {order.order_number}, "
                         f"pickup code {code}")
                pending.announced = True
            if order.order_status not in (OrderStatus.PICKED_UP, OrderStatus.CANCELLED):
                still.append(pending)
        self._pending = still
