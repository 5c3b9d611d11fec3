"""The bundled pages (`static/`), served by the same process as the API."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parents[2] / "static"


def _page(name: str):
    async def serve(request: Request):
        return FileResponse(STATIC_DIR / name, headers={"Cache-Control": "no-cache"})
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
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
