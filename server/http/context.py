"""How a handler reaches the services: the one typed way from a request or socket to its `Runtime`.

`create_app` keeps the process's `Runtime` (server/runtime.py) on the application's state; handlers
ask for it here, so a reader and mypy follow each route to the service it calls. The wiring sits
above the handlers (pyproject.toml, the layers contract), so it is imported for its type only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

if TYPE_CHECKING:
    from server.runtime import Runtime


def runtime(connection: HTTPConnection) -> Runtime:
    """The services of the app serving `connection`, a request or a WebSocket."""
    services: Runtime = connection.app.state.runtime
    return services
