"""The bundled pages (`static/`), served by the same process as the API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from server.http.security_headers import PAGE_CSP

STATIC_DIR = Path(__file__).resolve().parents[2] / "static"
# The API reference runs Redoc (static/vendor/redoc): its scripts come from this server only, it
# reads /openapi.json, styles itself with inline <style> (styled-components) and searches in a
# worker made from a blob URL; nothing else may load, and the page cannot be framed.
DOCS_CSP = ("default-src 'none'; script-src 'self'; worker-src blob:; connect-src 'self'; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def _page(name: str, headers: dict[str, str] | None = None) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        return FileResponse(STATIC_DIR / name, headers={"Cache-Control": "no-cache",
                                                        "Content-Security-Policy": PAGE_CSP, **(headers or {})})
    return serve


# Paths under these answer in their API's error shape; any other unknown path is a page someone opened.
API_PREFIXES = ("/api", "/v1", "/ws", "/healthz", "/readyz", "/metrics", "/openapi.json", "/static")


def is_page_path(path: str, method: str) -> bool:
    """Whether a 404 here should be the HTML page with a way back, not a JSON error."""
    return method in ("GET", "HEAD") and not any(path == p or path.startswith(p + "/") for p in API_PREFIXES)


def not_found_page() -> HTMLResponse:
    return HTMLResponse((STATIC_DIR / "404.html").read_bytes(), status_code=404,
                        headers={"Cache-Control": "no-cache", "Content-Security-Policy": PAGE_CSP})


async def favicon(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "img" / "logo.svg", media_type="image/svg+xml",
                        headers={"Cache-Control": "public, max-age=86400"})


async def home(request: Request) -> Response:
    return RedirectResponse("/login", status_code=307)


def routes() -> list[BaseRoute]:
    if not STATIC_DIR.is_dir():
        return []
    return [
        Route("/", home, methods=["GET"]),
        Route("/login", _page("login.html"), methods=["GET"]),
        Route("/orders", _page("orders.html"), methods=["GET"]),
        Route("/signup", _page("signup.html"), methods=["GET"]),
        # The links of account mails (CampusBite's paths): the secret is in the path, so these
        # pages send no Referer and load nothing from anywhere else.
        Route("/forgot-password", _page("account.html"), methods=["GET"]),
        Route("/reset-password/{token}", _page("account.html"), methods=["GET"]),
        Route("/verify-email/{token}", _page("account.html"), methods=["GET"]),
        Route("/stores", _page("stores.html"), methods=["GET"]),
        Route("/stores/{store_id}", _page("menu.html"), methods=["GET"]),
        Route("/checkout", _page("checkout.html"), methods=["GET"]),
        Route("/kitchen", _page("kitchen.html"), methods=["GET"]),
        # The pickup board opens with a display link whose secret is in the fragment (never sent here).
        Route("/board/{store_id}", _page("board.html"), methods=["GET"]),
        Route("/report", _page("report.html"), methods=["GET"]),
        Route("/admin", _page("admin.html"), methods=["GET"]),
        Route("/favicon.ico", favicon, methods=["GET"]),
        # At the root, so the service worker's scope covers every page it opens from a notification.
        Route("/sw.js", _page("sw.js", {"Service-Worker-Allowed": "/"}), methods=["GET"]),
        Route("/track/{order_id}", _page("track.html"), methods=["GET"]),
        Route("/docs", _page("docs.html", {"Content-Security-Policy": DOCS_CSP}), methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
