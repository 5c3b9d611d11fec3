"""Each refusal of server/domain/errors.py as each edge answers it: the `/api` body, the partner
API's body, with the same status and `Retry-After`, and the WebSocket error frame."""

from __future__ import annotations

import json

import pytest

from server.domain.errors import (Conflict, Forbidden, Invalid, InvalidTransition, NotFound, OrderPulseError,
                                  RateLimited, Unauthenticated, Unavailable)
from server.http import partner_routes
from server.http.errors import ApiError, rest_response
from server.realtime import frames

MESSAGE = "Order not found."
STATUSES = [
    (Invalid(MESSAGE), 400, {}),
    (InvalidTransition(MESSAGE), 400, {}),
    (Unauthenticated(MESSAGE), 401, {}),
    (Forbidden(MESSAGE), 403, {}),
    (NotFound(MESSAGE), 404, {}),
    (Conflict(MESSAGE), 409, {}),
    (RateLimited(MESSAGE, retry_after=7), 429, {"retry-after": "7"}),
    (Unavailable(MESSAGE, retry_after=2), 503, {"retry-after": "2"}),
]


def _every_refusal_type(kind: type[OrderPulseError] = OrderPulseError) -> set[type[OrderPulseError]]:
    return {sub for direct in kind.__subclasses__() for sub in {direct, *_every_refusal_type(direct)}}


def _headers(response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name not in ("content-length", "content-type")}


def test_every_refusal_type_has_its_status():
    assert {type(refusal) for refusal, *_ in STATUSES} == _every_refusal_type()


@pytest.mark.parametrize(("refusal", "status", "headers"), STATUSES, ids=lambda value: type(value).__name__)
def test_the_api_answers_a_refusal_in_its_envelope(refusal, status, headers):
    response = rest_response(refusal)
    assert (response.status_code, json.loads(response.body)) == (status, {"success": False, "message": MESSAGE})
    assert _headers(response) == headers


@pytest.mark.parametrize(("refusal", "status", "headers"), STATUSES, ids=lambda value: type(value).__name__)
def test_the_partner_api_answers_a_refusal_in_seed_004s_shape(refusal, status, headers):
    response = partner_routes.error_response(refusal)
    assert (response.status_code, json.loads(response.body)) == (status, {"error": MESSAGE})
    assert _headers(response) == headers


def test_a_refusal_of_the_http_layer_keeps_the_status_it_chose():
    refusal = ApiError(499, "X-Client-ID is required.", headers={"X-Reason": "client"})
    rest, partner = rest_response(refusal), partner_routes.error_response(refusal)
    assert (rest.status_code, json.loads(rest.body), rest.headers["x-reason"]) == (
        499, {"success": False, "message": "X-Client-ID is required."}, "client")
    assert (partner.status_code, json.loads(partner.body)) == (499, {"error": "X-Client-ID is required."})


@pytest.mark.parametrize(("refusal", "code"), [
    (Forbidden("You may not watch this order."), "forbidden"),
    (NotFound("Store not found."), "not_found"),
    (RateLimited("Too many subscribes from this account; subscribe again in a second.", retry_after=1), "rate_limited"),
])
def test_a_socket_hears_a_refused_subscribe_as_an_error_frame_with_the_refusals_code(refusal, code):
    assert json.loads(frames.refused(refusal, 4)) == {"type": "error", "code": code, "message": refusal.message,
                                                      "id": 4}
