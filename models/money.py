"""Money as integer minor units plus an ISO 4217 code. No floats anywhere near it."""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal

import pycountry

from models.errors import DomainError, ErrorCode

# ISO 4217 minor units where they differ from 2; pycountry carries codes, not exponents.
_EXPONENT_EXCEPTIONS = {
    **dict.fromkeys(
        "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0
    ),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    "CLF": 4,
    "UYW": 4,
}
# Codes that are not money one can pay with (precious metals, testing, funds codes).
_NOT_TENDER = set(
    "XAG XAU XBA XBB XBC XBD XDR XPD XPT XSU XTS XUA XXX BOV CHE CHW COU MXV USN".split()
)
# Minor units are stored in 64-bit integer columns.
MAX_MINOR = 2**63 - 1
MAX_MINOR_DIGITS = len(str(MAX_MINOR))
# An order's total: above any trade in any currency (10**15 rupiah is some 60 billion
# dollars), and far enough below MAX_MINOR that a total with its fees on top, and the
# ledger's sums over many such orders, still fit.
MAX_ORDER_MINOR = 10**17
CURRENCIES: frozenset[str] = frozenset(
    c.alpha_3 for c in pycountry.currencies if c.alpha_3 not in _NOT_TENDER
)


def validate_currency(code: str, field: str | None = "currency") -> str:
    code = code.strip().upper()
    if code not in CURRENCIES:
        raise DomainError(
            ErrorCode.INVALID_CURRENCY, f"'{code}' is not an ISO 4217 currency code", field
        )
    return code


def exponent(currency: str) -> int:
    return _EXPONENT_EXCEPTIONS.get(currency, 2)


_DECIMAL = re.compile(r"-?[0-9]{1,30}(\.[0-9]{1,30})?")


def parse_decimal(text: str) -> Decimal:
    """A plain decimal string ("1500.00", "-3"): no exponents, separators or non-ASCII
    digits, which Python's Decimal would otherwise accept."""
    if not _DECIMAL.fullmatch(text.strip()):
        raise ValueError(f"'{text}' is not a plain decimal number like 1500.00")
    return Decimal(text.strip())


@dataclasses.dataclass(frozen=True, slots=True)
class Money:
    minor: int
    currency: str

    @classmethod
    def parse(cls, amount: Decimal | str, currency: str, field: str = "amount") -> Money:
        """Exact conversion; more decimals than the currency has is an error, not rounding."""
        currency = validate_currency(currency, field=f"{field}.currency")
        try:
            value = parse_decimal(amount) if isinstance(amount, str) else amount
        except ValueError as e:
            raise DomainError(ErrorCode.INVALID_AMOUNT, str(e), field) from None
        if not value.is_finite():
            raise DomainError(ErrorCode.INVALID_AMOUNT, "amount must be finite", field)
        # Shift the exponent by hand: `scaleb` rounds to the context's 28 digits, which
        # would silently accept "1.0000000000000000000000000000001" as 1.00.
        sign, digits, exp10 = value.as_tuple()
        assert isinstance(exp10, int)  # finite, checked above
        scaled = Decimal((sign, digits, exp10 + exponent(currency)))
        if scaled != scaled.to_integral_value():
            raise DomainError(
                ErrorCode.INVALID_AMOUNT,
                f"{currency} has {exponent(currency)} decimal places; got {amount}",
                field,
            )
        if scaled.adjusted() > MAX_MINOR_DIGITS or abs(int(scaled)) > MAX_MINOR:
            raise DomainError(ErrorCode.INVALID_AMOUNT, "amount is too large", field)
        return cls(int(scaled), currency)

    @property
    def amount(self) -> Decimal:
        """The decimal amount with exactly the currency's number of places."""
        # scaleb gives exponent -exp exactly (zero too: 0E-2 is "0.00"); it rounds only past
        # the context's 28 digits, and minor units have at most 19.
        return Decimal(self.minor).scaleb(-exponent(self.currency))

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"
