"""A partner's webhook receiver, in its own process: verifies every request with the
`standardwebhooks` library (what a partner would use) and records what it got.

`python -m tests.webhook_receiver PORT` serves on 127.0.0.1:PORT (a thread per request, so one
hanging path holds no other) and prints `ready` once listening. The test drives it over HTTP:

- `PUT /_control/PATH` `{"secrets": [...], "statuses": [500, 500], "hang": 12}`: how PATH answers
  (the scripted statuses first, then 200; `hang` seconds before answering; `location` sent as a
  redirect's target) and which secrets to verify with;
- `GET /_control/received` lists every request: path, `webhook-*` headers, body, which of the
  path's secrets verified it (in order), the time it arrived.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

_lock = threading.Lock()
_paths: dict[str, dict] = {}
_received: list[dict] = []


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format, *args) -> None:  # quiet: the test reads /_control/received
        pass

    def _answer(self, status: int, body: bytes = b"", location: str | None = None) -> None:
        self.send_response(status)
        if location:
            self.send_header("location", location)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self) -> None:
        config = json.loads(self.rfile.read(int(self.headers["content-length"])))
        with _lock:
            _paths[self.path.removeprefix("/_control")] = config
        self._answer(204)

    def do_GET(self) -> None:
        with _lock:
            body = json.dumps(_received).encode()
        self._answer(200, body)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        arrived = time.time()
        headers = {name: self.headers[name] for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
                   if self.headers[name] is not None}
        with _lock:
            config = _paths.setdefault(self.path, {})
            statuses = config.setdefault("statuses", [])
            status = statuses.pop(0) if statuses else 200
        verified = []
        for secret in config.get("secrets", []):
            try:
                Webhook(secret).verify(body, headers)
                verified.append(True)
            except WebhookVerificationError:
                verified.append(False)
        with _lock:
            _received.append({"path": self.path, "headers": headers, "body": body.decode(), "verified": verified,
                              "status": status, "arrived": arrived})
        if config.get("hang"):
            time.sleep(config["hang"])  # the receiver under test hangs on purpose
        self._answer(status, location=config.get("location"))


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
