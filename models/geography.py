"""Country codes (ISO 3166-1 alpha-2)."""

from __future__ import annotations

import pycountry

from models.errors import DomainError, ErrorCode

COUNTRIES: frozenset[str] = frozenset(c.alpha_2 for c in pycountry.countries)


def validate_country(code: str, field: str | None = "country") -> str:
    code = code.strip().upper()
    if code not in COUNTRIES:
        raise DomainError(
            ErrorCode.INVALID_COUNTRY, f"'{code}' is not an ISO 3166-1 alpha-2 country code", field
        )
    return code
