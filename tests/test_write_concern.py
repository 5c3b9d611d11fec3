"""Order changes are written as a replica set needs them (README, "MongoDB at scale"): acknowledged
by a majority, retried once across a failover, state read from the primary; the embedded nx-27017
takes all three, so the same options hold with and without MONGODB_URL."""

from __future__ import annotations

from pymongo import ReadPreference

from tests.support import Api


async def test_writes_wait_for_a_majority_are_retried_once_and_reads_go_to_the_primary(api: Api):
    client = api.runtime.client
    assert client.write_concern.document == {"w": "majority"}
    assert client.options.retry_writes is True
    assert client.read_preference == ReadPreference.PRIMARY
    # Every collection the models use inherits them, and the database takes such writes.
    customer = await api.customer()
    store = await api.store()
    order = await api.place_order(customer, store)
    response = await api.advance(store, order["id"], "paid")
    assert response.json()["data"]["paymentStatus"] == "success"
