"""Every setting, read from the environment once at start. The README lists them all."""

from __future__ import annotations

import dataclasses
import os
from decimal import Decimal

from models.config import DomainConfig

# Public, so anyone can sign sandbox callbacks in development; refused in production.
DEFAULT_PAYMENT_WEBHOOK_SECRET = "whsec_sandbox_development"  # noqa: S105


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return default if raw is None or raw == "" else int(raw)


def _origins(raw: str | None, environment: str) -> tuple[str, ...]:
    """TA_WS_ALLOWED_ORIGINS: comma-separated origins, or `*` for any. Unset: any origin
    in development; in production none but the gateway's own."""
    if raw is None or not raw.strip():
        return ("*",) if environment == "development" else ()
    return tuple(o.strip() for o in raw.split(",") if o.strip())


def _rates(raw: str | None) -> tuple[tuple[str, str], ...]:
    """`EUR=1.08,CNY=0.138`: limit-currency units per unit of each currency."""
    if not raw:
        return ()
    pairs = []
    for item in raw.split(","):
        code, _, rate = item.partition("=")
        if not rate or Decimal(rate) <= 0:
            raise ValueError(f"TA_EXCHANGE_RATES: expected CODE=RATE, got {item!r}")
        pairs.append((code.strip().upper(), rate.strip()))
    return tuple(pairs)


def _method_days(raw: str | None) -> tuple[tuple[str, int], ...]:
    """`EXPRESS=15,AIR=15,LAND=30,SEA=45`: automatic receipt, days after shipment."""
    if not raw:
        return ()
    pairs = dict(DomainConfig().auto_receipt_days)
    for item in raw.split(","):
        method, _, days = item.partition("=")
        method = method.strip().upper()
        if method not in pairs or not days.strip().isdigit() or int(days) <= 0:
            raise ValueError(f"TA_AUTO_RECEIPT_DAYS: expected METHOD=DAYS, got {item!r}")
        pairs[method] = int(days)
    return tuple(pairs.items())


def _log_format(raw: str | None) -> str:
    """TA_LOG_FORMAT: json (the default: one JSON object a line, for log collectors) or
    text (for reading on a terminal during development)."""
    value = (raw or "json").strip().lower()
    if value not in ("json", "text"):
        raise ValueError(f"TA_LOG_FORMAT must be json or text, not {raw!r}")
    return value


