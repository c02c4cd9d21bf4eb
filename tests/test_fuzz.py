"""Fuzzing with Schemathesis against a running gateway, from `schema.graphql`.

Every query and mutation of the contract gets generated operations (arguments of every
shape the schema allows, any selection of fields), sent over real HTTP as each role:
anonymous, a buyer, a supplier, a mediator and a partner key. Each answer must be a
client-side outcome, never a 5xx, and never show an unmasked exception; after the run
`trade-assurance ledger-check` must pass. Seeded (derandomized) and bounded so CI stays
short: `TA_FUZZ_EXAMPLES` operations per root field (default 8) and role. The counts go
to `$TA_TEST_ARTIFACTS/fuzz.json` when that is set.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis_graphql import nodes

from models import accounts, trade_assurance
from models.enums import Scope
from models.money import Money
from tests import factories
from tests.api import ROOT, Server, bearer, run_cli

pytest_plugins = ("tests.api_plugin",)

EXAMPLES = int(os.environ.get("TA_FUZZ_EXAMPLES", "8"))
# Text no masked answer may hold: Python's own words for a failure.
LEAKS = re.compile(r"Traceback|File \"/|Error\(|Exception\(|sqlite3\.|asyncpg\.|piccolo\.")


def _strings(*valid: str) -> st.SearchStrategy[Any]:
    """Valid values most of the time, and any text sometimes (the server must refuse it)."""
    return st.one_of(st.sampled_from(valid), st.text(max_size=12)).map(nodes.String)


schemathesis.graphql.scalar("CountryCode", _strings("US", "DE", "CN", "BR", "us", "XX"))
schemathesis.graphql.scalar("CurrencyCode", _strings("USD", "EUR", "JPY", "usd", "XXX"))
schemathesis.graphql.scalar(
    "Decimal", _strings("0", "1.00", "1500.00", "-1", "0.001", "1e400", "99999999999999999999")
)
schemathesis.graphql.scalar("Upload", st.just(nodes.Null))  # files only in multipart
SCHEMA = schemathesis.graphql.from_path(ROOT / "schema.graphql")
counts: dict[str, int] = {"operations": 0, "requests": 0}


@pytest.fixture(autouse=True)
def clean() -> None:
    """Overrides conftest's per-test emptying: one world for the whole module."""


@pytest.fixture(scope="module")
async def tokens(database: None, live_server: Server) -> AsyncIterator[dict[str, str | None]]:
    buyer, supplier, mediator = (
        await factories.buyer(),
        await factories.supplier(),
        await factories.staff(),
    )
    application = await trade_assurance.apply(supplier.principal, None)
    await trade_assurance.review(
        mediator.principal, application.id, approve=True, limit=Money(1_000_000_00, "USD")
    )
    await factories.confirmed_order(buyer, supplier)  # objects for ids to land on
    _, secret = await accounts.create_api_key_for(
        buyer.principal, "fuzz", [Scope.READ, Scope.ORDERS, Scope.PAYMENTS], None
    )
    yield {
        "anonymous": None,
        "buyer": buyer.token,
        "supplier": supplier.token,
        "mediator": mediator.token,
        "partner": secret,
    }
    _report()


def _report() -> None:
    artifacts = os.environ.get("TA_TEST_ARTIFACTS")
    if artifacts:
        Path(artifacts, "fuzz.json").write_text(json.dumps(counts))
    print(f"fuzzed {counts['operations']} operations, {counts['requests']} requests")


@SCHEMA.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_server_error_and_nothing_unmasked(
    case: Any, tokens: dict[str, str | None], live_server: Server
) -> None:
    counts["operations"] += 1
    with requests.Session() as session:
        for role, token in tokens.items():
            response = case.call(
                base_url=f"{live_server.base}/graphql", session=session, headers=bearer(token)
            )
            counts["requests"] += 1
            assert response.status_code < 500, (role, case.body, response.text[:500])
            assert not LEAKS.search(response.text), (role, case.body, response.text[:500])
            if response.status_code == 200:
                assert "errors" in response.json() or "data" in response.json()


def test_the_ledger_still_checks_out(tokens: dict[str, str | None]) -> None:
    result = run_cli("ledger-check")
    assert result.returncode == 0, result.stdout + result.stderr
