"""`GET /api/stores/{id}/report`: the store's day in numbers, for its staff and admins (issue 27)."""

from __future__ import annotations

import re
from datetime import date

from starlette.requests import Request
from starlette.responses import Response

from server.domain import messages
from server.domain.report_chart import prep_chart
from server.http.errors import ApiError
from server.http.contract import (
    COMMON, INT, MONEY, OID, STORE_NOT_FOUND, STR, ApiRoute, Operation, array, bounded, envelope, obj, query_param,
)
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


MINUTES = {"type": ["number", "null"], "minimum": 0}
PREP = {"count": INT, "averageMinutes": MINUTES, "p90Minutes": MINUTES}
REPORT = obj({
    "storeId": OID, "storeName": STR, "date": {"type": "string", "format": "date"}, "timezone": STR, "orders": INT,
    "byStatus": {"type": "object", "additionalProperties": INT}, "revenue": MONEY, "prepTime": obj(PREP),
    "hours": array(obj({"hour": bounded(0, 23), **PREP})),
    "late": obj({"count": INT, "of": INT, "graceMinutes": {"type": "number"}}), "noShows": INT,
    "cancellations": obj({"total": INT, "byReason": {"type": "object", "additionalProperties": INT}}),
    "topItems": array(obj({"name": STR, "quantity": INT, "revenue": MONEY})), "capHit": INT})

routes = [
    ApiRoute("/api/stores/{store_id}/report", store_report, "GET", Operation(
        "The store's day in numbers (that store's staff, admins): README, \"The store's day in numbers\"", {
            "200": {"description": "The report (JSON), its CSV or its chart (SVG)", "content": {
                "application/json": {"schema": envelope(REPORT)}, "text/csv": {"schema": STR},
                "image/svg+xml": {"schema": STR}}}, **COMMON, **STORE_NOT_FOUND},
        tag="stores", params=(
            query_param("date", {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
                        "a day in the server's TIMEZONE; today when absent"),
            query_param("format", {"enum": list(FORMATS)})))),
]
