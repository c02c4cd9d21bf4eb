"""Requests per minute per caller (server/rate_limit.py)."""

from __future__ import annotations

import pytest

from models.accounts import Principal
from models.enums import CompanyKind, Role
from server.rate_limit import RateLimiter
from tests import factories
from tests.api import Api, make_app

VIEWER = "{ viewer { role } }"


async def test_a_caller_over_its_rate_gets_429_and_others_go_on() -> None:
    api = Api(make_app(rate_limit_per_minute=5, anonymous_rate_limit_per_minute=2))
    busy, other = await factories.buyer(), await factories.buyer()
    for _ in range(5):
        assert (await api.post(VIEWER, busy.token)).status_code == 200
    refused = await api.post(VIEWER, busy.token)
    assert refused.status_code == 429
    seconds = int(refused.headers["retry-after"])
    assert 1 <= seconds <= 12  # one request's worth of a 5-per-minute rate
    error = refused.json()["errors"][0]
    assert error["extensions"] == {"code": "RATE_LIMITED", "retryAfterSeconds": seconds}
    assert (await api.post(VIEWER, other.token)).status_code == 200  # its own budget
    # Anonymous callers share their address's budget.
    assert [(await api.post(VIEWER)).status_code for _ in range(3)] == [200, 200, 429]


def test_the_bucket_refills_with_time(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("server.rate_limit.time.monotonic", lambda: now[0])
    limiter = RateLimiter(per_minute=60, anonymous_per_minute=0)
    assert limiter.take(None, "10.0.0.1") == 0  # anonymous: off
    partner = Principal(Role.PARTNER, company_id=1, company_kind=CompanyKind.BUYER, api_key_id=7)
    taken = [limiter.take(partner, None) for _ in range(61)]
    assert taken[:60] == [0.0] * 60 and taken[60] == pytest.approx(1.0)
    now[0] += 1.0  # one request per second comes back
    assert limiter.take(partner, None) == 0.0
    assert limiter.take(partner, None) > 0


async def test_no_limit_in_development_by_default() -> None:
    api = Api(make_app())
    assert all([(await api.post(VIEWER)).status_code == 200 for _ in range(30)])
