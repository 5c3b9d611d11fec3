"""One subscriber's outgoing queue (server/realtime/client.py) without a server: per-order
coalescing, versions that never go backwards, the bounded queue and its snapshot, held events."""

from __future__ import annotations

import json

from prometheus_client import REGISTRY

from server.domain.access import Principal, Role
from server.realtime import frames
from server.realtime.client import Subscriber
from server.realtime.events import OrderChange


def principal(role: Role = Role.STUDENT) -> Principal:
    return Principal(user_id="u1", role=role, store_id=None, name="Asha Rao", expires_at=4e9)


class Writes:
    """A connection that takes (or refuses) each frame written straight to it."""

    def __init__(self, try_write) -> None:
        self.try_write = try_write


def subscriber(queue_size: int = 8, role: Role = Role.STUDENT) -> Subscriber:
    return Subscriber(principal(role), queue_size, frames.order_event, frames.snapshot)


def change(order_id: str, version: int, status: str = "placed") -> OrderChange:
    order = {"id": order_id, "version": version, "orderStatus": status, "storeId": "s1"}
    return OrderChange("updated", order, {"items": [{"name": "Tea", "quantity": 1}]}, "u1")


def drain(sub: Subscriber) -> list[dict]:
    out = []
    while (frame := sub.pop_frame()) is not None:
        out.append(json.loads(frame))
    return out


def counter(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def test_events_for_one_order_coalesce_into_the_newest():
    sub = subscriber()
    coalesced = counter("orderpulse_events_coalesced_total")
    for version, status in [(2, "accepted"), (3, "processing"), (4, "ready")]:
        assert sub.offer(change("o1", version, status))
    assert [(f["version"], f["order"]["orderStatus"]) for f in drain(sub)] == [(4, "ready")]
    assert counter("orderpulse_events_coalesced_total") - coalesced == 2


def test_a_coalesced_event_keeps_its_order_place_in_the_queue():
    sub = subscriber()
    sub.offer(change("o1", 2))
    sub.offer(change("o2", 2))
    sub.offer(change("o1", 3))
    assert [(f["order"]["id"], f["version"]) for f in drain(sub)] == [("o1", 3), ("o2", 2)]


def test_an_event_not_newer_than_what_was_sent_is_dropped():
    sub = subscriber()
    sub.offer(change("o1", 3))
    drain(sub)
    assert not sub.offer(change("o1", 3))
    assert not sub.offer(change("o1", 2))
    assert sub.queue_empty


def test_a_full_queue_of_distinct_orders_drops_the_next_and_asks_for_a_snapshot():
    sub = subscriber(queue_size=8)
    for n in range(8):
        assert sub.offer(change(f"o{n}", 2))
    assert not sub.offer(change("o8", 2))
    assert sub.needs_snapshot
    assert sub.offer(change("o3", 3))  # an order already queued still coalesces
    assert [f["order"]["id"] for f in drain(sub)] == [f"o{n}" for n in range(8)]


def test_events_that_arrive_while_a_snapshot_is_read_follow_it():
    sub = subscriber()
    sub.hold_events()
    sub.offer(change("o1", 3, "accepted"))
    assert sub.queue_empty
    sub.accept_snapshot_version("o1", 2)
    sub.send_snapshot([{"id": "o1", "version": 2}], frame_id=1)
    assert [f["type"] for f in drain(sub)] == ["snapshot", "order"]


def test_a_held_event_older_than_the_snapshot_is_not_sent():
    sub = subscriber()
    sub.hold_events()
    sub.offer(change("o1", 2))
    assert sub.accept_snapshot_version("o1", 3)
    sub.send_snapshot([{"id": "o1", "version": 3}])
    assert [f["type"] for f in drain(sub)] == ["snapshot"]


def test_control_frames_keep_their_place_among_events():
    sub = subscriber()
    sub.offer(change("o1", 2))
    sub.send_control(frames.pong(1))
    sub.offer(change("o2", 2))
    assert [f["type"] for f in drain(sub)] == ["order", "pong", "order"]


def test_customers_get_the_public_frame_and_staff_the_kitchen_view():
    event = change("o1", 2)
    customer, staff = subscriber(), subscriber(role=Role.STORE_EMPLOYEE)
    customer.offer(event)
    staff.offer(event)
    assert "items" not in drain(customer)[0]["order"]
    assert drain(staff)[0]["order"]["items"] == [{"name": "Tea", "quantity": 1}]


def test_an_idle_subscriber_gets_the_event_written_at_once_without_queueing():
    sub = subscriber()
    written = []
    sub.direct = Writes(lambda frame: written.append(frame) is None)
    event = change("o1", 2)
    assert sub.offer(event)
    assert written == [event.wire(False)] and sub.queue_empty
    assert not sub.offer(change("o1", 2))  # already sent


def test_an_event_queues_when_the_connection_cannot_take_it_or_frames_are_waiting():
    sub = subscriber()
    sub.direct = Writes(lambda frame: False)
    sub.offer(change("o1", 2))
    assert not sub.queue_empty
    written = []
    sub.direct = Writes(lambda frame: written.append(frame) is None)
    sub.offer(change("o2", 2))  # behind a queued frame: order is kept
    assert written == [] and [f["order"]["id"] for f in drain(sub)] == ["o1", "o2"]


def test_an_event_queues_while_a_write_is_in_progress():
    sub = subscriber()
    written = []
    sub.direct = Writes(lambda frame: written.append(frame) is None)
    sub.sending()
    sub.offer(change("o1", 2))
    assert written == [] and not sub.queue_empty


def test_queueing_a_frame_wakes_the_writer():
    sub = subscriber()
    woken = []
    sub.on_ready = lambda: woken.append(True)
    sub.offer(change("o1", 2))
    sub.send_control(frames.pong())
    assert woken == [True, True]


def test_a_closed_subscriber_takes_nothing_and_empties_its_queue():
    sub = subscriber()
    sub.offer(change("o1", 2))
    sub.close()
    assert sub.queue_empty
    assert not sub.offer(change("o2", 2))
    sub.send_control(frames.pong())
    assert sub.pop_frame() is None


async def test_next_frame_returns_none_when_nothing_comes_within_the_timeout():
    sub = subscriber()
    assert await sub.next_frame(timeout=0) is None
    sub.offer(change("o1", 2))
    assert json.loads(await sub.next_frame(timeout=0))["version"] == 2
