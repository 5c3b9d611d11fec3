"""The bundled pages (`static/`), served by the same process as the API."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parents[2] / "static"
# The API reference runs Redoc (static/vendor/redoc): its scripts come from this server only, it
# reads /openapi.json, styles itself with inline <style> (styled-components) and searches in a
# worker made from a blob URL; nothing else may load, and the page cannot be framed.
DOCS_CSP = ("default-src 'none'; script-src 'self'; worker-src blob:; connect-src 'self'; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def _page(name: str, headers: dict[str, str] | None = None):
    async def serve(request: Request):
        return FileResponse(STATIC_DIR / name, headers={"Cache-Control": "no-cache", **(headers or {})})
    return serve


async def home(request: Request):
    return RedirectResponse("/login", status_code=307)


def routes() -> list:
    if not STATIC_DIR.is_dir():
        return []
    return [
        Route("/", home, methods=["GET"]),
        Route("/login", _page("login.html"), methods=["GET"]),
        Route("/orders", _page("orders.html"), methods=["GET"]),
        Route("/kitchen", _page("kitchen.html"), methods=["GET"]),
        Route("/track/{order_id}", _page("track.html"), methods=["GET"]),
        Route("/docs", _page("docs.html", {"Content-Security-Policy": DOCS_CSP}), methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
