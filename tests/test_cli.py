"""The `trade-assurance` console script, run as a subprocess against the test database."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlparse

import asyncpg
import pytest

from models import accounts
from models.enums import CompanyKind, Role, Scope
from models.suppliers import SupplierFilter, SupplierOrder, search_suppliers
from models.tables import ApiKey, Company, SupplierProfile, UserAccount
from server.demo import DEMO_PASSWORD, LOGINS, MEDIATOR_EMAIL
from tests import factories
from tests.api import cli_env, run_cli, start_server, wait_ready
from tests.conftest import ENGINE, TEST_DATABASE_URL

pytest_plugins = ("tests.api_plugin",)


async def test_create_user_makes_a_staff_account_that_can_log_in() -> None:
    done = run_cli(
        "create-user", "--email", "Mia@Example.com", "--full-name", "Mia Mediator",
        "--role", "MEDIATOR",
        env=cli_env(TA_NEW_USER_PASSWORD=factories.PASSWORD),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "created MEDIATOR user mia@example.com" in done.stdout
    assert factories.PASSWORD not in done.stdout + done.stderr

    user, token, _ = await accounts.login("mia@example.com", factories.PASSWORD)
    principal = await accounts.authenticate(token)
    assert (principal.role, principal.company_kind) == (Role.MEDIATOR, CompanyKind.PLATFORM)
    assert user.full_name == "Mia Mediator"


@pytest.mark.parametrize("role", ["WIZARD", "PARTNER", "mediator"])
async def test_an_invalid_role_is_rejected(role: str) -> None:
    done = run_cli(
        "create-user", "--email", "x@example.com", "--password", factories.PASSWORD,
        "--full-name", "X", "--role", role,
    )  # fmt: skip
    assert done.returncode != 0
    assert "invalid choice" in done.stderr
    assert await UserAccount.count() == 0


async def test_a_refused_user_is_reported_without_a_traceback() -> None:
    done = run_cli(
        "create-user", "--email", "x@example.com", "--password", "short",
        "--full-name", "X", "--role", "INSPECTOR", "--company-name", "SGS",
    )  # fmt: skip
    assert done.returncode == 2
    assert "error: WEAK_PASSWORD" in done.stderr and "Traceback" not in done.stderr
    assert (await Company.count(), await UserAccount.count()) == (0, 0)


async def test_create_api_key_prints_the_secret_once_and_it_authenticates() -> None:
    buyer = await factories.buyer()
    company_id = buyer.principal.company_id
    done = run_cli(
        "create-api-key", "--company-id", str(company_id), "--name", "ERP",
        "--scopes", "READ,ORDERS",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    secrets_printed = [line for line in done.stdout.splitlines() if line.startswith("tak_")]
    assert len(secrets_printed) == 1
    secret = secrets_printed[0]
    assert done.stdout.count(secret) == 1

    partner = await accounts.authenticate(secret)
    assert partner.is_partner and partner.company_id == company_id
    assert partner.scopes == frozenset({Scope.READ, Scope.ORDERS})
    assert partner.acting_role is Role.BUYER
    stored = await ApiKey.select(ApiKey.key_hash, ApiKey.prefix).first()
    assert stored is not None and stored["prefix"] == secret[:12]
    assert secret not in stored["key_hash"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--company-id", "999999", "--name", "x"], "error: NOT_FOUND"),
        (["--company-id", "1", "--name", "x", "--scopes", "READ,ADMIN"], "scopes are a subset"),
    ],
)
async def test_create_api_key_refusals(args: list[str], message: str) -> None:
    done = run_cli("create-api-key", *args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert await ApiKey.count() == 0


async def _demo_counts() -> tuple[int, int, int]:
    return await SupplierProfile.count(), await UserAccount.count(), await Company.count()


async def test_seed_demo_is_idempotent_and_prints_the_logins() -> None:
    first = run_cli("seed-demo")
    assert first.returncode == 0, first.stderr
    for _, email, _ in LOGINS:
        assert email in first.stdout
    assert DEMO_PASSWORD in first.stdout
    counts = await _demo_counts()
    assert counts[0] >= 200 and counts[1] == len(LOGINS)

    second = run_cli("seed-demo")
    assert second.returncode == 0, second.stderr
    assert "already present" in second.stdout
    assert await _demo_counts() == counts

    _, token, _ = await accounts.login(MEDIATOR_EMAIL, DEMO_PASSWORD)
    assert (await accounts.authenticate(token)).role is Role.MEDIATOR
    led_in_germany = SupplierFilter(text="led", country="DE", trade_assurance_only=True)
    page = await search_suppliers(led_in_germany, SupplierOrder.RELEVANCE, first=100, offset=0)
    assert "Rhine Light Works GmbH" in [s.legal_name for s in page.suppliers]
    # The three inspection companies, each bookable at its own fee.
    from models.inspections import list_inspectors

    fees = {i.company.legal_name: str(i.fee) for i in await list_inspectors()}
    assert fees == {
        "Bureau Veritas": "285.00 USD",
        "SGS": "298.00 USD",
        "TÜV Rheinland": "320.00 USD",
    }


@pytest.fixture
async def fresh_database(tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """The environment of a brand-new, empty database (no tables, no migrations)."""
    if ENGINE == "sqlite":
        yield cli_env(TA_DATA_DIR=str(tmp_path))
        return
    name = f"ta_test_fresh_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(TEST_DATABASE_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = urlparse(TEST_DATABASE_URL)._replace(path=f"/{name}").geturl()
        yield cli_env(DATABASE_URL=url)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_serve_refuses_a_database_with_pending_migrations(
    fresh_database: dict[str, str],
) -> None:
    env = {**fresh_database, "TA_AUTO_MIGRATE": "false"}
    refused = start_server(env)
    try:
        assert wait_ready(refused) is False
    finally:
        output = refused.stop()
    assert refused.process.returncode != 0
    assert "trade-assurance migrate" in output

    migrated = run_cli("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert "migrations applied" in migrated.stdout
    assert "up to date" in run_cli("migrate", env=env).stdout

    server = start_server(env)
    try:
        assert wait_ready(server), server.stop()
        assert server.get("/readyz").json() == {"status": "ready"}
    finally:
        server.stop()


@pytest.mark.parametrize("command", [("seed-demo",), ("serve", "--demo", "--port", "1")])
async def test_no_demo_data_in_production(command: tuple[str, ...]) -> None:
    # Its logins, a mediator's included, share the password the README publishes.
    env = {**cli_env(), "TA_ENV": "production", "TA_PAYMENT_WEBHOOK_SECRET": "whsec_test_x"}
    refused = run_cli(*command, env=env)
    assert refused.returncode == 2 and "TA_ENV=production" in refused.stderr
    assert await UserAccount.count() == 0
