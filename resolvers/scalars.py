"""Scalars that validate ISO codes at the edge, so bad codes never reach the domain."""

from collections.abc import Callable
from decimal import Decimal
from typing import NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

from models.errors import DomainError
from models.geography import validate_country
from models.money import parse_decimal, validate_currency

CountryCode = NewType("CountryCode", str)
CurrencyCode = NewType("CurrencyCode", str)


def _parser(validate: Callable[[str, str | None], str]) -> Callable[[object], str]:
    def parse(value: object) -> str:
        if not isinstance(value, str):
            raise ValueError("expected a string")
        try:
            return validate(value, None)
        except DomainError as e:
            raise ValueError(e.message) from None

    return parse


def _decimal(value: object) -> Decimal:
    if not isinstance(value, str):
        raise ValueError('expected a decimal string such as "1500.00"')
    return parse_decimal(value)


SCALARS: dict[object, ScalarDefinition] = {
    # Strict, unlike Python's Decimal: no exponents, separators or non-ASCII digits.
    Decimal: strawberry.scalar(
        name="Decimal",
        description='A decimal number as a string, e.g. `"1500.00"`. Never a float.',
        serialize=str,
        parse_value=_decimal,
    ),
    CountryCode: strawberry.scalar(
        name="CountryCode",
        description="ISO 3166-1 alpha-2 country code, e.g. `DE`.",
        specified_by_url="https://www.iso.org/iso-3166-country-codes.html",
        serialize=str,
        parse_value=_parser(validate_country),
    ),
    CurrencyCode: strawberry.scalar(
        name="CurrencyCode",
        description="ISO 4217 currency code, e.g. `USD`.",
        specified_by_url="https://www.iso.org/iso-4217-currency-codes.html",
        serialize=str,
        parse_value=_parser(validate_currency),
    ),
}
