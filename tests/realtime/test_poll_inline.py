"""poll-status through a real server process, where a repeated poll the process can answer from
memory is written by the HTTP protocol as soon as its head is read (`InlineAnswer`): the answer
is the route's (the same status, headers and body; only the date and the headers' order may
differ), and it is counted like any other."""

from __future__ import annotations

import httpx

from tests.support import metric_value

ROUTE = "/api/orders/{order_id}/poll-status"


def _comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = sorted((name, value) for name, value in response.headers.multi_items() if name != "date")
    return response.status_code, headers, response.content


async def test_an_answer_from_memory_is_the_routes_answer(site):
    api, customer, other = site.api, site.alice, site.bob
    order = await api.place_order(customer, site.store)
    path = f"/api/orders/{order['id']}/poll-status"
    first = await api.get(path, customer)  # the route, which leaves the snapshot in memory
    assert first.status_code == 200
    metrics_before = (await api.get("/metrics")).text
    from_memory = await api.get(path, customer)
    by_route = await api.get(path + "?via=route", customer)
    assert _comparable(from_memory) == _comparable(by_route)
    etag = from_memory.headers["etag"]
    not_modified = await api.get(path, customer, headers={"If-None-Match": etag})
    not_modified_by_route = await api.get(path + "?via=route", customer, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and _comparable(not_modified) == _comparable(not_modified_by_route)
    # Nobody else's order is answered from memory: another customer and a caller without a
    # token get the route's refusals.
    assert (await api.get(path, other)).status_code in (403, 404)
    assert (await api.get(path)).status_code == 401
    metrics_after = (await api.get("/metrics")).text
    for status, answered in (("200", 1), ("304", 1)):
        before = metric_value(metrics_before, "orderpulse_http_requests_total", method="GET", route=ROUTE, status=status)
        after = metric_value(metrics_after, "orderpulse_http_requests_total", method="GET", route=ROUTE, status=status)
        assert after - before >= answered, status
    snapshot_before = metric_value(metrics_before, "orderpulse_poll_cache_total", source="snapshot")
    assert metric_value(metrics_after, "orderpulse_poll_cache_total", source="snapshot") - snapshot_before >= 2
