"""Webhook signatures (`server.payments.signing`) and the callback endpoint over HTTP.

The endpoint tests replace `models.payments.handle_provider_event` with a recording fake:
they are about the HTTP layer (signature, size, event shape), not the ledger.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
from typing import Any

import httpx
import pytest

from models import clock, payments
from models.errors import DomainError, ErrorCode
from server.payments import signing
from server.payments.signing import SignatureError, SignatureErrorCode, sign, verify
from server.settings import DEFAULT_PAYMENT_WEBHOOK_SECRET
from tests.api import make_app

SECRET = "whsec_test_" + "a" * 20
BODY = b'{"id":"evt_1","type":"payment.succeeded"}'
T = 1_800_000_000


def code_of(failure: pytest.ExceptionInfo[SignatureError]) -> SignatureErrorCode:
    return failure.value.code


# --- sign / verify -----------------------------------------------------------------------


def test_sign_then_verify() -> None:
    header = sign(SECRET, BODY, T)
    assert header.startswith(f"t={T},v1=")
    verify(SECRET, header, BODY, T)


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    import hashlib

    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, BODY, T) == f"t={T},v1={expected}"


def test_sign_accepts_an_aware_datetime() -> None:
    moment = clock.FrozenClock(__import__("datetime").datetime.fromtimestamp(T, clock.UTC))()
    assert sign(SECRET, BODY, moment) == sign(SECRET, BODY, T)
    verify(SECRET, sign(SECRET, BODY, T), BODY, moment)


@pytest.mark.parametrize(
    "body", [BODY + b" ", BODY.replace(b"succeeded", b"failed"), b"", BODY[:-1]]
)
def test_a_tampered_body_is_refused(body: bytes) -> None:
    with pytest.raises(SignatureError) as failure:
        verify(SECRET, sign(SECRET, BODY, T), body, T)
    assert code_of(failure) is SignatureErrorCode.BAD_SIGNATURE


def test_another_secret_is_refused() -> None:
    with pytest.raises(SignatureError) as failure:
        verify(SECRET, sign("whsec_other", BODY, T), BODY, T)
    assert code_of(failure) is SignatureErrorCode.BAD_SIGNATURE


def test_a_moved_timestamp_breaks_the_signature() -> None:
    digest = sign(SECRET, BODY, T).split("v1=")[1]
    with pytest.raises(SignatureError) as failure:
        verify(SECRET, f"t={T + 1},v1={digest}", BODY, T)
    assert code_of(failure) is SignatureErrorCode.BAD_SIGNATURE


@pytest.mark.parametrize("offset", [-301, 301, -3600, 86_400])
def test_stale_and_future_dated_signatures_are_refused(offset: int) -> None:
    with pytest.raises(SignatureError) as failure:
        verify(SECRET, sign(SECRET, BODY, T + offset), BODY, T)
    assert code_of(failure) is SignatureErrorCode.TIMESTAMP_OUT_OF_TOLERANCE


@pytest.mark.parametrize("offset", [-300, -299, 0, 299, 300])
def test_five_minutes_either_way_is_accepted(offset: int) -> None:
    verify(SECRET, sign(SECRET, BODY, T + offset), BODY, T)


def test_the_tolerance_is_a_parameter() -> None:
    header = sign(SECRET, BODY, T - 30)
    verify(SECRET, header, BODY, T, tolerance_s=30)
    with pytest.raises(SignatureError):
        verify(SECRET, header, BODY, T, tolerance_s=29)


@pytest.mark.parametrize("header", [None, "", "   "])
def test_a_missing_header_is_refused(header: str | None) -> None:
    with pytest.raises(SignatureError) as failure:
        verify(SECRET, header, BODY, T)
    assert code_of(failure) is SignatureErrorCode.MISSING_SIGNATURE


DIGEST = "0" * 64


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        f"v1={DIGEST}",  # no timestamp
        f"t={T}",  # no signature
        f"t={T},v0={DIGEST}",  # only an unknown scheme
        f"t=soon,v1={DIGEST}",
        f"t=-{T},v1={DIGEST}",
        f"t=+{T},v1={DIGEST}",
        f"t={T}.5,v1={DIGEST}",
        f"t=\uff11\uff12\uff13,v1={DIGEST}",  # full-width (non-ASCII) digits
        f"t={T},t={T},v1={DIGEST}",
        f"t={T},v1=abc",
        f"t={T},v1={'g' * 64}",
        f"t={T},v1={DIGEST}ff",
        f"t={T},v1=é{DIGEST[1:]}",
        f"t={T},,v1={DIGEST}",
        f"t={T},=x,v1={DIGEST}",
    ],
)
def test_a_malformed_header_is_refused(header: str) -> None:
    with pytest.raises(SignatureError) as failure:
        verify(SECRET, header, BODY, T)
    assert code_of(failure) is SignatureErrorCode.MALFORMED_SIGNATURE


def test_spaces_unknown_schemes_and_upper_case_hex_are_tolerated() -> None:
    digest = sign(SECRET, BODY, T).split("v1=")[1]
    verify(SECRET, f" t={T} , v0=whatever , v1={digest.upper()} ", BODY, T)


def test_rotation_any_of_several_v1_signatures_may_match() -> None:
    old = sign("whsec_old", BODY, T).split("v1=")[1]
    new = sign("whsec_new", BODY, T).split("v1=")[1]
    both = f"t={T},v1={old},v1={new}"
    verify("whsec_old", both, BODY, T)
    verify("whsec_new", both, BODY, T)
    with pytest.raises(SignatureError) as failure:
        verify("whsec_third", both, BODY, T)
    assert code_of(failure) is SignatureErrorCode.BAD_SIGNATURE


def test_signatures_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    good = sign(SECRET, BODY, T)
    verify(SECRET, good, BODY, T)
    assert calls == [(good.split("v1=")[1],) * 2]

    calls.clear()
    with pytest.raises(SignatureError):
        verify(SECRET, f"{good},v1={DIGEST}".replace(good.split("v1=")[1], "1" * 64), BODY, T)
    assert [b for _, b in calls] == ["1" * 64, DIGEST]  # every entry, none by `==`


# --- the endpoint ------------------------------------------------------------------------

URL = "http://gateway.test/webhooks/payments"


@dataclasses.dataclass
class FakeHandler:
    """Records calls; answers False for an event id it has seen, like the domain."""

    calls: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    error: DomainError | None = None

    async def __call__(
        self,
        *,
        event_id: str,
        event_type: str,
        reference: str,
        provider_reference: str | None,
        reason: str | None,
    ) -> bool:
        seen = {c["event_id"] for c in self.calls}
        self.calls.append(
            {
                "event_id": event_id,
                "event_type": event_type,
                "reference": reference,
                "provider_reference": provider_reference,
                "reason": reason,
            }
        )
        if self.error is not None:
            raise self.error
        return event_id not in seen


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch) -> FakeHandler:
    """`models.payments.handle_provider_event`, replaced by a recording fake."""
    fake = FakeHandler()
    monkeypatch.setattr(payments, "handle_provider_event", fake)
    return fake


@pytest.fixture
def now(frozen_clock: clock.FrozenClock) -> int:
    return int(frozen_clock.current.timestamp())


def event(
    event_type: str = "payment.succeeded",
    event_id: str = "evt_0001",
    reference: str = "pay_12",
    provider_reference: str | None = "sbx_ch_abc",
    reason: str | None = None,
) -> bytes:
    data = {"reference": reference, "provider_reference": provider_reference, "reason": reason}
    doc = {"id": event_id, "type": event_type, "created": 1_795_000_000, "data": data}
    return json.dumps(doc).encode()


async def post(
    body: bytes,
    signature: str | None,
    *,
    secret_in_app: str = DEFAULT_PAYMENT_WEBHOOK_SECRET,
    **headers: str,
) -> httpx.Response:
    app = make_app(payment_webhook_secret=secret_in_app)
    if signature is not None:
        headers[signing.HEADER] = signature
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport) as client:
        return await client.post(URL, content=body, headers=headers)


def signed(body: bytes, at: int, secret: str = DEFAULT_PAYMENT_WEBHOOK_SECRET) -> str:
    return sign(secret, body, at)


def error_code(response: httpx.Response) -> str:
    payload: dict[str, Any] = response.json()
    assert set(payload) == {"error"} and set(payload["error"]) == {"code", "message"}
    return str(payload["error"]["code"])


async def test_a_valid_event_reaches_the_domain(handler: FakeHandler, now: int) -> None:
    body = event("payment.failed", reason="insufficient_funds")
    response = await post(body, signed(body, now))
    assert response.status_code == 200
    assert response.json() == {"received": True, "duplicate": False}
    assert handler.calls == [
        {
            "event_id": "evt_0001",
            "event_type": "payment.failed",
            "reference": "pay_12",
            "provider_reference": "sbx_ch_abc",
            "reason": "insufficient_funds",
        }
    ]


@pytest.mark.parametrize(
    "event_type", ["payment.succeeded", "payment.failed", "refund.settled", "refund.failed"]
)
async def test_every_event_type_is_accepted(
    handler: FakeHandler, now: int, event_type: str
) -> None:
    body = event(event_type, reference="ref_7", provider_reference=None)
    response = await post(body, signed(body, now))
    assert response.status_code == 200
    assert handler.calls[0]["event_type"] == event_type
    assert handler.calls[0]["provider_reference"] is None


async def test_the_same_event_twice_is_a_duplicate(handler: FakeHandler, now: int) -> None:
    body = event()
    first = await post(body, signed(body, now))
    again = await post(body, signed(body, now + 60))  # a provider retry, signed anew
    assert first.json() == {"received": True, "duplicate": False}
    assert (again.status_code, again.json()) == (200, {"received": True, "duplicate": True})
    assert len(handler.calls) == 2


async def test_a_domain_refusal_is_422_with_its_code(handler: FakeHandler, now: int) -> None:
    handler.error = DomainError(ErrorCode.NOT_FOUND, "no payment pay_12")
    body = event()
    response = await post(body, signed(body, now))
    assert response.status_code == 422
    assert response.json() == {"error": {"code": "NOT_FOUND", "message": "no payment pay_12"}}


async def test_a_forged_signature_is_401(handler: FakeHandler, now: int) -> None:
    body = event()
    response = await post(body, signed(body, now, secret="whsec_attacker"))
    assert (response.status_code, error_code(response)) == (401, "BAD_SIGNATURE")
    assert handler.calls == []


async def test_a_body_changed_after_signing_is_401(handler: FakeHandler, now: int) -> None:
    signature = signed(event(), now)
    response = await post(event(reference="pay_13"), signature)
    assert (response.status_code, error_code(response)) == (401, "BAD_SIGNATURE")
    assert handler.calls == []


@pytest.mark.parametrize("offset", [-301, 301])
async def test_stale_or_future_dated_is_401(handler: FakeHandler, now: int, offset: int) -> None:
    body = event()
    response = await post(body, signed(body, now + offset))
    assert (response.status_code, error_code(response)) == (401, "TIMESTAMP_OUT_OF_TOLERANCE")
    assert handler.calls == []


@pytest.mark.parametrize("offset", [-299, 299])
async def test_within_five_minutes_is_accepted(handler: FakeHandler, now: int, offset: int) -> None:
    body = event()
    assert (await post(body, signed(body, now + offset))).status_code == 200


async def test_the_endpoint_reads_the_injectable_clock(
    handler: FakeHandler, frozen_clock: clock.FrozenClock, now: int
) -> None:
    body = event()
    signature = signed(body, now)
    frozen_clock.advance(seconds=301)
    response = await post(body, signature)
    assert (response.status_code, error_code(response)) == (401, "TIMESTAMP_OUT_OF_TOLERANCE")


async def test_a_missing_signature_is_401(handler: FakeHandler, now: int) -> None:
    response = await post(event(), None)
    assert (response.status_code, error_code(response)) == (401, "MISSING_SIGNATURE")
    assert handler.calls == []


async def test_a_malformed_signature_is_401(handler: FakeHandler, now: int) -> None:
    response = await post(event(), f"t={now},v1=nothex")
    assert (response.status_code, error_code(response)) == (401, "MALFORMED_SIGNATURE")
    assert handler.calls == []


async def test_the_secret_comes_from_the_settings(handler: FakeHandler, now: int) -> None:
    body = event()
    custom = "whsec_configured_" + "9" * 10
    ok = await post(body, signed(body, now, custom), secret_in_app=custom)
    default = await post(body, signed(body, now), secret_in_app=custom)
    assert ok.status_code == 200
    assert (default.status_code, error_code(default)) == (401, "BAD_SIGNATURE")


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff\xfe\x00garbage",
        b"",
        b"[]",
        b'"evt_1"',
        json.dumps({"id": "evt_1", "type": "payment.succeeded", "created": 1}).encode(),
        event(event_id="1234"),
        event(event_id=""),
        event(reference=""),
        event(provider_reference=""),
        json.dumps(
            {"id": "evt_1", "type": "payment.succeeded", "created": "yesterday", "data": {}}
        ).encode(),
        json.dumps(
            {"id": "evt_1", "type": "payment.succeeded", "created": 1, "data": {"reference": 12}}
        ).encode(),
        json.dumps(
            {"id": "evt_1", "type": "payment.succeeded", "created": True, "data": {}}
        ).encode(),
    ],
)
async def test_a_malformed_event_is_400(handler: FakeHandler, now: int, body: bytes) -> None:
    response = await post(body, signed(body, now))
    assert (response.status_code, error_code(response)) == (400, "MALFORMED_EVENT")
    assert handler.calls == []


@pytest.mark.parametrize("event_type", ["payment.refunded", "PAYMENT.SUCCEEDED", "charge"])
async def test_an_unknown_event_type_is_400(
    handler: FakeHandler, now: int, event_type: str
) -> None:
    body = event(event_type)
    response = await post(body, signed(body, now))
    assert (response.status_code, error_code(response)) == (400, "UNKNOWN_EVENT_TYPE")
    assert handler.calls == []


async def test_a_body_over_64_kib_is_413(handler: FakeHandler, now: int) -> None:
    padding = "x" * (64 * 1024)
    body = event(reason=padding)
    response = await post(body, signed(body, now))
    assert (response.status_code, error_code(response)) == (413, "PAYLOAD_TOO_LARGE")
    assert handler.calls == []


async def test_the_endpoint_is_not_behind_the_graphql_auth_gate(
    handler: FakeHandler, now: int
) -> None:
    body = event()
    response = await post(body, signed(body, now), Authorization="Bearer tat_not_a_token")
    assert response.status_code == 200


async def test_only_post_is_allowed(handler: FakeHandler) -> None:
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get(URL)).status_code == 405
    assert handler.calls == []
