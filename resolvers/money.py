"""Money on the wire: a decimal string and an ISO 4217 code."""

import functools
from decimal import Decimal

import strawberry

from models.money import Money as DomainMoney
from resolvers.scalars import CurrencyCode


@strawberry.type(description="An exact amount of money.")
class Money:
    amount: Decimal = strawberry.field(
        description='Decimal string with the currency\'s minor-unit places, e.g. `"1500.00"`.'
    )
    currency: CurrencyCode = strawberry.field(description="ISO 4217 currency code.")

    @classmethod
    def of(cls, money: DomainMoney | None) -> "Money | None":
        return None if money is None else money_of(money.minor, money.currency)


@strawberry.input(description="An exact amount of money.")
class MoneyInput:
    amount: Decimal = strawberry.field(
        description="Decimal string; at most the currency's minor-unit places."
    )
    currency: CurrencyCode = strawberry.field(description="ISO 4217 currency code.")

    def to_domain(self, field: str) -> DomainMoney:
        return DomainMoney.parse(self.amount, self.currency, field)


@functools.lru_cache(maxsize=4096)
def money_of(minor: int, currency: str) -> Money:
    """The Money object of an amount, made once while in use: an order status shows six to
    ten, mostly the same few, and each is a Decimal worked out and a dataclass made. Shared
    across requests, which never change the objects they answer with."""
    return Money(amount=DomainMoney(minor, currency).amount, currency=CurrencyCode(currency))
