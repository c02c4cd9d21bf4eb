"""The sandbox payment provider: behaves like a real provider, moves no money.

Cards (`PaymentMethod.CARD`, the card number is the charge's `source`; spaces and dashes
are ignored):

    ==================  =========================================================
    card number         outcome
    ==================  =========================================================
    4242424242424242    SUCCEEDED
    4000000000000002    DECLINED, reason ``card_declined``
    4000000000009995    DECLINED, reason ``insufficient_funds``
    4000000000000119    processing error: raises ``ProviderUnavailable`` (the
                        provider could not be reached; nothing moved)
    any other number    DECLINED, reason ``invalid_number``
    no number           DECLINED, reason ``missing_card``
    ==================  =========================================================

Other methods:

- T/T (`TT`), e-Checking (`E_CHECKING`) and Boleto (`BOLETO`) answer PENDING: the money
  arrives later. The provider then calls `POST /webhooks/payments` with a signed
  `payment.succeeded` or `payment.failed` event; in the sandbox a person sends that
  callback by hand with `trade-assurance sandbox-callback --reference pay_12 --outcome
  succeeded` (or `send_callback` below).
- Pay Later (`PAY_LATER`) answers SUCCEEDED at once: the loan is approved.

Refunds settle at once, to the original method (Pay Later: back to the buyer's loan),
except:

- an amount whose minor units end in 13 (e.g. 10.13, 1013 minor units) fails with reason
  ``bank_rejected``;
- a provider created with ``SandboxProvider(fail_refunds=True)`` fails every refund with
  reason ``sandbox_forced_failure`` (for tests).

Provider references look like ``sbx_ch_<24 hex digits>`` for charges and
``sbx_re_<24 hex digits>`` for refunds; each is unique.

Like a real provider, the sandbox remembers what it answered to each of our references
(the `sandbox_operation` table, its own side of the database): a charge sent again with
a reference it has seen answers as the first time, a settled refund is not paid out
twice, and `charge_status` tells the reconciling sweep what became of a charge whose
answer a crashed process never recorded. A pending T/T charge stays PENDING in its
memory; the callback a person sends by hand completes it on our side only.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from typing import TYPE_CHECKING, Any

from models import clock, sql
from models.db import write_transaction
from models.enums import PaymentMethod
from models.payments import PROVIDER_EVENT_TYPES
from models.provider import (
    ChargeOutcome,
    ChargeRequest,
    ChargeResult,
    ProviderUnavailable,
    RefundRequest,
    RefundResult,
)
from server.payments import signing

if TYPE_CHECKING:
    import httpx

CARD_SUCCEEDS = "4242424242424242"
CARD_DECLINED = "4000000000000002"
CARD_INSUFFICIENT_FUNDS = "4000000000009995"
CARD_PROCESSING_ERROR = "4000000000000119"

_CARD_DECLINES = {
    CARD_DECLINED: "card_declined",
    CARD_INSUFFICIENT_FUNDS: "insufficient_funds",
}
_PENDING_METHODS = frozenset({PaymentMethod.TT, PaymentMethod.E_CHECKING, PaymentMethod.BOLETO})

REFUND_REJECTED_SUFFIX = 13  # amount_minor % 100 == 13 → the bank rejects the refund

WEBHOOK_PATH = "/webhooks/payments"
EVENT_TYPES = PROVIDER_EVENT_TYPES  # the domain's list: the webhook and sender share it


def _reference(kind: str) -> str:
    return f"sbx_{kind}_{secrets.token_hex(12)}"


@dataclasses.dataclass
class SandboxProvider:
    """`models.provider.PaymentProvider` with documented test numbers and rules."""

    fail_refunds: bool = False

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        result = self._answer(request)
        outcome, provider_reference, reason = await _remember(
            _KEEP_FIRST, request.reference, result.outcome.value, result.provider_reference,
            result.failure_reason,
        )  # fmt: skip
        return ChargeResult(ChargeOutcome(outcome), provider_reference, reason)

    async def charge_status(self, reference: str) -> ChargeResult | None:
        found = await _recorded(reference)
        return None if found is None else ChargeResult(ChargeOutcome(found[0]), *found[1:])

    def _answer(self, request: ChargeRequest) -> ChargeResult:
        if request.method is PaymentMethod.CARD:
            return self._card(request.source)
        if request.method in _PENDING_METHODS:
            return ChargeResult(ChargeOutcome.PENDING, _reference("ch"))
        if request.method is PaymentMethod.PAY_LATER:
            return ChargeResult(ChargeOutcome.SUCCEEDED, _reference("ch"))
        raise ValueError(f"the sandbox does not know payment method {request.method!r}")

    def _card(self, source: str | None) -> ChargeResult:
        number = (source or "").replace(" ", "").replace("-", "")
        if not number:
            return ChargeResult(ChargeOutcome.DECLINED, _reference("ch"), "missing_card")
        if number == CARD_PROCESSING_ERROR:
            raise ProviderUnavailable("sandbox: processing error (test card 4000000000000119)")
        if number == CARD_SUCCEEDS:
            return ChargeResult(ChargeOutcome.SUCCEEDED, _reference("ch"))
        reason = _CARD_DECLINES.get(number, "invalid_number")
        return ChargeResult(ChargeOutcome.DECLINED, _reference("ch"), reason)

    async def refund(self, request: RefundRequest) -> RefundResult:
        result = self._payout(request)
        outcome, provider_reference, reason = await _remember(
            _KEEP_SETTLED, request.reference, _SETTLED if result.settled else _FAILED,
            result.provider_reference, result.failure_reason,
        )  # fmt: skip
        return RefundResult(outcome == _SETTLED, provider_reference, reason)

    def _payout(self, request: RefundRequest) -> RefundResult:
        if self.fail_refunds:
            return RefundResult(False, _reference("re"), "sandbox_forced_failure")
        if request.amount_minor % 100 == REFUND_REJECTED_SUFFIX:
            return RefundResult(False, _reference("re"), "bank_rejected")
        return RefundResult(True, _reference("re"))


_SETTLED, _FAILED = "SETTLED", "FAILED"
_INSERT = (
    "INSERT INTO sandbox_operation"
    " (reference, outcome, provider_reference, failure_reason, created_at)"
    " VALUES ({}, {}, {}, {}, {}) ON CONFLICT (reference)"
)
# A charge's first answer stands; a refund's stands once settled (a failed one is
# tried again).
_KEEP_FIRST = _INSERT + " DO NOTHING"
_KEEP_SETTLED = _INSERT + (
    " DO UPDATE SET outcome = excluded.outcome,"
    " provider_reference = excluded.provider_reference,"
    " failure_reason = excluded.failure_reason, created_at = excluded.created_at"
    " WHERE sandbox_operation.outcome <> 'SETTLED'"
)


async def _remember(
    statement: str, reference: str, outcome: str, provider_reference: str, reason: str | None
) -> tuple[str, str, str | None]:
    """Record this answer to `reference` as `statement` says; the answer that stands."""
    async with write_transaction():
        await sql.fetch(statement, reference, outcome, provider_reference, reason, clock.now())
        found = await _recorded(reference)
    assert found is not None
    return found


async def _recorded(reference: str) -> tuple[str, str, str | None] | None:
    """The answer recorded for `reference`: outcome, provider reference, failure reason."""
    rows = await sql.fetch(
        "SELECT outcome, provider_reference, failure_reason FROM sandbox_operation"
        " WHERE reference = {}",
        reference,
    )
    if not rows:
        return None
    row = rows[0]
    return str(row["outcome"]), str(row["provider_reference"]), row["failure_reason"]


# --- the provider's side of the callback, for completing pending payments by hand --------


def build_event(
    event_type: str,
    reference: str,
    provider_reference: str | None,
    reason: str | None = None,
) -> dict[str, Any]:
    """A provider event as the sandbox would send it, with a fresh `evt_` id."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"event type must be one of {sorted(EVENT_TYPES)}, not {event_type!r}")
    return {
        "id": f"evt_{secrets.token_hex(12)}",
        "type": event_type,
        "created": int(clock.now().timestamp()),
        "data": {
            "reference": reference,
            "provider_reference": provider_reference,
            "reason": reason,
        },
    }


async def deliver(base_url: str, secret: str, event: dict[str, Any]) -> httpx.Response:
    """POST `event` to the gateway's webhook, signed with `secret` at the current time."""
    try:
        import httpx
    except ImportError as e:  # httpx is in the `dev` extra
        raise RuntimeError("sending sandbox callbacks needs httpx: pip install httpx") from e

    body = json.dumps(event, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        signing.HEADER: signing.sign(secret, body, clock.now()),
    }
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(base_url.rstrip("/") + WEBHOOK_PATH, content=body, headers=headers)


async def send_callback(
    base_url: str,
    secret: str,
    *,
    event_type: str,
    reference: str,
    provider_reference: str | None,
    reason: str | None = None,
) -> int:
    """Send one correctly signed provider event to the gateway; the HTTP status it answered."""
    event = build_event(event_type, reference, provider_reference, reason)
    response = await deliver(base_url, secret, event)
    return response.status_code
