"""Money through escrow, without HTTP: payments, the fee, callbacks, releases, refunds,
idempotency, concurrency and crashes. Every test ends with a clean `ledger.check()`."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging

import pytest

from models import clock, events, ledger, payments, provider
from models.enums import OrderStatus, PaymentMethod
from models.errors import DomainError, ErrorCode
from models.money import Money
from models.provider import ChargeRequest, ChargeResult, RefundRequest, RefundResult
from models.tables import LedgerPosting, Order, OrderEvent, Payment, Refund
from server.payments.sandbox import (
    CARD_DECLINED,
    CARD_PROCESSING_ERROR,
    CARD_SUCCEEDS,
    SandboxProvider,
)
from tests.conftest import ENGINE
from tests.factories import Actor, buyer, confirmed_order

USD = "USD"


# The sandbox provider for every test, and a sound ledger after each (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("sandbox")


async def _pay(
    order: Order, who: object, minor: int, key: str, **kw: object
) -> payments.PaymentResult:
    method = kw.pop("method", PaymentMethod.CARD)
    source = kw.pop("source", CARD_SUCCEEDS)
    return await payments.pay_order(
        who.principal,  # type: ignore[attr-defined]
        order.id,
        Money(minor, USD),
        method,  # type: ignore[arg-type]
        idempotency_key=key,
        source=source,  # type: ignore[arg-type]
    )


async def _status(order_id: int) -> str:
    row = await Order.select(Order.status).where(Order.id == order_id).first()
    assert row is not None
    return str(row["status"])


async def test_card_payment_goes_into_escrow_with_the_fee_on_top() -> None:
    b, _, order = await confirmed_order()
    assert payments.quote(PaymentMethod.CARD, Money(1_500_00, USD)).fee == Money(42_00, USD)
    result = await _pay(order, b, 1_500_00, "k1")
    assert result.error is None
    assert (result.payment.status, result.payment.fee_minor) == ("SUCCEEDED", 42_00)
    money = (await ledger.order_money([order.id]))[order.id]
    assert (money.paid, money.held, money.fees) == (1_500_00, 1_500_00, 42_00)
    assert await _status(order.id) == OrderStatus.AWAITING_BALANCE
    await _pay(order, b, 1_500_00, "k2")
    assert await _status(order.id) == OrderStatus.PAID


async def test_only_the_amount_due_can_be_paid() -> None:
    b, _, order = await confirmed_order()
    with pytest.raises(DomainError) as e:
        await _pay(order, b, 1_000_00, "k")
    assert e.value.code is ErrorCode.AMOUNT_NOT_DUE
    await _pay(order, b, 3_000_00, "all at once")  # the whole outstanding amount is fine
    assert await _status(order.id) == OrderStatus.PAID


async def test_declined_card_moves_nothing_and_can_be_retried() -> None:
    b, _, order = await confirmed_order()
    result = await _pay(order, b, 1_500_00, "k1", source=CARD_DECLINED)
    assert result.payment.status == "FAILED"
    assert result.error is not None and result.error.code is ErrorCode.PAYMENT_DECLINED
    assert await LedgerPosting.count() == 0
    assert (await _pay(order, b, 1_500_00, "k2")).payment.status == "SUCCEEDED"


async def test_unreachable_provider_moves_nothing() -> None:
    b, _, order = await confirmed_order()
    result = await _pay(order, b, 1_500_00, "k1", source=CARD_PROCESSING_ERROR)
    assert result.error is not None
    assert result.error.code is ErrorCode.PAYMENT_PROVIDER_UNAVAILABLE
    assert await LedgerPosting.count() == 0


async def test_bank_transfer_stays_pending_until_the_callback() -> None:
    b, _, order = await confirmed_order()
    result = await _pay(order, b, 1_500_00, "tt", method=PaymentMethod.TT, source=None)
    assert result.payment.status == "PENDING" and result.payment.fee_minor == 0
    with pytest.raises(DomainError) as e:  # no second payment while one is on its way
        await _pay(order, b, 1_500_00, "again")
    assert e.value.code is ErrorCode.PAYMENT_IN_PROGRESS
    with pytest.raises(DomainError) as e:  # and no cancelling either
        from models import orders

        await orders.cancel_order(b.principal, order.id, "too slow")
    assert e.value.code is ErrorCode.ORDER_HAS_PAYMENTS
    assert await LedgerPosting.count() == 0
    ref = payments.payment_reference(result.payment.id)
    assert await payments.handle_provider_event("evt_1", "payment.succeeded", ref, "sbx", None)
    # The same event again, or another delivery of the same news, changes nothing.
    assert not await payments.handle_provider_event("evt_1", "payment.succeeded", ref, "sbx", None)
    await payments.handle_provider_event("evt_2", "payment.succeeded", ref, "sbx", None)
    money = (await ledger.order_money([order.id]))[order.id]
    assert money.paid == 1_500_00
    assert await _status(order.id) == OrderStatus.AWAITING_BALANCE


async def test_methods_are_limited_by_the_buyers_country() -> None:
    de_buyer = await buyer(country="DE")
    b, _, order = await confirmed_order(de_buyer)
    for method in (PaymentMethod.E_CHECKING, PaymentMethod.BOLETO, PaymentMethod.PAY_LATER):
        with pytest.raises(DomainError) as e:
            await _pay(order, b, 1_500_00, f"k-{method}", method=method, source=None)
        assert e.value.code is ErrorCode.PAYMENT_METHOD_NOT_AVAILABLE
    assert await Payment.count() == 0


async def test_same_key_same_request_is_answered_once() -> None:
    b, _, order = await confirmed_order()
    first = await _pay(order, b, 1_500_00, "same")
    again = await _pay(order, b, 1_500_00, "same")
    assert again.payment.id == first.payment.id
    assert await Payment.count() == 1
    with pytest.raises(DomainError) as e:
        await _pay(order, b, 3_000_00, "same")
    assert e.value.code is ErrorCode.IDEMPOTENCY_KEY_REUSED


async def test_twenty_concurrent_requests_with_one_key_execute_once() -> None:
    b, _, order = await confirmed_order()
    results = await asyncio.gather(*[_pay(order, b, 1_500_00, "one-key") for _ in range(20)])
    assert {r.payment.id for r in results} == {results[0].payment.id}
    assert await Payment.count() == 1
    assert (await ledger.order_money([order.id]))[order.id].paid == 1_500_00


async def test_release_part_then_all_and_never_more_than_held() -> None:
    b, _, order = await confirmed_order()
    await _pay(order, b, 3_000_00, "pay")
    part = await payments.release_funds(
        b.principal, order.id, Money(1_000_00, USD), idempotency_key="r1"
    )
    assert part.amount == Money(1_000_00, USD)
    rest = await payments.release_funds(b.principal, order.id, None, idempotency_key="r2")
    assert rest.amount == Money(2_000_00, USD)
    with pytest.raises(DomainError) as e:
        await payments.release_funds(b.principal, order.id, None, idempotency_key="r3")
    assert e.value.code is ErrorCode.INSUFFICIENT_HELD_FUNDS
    money = (await ledger.order_money([order.id]))[order.id]
    assert (money.held, money.released) == (0, 3_000_00)


async def test_only_the_buyer_releases() -> None:
    b, s, order = await confirmed_order()
    await _pay(order, b, 3_000_00, "pay")
    with pytest.raises(DomainError) as e:
        await payments.release_funds(s.principal, order.id, None, idempotency_key="r")
    assert e.value.code is ErrorCode.FORBIDDEN
    stranger = await buyer()
    with pytest.raises(DomainError) as e:
        await payments.release_funds(stranger.principal, order.id, None, idempotency_key="r")
    assert e.value.code is ErrorCode.NOT_FOUND
    assert (await ledger.order_money([order.id]))[order.id].released == 0


async def test_hundred_concurrent_full_releases_move_the_money_once() -> None:
    b, _, order = await confirmed_order()
    await _pay(order, b, 3_000_00, "pay")
    results = await asyncio.gather(
        *[
            payments.release_funds(b.principal, order.id, None, idempotency_key=f"r{n}")
            for n in range(100)
        ],
        return_exceptions=True,
    )
    ok = [r for r in results if isinstance(r, payments.Release)]
    refused = [r for r in results if isinstance(r, DomainError)]
    assert len(ok) == 1 and len(refused) == 99
    assert {r.code for r in refused} == {ErrorCode.INSUFFICIENT_HELD_FUNDS}
    assert (await ledger.order_money([order.id]))[order.id].released == 3_000_00


async def test_concurrent_release_and_refund_never_exceed_what_was_paid() -> None:
    b, _, order = await confirmed_order()
    await _pay(order, b, 3_000_00, "pay")

    async def refund() -> object:
        return await payments.start_refund(
            order.id, 2_000_00, actor=events.SCHEDULER, reason="late shipment"
        )

    async def release() -> object:
        return await payments.release_funds(
            b.principal, order.id, Money(2_000_00, USD), idempotency_key="rel"
        )

    results = await asyncio.gather(refund(), release(), return_exceptions=True)
    assert sum(isinstance(r, DomainError) for r in results) == 1
    money = (await ledger.order_money([order.id]))[order.id]
    assert money.released + money.refund_pending + money.refunded <= money.paid


async def test_refund_is_pending_then_settled_and_counted_once() -> None:
    b, _, order = await confirmed_order()
    await _pay(order, b, 3_000_00, "pay")
    [refund] = await payments.start_refund(
        order.id, 1_000_00, actor=events.SCHEDULER, reason="failed inspection"
    )
    money = (await ledger.order_money([order.id]))[order.id]
    assert (money.held, money.refund_pending, money.refunded) == (2_000_00, 1_000_00, 0)
    done = await payments.execute_refund(refund.id)
    assert done.status == "SETTLED" and done.attempts == 1
    await payments.execute_refund(refund.id)  # settled: nothing more happens
    money = (await ledger.order_money([order.id]))[order.id]
    assert (money.refund_pending, money.refunded) == (0, 1_000_00)


async def test_failed_refund_is_retried_and_never_counted_as_paid_out(
    sandbox: SandboxProvider, frozen_clock: clock.FrozenClock
) -> None:
    b, _, order = await confirmed_order()
    await _pay(order, b, 3_000_00, "pay")
    sandbox.fail_refunds = True
    [refund] = await payments.start_refund(order.id, 3_000_00, actor=events.SCHEDULER, reason="x")
    failed = await payments.execute_refund(refund.id)
    assert failed.status == "FAILED" and failed.last_error
    money = (await ledger.order_money([order.id]))[order.id]
    assert (money.refunded, money.refund_pending) == (0, 3_000_00)
    sandbox.fail_refunds = False
    assert failed.next_attempt_at == clock.now() + dt.timedelta(minutes=5)
    assert await payments.retry_due_refunds() == []  # backing off
    frozen_clock.advance(minutes=5)
    [retried] = await payments.retry_due_refunds()
    assert retried.status == "SETTLED" and retried.attempts == 2
    assert (await ledger.order_money([order.id]))[order.id].refunded == 3_000_00
    kinds = [
        r["kind"]
        for r in await OrderEvent.select(OrderEvent.kind).where(OrderEvent.order == order.id)
    ]
    assert kinds[-3:] == ["REFUND_STARTED", "REFUND_FAILED", "REFUND_SETTLED"]


async def test_a_crash_after_the_ledger_write_leaves_no_partial_release(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    b, _, order = await confirmed_order()
    await _pay(order, b, 3_000_00, "pay")
    postings_before = await LedgerPosting.count()
    events_before = await OrderEvent.count()

    async def crash(*args: object, **kwargs: object) -> int:
        raise RuntimeError("power cut after the ledger write")

    monkeypatch.setattr(events, "record", crash)
    with pytest.raises(RuntimeError):
        await payments.release_funds(b.principal, order.id, None, idempotency_key="crash")
    monkeypatch.undo()
    assert await LedgerPosting.count() == postings_before
    assert await OrderEvent.count() == events_before
    # The key was not consumed either: the retry goes through, once.
    await payments.release_funds(b.principal, order.id, None, idempotency_key="crash")
    assert (await ledger.order_money([order.id]))[order.id].released == 3_000_00


async def test_callbacks_for_unknown_references_are_refused() -> None:
    for ref in ("pay_999999", "nonsense", "ref_x"):
        with pytest.raises(DomainError) as e:
            await payments.handle_provider_event(f"evt-{ref}", "payment.succeeded", ref, None, None)
        assert e.value.code is ErrorCode.UNKNOWN_REFERENCE
    assert await Refund.count() == 0


@pytest.mark.skipif(ENGINE != "postgres", reason="row locks across connections: PostgreSQL")
async def test_postgres_locks_the_order_row() -> None:
    b, _, order = await confirmed_order()
    await _pay(order, b, 3_000_00, "pay")
    results = await asyncio.gather(
        *[
            payments.release_funds(b.principal, order.id, Money(1_000_00, USD),
                                   idempotency_key=f"p{n}")
            for n in range(10)
        ],
        return_exceptions=True,
    )  # fmt: skip
    assert sum(isinstance(r, payments.Release) for r in results) == 3


async def test_one_key_racing_on_two_orders_is_refused_not_crashed() -> None:
    b, s, first = await confirmed_order()
    _, _, second = await confirmed_order(b, s)
    await _pay(first, b, 3_000_00, "pay-1")
    await _pay(second, b, 3_000_00, "pay-2")
    results = await asyncio.gather(
        payments.release_funds(b.principal, first.id, None, idempotency_key="shared"),
        payments.release_funds(b.principal, second.id, None, idempotency_key="shared"),
        return_exceptions=True,
    )
    assert sum(isinstance(r, payments.Release) for r in results) == 1
    [refused] = [r for r in results if not isinstance(r, payments.Release)]
    assert isinstance(refused, DomainError)
    assert refused.code is ErrorCode.IDEMPOTENCY_KEY_REUSED


# --- reconciling payments whose answer was never recorded ------------------------------------


@dataclasses.dataclass
class DiesAroundTheCall:
    """The sandbox, in a process killed while charging: before the request reaches the
    provider (`reached=False`) or after it answered, before the answer is recorded."""

    sandbox: SandboxProvider
    reached: bool
    asked: int = 0

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        if self.reached:
            await self.sandbox.charge(request)
        raise RuntimeError("the process died here")

    async def refund(self, request: RefundRequest) -> RefundResult:
        return await self.sandbox.refund(request)

    async def charge_status(self, reference: str) -> ChargeResult | None:
        self.asked += 1
        return await self.sandbox.charge_status(reference)


async def _lost_answer(
    sandbox: SandboxProvider, *, reached: bool, **kw: object
) -> tuple[Actor, int]:
    """A payment left PENDING by a process that died around the provider call; its buyer."""
    b, _, order = await confirmed_order()
    provider.set_provider(DiesAroundTheCall(sandbox, reached))
    with pytest.raises(RuntimeError):
        await _pay(order, b, 1_500_00, "k1", **kw)
    provider.set_provider(sandbox)
    payment = await Payment.objects().where(Payment.order == order.id).first()
    assert payment is not None and payment.status == "PENDING"
    return b, payment.id


async def test_a_charge_whose_answer_was_lost_is_settled_by_asking_the_provider(
    sandbox: SandboxProvider, frozen_clock: clock.FrozenClock
) -> None:
    _, payment_id = await _lost_answer(sandbox, reached=True)
    assert await payments.reconcile_pending_payments() == []  # its request may be running
    frozen_clock.advance(minutes=10)
    assert await payments.reconcile_pending_payments() == [payment_id]
    payment = await Payment.objects().get(Payment.id == payment_id)
    assert payment is not None and payment.status == "SUCCEEDED"
    answer = await sandbox.charge_status(payments.payment_reference(payment_id))
    assert answer is not None and payment.provider_reference == answer.provider_reference
    money = (await ledger.order_money([payment.order]))[payment.order]
    assert (money.paid, money.fees) == (1_500_00, 42_00)
    assert await _status(payment.order) == OrderStatus.AWAITING_BALANCE
    frozen_clock.advance(minutes=10)
    assert await payments.reconcile_pending_payments() == []  # once


async def test_a_declined_charge_whose_answer_was_lost_fails(
    sandbox: SandboxProvider, frozen_clock: clock.FrozenClock
) -> None:
    _, payment_id = await _lost_answer(sandbox, reached=True, source=CARD_DECLINED)
    frozen_clock.advance(minutes=10)
    assert await payments.reconcile_pending_payments() == [payment_id]
    payment = await Payment.objects().get(Payment.id == payment_id)
    assert payment is not None
    assert (payment.status, payment.failure_reason) == ("FAILED", "card_declined")
    assert await LedgerPosting.count() == 0


async def test_a_charge_that_never_reached_the_provider_fails_and_can_be_paid_again(
    sandbox: SandboxProvider, frozen_clock: clock.FrozenClock
) -> None:
    b, payment_id = await _lost_answer(sandbox, reached=False)
    frozen_clock.advance(minutes=10)
    assert await payments.reconcile_pending_payments() == [payment_id]
    payment = await Payment.objects().get(Payment.id == payment_id)
    assert payment is not None
    assert (payment.status, payment.failure_reason) == ("FAILED", "provider_unavailable")
    order = await Order.objects().get(Order.id == payment.order)
    assert order is not None
    assert (await _pay(order, b, 1_500_00, "k2")).payment.status == "SUCCEEDED"


async def test_a_pending_bank_transfer_is_asked_about_once_per_period(
    sandbox: SandboxProvider, frozen_clock: clock.FrozenClock
) -> None:
    b, _, order = await confirmed_order()
    result = await _pay(order, b, 1_500_00, "tt", method=PaymentMethod.TT, source=None)
    asking = DiesAroundTheCall(sandbox, reached=True)
    provider.set_provider(asking)
    frozen_clock.advance(minutes=10)
    assert await payments.reconcile_pending_payments() == []  # still on its way
    assert await payments.reconcile_pending_payments() == []
    assert asking.asked == 1
    frozen_clock.advance(minutes=10)
    assert await payments.reconcile_pending_payments() == []
    assert asking.asked == 2
    payment = await Payment.objects().get(Payment.id == result.payment.id)
    assert payment is not None and payment.status == "PENDING"


async def test_a_refund_goes_back_to_each_payment_it_returns() -> None:
    # One refund of both payments used to go, whole, to the newest payment's card charge:
    # more than that charge, and nothing back to the Pay Later loan (DOMAIN: a Pay Later
    # refund goes back to the loan).
    requests: list[RefundRequest] = []

    class Recording(SandboxProvider):
        async def refund(self, request: RefundRequest) -> RefundResult:
            requests.append(request)
            return await super().refund(request)

    provider.set_provider(Recording())
    b, _, order = await confirmed_order()
    deposit = await _pay(order, b, 1_500_00, "deposit", method=PaymentMethod.PAY_LATER)
    balance = await _pay(order, b, 1_500_00, "balance")
    assert deposit.error is None and balance.error is None
    # 1,000.00 first: all of it from the newest payment, the card.
    refunds = await payments.start_refund(order.id, 1_000_00, actor=events.SCHEDULER, reason="x")
    assert [(r.payment, r.amount_minor) for r in refunds] == [(balance.payment.id, 1_000_00)]
    # Then the other 2,000.00: what is left of the card, then the loan.
    refunds += await payments.start_refund(order.id, 2_000_00, actor=events.SCHEDULER, reason="y")
    assert [(r.payment, r.amount_minor) for r in refunds[1:]] == [
        (balance.payment.id, 500_00),
        (deposit.payment.id, 1_500_00),
    ]
    await payments.execute_refunds(refunds)
    assert [(r.method, r.amount_minor, r.payment_provider_reference) for r in requests] == [
        (PaymentMethod.CARD, 1_000_00, balance.payment.provider_reference),
        (PaymentMethod.CARD, 500_00, balance.payment.provider_reference),
        (PaymentMethod.PAY_LATER, 1_500_00, deposit.payment.provider_reference),
    ]
    money = (await ledger.order_money([order.id]))[order.id]
    assert (money.held, money.refunded) == (0, 3_000_00)


async def test_a_success_after_the_payment_was_failed_is_flagged_not_booked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Failed because the provider seemed unreachable, yet it charged: the books cannot
    # take it any more (the order may have moved on); a person must reconcile it.
    b, _, order = await confirmed_order()
    failed = await _pay(order, b, 1_500_00, "k1", source=CARD_PROCESSING_ERROR)
    assert failed.payment.status == "FAILED"
    with caplog.at_level(logging.ERROR, logger="trade_assurance.payments"):
        assert not await payments.record_charge_outcome(failed.payment.id, succeeded=True)
    assert "succeeded at the provider after it was marked failed" in caplog.text
    assert await LedgerPosting.count() == 0
