"""The one typed settings object, read from the environment and `.env`."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from server.domain.passwords import PasswordCost


# The broker engines REDIS_URL may name (server/realtime/broker.py picks one by scheme).
BROKER_SCHEMES = ("redis", "rediss", "unix", "memory", "redis+cluster", "rediss+cluster")

# uvicorn's log levels ("trace" is its own, below debug).
LOG_LEVELS = {"critical": 50, "error": 40, "warning": 30, "info": 20, "debug": 10, "trace": 5}


class Settings(BaseSettings):
    # Frozen: read once, then shared by every part; a resolved value is a new copy (`resolve_secrets`).
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False, frozen=True)

    orderpulse_env: Literal["development", "production", "test"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    data_dir: Path = Path("./var")
    mongodb_url: str | None = None
    mongodb_database: str = "orderpulse"
    redis_url: str | None = None
    # A broker listener that delivers nothing, not even its own probe, for this long is reconnected.
    broker_liveness_seconds: float = Field(10, ge=1, le=300)
    timezone: str = "Asia/Kolkata"
    log_level: str = "info"
    http_keep_alive_seconds: int = Field(30, ge=1)

    # What one HTTP connection may hold before its request head is read (server/uvicorn_adapter).
    http_header_timeout_seconds: float = Field(10, gt=0)
    http_max_header_bytes: int = Field(32 * 1024, ge=1024)
    http_max_connections: int = Field(1000, ge=1)
    # "off" runs uvicorn's own protocols, as on a uvicorn the adapter was not written for.
    orderpulse_uvicorn_adapter: Literal["auto", "off"] = "auto"

    jwt_secret: str | None = None
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    access_token_minutes: float = Field(15, gt=0)
    refresh_token_days: float = Field(7, gt=0)
    # A refresh token presented again this soon after its rotation gets the same new pair (two
    # tabs waking together, React StrictMode); later, reuse still revokes its family. 0: never.
    refresh_reuse_seconds: float = Field(10, ge=0, le=60)
    checkout_session_minutes: float = Field(15, gt=0)
    # argon2id's cost for password hashes (server/domain/passwords.py); production refuses less
    # than OWASP's floor. A stored hash of another cost is redone at its account's next sign-in.
    password_hash_time_cost: int = Field(3, ge=1, le=20)
    password_hash_memory_kib: int = Field(65536, ge=8, le=4 * 1024 * 1024)
    password_hash_parallelism: int = Field(4, ge=1, le=64)

    unpaid_order_timeout_minutes: float = Field(8, gt=0)
    order_commitment_timeout_minutes: float = Field(4, gt=0)
    ready_no_show_timeout_minutes: float = Field(20, gt=0)
    no_show_warning_threshold: int = Field(2, ge=1)
    no_show_restriction_threshold: int = Field(3, ge=1)
    no_show_restriction_days: float = Field(14, gt=0)

    poll_min_interval_seconds: float = Field(1, ge=0)
    otp_max_attempts: int = Field(5, ge=1)
    otp_lockout_seconds: float = Field(60, gt=0)
    max_body_bytes: int = Field(64 * 1024, ge=1024)

    # Failed sign-ins (per email, per client address) before `429` until the window ends.
    login_max_failures_per_account: int = Field(5, ge=1)
    login_max_failures_per_address: int = Field(20, ge=1)
    login_failure_window_seconds: float = Field(300, gt=0)

    # Real-time delivery (REALTIME.md).
    outbox_relay_after_seconds: float = Field(1, gt=0)
    ws_ping_interval_seconds: float = Field(20, gt=0)
    ws_ping_timeout_seconds: float = Field(10, gt=0)
    ws_stall_close_seconds: float = Field(30, gt=0)
    # On SIGTERM each socket and event stream is told to come back after a delay spread over this
    # window, so a deploy's reconnects arrive spread rather than at once (0: all at once).
    ws_drain_seconds: float = Field(10, ge=0, le=300)
    ws_queue_size: int = Field(256, ge=8)
    ws_max_frame_bytes: int = Field(16 * 1024, ge=1024)
    ws_max_frames_per_second: int = Field(20, ge=1)
    sse_heartbeat_seconds: float = Field(15, gt=0)
    # A pickup board hears from its stream at least this often, and shows it stalled after 2.5 times
    # as long without a word (so within 10 s at most); a revoked display link is noticed as often.
    board_heartbeat_seconds: float = Field(3, gt=0, le=4)
    # A socket that sent no token with the upgrade has this long to send `{"type": "auth"}`
    # (graphql-ws gives its `connection_init` the same 3 s).
    ws_auth_timeout_seconds: float = Field(3, gt=0)
    # Per account and process: sockets and order/store event streams together (a customer has a
    # few tabs and devices; a store's kitchen displays may share one staff account), and subscribes
    # that read the database (a token bucket: this many a second, up to the burst at once).
    ws_max_sockets_per_account: int = Field(20, ge=1)
    ws_max_sockets_per_staff_account: int = Field(100, ge=1)
    ws_subscribe_reads_per_second: float = Field(2, gt=0)
    ws_subscribe_reads_burst: int = Field(20, ge=1)
    # Every subscribe, those answered from memory too: each still renders and sends a snapshot.
    ws_subscribes_per_second: float = Field(10, gt=0)
    ws_subscribes_burst: int = Field(50, ge=1)
    # How long a user looked up for token verification is trusted without a database read: the
    # bound on a disabled account's tokens working on a process that missed the change message.
    user_cache_seconds: float = Field(1, ge=0)

    # MongoDB outages (README, "MongoDB unreachable"). A request waits at most the selection timeout for an
    # unreachable database before its 503; a live but slow one gets the connect and socket timeouts.
    mongodb_server_selection_timeout_seconds: float = Field(0.75, gt=0)
    mongodb_connect_timeout_seconds: float = Field(10, gt=0)
    mongodb_socket_timeout_seconds: float = Field(20, gt=0)
    mongodb_startup_timeout_seconds: float = Field(4, gt=0)
    readiness_timeout_seconds: float = Field(1.0, gt=0)

    # Web Push (README, "Notifications"): the VAPID key signs every push (generated and kept in
    # DATA_DIR in development, required in production); only these push services are sent to.
    vapid_private_key: str | None = None
    vapid_subject: str | None = None
    push_service_hosts: str = "fcm.googleapis.com,*.push.services.mozilla.com,web.push.apple.com,*.notify.windows.com"
    push_timeout_seconds: float = Field(5, gt=0)
    push_max_attempts: int = Field(4, ge=1, le=10)
    push_retry_base_seconds: float = Field(1, gt=0)
    push_reminder_minutes: float = Field(5, gt=0)
    push_reminder_check_seconds: float = Field(15, gt=0)
    push_max_pending: int = Field(1000, ge=1)
    # Devices one account may subscribe (a browser has one subscription per device); a new one past
    # it replaces the account's least recently registered.
    push_max_subscriptions_per_account: int = Field(10, ge=1)
    # Mail (password reset, email verification): SMTP_URL unset writes mails to DATA_DIR/outbox.
    smtp_url: str | None = None
    mail_from: str = "OrderPulse <no-reply@orderpulse.invalid>"
    # Where mailed links point: the pages' origin as users reach it (default http://HOST:PORT).
    public_url: str | None = None
    account_link_minutes: float = Field(30, gt=0)
    mail_per_account_per_hour: int = Field(3, ge=1)
    mail_per_address_per_hour: int = Field(10, ge=1)
    # The checkout's UPI QR codes drawn per client address (cached answers are free), and how many
    # may wait for the one low-priority drawing process before a 503.
    qr_codes_per_minute: float = Field(20, gt=0)
    qr_max_waiting: int = Field(8, ge=1)
    # Ready-time estimates are pushed this long after a store's queue changed (changes meanwhile share it).
    eta_push_seconds: float = Field(5, gt=0)
    # How long after marking an order ready the kitchen may put it back to preparing (a mistaken bump).
    ready_undo_seconds: float = Field(120, gt=0)

    # Partner webhooks (README, "Webhooks"): an attempt succeeds on a 2xx within the timeout; after each
    # failed one the next waits the schedule's next step (with jitter), and an endpoint whose schedule
    # runs out is disabled. Hosts listed here may resolve to private or loopback addresses (by exact name).
    webhook_timeout_seconds: float = Field(10, gt=0, le=300)
    webhook_retry_seconds: str = "5,300,1800,7200,18000,36000,36000"
    webhook_rotation_grace_hours: float = Field(24, ge=0)
    webhook_allowed_hosts: str = ""
    webhook_max_in_flight: int = Field(32, ge=1)
    webhook_max_in_flight_per_endpoint: int = Field(4, ge=1)

    @field_validator("redis_url")
    @classmethod
    def _known_broker_scheme(cls, value: str | None) -> str | None:
        # Only the scheme is named: the rest of the URL may hold a password.
        if value and urlsplit(value).scheme not in BROKER_SCHEMES:
            raise ValueError(f"must start with one of {', '.join(s + '://' for s in BROKER_SCHEMES)}")
        if value and urlsplit(value).scheme.endswith("+cluster"):
            # Any nodes of the cluster, comma-separated; the rest are discovered.
            nodes = [node.rpartition(":") for node in urlsplit(value).netloc.rpartition("@")[2].split(",")]
            if not all(host and port.isdigit() and 0 < int(port) < 65536 for host, _, port in nodes):
                raise ValueError("must name its nodes as host:port[,host:port…]")
            return value
        try:
            value and urlsplit(value).port
        except ValueError:
            raise ValueError("has a port that is not a number from 0 to 65535") from None
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: str | None) -> str | None:
        if value:
            parts = urlsplit(value)
            if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
                raise ValueError("must be smtp://[user:password@]host[:port] or the same with smtps://")
            try:
                parts.port
            except ValueError:
                raise ValueError("has a port that is not a number from 0 to 65535") from None
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value and (urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).hostname):
            raise ValueError("must be an http:// or https:// origin, such as https://food.campus.edu")
        return value

    @field_validator("webhook_retry_seconds")
    @classmethod
    def _retry_schedule(cls, value: str) -> str:
        try:
            steps = [float(step) for step in value.split(",")]
        except ValueError:
            steps = []
        if not steps or not all(0 < step <= 7 * 86400 for step in steps):
            raise ValueError("must be comma-separated numbers of seconds, each above 0 and at most 604800, "
                             "such as 5,300,1800")
        return value

    @property
    def webhook_retry_schedule(self) -> list[float]:
        return [float(step) for step in self.webhook_retry_seconds.split(",")]

    @field_validator("mongodb_database")
    @classmethod
    def _valid_database_name(cls, value: str) -> str:
        # MongoDB's rule for database names on every platform.
        if not value or len(value.encode()) > 63 or any(c in value for c in '/\\. "$\0'):
            raise ValueError("must be 1-63 bytes without / \\ . space \" $ or NUL")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (KeyError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        if value.lower() not in LOG_LEVELS:
            raise ValueError(f"unknown log level {value!r}; use one of {', '.join(LOG_LEVELS)}")
        return value.lower()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def unpaid_timeout(self) -> timedelta:
        return timedelta(minutes=self.unpaid_order_timeout_minutes)

    @property
    def commitment_timeout(self) -> timedelta:
        return timedelta(minutes=self.order_commitment_timeout_minutes)

    @property
    def ready_timeout(self) -> timedelta:
        return timedelta(minutes=self.ready_no_show_timeout_minutes)

    @property
    def restriction_length(self) -> timedelta:
        return timedelta(days=self.no_show_restriction_days)

    @property
    def access_token_lifetime(self) -> timedelta:
        return timedelta(minutes=self.access_token_minutes)

    @property
    def refresh_token_lifetime(self) -> timedelta:
        return timedelta(days=self.refresh_token_days)

    @property
    def checkout_lifetime(self) -> timedelta:
        return timedelta(minutes=self.checkout_session_minutes)

    @property
    def link_origin(self) -> str:
        """The origin of mailed links: PUBLIC_URL, else this server's own address."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def password_cost(self) -> PasswordCost:
        return PasswordCost(self.password_hash_time_cost, self.password_hash_memory_kib,
                            self.password_hash_parallelism)


