"""Request bodies of the pickup board's routes (server/http/board_routes.py), parsed like every
other body (server/http/requests.py) and documented from these models."""

from __future__ import annotations

from typing import Annotated, ClassVar

from server.http.requests import Flag, RequestModel, Text


class DisplayRequest(RequestModel):
    """A new display link of a store; the label says which screen it is for ("Counter TV")."""

    label: Annotated[str | None, Text(60, required=False)] = None


class BoardSettingsRequest(RequestModel):
    """The store's pickup-board settings: `announce` reads each new ready number aloud."""

    announce: Annotated[bool | None, Flag(default=None, null_refused=True)] = None

    needs_a_change: ClassVar[bool] = True


MODELS = [DisplayRequest, BoardSettingsRequest]
