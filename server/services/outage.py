"""One log line when the database becomes unreachable for a background loop, one when it answers
again: a retry every second during an outage must not write a traceback every second."""

from __future__ import annotations

import logging

from pymongo.errors import ConnectionFailure, ExecutionTimeout

# What the driver raises when MongoDB is not there in time: a closed or refused connection, no
# server within the selection timeout, a socket or operation timeout (all ConnectionFailure), or
# a server-side time limit. Any other PyMongoError is a bug.
UNREACHABLE: tuple[type[Exception], ...] = (ConnectionFailure, ExecutionTimeout)


class OutageLog:
    def __init__(self, log: logging.Logger, task: str) -> None:
        self._log = log
        self._task = task
        self.down = False

    def failed(self, exc: BaseException, retry_seconds: float) -> None:
        if not self.down:
            self.down = True
            self._log.warning("%s failed: database unreachable (%s); retrying every %.0f s",
                              self._task, type(exc).__name__, retry_seconds)

    def succeeded(self) -> None:
        if self.down:
            self.down = False
            self._log.warning("%s resumed: the database answers again", self._task)
