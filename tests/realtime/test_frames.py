"""The `/ws` frame protocol (server/realtime/frames.py) without a server: what a client may send,
what is refused and how, and the frames the server writes (REALTIME.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from server.domain import messages
from server.realtime import frames
from server.realtime.frames import ClientFrame, FrameRefused

ORDER_A, ORDER_B = "65f7a8b9c1234567890abcde", "65f7a8b9c1234567890abcdf"
REALTIME_MD = Path(__file__).resolve().parents[2] / "static/docs/contracts/REALTIME.md"


def refusal(text: str | None) -> FrameRefused:
    with pytest.raises(FrameRefused) as refused:
        frames.parse(text)
    return refused.value


def test_a_ping_is_read_with_its_id():
    assert frames.parse('{"type": "ping", "id": 7}') == ClientFrame("ping", 7)
    assert frames.parse('{"type": "ping"}') == ClientFrame("ping")


def test_a_subscribe_names_each_order_once_in_the_order_asked():
    frame = frames.parse(json.dumps({"type": "subscribe", "id": "a", "orderIds": [ORDER_B, ORDER_A, ORDER_B]}))
    assert frame == ClientFrame("subscribe", "a", order_ids=[ORDER_B, ORDER_A])


def test_a_store_subscribe_and_an_unsubscribe_name_their_target():
    assert frames.parse('{"type": "subscribe", "storeId": "s1"}') == ClientFrame("subscribe", store_id="s1")
    assert (frames.parse(json.dumps({"type": "unsubscribe", "orderIds": [ORDER_A]}))
            == ClientFrame("unsubscribe", order_ids=[ORDER_A]))


@pytest.mark.parametrize("target", [{}, {"orderIds": [ORDER_A], "storeId": "s1"}])
def test_a_subscribe_needs_exactly_one_target(target):
    refused = refusal(json.dumps({"type": "subscribe", "id": 3, **target}))
    assert (refused.code, refused.message, refused.frame_id) == ("bad_request", messages.WS_TARGET_REQUIRED, 3)


@pytest.mark.parametrize("order_ids", [[], ORDER_A, [ORDER_A, 5], [f"{n:024x}" for n in range(101)]])
def test_order_ids_are_a_list_of_1_to_100_strings(order_ids):
    refused = refusal(json.dumps({"type": "unsubscribe", "id": 4, "orderIds": order_ids}))
    assert (refused.message, refused.frame_id) == (messages.WS_ORDER_IDS_INVALID, 4)


def test_a_hundred_order_ids_are_allowed():
    ids = [f"{n:024x}" for n in range(100)]
    assert frames.parse(json.dumps({"type": "subscribe", "orderIds": ids})).order_ids == ids


def test_a_store_id_must_be_a_string():
    assert refusal('{"type": "subscribe", "id": 5, "storeId": 12}').message == messages.STORE_ID_INVALID


@pytest.mark.parametrize("text, message", [
    (None, messages.WS_FRAME_NOT_TEXT),
    ("not json", messages.WS_FRAME_NOT_OBJECT),
    ('["ping"]', messages.WS_FRAME_NOT_OBJECT),
    ('"ping"', messages.WS_FRAME_NOT_OBJECT),
])
def test_what_is_not_a_json_object_is_refused_without_an_id(text, message):
    refused = refusal(text)
    assert (refused.code, refused.message, refused.frame_id) == ("bad_request", message, None)


def test_an_unknown_type_is_refused_with_its_id():
    refused = refusal('{"type": "subscribe-all", "id": [1, 2]}')
    assert (refused.message, refused.frame_id) == (messages.WS_FRAME_UNKNOWN, [1, 2])


def test_an_auth_frame_carries_its_token_only_when_it_is_a_non_empty_string():
    assert frames.parse('{"type": "auth", "token": "t0k", "id": 1}') == ClientFrame("auth", 1, token="t0k")
    assert frames.parse('{"type": "auth", "token": ""}').token is None
    assert frames.parse('{"type": "auth", "token": 42}').token is None


def test_the_size_limit_counts_bytes_not_characters():
    assert not frames.is_too_big("é" * 8, 16)
    assert frames.is_too_big("é" * 9, 16)
    assert frames.is_too_big(b"x" * 17, 16)


def test_server_frames_echo_an_id_only_when_one_was_given():
    assert json.loads(frames.pong(9)) == {"type": "pong", "id": 9}
    assert json.loads(frames.pong()) == {"type": "pong"}
    assert json.loads(frames.authenticated("x")) == {"type": "authenticated", "id": "x"}
    assert json.loads(frames.snapshot([{"id": ORDER_A}], 0)) == {"type": "snapshot", "orders": [{"id": ORDER_A}],
                                                                 "id": 0}
    assert json.loads(frames.error("forbidden", "No.")) == {"type": "error", "code": "forbidden", "message": "No."}


def test_every_bad_request_message_is_the_one_the_contract_lists():
    row = next(line for line in REALTIME_MD.read_text().splitlines() if line.startswith("| `bad_request` |"))
    listed = set(re.findall(r'`"([^"]+)"`', row))
    assert listed == {messages.WS_FRAME_NOT_OBJECT, messages.WS_FRAME_NOT_TEXT, messages.WS_FRAME_UNKNOWN,
                      messages.WS_TARGET_REQUIRED, messages.WS_ORDER_IDS_INVALID, messages.STORE_ID_INVALID,
                      messages.WS_MINE_ALONE}
