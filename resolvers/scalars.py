"""Scalars that validate ISO codes at the edge, so bad codes never reach the domain."""

from typing import NewType

import strawberry

from models.errors import DomainError
from models.geography import validate_country
from models.money import validate_currency


def _parse(validate: type[object] | object) -> object:
    def parse(value: object) -> str:
        if not isinstance(value, str):
            raise ValueError("expected a string")
        try:
            return validate(value, None)  # type: ignore[operator,no-any-return]
        except DomainError as e:
            raise ValueError(e.message) from None

    return parse


CountryCode = strawberry.scalar(
    NewType("CountryCode", str),
    description="ISO 3166-1 alpha-2 country code, e.g. `DE`.",
    specified_by_url="https://www.iso.org/iso-3166-country-codes.html",
    serialize=str,
    parse_value=_parse(validate_country),
)

CurrencyCode = strawberry.scalar(
    NewType("CurrencyCode", str),
    description="ISO 4217 currency code, e.g. `USD`.",
    specified_by_url="https://www.iso.org/iso-4217-currency-codes.html",
    serialize=str,
    parse_value=_parse(validate_currency),
)
