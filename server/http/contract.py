"""What `/openapi.json` says of a route, declared with the route: `ApiRoute` carries its
`Operation` (summary, body model, answers, security, tag, parameters), and server/http/openapi.py
walks the route table to write the document, so no path is listed twice.

The answers are written in the small schema vocabulary below; `ref` names a schema of the
document's components (server/http/openapi.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.routing import Route

from server.domain.lifecycle import OrderStatus
from server.http.body_rules import OBJECT_ID, RequestModel

Schema = dict[str, Any]

STR: Schema = {"type": "string"}
NSTR: Schema = {"type": ["string", "null"]}
TIME: Schema = {"type": "string", "format": "date-time"}
NTIME: Schema = {"type": ["string", "null"], "format": "date-time"}
BOOL: Schema = {"type": "boolean"}
INT: Schema = {"type": "integer"}
MONEY: Schema = {"type": "number", "minimum": 0}
OID: Schema = OBJECT_ID
NULL: Schema = {"type": "null"}


def bounded(minimum: int, maximum: int) -> Schema:
    return {"type": "integer", "minimum": minimum, "maximum": maximum}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def obj(required: dict[str, Any], optional: dict[str, Any] | None = None, closed: bool = False) -> Schema:
    schema: Schema = {"type": "object", "properties": {**required, **(optional or {})}, "required": list(required)}
    if closed:
        schema["additionalProperties"] = False
    return schema


def envelope(data: Schema, message: bool = False) -> Schema:
    """`{success: true, data}`, as every OrderPulse answer but the seeds' own is wrapped."""
    required: dict[str, Any] = {"success": {"const": True}, "data": data}
    if message:
        required["message"] = STR
    return obj(required, {"message": STR})


def json_content(schema: Schema) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def answer(description: str, schema: Schema) -> dict[str, Any]:
    """A JSON answer as it is sent, unwrapped."""
    return {"description": description, **json_content(schema)}


def success(schema: Schema, description: str = "OK", message: bool = False) -> dict[str, Any]:
    """A success answer: `schema` is its `data`."""
    return answer(description, envelope(schema, message))


def refusal(description: str) -> dict[str, Any]:
    return answer(description, ref("Error"))


def event_stream(schema: Schema) -> dict[str, Any]:
    """A Server-Sent Events answer; `schema` describes one event."""
    return {"description": "text/event-stream", "content": {"text/event-stream": {"schema": schema}}}


def query_param(name: str, schema: Schema, description: str | None = None, *, required: bool = False) -> Schema:
    parameter: Schema = {"name": name, "in": "query"}
    if required:
        parameter["required"] = True
    parameter["schema"] = schema
    if description is not None:
        parameter["description"] = description
    return parameter


COMMON = {"400": refusal("Bad input"), "401": refusal("No, invalid or expired token"),
          "403": refusal("Not allowed"), "413": refusal("Body over 64 KiB")}
ORDER_NOT_FOUND = {"404": refusal("Order not found")}
STORE_NOT_FOUND = {"404": refusal("Store not found")}
MENU_ITEM_NOT_FOUND = {"404": refusal("Menu item not found")}
CONFLICT = {"409": refusal("Conflict: the order changed, or the request does not fit its state")}
STREAMS_PER_ACCOUNT = {"429": refusal("The account's open sockets and streams, or its subscribes, are at their "
                                    "budget (REALTIME.md); Retry-After: 1")}
BUSY_HASHING = "Too many password checks in progress; see Retry-After"
PAGE = query_param("page", bounded(1, 10_000))
LIMIT = query_param("limit", bounded(1, 100))
STREAM_AUTH = (query_param("ticket", STR, "single-use, from POST /api/auth/stream-ticket (for EventSource)"),
               query_param("token", STR, "deprecated: use a ticket"))
_STATUS_NAME = "|".join(status.value for status in OrderStatus)
STATUS_LIST: Schema = {"type": "string", "pattern": f"^({_STATUS_NAME})?(,({_STATUS_NAME})?)*$"}
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]
# A route that also serves anonymous callers: a token is optional, but one presented is checked.
OPTIONAL_SECURITY: list[dict[str, list[str]]] = [{}, {"bearer": []}]
PRESENTED_TOKEN_REFUSED = refusal("A presented token that is malformed, expired, revoked or of a disabled account "
                                  "(never read as no token)")


@dataclass(frozen=True)
class Operation:
    """One route's entry in the document. Path parameters are read from the route's path (a text
    each) unless `params` states one; `params` lists the query and header parameters after them."""

    summary: str
    responses: Mapping[str, dict[str, Any]]
    tag: str = "orders"
    auth: bool = True
    body: type[RequestModel] | None = None
    params: tuple[Schema, ...] = ()

    def document(self, path_params: list[str]) -> dict[str, Any]:
        stated = {param["name"]: param for param in self.params if param["in"] == "path"}
        parameters = [stated.get(name) or {"name": name, "in": "path", "required": True, "schema": STR}
                      for name in path_params]
        parameters += [param for param in self.params if param["in"] != "path"]
        operation: dict[str, Any] = {"summary": self.summary, "tags": [self.tag], "responses": dict(self.responses)}
        if self.auth:
            operation["security"] = SECURITY
        if self.body is not None:
            operation["requestBody"] = {"required": True, **json_content(ref(self.body.__name__))}
        if parameters:
            operation["parameters"] = parameters
        return operation


class ApiRoute(Route):
    """A route of one method, and what the document says of it."""

    def __init__(self, path: str, endpoint: Callable[..., Any], method: str, operation: Operation) -> None:
        super().__init__(path, endpoint, methods=[method])
        self.method = method
        self.operation = operation
