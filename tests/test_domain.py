"""Pure rules, no database: money, time formats, trust tiers, the transition table (deadlines:
tests/test_deadline_rules.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from server.domain.clock import as_utc, iso_z, js_date_string, partner_timestamp
from server.domain.lifecycle import OrderStatus, can_store_move
from server.domain.money import InvalidAmount, paise_to_rupees, rupees_to_paise
from server.domain.trust import TrustPolicy, TrustTier, standing

IST = ZoneInfo("Asia/Kolkata")
T0 = datetime(2024, 3, 18, 14, 30, tzinfo=timezone.utc)


def test_money_round_trips_exactly():
    assert rupees_to_paise(49.5) == 4950 and rupees_to_paise(120) == 12000 and rupees_to_paise(0.1) == 10
    assert rupees_to_paise(100_000) == 10_000_000 and rupees_to_paise(0.01) == 1
    assert paise_to_rupees(24950) == 249.5 and paise_to_rupees(12000) == 120
    for bad in (0, -1, 1.005, "x", "120", None, True, float("nan"), float("inf"), 10**8, 1e26, 1e300, 100_000.01):
        with pytest.raises(InvalidAmount):
            rupees_to_paise(bad)


def test_timestamp_formats_of_the_contracts():
    assert iso_z(T0) == "2024-03-18T14:30:00.000Z"
    assert iso_z(None) is None
    assert js_date_string(datetime(2024, 3, 25, 9, 0, tzinfo=timezone.utc), IST) == "Mon Mar 25 2024 14:30:00 GMT+0530"
    assert partner_timestamp(datetime(2024, 3, 18, 9, 2, 10, 123000, tzinfo=timezone.utc), IST) == \
        "2024-03-18 14:32:10.123+05:30"
    assert as_utc("2024-03-18 14:30:00.000000") == T0
    assert as_utc(datetime(2024, 3, 18, 14, 30)) == T0


def test_trust_tiers():
    policy = TrustPolicy(2, 3, timedelta(days=14))
    assert standing(0, None, policy, T0).tier == TrustTier.GOOD
    assert standing(1, T0, policy, T0).tier == TrustTier.GOOD
    assert standing(2, T0, policy, T0).tier == TrustTier.WATCH
    restricted = standing(3, T0, policy, T0 + timedelta(days=1))
    assert restricted.tier == TrustTier.RESTRICTED and restricted.restricted_until == T0 + timedelta(days=14)
    after = standing(3, T0, policy, T0 + timedelta(days=15))
    assert (after.tier, after.restricted_until, after.requires_commitment) == (TrustTier.WATCH, None, True)


def test_transition_table():
    assert can_store_move(OrderStatus.PLACED, OrderStatus.ACCEPTED)
    assert can_store_move(OrderStatus.READY, OrderStatus.CANCELLED)
    assert not can_store_move(OrderStatus.PLACED, OrderStatus.READY)
    assert not can_store_move(OrderStatus.PICKED_UP, OrderStatus.CANCELLED)
    assert not can_store_move(OrderStatus.CANCELLED, OrderStatus.PLACED)
