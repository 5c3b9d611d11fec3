"""Everything OrderPulse takes from uvicorn beyond its public settings, behind one guard.

- `lean_websocket`: uvicorn's sans-I/O WebSocket protocol without the retained handshake, with
  one keep-alive timer per process (`keepalive`), and writable straight from the fan-out.
- `http_limits`: uvicorn's httptools protocol with a header deadline, a header size limit and a
  connection limit, writing each answer's head and body in one system call.
- `sockets`: the connection under an ASGI WebSocket, for those direct writes and for resetting a
  peer that stopped reading.

Both subclasses touch uvicorn's private attributes, so they are written for the uvicorn that
pyproject.toml pins (`>=0.54,<0.55`). `server_protocols` checks the installed one once; when its
version, or a method or attribute used here, is not what this package expects (or
ORDERPULSE_UVICORN_ADAPTER=off), it logs one warning and hands uvicorn its own protocols: more
memory and wake-ups per idle socket and no connection limits, the same answers to every client.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from server.config import Settings
from server.uvicorn_adapter.sockets import socket_of

if TYPE_CHECKING:
    from server.uvicorn_adapter.http_limits import InlineAnswer

__all__ = ["ServerProtocols", "incompatibility", "server_protocols", "socket_of"]

log = logging.getLogger("orderpulse.uvicorn")

TESTED_UVICORN = (0, 54)
FALLBACK = ("uvicorn's own HTTP and WebSocket protocols are used: more memory and wake-ups per idle "
            "socket, and no header deadline, header size or connection limits")

# Methods overridden or called here, with the parameters passed or received.
_HTTP_METHODS = {
    "__init__": ["self", "config", "server_state", "app_state", "_loop"],
    "connection_made": ["self", "transport"],
    "connection_lost": ["self", "exc"],
    "data_received": ["self", "data"],
    "on_message_begin": ["self"],
    "on_headers_complete": ["self"],
    "on_message_complete": ["self"],
    "handle_websocket_upgrade": ["self"],
    "_start_asgi_task": ["self", "cycle", "app"],
    "on_response_complete": ["self"],
}
_WS_METHODS = {
    "__init__": ["self", "config", "server_state", "app_state", "_loop"],
    "send": ["self", "message"],
    "receive": ["self"],
    "send_receive_event_to_app": ["self"],
    "start_keepalive": ["self"],
    "schedule_ping": ["self"],
    "send_keepalive_ping": ["self"],
    "handle_pong": ["self", "event"],
    "keepalive_timeout": ["self"],
    "stop_keepalive": ["self"],
    "data_received": ["self", "data"],
    "pause_writing": ["self"],
    "resume_writing": ["self"],
    "shutdown": ["self"],
    "connection_lost": ["self", "exc"],
}
# Attributes a fresh protocol must have (read or replaced here).
_HTTP_ATTRIBUTES = ("app", "loop", "transport", "cycle", "server_state", "pipeline", "expect_100_continue",
                    "timeout_keep_alive_task")
_WS_ATTRIBUTES = ("app", "loop", "transport", "conn", "queue", "writable", "read_paused", "handshake_complete",
                  "close_sent", "ping_interval", "ping_timeout", "last_ping_rtt", "pending_ping_payload", "ping_sent_at")
# Calls the lean protocol relies on uvicorn's code making: (method, the name it must call).
_WS_CALLS = (("start_keepalive", "schedule_ping"), ("connection_lost", "stop_keepalive"),
             ("shutdown", "stop_keepalive"), ("handle_events", "handle_pong"),
             ("handle_text", "send_receive_event_to_app"), ("handle_bytes", "send_receive_event_to_app"))
# What a request cycle must keep: for the header deadline to end a kept-alive connection, the
# transport it writes through (replaced by a `HeadHolder`), and what an answer written inline reads
# and marks.
_CYCLE_ATTRIBUTES = ("response_complete", "response_started", "keep_alive", "transport", "scope")


@dataclass(frozen=True)
class ServerProtocols:
    """What to give `uvicorn.Config` as `http=` and `ws=`."""

    http: type[asyncio.Protocol] | str
    ws: type[asyncio.Protocol] | str
    adapted: bool


STOCK = ServerProtocols("auto", "auto", adapted=False)


def server_protocols(settings: Settings, answer_headers: Sequence[tuple[bytes, bytes]] = (),
                     inline_answer: InlineAnswer | None = None) -> ServerProtocols:
    """The adapter's protocols for `settings`, or uvicorn's own (with one warning) when they cannot run;
    the connection limits' own refusals carry `answer_headers`, and the HTTP protocol writes what
    `inline_answer` answers without calling the application."""
    if settings.orderpulse_uvicorn_adapter == "off":
        log.warning("ORDERPULSE_UVICORN_ADAPTER=off: %s.", FALLBACK)
        return STOCK
    problem = incompatibility()
    if problem is not None:
        log.warning("%s: %s.", problem, FALLBACK)
        return STOCK
    from server.uvicorn_adapter.http_limits import ConnectionLimits, guarded_protocol
    from server.uvicorn_adapter.lean_websocket import LeanWebSocketProtocol

    limits = ConnectionLimits(settings.http_header_timeout_seconds, settings.http_max_header_bytes,
                              settings.http_max_connections, tuple(answer_headers))
    return ServerProtocols(guarded_protocol(limits, inline_answer), LeanWebSocketProtocol, adapted=True)


def incompatibility(version: str | None = None, http_base: type | None = None,
                    ws_base: type | None = None) -> str | None:
    """Why the adapter cannot run on the installed uvicorn (or on the classes given), None when it can."""
    try:
        import uvicorn
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
        from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    except ImportError as exc:
        return f"uvicorn's httptools or sans-I/O WebSocket protocol cannot be imported ({exc})"
    version = version if version is not None else getattr(uvicorn, "__version__", "unknown")
    if _major_minor(version) != TESTED_UVICORN:
        tested = ".".join(map(str, TESTED_UVICORN))
        return f"uvicorn {version} is installed; server/uvicorn_adapter is written for {tested}.x"
    http_base = http_base or HttpToolsProtocol
    ws_base = ws_base or WebSocketsSansIOProtocol
    return (_methods_differ(http_base, _HTTP_METHODS) or _methods_differ(ws_base, _WS_METHODS)
            or _calls_missing(ws_base, _WS_CALLS)
            or _names_missing(RequestResponseCycle.__init__, _CYCLE_ATTRIBUTES, "RequestResponseCycle")
            or _attributes_missing(http_base, _HTTP_ATTRIBUTES) or _attributes_missing(ws_base, _WS_ATTRIBUTES))


def _major_minor(version: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return None


def _methods_differ(base: type, expected: dict[str, list[str]]) -> str | None:
    for name, parameters in expected.items():
        method = getattr(base, name, None)
        if not callable(method) or list(inspect.signature(method).parameters) != parameters:
            return f"uvicorn's {base.__name__}.{name} is not the one server/uvicorn_adapter expects"
    return None


def _calls_missing(base: type, calls: tuple[tuple[str, str], ...]) -> str | None:
    for method, callee in calls:
        function = getattr(base, method, None)
        if function is None:
            return f"uvicorn's {base.__name__} has no {method}"
        problem = _names_missing(function, (callee,), base.__name__)
        if problem is not None:
            return problem
    return None


def _names_missing(function: Callable[..., Any], names: tuple[str, ...], owner: str) -> str | None:
    used = set(getattr(getattr(function, "__code__", None), "co_names", ()))
    missing = [name for name in names if name not in used]
    if missing:
        return f"uvicorn's {owner}.{function.__name__} no longer uses {', '.join(missing)}"
    return None


def _attributes_missing(base: type, names: tuple[str, ...]) -> str | None:
    """Build one protocol as uvicorn would (no connection, no I/O) and look for `names` on it."""
    import uvicorn
    from uvicorn.server import ServerState

    async def no_app(scope: Any, receive: Any, send: Any) -> None:  # never called
        """A stand-in application: the protocol is only built, never connected."""

    loop = asyncio.new_event_loop()
    try:
        config = uvicorn.Config(no_app, interface="asgi3", lifespan="off", log_config=None, proxy_headers=False)
        protocol = base(config, ServerState(), {}, loop)
    except Exception as exc:
        return f"uvicorn's {base.__name__} could not be built for the check ({exc!r})"
    finally:
        loop.close()
    missing = [name for name in names if not hasattr(protocol, name)]
    if missing:
        return f"uvicorn's {base.__name__} has no {', '.join(missing)}"
    return None
