"""Webhook signatures, Stripe style.

The sender puts one header on every callback:

    Ta-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, b"<t>." + raw body)>

Several `v1=` entries may be present (one per secret while a secret is being rotated);
one matching entry is enough. Entries with another scheme (`v0=`, …) are ignored. The
timestamp is signed too, so an old event cannot be replayed with a new time; events more
than `tolerance_s` (five minutes) away from our clock, stale or future-dated, are refused.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import re

HEADER = "Ta-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE_S = 300

_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


class SignatureErrorCode(enum.StrEnum):
    MISSING_SIGNATURE = "MISSING_SIGNATURE"
    MALFORMED_SIGNATURE = "MALFORMED_SIGNATURE"
    TIMESTAMP_OUT_OF_TOLERANCE = "TIMESTAMP_OUT_OF_TOLERANCE"
    BAD_SIGNATURE = "BAD_SIGNATURE"


class SignatureError(Exception):
    def __init__(self, code: SignatureErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _unix(moment: int | float | dt.datetime) -> float:
    if isinstance(moment, dt.datetime):
        if moment.tzinfo is None:
            raise ValueError("a naive datetime is ambiguous; pass an aware one")
        return moment.timestamp()
    return float(moment)


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    payload = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | dt.datetime) -> str:
    """The `Ta-Signature` header value for `body` sent at `timestamp` (unix seconds)."""
    t = int(_unix(timestamp))
    return f"t={t},{SCHEME}={_digest(secret, t, body)}"


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep or not key:
            raise SignatureError(
                SignatureErrorCode.MALFORMED_SIGNATURE, f"expected key=value, got {item!r:.40}"
            )
        if key == "t":
            if timestamp is not None:
                raise SignatureError(SignatureErrorCode.MALFORMED_SIGNATURE, "more than one t=")
            if not _TIMESTAMP.fullmatch(value):
                raise SignatureError(
                    SignatureErrorCode.MALFORMED_SIGNATURE, "t= must be unix seconds"
                )
            timestamp = int(value)
        elif key == SCHEME:
            if not _HEX_DIGEST.fullmatch(value.lower()):
                raise SignatureError(
                    SignatureErrorCode.MALFORMED_SIGNATURE,
                    f"{SCHEME}= must be 64 hex digits (HMAC-SHA256)",
                )
            signatures.append(value.lower())
    if timestamp is None:
        raise SignatureError(SignatureErrorCode.MALFORMED_SIGNATURE, "no t= timestamp")
    if not signatures:
        raise SignatureError(SignatureErrorCode.MALFORMED_SIGNATURE, f"no {SCHEME}= signature")
    return timestamp, signatures


def verify(
    secret: str,
    header: str | None,
    body: bytes,
    now: int | float | dt.datetime,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> None:
    """Accept `body` only if `header` signs it with `secret` within `tolerance_s` of `now`.

    Raises `SignatureError`; returns nothing on success.
    """
    if header is None or not header.strip():
        raise SignatureError(
            SignatureErrorCode.MISSING_SIGNATURE, f"the {HEADER} header is required"
        )
    timestamp, signatures = _parse(header)
    expected = _digest(secret, timestamp, body)
    # Compare against every entry (no early exit), each in constant time.
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError(
            SignatureErrorCode.BAD_SIGNATURE, "no signature matches the body and timestamp"
        )
    if abs(_unix(now) - timestamp) > tolerance_s:
        raise SignatureError(
            SignatureErrorCode.TIMESTAMP_OUT_OF_TOLERANCE,
            f"the signed timestamp is more than {tolerance_s} s away from the server's clock",
        )
