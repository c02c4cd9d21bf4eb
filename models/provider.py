"""The payment provider as the domain sees it: an interface, injected by the server.

The domain starts a payment or refund as a PENDING row, commits, calls the provider
outside any transaction, then records the outcome in a new transaction. A provider that
answers PENDING (bank transfer, e-Checking, Boleto) completes later through a signed
callback (`server/payments`), which calls `models.payments.handle_provider_event`.

Our reference is the provider's idempotency key: a charge or refund sent again with the
same reference answers as the first time and moves no money twice (a settled refund is
not paid out again; a failed one is a new attempt). A process killed between the
provider's answer and recording it leaves a PENDING payment; the reconciling sweep asks
`charge_status` about it (`models.payments.reconcile_pending_payments`).
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Protocol

from models.enums import PaymentMethod


class ChargeOutcome(enum.StrEnum):
    SUCCEEDED = "SUCCEEDED"
    DECLINED = "DECLINED"
    PENDING = "PENDING"  # money is on its way; a callback will settle or fail it


@dataclasses.dataclass(frozen=True, slots=True)
class ChargeRequest:
    reference: str  # ours, e.g. "pay_12"; the callback names it
    method: PaymentMethod
    currency: str
    amount_minor: int  # what goes into escrow
    fee_minor: int  # charged on top (card fee)
    source: str | None  # a card number / token for CARD; None for the others
    buyer_country: str


@dataclasses.dataclass(frozen=True, slots=True)
class ChargeResult:
    outcome: ChargeOutcome
    provider_reference: str
    failure_reason: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class RefundRequest:
    reference: str  # ours, e.g. "ref_7"
    method: PaymentMethod  # refunds go back the way the money came (Pay Later: to the loan)
    currency: str
    amount_minor: int
    payment_provider_reference: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class RefundResult:
    settled: bool
    provider_reference: str
    failure_reason: str | None = None


class PaymentProvider(Protocol):
    async def charge(self, request: ChargeRequest) -> ChargeResult: ...

    async def refund(self, request: RefundRequest) -> RefundResult: ...

    async def charge_status(self, reference: str) -> ChargeResult | None:
        """What became of the charge with our `reference`; None if it never arrived."""
        ...


class ProviderUnavailable(Exception):
    """The provider could not be reached; nothing is known to have moved."""


_provider: PaymentProvider | None = None


def set_provider(provider: PaymentProvider) -> None:
    global _provider
    _provider = provider


def provider() -> PaymentProvider:
    if _provider is None:
        raise RuntimeError("no payment provider configured (server.payments installs one)")
    return _provider
