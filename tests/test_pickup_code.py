"""The pickup code (server/domain/pickup_code.py): derived, never stored, stable across restarts."""

from __future__ import annotations

from server.domain.pickup_code import codes_match, new_nonce, pickup_code, pickup_key

ORDER_ID = "65f0c0ffee0000000000abcd"


def test_a_code_is_six_digits_and_the_same_for_the_same_order_nonce_and_secret():
    key = pickup_key("s3cret")
    # Pinned: a deploy that changed the derivation would change the code of every ready order.
    assert pickup_code(key, ORDER_ID, "ab" * 16) == "205003"
    assert pickup_code(pickup_key("s3cret"), ORDER_ID, "ab" * 16) == "205003"


def test_another_nonce_order_or_secret_gives_another_code():
    key, nonce = pickup_key("s3cret"), "ef" * 16
    code = pickup_code(key, ORDER_ID, nonce)
    assert len(code) == 6 and code.isdigit()
    assert len({code, pickup_code(key, ORDER_ID, "cd" * 16), pickup_code(key, "65f0c0ffee0000000000abce", nonce),
                pickup_code(pickup_key("other"), ORDER_ID, nonce)}) == 4
    assert len(new_nonce()) == 32 and len({new_nonce() for _ in range(50)}) == 50


def test_codes_are_compared_exactly():
    assert codes_match("012345", "012345")
    assert not codes_match("012345", "12345") and not codes_match("012345", "012346")