def resolve_vapid_key(settings: Settings) -> tuple[Settings, str | None]:
    """`settings` with `vapid_private_key` a PEM and a subject; in development, a key created and kept in DATA_DIR.

    Also returns a notice for the start-up log when a development key was used.
    """
    subject = settings.vapid_subject or DEVELOPMENT_VAPID_SUBJECT
    if settings.vapid_private_key:
        return settings.model_copy(update={"vapid_subject": subject}), None
    if settings.orderpulse_env == "production":
        raise ConfigurationError("VAPID_PRIVATE_KEY must be set when ORDERPULSE_ENV=production "
                                 "(and VAPID_SUBJECT, a mailto: or https: contact).")
    ensure_data_dir(settings)
    path = settings.data_dir / "vapid-private-key.pem"
    if path.exists():
        return (settings.model_copy(update={"vapid_subject": subject, "vapid_private_key": path.read_text()}),
                f"Development mode: using the VAPID key kept in {path}.")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path.write_text(pem)
    path.chmod(0o600)
    return (settings.model_copy(update={"vapid_subject": subject, "vapid_private_key": pem}),
            f"Development mode: generated a VAPID key and kept it in {path}. Set VAPID_PRIVATE_KEY in production.")


def resolve_password_cost(settings: Settings) -> PasswordCost:
    """The argon2id cost to hash with; one below OWASP's floor only outside production."""
    cost = settings.password_cost
    if cost.memory_kib < 8 * cost.parallelism:
        raise ConfigurationError(f"PASSWORD_HASH_MEMORY_KIB must be at least 8 per lane "
                                 f"({8 * cost.parallelism} for PASSWORD_HASH_PARALLELISM={cost.parallelism}).")
    if settings.orderpulse_env == "production" and cost.below_owasp_floor():
        raise ConfigurationError("PASSWORD_HASH_* is below OWASP's argon2id floor (19456 KiB with 2 passes, "
                                 "or 47104 KiB with 1) and ORDERPULSE_ENV=production; leave them unset for the defaults.")
    return cost


