"""`/docs`: the API reference Redoc (vendored under static/vendor/) renders from `/openapi.json`,
in a real browser, under the page's Content-Security-Policy, with nothing fetched from elsewhere."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import expect

from tests.browser.conftest import WALL, screenshot

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def test_docs_render_the_api_reference_from_openapi_json_without_leaving_loopback(start_server, open_page):
    server = start_server()
    page = open_page(WALL)
    requests: list[str] = []
    console_errors: list[str] = []
    # Every request of the page and of its workers passes here; one to another host is refused.
    page.context.on("request", lambda request: requests.append(request.url))
    page.context.route(re.compile(r"^https?://"), lambda route: route.continue_()
                       if urlsplit(route.request.url).hostname in LOOPBACK else route.abort())
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)

    response = page.goto(f"{server.url}/docs")
    assert response is not None and response.status == 200
    assert "worker-src blob:" in response.headers["content-security-policy"]
    expect(page.get_by_role("heading", name=re.compile(r"^OrderPulse"))).to_be_visible(timeout=15_000)
    poll = page.get_by_role("heading", name="Lean status for polling (seed 000)")
    expect(poll).to_be_visible()
    expect(page.get_by_text("/api/orders/{order_id}/poll-status").first).to_be_attached()
    # A request body is the schema of its parsing model: the student variant names registerNumber.
    expect(page.get_by_text("registerNumber").first).to_be_attached()
    # Search runs in Redoc's blob worker, which the policy allows.
    page.get_by_placeholder("Search...").fill("poll-status")
    # The worker indexes the whole document first; on a loaded machine that takes several seconds.
    expect(page.locator("[data-role='search:results'] li").first).to_be_visible(timeout=20_000)
    screenshot(page, "api-docs-1920x1080")

    assert console_errors == [], console_errors
    hosts = {urlsplit(url).hostname for url in requests if url.startswith(("http:", "https:"))}
    assert hosts <= LOOPBACK, requests
    assert any(url.endswith("/openapi.json") for url in requests)
    assert any(url.endswith("/static/vendor/redoc/redoc.standalone.js") for url in requests)


def test_the_vendored_renderer_is_served_with_its_licence(start_server):
    server = start_server()
    for path in ("/static/vendor/redoc/redoc.standalone.js", "/static/vendor/redoc/LICENSE"):
        response = httpx.get(server.url + path, timeout=10)
        assert response.status_code == 200, path
    assert "MIT License" in httpx.get(server.url + "/static/vendor/redoc/LICENSE", timeout=10).text
