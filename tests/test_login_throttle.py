"""Back-off for failed log-ins per account and per address (models/login_throttle.py)."""

from __future__ import annotations

import asyncio

import pytest

from models import accounts, clock, login_throttle
from models.errors import DomainError, ErrorCode
from models.tables import LoginThrottle
from tests import factories
from tests.api import Api, make_app
from tests.factories import PASSWORD

LOGIN = """mutation($email: String!, $password: String!) {
  login(input: {email: $email, password: $password}) { token errors { code message } }
}"""


async def _refused(email: str, password: str, address: str | None = "10.0.0.1") -> str:
    with pytest.raises(DomainError) as e:
        await accounts.login(email, password, address)
    return f"{e.value.code.value}: {e.value.message}"


async def test_an_account_waits_after_five_failures_longer_each_time(
    frozen_clock: clock.FrozenClock,
) -> None:
    b = await factories.buyer()
    for _ in range(4):
        assert (await _refused(b.email, "guess")).startswith("INVALID_CREDENTIALS")
    assert (await _refused(b.email, "guess")).startswith("INVALID_CREDENTIALS")  # the 5th
    # Now even the right password is not checked, from any address.
    waiting = await _refused(b.email, PASSWORD, "10.9.9.9")
    assert waiting == "TOO_MANY_ATTEMPTS: too many failed log-ins; try again in 30 s"
    frozen_clock.advance(seconds=31)
    assert (await _refused(b.email, "guess")).startswith("INVALID_CREDENTIALS")  # the 6th
    assert (await _refused(b.email, PASSWORD)).endswith("try again in 60 s")  # doubled
    frozen_clock.advance(seconds=61)
    user, _, _ = await accounts.login(b.email, PASSWORD, "10.0.0.1")
    assert user.email == b.email
    # The success cleared the account's count: four failures more do not block it.
    for _ in range(4):
        assert (await _refused(b.email, "guess")).startswith("INVALID_CREDENTIALS")
    await accounts.login(b.email, PASSWORD, "10.0.0.1")


async def test_an_address_trying_many_accounts_waits_and_others_do_not(
    frozen_clock: clock.FrozenClock,
) -> None:
    victims = [await factories.buyer() for _ in range(5)]
    for n in range(20):  # four guesses at each of five accounts: none reaches five
        assert (await _refused(victims[n % 5].email, "guess", "10.6.6.6")).startswith(
            "INVALID_CREDENTIALS"
        )
    assert (await _refused(victims[0].email, PASSWORD, "10.6.6.6")).startswith("TOO_MANY_ATTEMPTS")
    await accounts.login(victims[0].email, PASSWORD, "10.7.7.7")  # the owner, elsewhere


async def test_a_quiet_quarter_hour_forgets_the_failures(frozen_clock: clock.FrozenClock) -> None:
    b = await factories.buyer()
    for _ in range(4):
        await _refused(b.email, "guess")
    frozen_clock.advance(minutes=16)
    for _ in range(4):
        await _refused(b.email, "guess")  # counted from one again
    await accounts.login(b.email, PASSWORD)


async def test_unknown_accounts_are_counted_the_same(frozen_clock: clock.FrozenClock) -> None:
    for _ in range(5):
        assert (await _refused("nobody@example.com", "guess")).startswith("INVALID_CREDENTIALS")
    assert (await _refused("nobody@example.com", "guess")).startswith("TOO_MANY_ATTEMPTS")


async def test_over_the_api_the_refusal_is_a_coded_error(frozen_clock: clock.FrozenClock) -> None:
    api = Api(make_app())
    b = await factories.buyer()
    for _ in range(5):
        await api.data(LOGIN, {"email": b.email, "password": "guess"})
    answer = await api.data(LOGIN, {"email": b.email, "password": PASSWORD})
    assert answer["login"]["token"] is None
    assert [e["code"] for e in answer["login"]["errors"]] == [ErrorCode.TOO_MANY_ATTEMPTS.value]


async def test_concurrent_failures_are_all_counted() -> None:
    # Read and written back in two statements, concurrent failures on PostgreSQL
    # overwrote each other's counts.
    keyed = login_throttle.keys("anna@acme.example", "203.0.113.9")
    await asyncio.gather(*(login_throttle.count_failure(keyed) for _ in range(12)))
    rows = await LoginThrottle.select(LoginThrottle.key, LoginThrottle.failures)
    assert {r["key"]: r["failures"] for r in rows} == {
        "account:anna@acme.example": 12,
        "address:203.0.113.9": 12,
    }
