"""Security headers on every answer (issue 25): pages run only this server's own scripts and
styles and cannot be framed; API answers, files and errors load nothing and are never sniffed."""

from __future__ import annotations

import re

from server.http.pages import DOCS_CSP, STATIC_DIR
from server.http.security_headers import API_CSP, PAGE_CSP

COMMON = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}


def _assert_common(response) -> None:
    for name, value in COMMON.items():
        assert response.headers.get(name) == value, (response.request.url, name, response.headers)
    assert len(response.headers.get_list("content-security-policy")) == 1, response.headers


async def test_api_answers_and_errors_carry_a_policy_that_allows_nothing(api):
    for path, status in (("/healthz", 200), ("/api/stores", 200), ("/api/orders", 401), ("/api/nothing", 404)):
        response = await api.get(path)
        assert response.status_code == status, (path, response.text)
        _assert_common(response)
        assert response.headers["content-security-policy"] == API_CSP
        assert "frame-ancestors 'none'" in API_CSP and "default-src 'none'" in API_CSP


async def test_the_poll_fast_path_answers_with_the_same_headers(api):
    admin = await api.admin()
    store = await api.store(admin)
    customer = await api.customer()
    order = await api.place_order(customer, store)
    path = f"/api/orders/{order['id']}/poll-status"
    first = await api.get(path, customer)  # the route: the order is then known to this process
    second = await api.get(path, customer)  # answered below the framework
    assert first.status_code == second.status_code == 200
    for response in (first, second):
        _assert_common(response)
        assert response.headers["content-security-policy"] == API_CSP


async def test_pages_allow_only_their_own_scripts_and_styles_and_are_never_framed(api):
    for path in ("/login", "/signup", "/stores", "/orders", "/checkout", "/kitchen", "/admin", "/track/x", "/sw.js",
                 "/no-such-page"):
        response = await api.get(path)
        _assert_common(response)
        assert response.headers["content-security-policy"] == PAGE_CSP, path
    assert "'unsafe-inline'" not in PAGE_CSP and "frame-ancestors 'none'" in PAGE_CSP
    docs = await api.get("/docs")
    _assert_common(docs)
    assert docs.headers["content-security-policy"] == DOCS_CSP


def test_the_pages_hold_no_inline_script_style_attribute_or_event_handler():
    """What the page policy would refuse: checked in the files, so a new page cannot slip one in."""
    for page in STATIC_DIR.glob("*.html"):
        if page.name == "docs.html":
            continue  # Redoc's page has a policy of its own (DOCS_CSP)
        html = page.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), page
        assert not re.search(r"<style\b|\sstyle=|\son[a-z]+=", html), page
    for script in (STATIC_DIR / "js").glob("*.js"):
        # An element built by format.js's h() with a style property, or a style attribute set by hand.
        assert not re.search(r"""\bh\("[a-z0-9]+",\s*\{[^}]*\bstyle:|setAttribute\(["']style""",
                             script.read_text()), script
