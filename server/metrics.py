"""Prometheus metrics of one process, served at `/metrics`.

Under `--workers N` the supervisor sets PROMETHEUS_MULTIPROC_DIR and every worker's values go to
files there, so `/metrics` on any worker reports the whole host (server/http/ops_routes.py). Each
gauge says how its workers' values combine (`multiprocess_mode`, ignored by a single process):
counts of open things add up over the live workers; a 0/1 health gauge takes the worst live one.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram
from pymongo import monitoring

REQUESTS = Counter("orderpulse_http_requests_total", "HTTP requests answered.", ["method", "route", "status"])
REQUEST_SECONDS = Histogram(
    "orderpulse_http_request_seconds", "Time to answer an HTTP request.", ["route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
DB_COMMANDS = Counter("orderpulse_db_commands_total", "MongoDB commands sent, by command name.", ["command"])
POLL_CACHE = Counter("orderpulse_poll_cache_total", "poll-status answers by source.", ["source"])
WRITTEN_COPY = Counter(
    "orderpulse_change_from_copy_total",
    "Order changes started from the process's copy of the order instead of a read: "
    "outcome=written, or retried (refused or stale, made again on the order as read).", ["outcome"])
DEADLINES_ENFORCED = Counter("orderpulse_deadlines_enforced_total", "Orders cancelled by a deadline.", ["reason"])
PICKUPS = Counter("orderpulse_pickups_total", "Orders handed over, by how: the customer's code or staff by hand.",
                  ["method"])
PUSH_NOTIFICATIONS = Counter("orderpulse_push_notifications_total",
                             "Web Push notifications by moment and result (sent, gone, failed, dropped).",
                             ["moment", "result"])
PUSH_RETRIES = Counter("orderpulse_push_retries_total", "Web Push sends retried, by the push service's answer.",
                       ["status"])
PUSH_SUBSCRIPTIONS = Counter("orderpulse_push_subscriptions_total",
                             "Web Push subscriptions created, deleted by their owner, expired (404/410), "
                             "replaced past the per-account cap, or invalid (a key off the P-256 curve).",
                             ["change"])
EVENTS_PUBLISHED = Counter("orderpulse_events_published_total", "Order changes published to the broker.")
OUTBOX_REPUBLISHED = Counter("orderpulse_outbox_republished_total", "Changes republished by the outbox relay.")
WEBHOOK_ATTEMPTS = Counter("orderpulse_webhook_attempts_total", "Webhook delivery attempts made.")
WEBHOOK_DELIVERIES = Counter("orderpulse_webhook_deliveries_total",
                             "Webhook deliveries finished: succeeded, or failed for good (schedule spent, 410, "
                             "endpoint disabled).", ["result"])
WEBHOOK_RETRIES = Counter("orderpulse_webhook_retries_total", "Webhook attempts that failed and were scheduled again.")
WEBHOOK_ENDPOINTS_DISABLED = Counter("orderpulse_webhook_endpoints_disabled_total",
                                     "Webhook endpoints disabled by delivery: gone (410) or retries spent.", ["reason"])
WEBHOOK_SECONDS = Histogram(
    "orderpulse_webhook_delivery_seconds", "Time from sending a webhook to its receiver's answer (or failure).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

SOCKETS_OPEN = Gauge("orderpulse_sockets_open", "Open WebSocket connections.", multiprocess_mode="livesum")
SSE_STREAMS_OPEN = Gauge("orderpulse_sse_streams_open", "Open Server-Sent Events streams.", multiprocess_mode="livesum")
SUBSCRIPTIONS = Gauge("orderpulse_subscriptions", "Order and store subscriptions held by sockets.", ["kind"], multiprocess_mode="livesum")
BUDGET_REFUSALS = Counter("orderpulse_realtime_refused_total",
                          "Sockets, event streams and subscribes refused by an account's budget.", ["budget"])
SNAPSHOT_ORDERS = Counter("orderpulse_snapshot_orders_total",
                          "Orders named by `orderIds` subscribes, by where their state came from.", ["source"])
MEMORY_TRIMS = Counter("orderpulse_memory_trims_total", "Freed memory given back to the system after subscribers left.")
BROKER_CHANNELS = Gauge("orderpulse_broker_channels", "Broker channels this process listens to.", multiprocess_mode="livesum")
STORAGE_REFUSING_WRITES = Gauge("orderpulse_storage_refusing_writes",
                                "1 while the database refuses writes for lack of storage (full or read-only disk), "
                                "as last seen by a request or /readyz.", multiprocess_mode="livemax")
EVENTS_FANNED_OUT = Counter("orderpulse_events_fanned_out_total", "Event frames queued to sockets.")
EVENTS_COALESCED = Counter("orderpulse_events_coalesced_total", "Queued frames replaced by a newer state.")
EVENTS_DROPPED = Counter("orderpulse_events_dropped_total", "Frames not delivered (stale version or closed socket).")
EMBEDDED_MONGO_RESTARTS = Counter("orderpulse_embedded_mongo_restarts_total",
                                  "Embedded nx-27017 children restarted after they died.")
BROKER_RECONNECTS = Counter("orderpulse_broker_reconnects_total", "Broker connections re-established.")
BROKER_UP = Gauge("orderpulse_broker_up", "1 while every broker listener connection is live, 0 while one is being "
                  "re-established (events may be missed until the resync that follows).",
                  multiprocess_mode="livemin")
BROKER_SILENT_CONNECTIONS = Counter("orderpulse_broker_silent_connections_total",
                                    "Broker listener connections torn down because not even their liveness probe "
                                    "came through within BROKER_LIVENESS_SECONDS.")
FANOUT_SECONDS = Histogram(
    "orderpulse_fanout_seconds", "Time to fan out one event: write or queue it for every local subscriber.",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


class _CommandCounter(monitoring.CommandListener):
    """Counts every command the driver sends, so benchmarks can prove a path reads nothing."""

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        DB_COMMANDS.labels(event.command_name).inc()

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


COMMAND_COUNTER = _CommandCounter()
