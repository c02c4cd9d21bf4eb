"""Payments at the edge of the process: the sandbox provider, webhook signatures and the
provider callback endpoint (`POST /webhooks/payments`)."""

from __future__ import annotations

import logging

from starlette.routing import Route

from models import provider
from server.payments.sandbox import WEBHOOK_PATH, SandboxProvider
from server.payments.webhook import payment_webhook
from server.settings import Settings

PROVIDERS = ("sandbox",)
log = logging.getLogger("trade_assurance.payments")


class PaymentSettingsError(RuntimeError):
    """The payment settings are unusable; the gateway refuses to start."""


def check_settings(settings: Settings) -> None:
    """Refuse an unknown provider or an empty secret. (`Settings.from_env` already refuses
    the public development secret under TA_ENV=production.)"""
    if settings.payment_provider not in PROVIDERS:
        raise PaymentSettingsError(
            f"TA_PAYMENT_PROVIDER={settings.payment_provider!r} is not a payment provider; "
            f"the only one is {', '.join(repr(p) for p in PROVIDERS)}"
        )
    if not settings.payment_webhook_secret:
        raise PaymentSettingsError("TA_PAYMENT_WEBHOOK_SECRET must not be empty")


def install(settings: Settings) -> Route:
    """Check the settings, install the payment provider, return the webhook route."""
    check_settings(settings)
    if not settings.development:  # the only provider there is: say so where it matters
        log.warning(
            "TA_ENV=production with the sandbox payment provider: no money moves; charges "
            "and refunds are simulated (test cards succeed)"
        )
    provider.set_provider(SandboxProvider())
    return Route(WEBHOOK_PATH, payment_webhook(settings.payment_webhook_secret), methods=["POST"])


__all__ = ["PaymentSettingsError", "SandboxProvider", "check_settings", "install"]
