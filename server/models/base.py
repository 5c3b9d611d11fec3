"""The base of every document: datetimes are always timezone-aware UTC once read.

MongoDB with `tz_aware=True` already returns aware datetimes. nx-27017 returns values written by
`$set` as naive `YYYY-MM-DD HH:MM:SS.ffffff` strings (see README, "Embedded MongoDB"); pydantic
parses those, and this validator makes them UTC, so no code downstream sees the difference.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Self

from beanie import Document, PydanticObjectId
from pydantic import model_validator


class UtcDocument(Document):
    @model_validator(mode="after")
    def _aware_datetimes(self) -> Self:
        for name, value in self.__dict__.items():
            if isinstance(value, datetime) and value.tzinfo is None:
                object.__setattr__(self, name, value.replace(tzinfo=timezone.utc))
        return self


def stored_id(document: Document) -> PydanticObjectId:
    """The id of a document that is in the database (Beanie types `id` optional for a new one)."""
    if document.id is None:
        raise ValueError(f"this {type(document).__name__} was never stored, so it has no id")
    return document.id
