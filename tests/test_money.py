"""Money and ISO codes: exact parsing, formatting, validation."""

from __future__ import annotations

from decimal import Decimal

import pytest

from models.errors import DomainError, ErrorCode
from models.geography import validate_country
from models.money import MAX_MINOR, Money, validate_currency


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("1500", "USD", 150000),
        ("1500.5", "USD", 150050),
        ("0.01", "USD", 1),
        ("1500.00", "USD", 150000),
        ("1.000", "USD", 100),  # trailing zeros are not extra precision
        (Decimal("1E+2"), "USD", 10000),  # a Decimal value is exact, whatever its form
        ("-2.50", "USD", -250),
        ("1500", "JPY", 1500),
        ("1500.0", "JPY", 1500),
        ("1.234", "KWD", 1234),
        ("0.001", "KWD", 1),
        (Decimal("12.34"), "EUR", 1234),
        ("92233720368547758.07", "USD", MAX_MINOR),
    ],
)
def test_parse_is_exact(amount: str | Decimal, currency: str, minor: int) -> None:
    assert Money.parse(amount, currency) == Money(minor, currency)


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        ("0.001", "USD"),
        ("1500.5", "JPY"),
        ("0.0001", "KWD"),
        # Beyond the 28 digits of the default decimal context: must not be rounded away.
        ("1.0000000000000000000000000000001", "USD"),
        (Decimal("0.1") + Decimal("0.005"), "USD"),
    ],
)
def test_parse_rejects_more_decimals_than_the_currency_has(
    amount: str | Decimal, currency: str
) -> None:
    with pytest.raises(DomainError) as e:
        Money.parse(amount, currency, field="price")
    assert e.value.code is ErrorCode.INVALID_AMOUNT
    assert e.value.field == "price"


@pytest.mark.parametrize(
    "amount",
    [
        "",
        "abc",
        "1,50",
        "12.3.4",
        "NaN",
        "-nan",
        "sNaN",
        "Infinity",
        "-Inf",
        "1e999999",
        "1E+2",  # strings are plain decimals only: no exponent,
        "1_000",  # no separators,
        "\u0663",  # no non-ASCII digits (Arabic-Indic three)
        "92233720368547758.08",
        "1e30",
    ],
)
def test_parse_rejects_garbage_non_finite_and_too_large(amount: str) -> None:
    with pytest.raises(DomainError) as e:
        Money.parse(amount, "USD")
    assert e.value.code is ErrorCode.INVALID_AMOUNT
    assert e.value.field == "amount"


@pytest.mark.parametrize("currency", ["XYZ", "US", "", "USDD", "XAU", "XTS"])
def test_parse_rejects_unknown_or_non_tender_currency(currency: str) -> None:
    with pytest.raises(DomainError) as e:
        Money.parse("10", currency, field="limit")
    assert e.value.code is ErrorCode.INVALID_CURRENCY
    assert e.value.field == "limit.currency"


def test_currency_code_is_normalised() -> None:
    assert Money.parse("10.5", " usd ") == Money(1050, "USD")
    assert Money.parse("7", "jpy").currency == "JPY"
    assert validate_currency("kwd") == "KWD"


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(150000, "USD"), "1500.00"),
        (Money(5, "USD"), "0.05"),
        (Money(-250, "USD"), "-2.50"),
        (Money(0, "USD"), "0.00"),
        (Money(1500, "JPY"), "1500"),
        (Money(1, "KWD"), "0.001"),
        (Money(0, "KWD"), "0.000"),
        (Money(2**63 - 1, "USD"), "92233720368547758.07"),  # the largest amount, exact
        (Money(-(2**63) + 1, "KWD"), "-9223372036854775.807"),
    ],
)
def test_amount_has_exactly_the_currencys_places(money: Money, text: str) -> None:
    assert str(money.amount) == text
    assert str(money) == f"{text} {money.currency}"


def test_parse_and_amount_round_trip() -> None:
    for amount, currency in [("1500.00", "USD"), ("3", "JPY"), ("0.125", "KWD")]:
        assert str(Money.parse(amount, currency).amount) == amount


@pytest.mark.parametrize(("code", "expected"), [("DE", "DE"), ("cn", "CN"), (" us ", "US")])
def test_validate_country_accepts_and_normalises(code: str, expected: str) -> None:
    assert validate_country(code) == expected


@pytest.mark.parametrize("code", ["XX", "DEU", "", "U", "EU"])
def test_validate_country_rejects(code: str) -> None:
    with pytest.raises(DomainError) as e:
        validate_country(code, "shipTo")
    assert e.value.code is ErrorCode.INVALID_COUNTRY
    assert e.value.field == "shipTo"