class ConfigurationError(RuntimeError):
    """The environment does not describe a server that may start."""


DEVELOPMENT_VAPID_SUBJECT = "mailto:orderpulse@example.com"
MIN_JWT_SECRET_BYTES = 32


def ensure_data_dir(settings: Settings) -> None:
    """Create DATA_DIR if needed; one clear error when it cannot be a writable directory."""
    path = settings.data_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"DATA_DIR {str(path)!r} cannot be created ({exc.strerror or type(exc).__name__}); "
                                 "set DATA_DIR to a writable directory.") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigurationError(f"DATA_DIR {str(path)!r} is not writable by this user; "
                                 "set DATA_DIR to a writable directory.")


def resolve_jwt_secret(settings: Settings) -> tuple[Settings, str | None]:
    """`settings` with its signing secret; in development, one created and kept in DATA_DIR.

    Also returns a notice for the start-up log when a development secret was used.
    """
    if settings.jwt_secret:
        if settings.orderpulse_env == "production" and len(settings.jwt_secret.encode()) < MIN_JWT_SECRET_BYTES:
            # RFC 7518 §3.2: an HMAC key at least as long as the hash's output.
            raise ConfigurationError(f"JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes when "
                                     "ORDERPULSE_ENV=production (generate one with `python3 -c 'import secrets; "
                                     "print(secrets.token_urlsafe(48))'`).")
        return settings, None
    if settings.orderpulse_env == "production":
        raise ConfigurationError("JWT_SECRET must be set when ORDERPULSE_ENV=production.")
    ensure_data_dir(settings)
    path = settings.data_dir / "jwt-secret"
    if path.exists():
        return (settings.model_copy(update={"jwt_secret": path.read_text().strip()}),
                f"Development mode: using the JWT secret kept in {path}.")
    secret = secrets.token_urlsafe(48)
    path.write_text(secret)
    path.chmod(0o600)
    return (settings.model_copy(update={"jwt_secret": secret}),
            f"Development mode: generated a JWT secret and kept it in {path}. Set JWT_SECRET in production.")


def resolve_secrets(settings: Settings) -> tuple[Settings, list[str]]:
    """`settings` with the JWT secret and the VAPID key resolved, and the notices for the start-up log."""
    settings, jwt_notice = resolve_jwt_secret(settings)
    settings, vapid_notice = resolve_vapid_key(settings)
    return settings, [notice for notice in (jwt_notice, vapid_notice) if notice]
