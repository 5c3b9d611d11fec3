"""The security headers of every HTTP answer: pages get a Content-Security-Policy that allows only
this server's own scripts and styles; everything else (the API, files) one that allows nothing.

The pages keep to it: no inline script, style attribute or event handler (static/), so an injected
`<script>` or `onerror=` does not run even if some text were ever rendered as markup.
"""

from __future__ import annotations

# The pages: scripts, styles, images, the service worker and the sockets of this origin only
# ('self' covers ws:/wss: to the same host); nothing may frame them, change their base or post
# their forms elsewhere.
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "font-src 'self'; connect-src 'self'; worker-src 'self'; manifest-src 'self'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# JSON, SVG and files: an answer opened as a document can load and run nothing (scripts fall back
# to default-src), and is never framed.
API_CSP = "default-src 'none'; frame-ancestors 'none'"

# Three headers and no more: uvicorn checks and copies each header of each answer in Python, and on
# poll-status (~50 us an answer) every header is ~1 % of the throughput. X-Frame-Options would only
# repeat frame-ancestors for browsers that predate CSP 2.
COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
API_HEADERS = [*COMMON, (b"content-security-policy", API_CSP.encode())]


def add_security_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`headers` with the common ones added, and the API's policy unless the answer set its own."""
    if any(name.lower() == b"content-security-policy" for name, _ in headers):
        return [*headers, *COMMON]
    return [*headers, *API_HEADERS]
