"""Domain settings (the numbers DOMAIN.md marks as configurable), with their defaults.

The server builds one from the environment at start and installs it with `configure`.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class DomainConfig:
    # Trade Assurance application review target, in business days (Mon-Fri).
    application_review_business_days: int = 2
    # Trade Assurance limits are granted in this currency (DOMAIN: "the limit has one currency").
    limit_currency: str = "USD"
    # Bearer tokens issued by `login` live this long.
    token_ttl_hours: int = 24
    # Hard cap on `first` for every connection.
    max_page_size: int = 100
    # Minimum password length accepted at registration.
    min_password_length: int = 10


_current = DomainConfig()


def current() -> DomainConfig:
    return _current


def configure(config: DomainConfig) -> None:
    global _current
    _current = config
