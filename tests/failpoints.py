"""Faults the tests put into a server process from outside server/: installed by tests/forkserver.py
in the child it forks, when the server's environment names one in `ORDERPULSE_FAILPOINT`.

`after_write_before_publish`: the process is SIGKILLed once an order change is written and before
anyone is told of it (its watchers, the broker), so the change's outbox mark is left for another
process's relay (README, "Delivery"). This process's own relay still republishes: a process that
died at its start would never become ready.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from contextvars import ContextVar

from server.models import Order
from server.services.publishing import ChangePublisher, OutboxRelay

AFTER_WRITE_BEFORE_PUBLISH = "after_write_before_publish"

_relaying: ContextVar[bool] = ContextVar("relaying", default=False)


def _kill_after_write_before_publish() -> None:
    broadcast = ChangePublisher.broadcast
    relay_once = OutboxRelay.relay_once

    # Every writer (checkout, the lifecycle, the deadline enforcer) broadcasts right after its write.
    async def killed_before_broadcast(publisher: ChangePublisher, order: Order, *, created: bool = False) -> bool:
        if not _relaying.get():
            os.kill(os.getpid(), signal.SIGKILL)
        return await broadcast(publisher, order, created=created)

    async def relay_once_alive(relay: OutboxRelay) -> int:
        token = _relaying.set(True)
        try:
            return await relay_once(relay)
        finally:
            _relaying.reset(token)

    ChangePublisher.broadcast = killed_before_broadcast
    OutboxRelay.relay_once = relay_once_alive


FAILPOINTS = {AFTER_WRITE_BEFORE_PUBLISH: _kill_after_write_before_publish}


def install(environ: Mapping[str, str]) -> None:
    """Install the failpoint `environ` names, if any; an unknown name stops the process."""
    name = environ.get("ORDERPULSE_FAILPOINT")
    if not name:
        return
    if name not in FAILPOINTS:
        raise SystemExit(f"ORDERPULSE_FAILPOINT={name!r} is none of {', '.join(FAILPOINTS)} (tests/failpoints.py)")
    FAILPOINTS[name]()