@dataclasses.dataclass(frozen=True)
class Settings:
    database_url: str | None
    host: str
    port: int
    environment: str
    graphiql: bool
    auto_migrate: bool
    max_body_bytes: int
    max_query_depth: int
    max_aliases: int
    max_tokens: int
    pg_pool_min: int
    pg_pool_max: int
    domain: DomainConfig
    payment_provider: str = "sandbox"
    payment_webhook_secret: str = DEFAULT_PAYMENT_WEBHOOK_SECRET
    live_poll_seconds: float = 1.0  # the live-event reader's poll, besides its wake-ups
    # Other browser origins whose pages may open the WebSocket ("*": any); same-origin
    # pages and clients that are not browsers (no Origin) are always admitted.
    ws_allowed_origins: tuple[str, ...] = ("*",)
    ws_connections_per_principal: int = 10
    ws_subscriptions_per_connection: int = 20
    subscriber_queue: int = 1000  # events a subscriber may fall behind before it is cut off
    # Seconds between two deadline sweeps in each server process; 0 turns the scheduler off.
    scheduler_interval_seconds: float = 60.0
    # A multipart request to /graphql (a report with files) may be this large in all;
    # every other request body stays under max_body_bytes.
    max_upload_request_bytes: int = 20_000_000
    # Operations sent by SHA-256: "apq" (automatic persisted queries), "trusted" (only the
    # manifest's operations run), "off" (resolvers/persisted.py).
    persisted_operations: str = "apq"
    trusted_documents: str | None = None  # the manifest's path, for "trusted"
    max_query_cost: int = 20_000  # fields, connections counted `first` times
    introspection: str = "on"  # on, authenticated, partners, off
    execution_timeout_seconds: float = 10.0  # a query's; 0: unbounded
    # Requests per minute per principal, and per address without credentials; 0: off.
    rate_limit_per_minute: int = 0
    anonymous_rate_limit_per_minute: int = 0
    # Minutes between two ledger checks in each server process (and one at start); 0: off.
    ledger_check_minutes: float = 60.0
    # /metrics: on by default in development only; with a token, scrapes must send it
    # (`Authorization: Bearer …`). See the README's Operations section.
    metrics: bool = True
    metrics_token: str | None = None
    log_format: str = "json"  # or "text", for reading on a terminal

    @property
    def development(self) -> bool:
        return self.environment == "development"

    @classmethod
    def from_env(cls) -> Settings:
        environment = os.environ.get("TA_ENV", "development")
        if environment not in ("development", "production"):
            raise ValueError(f"TA_ENV must be development or production, not {environment!r}")
        webhook_secret = (
            os.environ.get("TA_PAYMENT_WEBHOOK_SECRET") or DEFAULT_PAYMENT_WEBHOOK_SECRET
        )
        if environment == "production" and webhook_secret == DEFAULT_PAYMENT_WEBHOOK_SECRET:
            raise ValueError(
                "TA_PAYMENT_WEBHOOK_SECRET must be set in production "
                "(the default is the public development secret)"
            )
        defaults = DomainConfig()
        return cls(
            database_url=os.environ.get("DATABASE_URL") or None,
            host=os.environ.get("TA_HOST", "127.0.0.1"),
            port=_int("TA_PORT", 8000),
            environment=environment,
            graphiql=_bool("TA_GRAPHIQL", environment == "development"),
            auto_migrate=_bool("TA_AUTO_MIGRATE", True),
            max_body_bytes=_int("TA_MAX_BODY_BYTES", 1_000_000),
            max_query_depth=_int("TA_MAX_QUERY_DEPTH", 10),
            max_aliases=_int("TA_MAX_ALIASES", 15),
            max_tokens=_int("TA_MAX_TOKENS", 2000),
            pg_pool_min=_int("TA_PG_POOL_MIN", 1),
            pg_pool_max=_int("TA_PG_POOL_MAX", 10),
            domain=DomainConfig(
                application_review_business_days=_int(
                    "TA_REVIEW_BUSINESS_DAYS", defaults.application_review_business_days
                ),
                limit_currency=os.environ.get("TA_LIMIT_CURRENCY", defaults.limit_currency),
                token_ttl_hours=_int("TA_TOKEN_TTL_HOURS", defaults.token_ttl_hours),
                session_cache_seconds=float(
                    os.environ.get("TA_SESSION_CACHE_SECONDS", defaults.session_cache_seconds)
                ),
                max_page_size=_int("TA_MAX_PAGE_SIZE", defaults.max_page_size),
                min_password_length=_int("TA_MIN_PASSWORD_LENGTH", defaults.min_password_length),
                payment_deadline_days=_int(
                    "TA_PAYMENT_DEADLINE_DAYS", defaults.payment_deadline_days
                ),
                card_fee_bps=_int("TA_CARD_FEE_BPS", defaults.card_fee_bps),
                refund_start_business_days=_int(
                    "TA_REFUND_START_BUSINESS_DAYS", defaults.refund_start_business_days
                ),
                refund_retry_minutes=_int("TA_REFUND_RETRY_MINUTES", defaults.refund_retry_minutes),
                payment_reconcile_minutes=_int(
                    "TA_PAYMENT_RECONCILE_MINUTES", defaults.payment_reconcile_minutes
                ),
                exchange_rates=_rates(os.environ.get("TA_EXCHANGE_RATES"))
                or defaults.exchange_rates,
                claim_window_days=_int("TA_CLAIM_WINDOW_DAYS", defaults.claim_window_days),
                dispute_response_days=_int(
                    "TA_DISPUTE_RESPONSE_DAYS", defaults.dispute_response_days
                ),
                dispute_escalation_after_days=_int(
                    "TA_DISPUTE_ESCALATION_AFTER_DAYS", defaults.dispute_escalation_after_days
                ),
                dispute_auto_escalation_days=_int(
                    "TA_DISPUTE_AUTO_ESCALATION_DAYS", defaults.dispute_auto_escalation_days
                ),
                auto_receipt_days=_method_days(os.environ.get("TA_AUTO_RECEIPT_DAYS"))
                or defaults.auto_receipt_days,
                inspection_fee_minor=_int(
                    "TA_INSPECTION_DEFAULT_FEE_MINOR", defaults.inspection_fee_minor
                ),
                attachment_max_bytes=_int(
                    "TA_UPLOAD_MAX_FILE_BYTES", defaults.attachment_max_bytes
                ),
                attachment_max_files=_int("TA_UPLOAD_MAX_FILES", defaults.attachment_max_files),
                penalty_points_resolved=_int(
                    "TA_PENALTY_POINTS_RESOLVED", defaults.penalty_points_resolved
                ),
                penalty_points_uncooperative=_int(
                    "TA_PENALTY_POINTS_UNCOOPERATIVE", defaults.penalty_points_uncooperative
                ),
                investigation_threshold_points=_int(
                    "TA_INVESTIGATION_THRESHOLD_POINTS", defaults.investigation_threshold_points
                ),
                attachment_dir=defaults.attachment_dir,  # TA_UPLOAD_DIR or TA_DATA_DIR/uploads
            ),
            max_upload_request_bytes=_int("TA_UPLOAD_MAX_REQUEST_BYTES", 20_000_000),
            payment_provider=os.environ.get("TA_PAYMENT_PROVIDER", "sandbox"),
            payment_webhook_secret=webhook_secret,
            live_poll_seconds=float(os.environ.get("TA_LIVE_POLL_SECONDS", "1.0")),
            subscriber_queue=_int("TA_SUBSCRIBER_QUEUE", 1000),
            ws_allowed_origins=_origins(os.environ.get("TA_WS_ALLOWED_ORIGINS"), environment),
            ws_connections_per_principal=_int("TA_WS_CONNECTIONS_PER_PRINCIPAL", 10),
            ws_subscriptions_per_connection=_int("TA_WS_SUBSCRIPTIONS_PER_CONNECTION", 20),
            scheduler_interval_seconds=float(
                os.environ.get("TA_SCHEDULER_INTERVAL_SECONDS") or "60"
            ),
            persisted_operations=_persisted_mode(),
            trusted_documents=os.environ.get("TA_TRUSTED_DOCUMENTS") or None,
            max_query_cost=_int("TA_MAX_QUERY_COST", 20_000),
            execution_timeout_seconds=float(os.environ.get("TA_EXECUTION_TIMEOUT_SECONDS") or 10),
            # Off in development (a test suite or a benchmark is one very busy caller).
            rate_limit_per_minute=_int(
                "TA_RATE_LIMIT_PER_MINUTE", 0 if environment == "development" else 1200
            ),
            anonymous_rate_limit_per_minute=_int(
                "TA_ANONYMOUS_RATE_LIMIT_PER_MINUTE", 0 if environment == "development" else 120
            ),
            introspection=_choice(
                "TA_INTROSPECTION",
                ("on", "authenticated", "partners", "off"),
                "on" if environment == "development" else "partners",
            ),
            ledger_check_minutes=float(os.environ.get("TA_LEDGER_CHECK_MINUTES") or "60"),
            metrics=_bool("TA_METRICS", environment == "development"),
            metrics_token=os.environ.get("TA_METRICS_TOKEN") or None,
            log_format=_log_format(os.environ.get("TA_LOG_FORMAT")),
        )


def _choice(name: str, allowed: tuple[str, ...], default: str) -> str:
    value = os.environ.get(name) or default
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _persisted_mode() -> str:
    mode = _choice("TA_PERSISTED_OPERATIONS", ("off", "apq", "trusted"), "apq")
    if mode == "trusted" and not os.environ.get("TA_TRUSTED_DOCUMENTS"):
        raise ValueError("TA_PERSISTED_OPERATIONS=trusted needs TA_TRUSTED_DOCUMENTS (a manifest)")
    return mode
