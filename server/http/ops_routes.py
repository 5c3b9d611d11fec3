"""Operations: liveness, readiness, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.http.openapi import openapi_document
from server.http.responses import JSONResponse


async def healthz(request: Request):
    return JSONResponse({"status": "ok"})


async def readyz(request: Request):
    runtime = request.app.state.runtime
    database = await runtime.database_ready()
    broker = await runtime.broker.ping()
    status = 200 if database and broker else 503
    return JSONResponse({"status": "ready" if status == 200 else "unavailable",
                         "database": database, "broker": broker}, status_code=status)


async def metrics(request: Request):
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def openapi(request: Request):
    return JSONResponse(openapi_document())


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]
