"""Request bodies parsed by their models (server/http/requests.py, by the rules of
server/http/body_rules.py): the first field that breaks its rule, in the model's order, is the one
`400` names, in the words the API always used."""

from __future__ import annotations

import pytest

from server.http.body_rules import parse
from server.http.errors import ApiError
from server.http.requests import (AdminUserRequest, CheckoutSessionRequest, CreateOrderRequest, MenuItemPatch,
                                  MenuItemRequest, RegisterRequest, VerifyOtpRequest)

LINE = {"menuItemId": "65f7a8b9c1234567890abcde", "quantity": 1}
STUDENT = {"name": "Mira", "email": "mira@campus.edu", "password": "long-enough-1", "role": "student",
           "registerNumber": "R1"}


def refusal(model, body, **context) -> str:
    with pytest.raises(ApiError) as caught:
        parse(model, body, **context)
    assert caught.value.status_code == 400
    return caught.value.message


def test_the_first_failing_field_in_the_models_order_is_the_one_named():
    assert refusal(RegisterRequest, {**STUDENT, "name": 5, "email": "nope", "password": "short"}) == \
        "name must be a string."
    assert refusal(RegisterRequest, {**STUDENT, "email": "nope", "password": "short"}) == \
        "email must be a valid email address."
    assert refusal(RegisterRequest, {}) == "name is required."
    assert refusal(RegisterRequest, {**STUDENT, "role": " teacher "}) == "role must be one of: student, faculty, store_employee."


def test_a_missing_price_is_named_before_any_other_field():
    assert refusal(MenuItemRequest, {}) == "price is required."
    assert refusal(MenuItemRequest, {"price": 12}) == "name is required."
    assert refusal(MenuItemRequest, {"name": "Tea", "price": "12"}) == "price must be a number."


def test_cart_errors_name_their_place_in_the_cart():
    body = {"storeId": "65f7a8b9c1234567890abcde"}
    assert refusal(CheckoutSessionRequest, {**body, "items": [LINE, {"menuItemId": "x"}]}) == \
        "items[1].quantity must be a whole number."
    assert refusal(CheckoutSessionRequest, {**body, "items": [LINE, 5]}) == "items[1] must be an object."
    assert refusal(CheckoutSessionRequest, {**body, "items": [{"quantity": 1}]}) == "menuItemId is required."
    assert refusal(CheckoutSessionRequest, {**body, "items": [LINE] * 51}) == "items must have at most 50 entries."
    assert refusal(CheckoutSessionRequest, {**body, "items": {}}) == "items must be an array."
    assert refusal(CheckoutSessionRequest, {"items": [5]}) == "storeId is required."
    parsed = parse(CheckoutSessionRequest, {**body, "items": [LINE], "specialInstructions": " less ice\r\nno sugar "})
    assert parsed.special_instructions == "less ice\nno sugar" and parsed.items[0].quantity == 1


def test_a_field_of_the_other_role_is_ignored():
    faculty = {**STUDENT, "role": "faculty", "registerNumber": 123, "employeeId": "E7"}
    parsed = parse(RegisterRequest, faculty)
    assert (parsed.register_number, parsed.employee_id) == (None, "E7")
    assert refusal(RegisterRequest, {**STUDENT, "registerNumber": None, "employeeId": 5}) == \
        "registerNumber is required."
    assert parse(AdminUserRequest, {**STUDENT, "role": "admin"}).store_id is None


def test_a_patch_tells_an_absent_field_from_a_null_one():
    assert parse(MenuItemPatch, {}).changes() == {}
    assert parse(MenuItemPatch, {"name": None, "isAvailable": False, "price": 49.5}).changes() == \
        {"is_available": False, "price_paise": 4950}
    assert refusal(MenuItemPatch, {"price": None}) == "price must be a number."
    assert refusal(MenuItemPatch, {"category": ""}) == "category is required."


def test_reserved_email_domains_are_accepted_only_in_the_test_environment():
    body = {**STUDENT, "email": "Mira@Campus.TEST"}
    assert refusal(RegisterRequest, body) == "email must be a valid email address."
    assert parse(RegisterRequest, body, test_environment=True).email == "Mira@campus.test"


def test_values_the_service_checks_are_handed_over_as_sent():
    parsed = parse(CreateOrderRequest, {"checkoutToken": 5, "transactionId": ["x"], "unknown": 1})
    assert (parsed.checkout_token, parsed.transaction_id) == (5, ["x"])
    assert parse(CreateOrderRequest, {}).checkout_token is None


def test_a_pickup_code_is_text_or_a_number():
    assert parse(VerifyOtpRequest, {"otp": 1234}).otp == "001234"
    assert parse(VerifyOtpRequest, {"otp": " 123456 "}).otp == "123456"
    assert refusal(VerifyOtpRequest, {"otp": True}) == "otp is required."


async def test_a_pickup_code_with_characters_outside_ascii_is_a_400_not_a_500(api):
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    await api.advance(store, order["id"], "paid", "processing", "ready")
    for code in ("12\u202e3456", "１２３４５６", "12\x003456"):
        response = await api.post(f"/api/orders/{order['id']}/verify-otp", store.staff, json={"otp": code})
        assert response.status_code == 400, code
        assert response.json() == {"success": False, "message": "otp must contain only printable ASCII characters."}
    code = await api.otp_of(customer, order["id"])
    response = await api.post(f"/api/orders/{order['id']}/verify-otp", store.staff, json={"otp": code})
    assert response.status_code == 200  # the refused codes took no attempt and locked nothing
