"""Domain settings (the numbers DOMAIN.md marks as configurable), with their defaults.

The server builds one from the environment at start and installs it with `configure`.
"""

from __future__ import annotations

import dataclasses
import os


@dataclasses.dataclass(frozen=True)
class DomainConfig:
    # Trade Assurance application review target, in business days (Mon-Fri).
    application_review_business_days: int = 2
    # Trade Assurance limits are granted in this currency (DOMAIN: "the limit has one currency").
    limit_currency: str = "USD"
    # Bearer tokens issued by `login` live this long.
    token_ttl_hours: int = 24
    # A valid credential's look-up is reused for this long (0: look up every request). A
    # logout in this process takes effect at once; one in another process, within this.
    session_cache_seconds: float = 2.0
    # An order not paid this many days after confirmation is cancelled.
    payment_deadline_days: int = 7
    # Card fee charged on top of a card payment, in basis points (280 = 2.8 %).
    card_fee_bps: int = 280
    # A refund must be started within this many business days of the decision.
    refund_start_business_days: int = 7
    # The deadline sweep retries a refund not yet paid out this many minutes after it was
    # started, then backs off: the wait doubles after each failed attempt (up to 6 hours).
    refund_retry_minutes: int = 5
    # The sweep asks the provider about a payment still PENDING this many minutes after
    # it was made (its process may have died before recording the answer), and again
    # after as long while it stays pending.
    payment_reconcile_minutes: int = 10
    # Units of the limit currency per unit of another currency, e.g. {"EUR": "1.08"}:
    # recorded on an order when it is confirmed (coverage in another currency).
    exchange_rates: tuple[tuple[str, str], ...] = (
        ("EUR", "1.08"),
        ("GBP", "1.27"),
        ("CNY", "0.138"),
        ("JPY", "0.0066"),
        ("BRL", "0.18"),
        ("INR", "0.012"),
    )
    # After receipt is confirmed the buyer may claim for this many days; then the held
    # balance is released to the supplier (if no dispute is open).
    claim_window_days: int = 30
    # Receipt is confirmed automatically this many days after shipment, by shipping method.
    auto_receipt_days: tuple[tuple[str, int], ...] = (
        ("EXPRESS", 15),
        ("AIR", 15),
        ("LAND", 30),
        ("SEA", 45),
    )
    # Disputes: the supplier answers within this many days; from then on the buyer may
    # escalate; this many days after opening an unresolved dispute escalates by itself.
    dispute_response_days: int = 3
    dispute_escalation_after_days: int = 3
    dispute_auto_escalation_days: int = 7
    # Hard cap on `first` for every connection.
    max_page_size: int = 100
    # Minimum password length accepted at registration.
    min_password_length: int = 10
    # The fee of a new inspection company until staff set its own (minor units).
    inspection_fee_minor: int = 300_00
    # Inspection report attachments: the largest file, and the most files per report.
    attachment_max_bytes: int = 5_000_000
    attachment_max_files: int = 10
    # Penalty points a supplier gets for a dispute decided against it: resolved, and when
    # it did not cooperate; unconsumed points at the threshold open an investigation.
    penalty_points_resolved: int = 6
    penalty_points_uncooperative: int = 48
    investigation_threshold_points: int = 24
    # Where attachment files are stored (named by their SHA-256).
    attachment_dir: str = dataclasses.field(default_factory=lambda: default_attachment_dir())

    def auto_receipt_days_for(self, method: str) -> int:
        return dict(self.auto_receipt_days)[method]


def default_attachment_dir() -> str:
    """TA_UPLOAD_DIR, else `uploads` inside the data directory (TA_DATA_DIR)."""
    return os.environ.get("TA_UPLOAD_DIR") or os.path.join(
        os.environ.get("TA_DATA_DIR", "data"), "uploads"
    )


_current = DomainConfig()


def current() -> DomainConfig:
    return _current


def configure(config: DomainConfig) -> None:
    global _current
    _current = config
