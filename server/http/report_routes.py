"""`GET /api/stores/{id}/report`: the store's day in numbers, for its staff and admins (issue 27)."""

from __future__ import annotations

import re
from datetime import date

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.domain import messages
from server.domain.errors import ApiError
from server.domain.report_chart import prep_chart
from server.http import context
from server.http.responses import ok
from server.http.security import STORE_RUNNERS, authenticate
from server.services import catalog, report

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
FORMATS = ("json", "csv", "svg")
FIRST_DAY, LAST_DAY = date(1970, 1, 8), date(9999, 12, 30)


def _day(raw: str | None, today: date) -> date:
    if raw is None:
        return today
    if not _DAY.fullmatch(raw):
        raise ApiError(400, messages.REPORT_DATE_INVALID)
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, messages.REPORT_DATE_INVALID) from None
    if not FIRST_DAY <= day <= LAST_DAY:  # the day's bounds and the week before it must be dates too
        raise ApiError(400, messages.REPORT_DATE_INVALID)
    return day


async def store_report(request: Request) -> Response:
    principal = await authenticate(request, *STORE_RUNNERS)
    store = await catalog.find_store(request.path_params["store_id"])
    catalog.authorise_store_staff(principal, str(store.id))
    runtime = context.runtime(request)
    zone = runtime.settings.zone
    day = _day(request.query_params.get("date"), runtime.clock.now().astimezone(zone).date())
    kind = request.query_params.get("format", "json")
    if kind not in FORMATS:
        raise ApiError(400, messages.REPORT_FORMAT_INVALID)
    numbers = {**await report.store_day(str(store.id), day, zone), "storeName": store.name}
    if kind == "csv":
        return Response(report.report_csv(numbers), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="orderpulse-report-{day.isoformat()}.csv"',
            "Cache-Control": "no-store"})
    if kind == "svg":
        return Response(prep_chart(numbers), media_type="image/svg+xml", headers={"Cache-Control": "no-store"})
    return ok(numbers, headers={"Cache-Control": "no-store"})


routes = [Route("/api/stores/{store_id}/report", store_report, methods=["GET"])]
