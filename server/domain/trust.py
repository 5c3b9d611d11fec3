"""Trust tiers, derived from a customer's no-show history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class TrustTier(StrEnum):
    GOOD = "good"
    WATCH = "watch"
    RESTRICTED = "restricted"


@dataclass(frozen=True)
class TrustPolicy:
    warning_threshold: int
    restriction_threshold: int
    restriction_length: timedelta


@dataclass(frozen=True)
class TrustStanding:
    tier: TrustTier
    no_show_count: int
    restricted_until: datetime | None

    @property
    def requires_commitment(self) -> bool:
        return self.tier != TrustTier.GOOD


def standing(no_show_count: int, last_no_show_at: datetime | None, policy: TrustPolicy,
             now: datetime) -> TrustStanding:
    """The block starts at the no-show that reaches the threshold (and any later one renews it)."""
    restricted_until = None
    if no_show_count >= policy.restriction_threshold and last_no_show_at is not None:
        restricted_until = last_no_show_at + policy.restriction_length
    if restricted_until is not None and restricted_until > now:
        return TrustStanding(TrustTier.RESTRICTED, no_show_count, restricted_until)
    if no_show_count >= policy.warning_threshold:
        return TrustStanding(TrustTier.WATCH, no_show_count, None)
    return TrustStanding(TrustTier.GOOD, no_show_count, None)
