"""The sandbox payment provider, its installation, and the callback sender end to end."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest

from models import provider
from models.enums import PaymentMethod
from models.provider import (
    ChargeOutcome,
    ChargeRequest,
    ChargeResult,
    ProviderUnavailable,
    RefundRequest,
)
from server.app import create_app
from server.payments import PaymentSettingsError
from server.payments.sandbox import (
    CARD_PROCESSING_ERROR,
    SandboxProvider,
    build_event,
    send_callback,
)
from server.settings import DEFAULT_PAYMENT_WEBHOOK_SECRET, Settings
from tests.api import Server, cli_env, run_cli, start_server, wait_ready


def charge_request(
    method: PaymentMethod,
    source: str | None = None,
    amount_minor: int = 150_000,
    reference: str = "pay_1",
) -> ChargeRequest:
    return ChargeRequest(
        reference=reference,
        method=method,
        currency="USD",
        amount_minor=amount_minor,
        fee_minor=4_200 if method is PaymentMethod.CARD else 0,
        source=source,
        buyer_country="US",
    )


def refund_request(
    amount_minor: int, method: PaymentMethod = PaymentMethod.CARD, reference: str = "ref_1"
) -> RefundRequest:
    return RefundRequest(
        reference=reference,
        method=method,
        currency="USD",
        amount_minor=amount_minor,
        payment_provider_reference="sbx_ch_0123",
    )


async def charge(method: PaymentMethod, source: str | None = None) -> ChargeResult:
    return await SandboxProvider().charge(charge_request(method, source))


# --- cards -------------------------------------------------------------------------------


async def test_the_success_card_succeeds() -> None:
    result = await charge(PaymentMethod.CARD, "4242424242424242")
    assert (result.outcome, result.failure_reason) == (ChargeOutcome.SUCCEEDED, None)
    assert result.provider_reference.startswith("sbx_ch_")


async def test_a_card_number_may_be_written_in_groups() -> None:
    result = await charge(PaymentMethod.CARD, "4242 4242 4242 4242")
    assert result.outcome is ChargeOutcome.SUCCEEDED


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("4000000000000002", "card_declined"),
        ("4000000000009995", "insufficient_funds"),
        ("4111111111111111", "invalid_number"),
        ("1234", "invalid_number"),
        (None, "missing_card"),
        ("", "missing_card"),
    ],
)
async def test_declining_cards_say_why(number: str | None, reason: str) -> None:
    result = await charge(PaymentMethod.CARD, number)
    assert (result.outcome, result.failure_reason) == (ChargeOutcome.DECLINED, reason)
    assert result.provider_reference.startswith("sbx_ch_")


async def test_the_processing_error_card_means_the_provider_is_unreachable() -> None:
    with pytest.raises(ProviderUnavailable):
        await charge(PaymentMethod.CARD, "4000000000000119")


# --- other methods -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "method", [PaymentMethod.TT, PaymentMethod.E_CHECKING, PaymentMethod.BOLETO]
)
async def test_bank_payments_stay_pending_until_the_callback(method: PaymentMethod) -> None:
    result = await charge(method)
    assert (result.outcome, result.failure_reason) == (ChargeOutcome.PENDING, None)
    assert result.provider_reference.startswith("sbx_ch_")


async def test_pay_later_is_approved_at_once() -> None:
    result = await charge(PaymentMethod.PAY_LATER)
    assert (result.outcome, result.failure_reason) == (ChargeOutcome.SUCCEEDED, None)


async def test_every_method_is_handled() -> None:
    for method in PaymentMethod:
        source = "4242424242424242" if method is PaymentMethod.CARD else None
        result = await charge(method, source)
        assert result.outcome in (ChargeOutcome.SUCCEEDED, ChargeOutcome.PENDING)


# --- refunds -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", list(PaymentMethod))
async def test_a_refund_settles_at_once(method: PaymentMethod) -> None:
    result = await SandboxProvider().refund(refund_request(150_000, method))
    assert (result.settled, result.failure_reason) == (True, None)
    assert result.provider_reference.startswith("sbx_re_")


@pytest.mark.parametrize("amount_minor", [13, 1_013, 150_013])
async def test_a_refund_ending_in_13_is_rejected_by_the_bank(amount_minor: int) -> None:
    result = await SandboxProvider().refund(refund_request(amount_minor))
    assert (result.settled, result.failure_reason) == (False, "bank_rejected")
    assert result.provider_reference.startswith("sbx_re_")


@pytest.mark.parametrize("amount_minor", [3, 14, 1_130, 1_312, 150_000])
async def test_other_endings_settle(amount_minor: int) -> None:
    assert (await SandboxProvider().refund(refund_request(amount_minor))).settled


async def test_fail_refunds_fails_every_refund() -> None:
    sandbox = SandboxProvider(fail_refunds=True)
    result = await sandbox.refund(refund_request(150_000))
    assert (result.settled, result.failure_reason) == (False, "sandbox_forced_failure")
    # Charges are unaffected.
    assert (await sandbox.charge(charge_request(PaymentMethod.PAY_LATER))).outcome == "SUCCEEDED"


async def test_references_are_unique_and_well_formed() -> None:
    sandbox = SandboxProvider()
    charges = [
        await sandbox.charge(charge_request(PaymentMethod.CARD, CARD, reference=f"pay_{n}"))
        for n in range(200)
    ]
    refunds = [
        await sandbox.refund(refund_request(1_000, reference=f"ref_{n}")) for n in range(200)
    ]
    references = [r.provider_reference for r in charges] + [r.provider_reference for r in refunds]
    assert len(set(references)) == 400
    for ref in references:
        prefix, _, digits = ref.rpartition("_")
        assert prefix in ("sbx_ch", "sbx_re")
        assert len(digits) == 24 and int(digits, 16) >= 0


CARD = "4242424242424242"


async def test_a_charge_sent_again_answers_as_the_first_time() -> None:
    """Our reference is the idempotency key: no second charge, whatever is sent again."""
    sandbox = SandboxProvider()
    first = await sandbox.charge(charge_request(PaymentMethod.CARD, CARD))
    again = await sandbox.charge(charge_request(PaymentMethod.CARD, "4000000000000002"))
    assert again == first
    declined = await sandbox.charge(
        charge_request(PaymentMethod.CARD, "4000000000000002", reference="pay_2")
    )
    assert (
        await sandbox.charge(charge_request(PaymentMethod.CARD, CARD, reference="pay_2"))
    ) == declined


async def test_a_settled_refund_is_not_paid_out_twice_and_a_failed_one_is_tried_again() -> None:
    settled = await SandboxProvider().refund(refund_request(1_000))
    assert await SandboxProvider(fail_refunds=True).refund(refund_request(1_000)) == settled
    failed = await SandboxProvider(fail_refunds=True).refund(
        refund_request(1_000, reference="ref_2")
    )
    assert not failed.settled
    retried = await SandboxProvider().refund(refund_request(1_000, reference="ref_2"))
    assert retried.settled and retried.provider_reference != failed.provider_reference


async def test_charge_status_tells_what_became_of_a_charge() -> None:
    sandbox = SandboxProvider()
    assert await sandbox.charge_status("pay_1") is None  # never arrived
    answered = await sandbox.charge(charge_request(PaymentMethod.CARD, CARD))
    assert await sandbox.charge_status("pay_1") == answered
    pending = await sandbox.charge(charge_request(PaymentMethod.TT, reference="pay_2"))
    assert await sandbox.charge_status("pay_2") == pending
    assert pending.outcome is ChargeOutcome.PENDING
    with pytest.raises(ProviderUnavailable):  # a processing error: nothing was received
        await sandbox.charge(
            charge_request(PaymentMethod.CARD, CARD_PROCESSING_ERROR, reference="pay_3")
        )
    assert await sandbox.charge_status("pay_3") is None


def test_the_sandbox_satisfies_the_provider_protocol() -> None:
    installed: provider.PaymentProvider = SandboxProvider()  # checked by mypy
    assert callable(installed.charge) and callable(installed.refund)


# --- installation ------------------------------------------------------------------------


@pytest.fixture
def restore_provider() -> Iterator[None]:
    before = provider._provider
    yield
    provider._provider = before


def settings(**overrides: object) -> Settings:
    return dataclasses.replace(Settings.from_env(), **overrides)  # type: ignore[arg-type]


def test_create_app_installs_the_sandbox(restore_provider: None) -> None:
    provider._provider = None
    create_app(settings())
    assert isinstance(provider.provider(), SandboxProvider)


def test_the_default_setting_is_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TA_PAYMENT_PROVIDER", raising=False)
    monkeypatch.delenv("TA_PAYMENT_WEBHOOK_SECRET", raising=False)
    s = Settings.from_env()
    assert (s.payment_provider, s.payment_webhook_secret) == (
        "sandbox",
        "whsec_sandbox_development",
    )
    monkeypatch.setenv("TA_PAYMENT_PROVIDER", "stripe")
    monkeypatch.setenv("TA_PAYMENT_WEBHOOK_SECRET", "whsec_live")
    s = Settings.from_env()
    assert (s.payment_provider, s.payment_webhook_secret) == ("stripe", "whsec_live")


def test_an_unknown_provider_refuses_to_start(restore_provider: None) -> None:
    with pytest.raises(PaymentSettingsError, match=r"TA_PAYMENT_PROVIDER='stripe'.*'sandbox'"):
        create_app(settings(payment_provider="stripe"))


def test_production_refuses_the_development_secret(
    monkeypatch: pytest.MonkeyPatch, restore_provider: None
) -> None:
    monkeypatch.setenv("TA_ENV", "production")
    for unset in ("", None):
        if unset is None:
            monkeypatch.delenv("TA_PAYMENT_WEBHOOK_SECRET", raising=False)
        else:
            monkeypatch.setenv("TA_PAYMENT_WEBHOOK_SECRET", unset)
        with pytest.raises(ValueError, match="TA_PAYMENT_WEBHOOK_SECRET must be set"):
            Settings.from_env()
    monkeypatch.setenv("TA_PAYMENT_WEBHOOK_SECRET", DEFAULT_PAYMENT_WEBHOOK_SECRET)
    with pytest.raises(ValueError, match="TA_PAYMENT_WEBHOOK_SECRET must be set"):
        Settings.from_env()
    monkeypatch.setenv("TA_PAYMENT_WEBHOOK_SECRET", "whsec_real_one")
    create_app(Settings.from_env())


def test_an_empty_secret_refuses_to_start(restore_provider: None) -> None:
    with pytest.raises(PaymentSettingsError, match="must not be empty"):
        create_app(settings(payment_webhook_secret=""))


def test_production_with_the_default_secret_does_not_serve() -> None:
    # An empty value counts as unset: the development default.
    server = start_server(cli_env(TA_ENV="production", TA_PAYMENT_WEBHOOK_SECRET=""))
    server.process.wait(60)
    out = server.stop()
    assert server.process.returncode != 0
    assert "TA_PAYMENT_WEBHOOK_SECRET" in out


# --- the callback sender against a real gateway ------------------------------------------

LIVE_SECRET = "whsec_live_test_" + "5" * 16


@pytest.fixture(scope="module")
def gateway(database: None) -> Iterator[Server]:
    """A real uvicorn gateway on the test database, with its own webhook secret."""
    server = start_server(cli_env(TA_PAYMENT_WEBHOOK_SECRET=LIVE_SECRET))
    try:
        assert wait_ready(server), server.stop()
        yield server
    finally:
        server.stop()


async def test_a_callback_signed_with_another_secret_is_refused(gateway: Server) -> None:
    status = await send_callback(
        gateway.base,
        DEFAULT_PAYMENT_WEBHOOK_SECRET,
        event_type="payment.succeeded",
        reference="pay_999999",
        provider_reference="sbx_ch_00",
    )
    assert status == 401


async def test_send_callback_is_accepted_end_to_end(gateway: Server) -> None:
    # No such payment: the domain may say 422, but the signature got through (not 401).
    status = await send_callback(
        gateway.base,
        LIVE_SECRET,
        event_type="payment.succeeded",
        reference="pay_999999",
        provider_reference="sbx_ch_00",
    )
    assert status in (200, 422)


def test_the_cli_sends_a_signed_callback(gateway: Server) -> None:
    done = run_cli(
        "sandbox-callback", "--reference", "pay_999999", "--outcome", "failed",
        "--url", gateway.base, "--provider-reference", "sbx_ch_00",
        env=cli_env(TA_PAYMENT_WEBHOOK_SECRET=LIVE_SECRET),
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    assert f"POST {gateway.base}/webhooks/payments" in done.stdout
    sent = json.loads(done.stdout.split("\n", 1)[1].rsplit("\n-> HTTP", 1)[0])
    assert sent["type"] == "payment.failed" and sent["id"].startswith("evt_")
    assert sent["data"] == {
        "reference": "pay_999999",
        "provider_reference": "sbx_ch_00",
        "reason": "sandbox_failure",
    }
    assert "-> HTTP 200" in done.stdout or "-> HTTP 422" in done.stdout, done.stdout


def test_the_cli_names_refund_events_and_reports_a_refusal(gateway: Server) -> None:
    done = run_cli(
        "sandbox-callback", "--reference", "ref_7", "--outcome", "succeeded",
        "--url", gateway.base,
        env=cli_env(TA_PAYMENT_WEBHOOK_SECRET="whsec_wrong"),
    )  # fmt: skip
    assert done.returncode == 1
    assert '"type": "refund.settled"' in done.stdout
    assert "-> HTTP 401" in done.stdout and "BAD_SIGNATURE" in done.stdout


def test_the_cli_reports_an_unreachable_gateway() -> None:
    from tests.api import free_port

    done = run_cli(
        "sandbox-callback", "--reference", "pay_1", "--outcome", "succeeded",
        "--url", f"http://127.0.0.1:{free_port()}",
    )  # fmt: skip
    assert done.returncode == 1
    assert "error: ConnectError" in done.stderr and "Traceback" not in done.stderr


def test_build_event_refuses_unknown_types() -> None:
    with pytest.raises(ValueError, match=r"payment\.succeeded"):
        build_event("payment.refunded", "pay_1", None)
