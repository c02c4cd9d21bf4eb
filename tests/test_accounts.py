"""Companies, users, login tokens and partner API keys."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from typing import Any

import pytest

from models import accounts, config
from models.accounts import AuthError, Principal
from models.clock import FrozenClock
from models.enums import CompanyKind, Role, Scope
from models.errors import DomainError, ErrorCode
from models.tables import ALL_TABLES, AccessToken, ApiKey, Company, SupplierProfile, UserAccount
from tests import factories
from tests.factories import PASSWORD


async def row_counts() -> dict[str, int]:
    return {t._meta.tablename: await t.count() for t in ALL_TABLES}


def sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def register(**overrides: Any) -> tuple[UserAccount, str, dt.datetime]:
    values: dict[str, Any] = {
        "company_name": "Acme Buying GmbH",
        "kind": CompanyKind.BUYER,
        "country": "de",
        "email": "Anna@Acme.example",
        "password": PASSWORD,
        "full_name": "Anna Acme",
    }
    return await accounts.register(**(values | overrides))


async def expect_domain_error(code: ErrorCode, coro: Any) -> DomainError:
    """Await `coro`, require a DomainError with `code`, and require that no row was written
    (but the count of failed log-ins, which a refused log-in exists to write)."""
    before = await row_counts()
    with pytest.raises(DomainError) as e:
        await coro
    assert e.value.code is code, e.value.message
    after = await row_counts()
    after["login_throttle"] = before["login_throttle"]
    assert after == before
    return e.value


async def expect_auth_error(code: str, secret: str, *, cached: bool = True) -> None:
    with pytest.raises(AuthError) as e:
        await accounts.authenticate(secret, cached=cached)
    assert e.value.code == code


# Registration


async def test_register_buyer_creates_company_user_and_logs_in(frozen_clock: FrozenClock) -> None:
    user, token, expires = await register()
    assert user.email == "anna@acme.example"
    assert user.role == Role.BUYER.value
    assert expires == frozen_clock.current + dt.timedelta(hours=24)
    company = await Company.objects().get(Company.id == user.company)
    assert company is not None
    assert (company.legal_name, company.kind, company.country) == (
        "Acme Buying GmbH",
        "BUYER",
        "DE",
    )
    assert await SupplierProfile.count() == 0
    principal = await accounts.authenticate(token)
    assert principal == Principal(
        role=Role.BUYER,
        company_id=company.id,
        company_kind=CompanyKind.BUYER,
        user_id=user.id,
        token_id=principal.token_id,
    )
    assert principal.token_id is not None
    assert not principal.is_partner
    assert principal.acting_role is Role.BUYER


async def test_register_supplier_gets_an_empty_directory_profile() -> None:
    user, token, _ = await register(
        company_name="Shenzhen Lights", kind=CompanyKind.SUPPLIER, country="CN"
    )
    profile = await SupplierProfile.objects().get(SupplierProfile.company == user.company)
    assert profile is not None
    assert (profile.categories, profile.keywords) == ("", "")
    assert profile.search_text == "Shenzhen Lights"
    assert (profile.gold, profile.verification, profile.ta_status) == (False, "NONE", "NONE")
    assert profile.ta_limit_minor is None
    principal = await accounts.authenticate(token)
    assert (principal.role, principal.company_kind) == (Role.SUPPLIER, CompanyKind.SUPPLIER)


async def test_email_taken_is_case_insensitive() -> None:
    await register(email="anna@acme.example")
    await expect_domain_error(
        ErrorCode.EMAIL_TAKEN, register(company_name="Other", email="  ANNA@acme.EXAMPLE ")
    )


async def test_the_same_email_signing_up_twice_at_once_is_taken_not_an_error() -> None:
    # On PostgreSQL both passed the check and the second insert's UniqueViolationError
    # came out as an internal error.
    results = await asyncio.gather(
        register(email="anna@acme.example"),
        register(company_name="Other", email="anna@acme.example"),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, DomainError)]
    assert [e.code for e in refused] == [ErrorCode.EMAIL_TAKEN] and len(results) == 2
    assert await UserAccount.count().where(UserAccount.email == "anna@acme.example") == 1


async def test_weak_password_is_refused_and_minimum_is_configurable() -> None:
    error = await expect_domain_error(ErrorCode.WEAK_PASSWORD, register(password="123456789"))
    assert error.field == "password"
    config.configure(config.DomainConfig(min_password_length=16))
    await expect_domain_error(ErrorCode.WEAK_PASSWORD, register(password=PASSWORD[:15]))
    await register(password=PASSWORD[:16])


async def test_invalid_country_is_refused() -> None:
    error = await expect_domain_error(ErrorCode.INVALID_COUNTRY, register(country="XX"))
    assert error.field == "country"


async def test_invalid_email_and_empty_names_are_refused() -> None:
    await expect_domain_error(ErrorCode.INVALID_INPUT, register(email="not-an-email"))
    await expect_domain_error(ErrorCode.INVALID_INPUT, register(company_name="   "))
    await expect_domain_error(ErrorCode.INVALID_INPUT, register(full_name=""))


@pytest.mark.parametrize("kind", [CompanyKind.INSPECTOR, CompanyKind.PLATFORM])
async def test_staff_company_kinds_cannot_self_register(kind: CompanyKind) -> None:
    error = await expect_domain_error(ErrorCode.INVALID_INPUT, register(kind=kind))
    assert error.field == "kind"


async def test_password_is_stored_as_argon2id() -> None:
    user, _, _ = await register()
    stored = await UserAccount.objects().get(UserAccount.id == user.id)
    assert stored is not None
    assert stored.password_hash.startswith("$argon2id$")
    assert PASSWORD not in stored.password_hash


# Login and bearer tokens


async def test_login_issues_a_fresh_token_case_insensitive_email(
    frozen_clock: FrozenClock,
) -> None:
    user, first_token, _ = await register()
    logged_in, token, expires = await accounts.login(" ANNA@acme.example", PASSWORD)
    assert logged_in.id == user.id
    assert token != first_token
    assert token.startswith(accounts.TOKEN_PREFIX)
    assert expires == frozen_clock.current + dt.timedelta(hours=24)
    assert (await accounts.authenticate(token)).user_id == user.id
    assert await AccessToken.count() == 2


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("anna@acme.example", "wrong password!"),
        ("nobody@acme.example", PASSWORD),
        # Longer than any e-mail address: it crashed on PostgreSQL (the throttle's key column).
        ("a" * 400 + "@acme.example", PASSWORD),
    ],
)
async def test_wrong_password_and_unknown_email_look_the_same(email: str, password: str) -> None:
    await register()
    error = await expect_domain_error(
        ErrorCode.INVALID_CREDENTIALS, accounts.login(email, password)
    )
    assert error.field is None


async def test_disabled_account_cannot_log_in_nor_use_its_tokens() -> None:
    user, token, _ = await register()
    await UserAccount.update({UserAccount.active: False}).where(UserAccount.id == user.id)
    await expect_domain_error(ErrorCode.ACCOUNT_DISABLED, accounts.login(user.email, PASSWORD))
    # A wrong password does not reveal that the account exists but is disabled.
    await expect_domain_error(
        ErrorCode.INVALID_CREDENTIALS, accounts.login(user.email, "wrong password!")
    )
    await expect_auth_error("ACCOUNT_DISABLED", token)


async def test_unknown_token_and_key_are_invalid() -> None:
    await register()
    await expect_auth_error("TOKEN_INVALID", "tat_nonsense")
    await expect_auth_error("API_KEY_INVALID", "tak_nonsense")


async def test_token_expires_after_the_configured_ttl(frozen_clock: FrozenClock) -> None:
    config.configure(config.DomainConfig(token_ttl_hours=2))
    _, token, expires = await register()
    assert expires == frozen_clock.current + dt.timedelta(hours=2)
    frozen_clock.advance(hours=1, minutes=59)
    await accounts.authenticate(token)
    frozen_clock.advance(minutes=1)
    await expect_auth_error("TOKEN_EXPIRED", token)
    frozen_clock.advance(days=30)
    await expect_auth_error("TOKEN_EXPIRED", token)


async def test_a_cached_look_up_still_expires_on_time(frozen_clock: FrozenClock) -> None:
    config.configure(config.DomainConfig(token_ttl_hours=1, session_cache_seconds=3600))
    _, token, _ = await register()
    await accounts.authenticate(token)  # cached now, for an hour of monotonic time
    frozen_clock.advance(hours=1)
    await expect_auth_error("TOKEN_EXPIRED", token)


async def test_a_change_made_elsewhere_holds_until_the_cache_time_is_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A revocation another process wrote (here: straight to the table) is seen once the
    cached look-up is older than `session_cache_seconds`; an uncached look-up sees it at
    once."""
    config.configure(config.DomainConfig(session_cache_seconds=2.0))
    user, token, _ = await register()
    await accounts.authenticate(token)
    await AccessToken.update({AccessToken.revoked_at: dt.datetime.now(dt.UTC)}).where(
        AccessToken.user == user.id
    )
    assert (await accounts.authenticate(token)).user_id == user.id  # still cached
    await expect_auth_error("TOKEN_REVOKED", token, cached=False)
    now = accounts.cache_clock()
    monkeypatch.setattr(accounts, "cache_clock", lambda: now + 2.0)
    await expect_auth_error("TOKEN_REVOKED", token)


async def test_without_the_cache_every_look_up_reads_the_database() -> None:
    config.configure(config.DomainConfig(session_cache_seconds=0))
    user, token, _ = await register()
    await accounts.authenticate(token)
    await UserAccount.update({UserAccount.active: False}).where(UserAccount.id == user.id)
    await expect_auth_error("ACCOUNT_DISABLED", token)


async def test_logout_revokes_only_the_current_token() -> None:
    user, token, _ = await register()
    _, other, _ = await accounts.login(user.email, PASSWORD)
    principal = await accounts.authenticate(token)
    assert await accounts.logout(principal) == 1
    await expect_auth_error("TOKEN_REVOKED", token)
    assert (await accounts.authenticate(other)).user_id == user.id
    assert await accounts.logout(principal) == 0  # already revoked: nothing more to do


async def test_logout_all_sessions_revokes_every_token_of_the_user_only() -> None:
    user, token, _ = await register()
    tokens = [token] + [(await accounts.login(user.email, PASSWORD))[1] for _ in range(2)]
    stranger = await factories.buyer()
    principal = await accounts.authenticate(tokens[1])
    assert await accounts.logout(principal, all_sessions=True) == 3
    for t in tokens:
        await expect_auth_error("TOKEN_REVOKED", t)
    assert (await accounts.authenticate(stranger.token)).user_id == stranger.principal.user_id


async def test_tokens_are_stored_only_as_hashes() -> None:
    _, token, _ = await register()
    _, token2, _ = await accounts.login("anna@acme.example", PASSWORD)
    rows = await AccessToken.select()
    assert {r["token_hash"] for r in rows} == {sha256(token), sha256(token2)}
    secret_parts = {token, token2, token.removeprefix("tat_"), token2.removeprefix("tat_")}
    for row in rows:
        for value in row.values():
            assert not any(part in str(value) for part in secret_parts)


# API keys


async def test_api_key_is_shown_once_and_only_its_hash_is_stored() -> None:
    seller = await factories.supplier()
    key, secret = await accounts.create_api_key_for(
        seller.principal, " ERP link ", [Scope.ORDERS, Scope.READ, Scope.ORDERS], None
    )
    assert secret.startswith(accounts.API_KEY_PREFIX)
    assert (key.name, key.scopes, key.prefix) == ("ERP link", "READ,ORDERS", secret[:12])
    assert (key.company, key.created_by) == (seller.principal.company_id, seller.principal.user_id)
    rows = await ApiKey.select()
    assert len(rows) == 1
    assert rows[0]["key_hash"] == sha256(secret)
    for value in rows[0].values():
        assert secret not in str(value) and secret[12:] not in str(value)


async def test_api_key_authenticates_as_a_partner_acting_for_its_company() -> None:
    seller = await factories.supplier()
    key, secret = await accounts.create_api_key_for(seller.principal, "ERP", [Scope.READ], None)
    partner = await accounts.authenticate(secret)
    assert partner == Principal(
        role=Role.PARTNER,
        company_id=seller.principal.company_id,
        company_kind=CompanyKind.SUPPLIER,
        api_key_id=key.id,
        scopes=frozenset({Scope.READ}),
    )
    assert partner.is_partner
    assert partner.acting_role is Role.SUPPLIER
    shopper = await factories.buyer()
    _, buyer_secret = await accounts.create_api_key_for(
        shopper.principal, "Shop", list(Scope), None
    )
    buyer_partner = await accounts.authenticate(buyer_secret)
    assert buyer_partner.acting_role is Role.BUYER
    assert buyer_partner.scopes == frozenset(Scope)


async def test_api_key_expiry(frozen_clock: FrozenClock) -> None:
    shopper = await factories.buyer()
    expires = frozen_clock.current + dt.timedelta(days=1)
    _, secret = await accounts.create_api_key_for(shopper.principal, "ERP", [Scope.READ], expires)
    frozen_clock.advance(hours=23)
    assert (await accounts.authenticate(secret)).is_partner
    frozen_clock.advance(hours=1)
    await expect_auth_error("API_KEY_EXPIRED", secret)


async def test_api_key_refused_with_past_expiry_or_no_scopes(frozen_clock: FrozenClock) -> None:
    shopper = await factories.buyer()
    await expect_domain_error(
        ErrorCode.INVALID_INPUT,
        accounts.create_api_key_for(shopper.principal, "ERP", [Scope.READ], frozen_clock.current),
    )
    await expect_domain_error(
        ErrorCode.INVALID_INPUT, accounts.create_api_key_for(shopper.principal, "ERP", [], None)
    )
    await expect_domain_error(
        ErrorCode.INVALID_INPUT,
        accounts.create_api_key_for(shopper.principal, "  ", [Scope.READ], None),
    )


async def test_revoke_api_key_then_revoke_again() -> None:
    shopper = await factories.buyer()
    key, secret = await accounts.create_api_key_for(shopper.principal, "ERP", [Scope.READ], None)
    revoked = await accounts.revoke_api_key(shopper.principal, key.id)
    assert revoked.revoked_at is not None
    await expect_auth_error("API_KEY_REVOKED", secret)
    await expect_domain_error(
        ErrorCode.ALREADY_REVOKED, accounts.revoke_api_key(shopper.principal, key.id)
    )
    stored = await ApiKey.objects().get(ApiKey.id == key.id)
    assert stored is not None and stored.revoked_at == revoked.revoked_at


async def test_revoking_another_companys_key_is_not_found() -> None:
    owner, other = await factories.buyer(), await factories.buyer()
    key, secret = await accounts.create_api_key_for(owner.principal, "ERP", [Scope.READ], None)
    await expect_domain_error(ErrorCode.NOT_FOUND, accounts.revoke_api_key(other.principal, key.id))
    await expect_domain_error(ErrorCode.NOT_FOUND, accounts.revoke_api_key(owner.principal, 999999))
    assert (await accounts.authenticate(secret)).is_partner
    assert await accounts.list_api_keys(other.principal) == []
    assert [k.id for k in await accounts.list_api_keys(owner.principal)] == [key.id]
    # Platform staff may revoke any key.
    mediator = await factories.staff(Role.MEDIATOR)
    await accounts.revoke_api_key(mediator.principal, key.id)
    await expect_auth_error("API_KEY_REVOKED", secret)


async def test_partners_and_staff_cannot_manage_keys() -> None:
    shopper = await factories.buyer()
    key, secret = await accounts.create_api_key_for(shopper.principal, "ERP", list(Scope), None)
    partner = await accounts.authenticate(secret)
    await expect_domain_error(
        ErrorCode.FORBIDDEN, accounts.create_api_key_for(partner, "Child", [Scope.READ], None)
    )
    await expect_domain_error(ErrorCode.FORBIDDEN, accounts.revoke_api_key(partner, key.id))
    await expect_domain_error(ErrorCode.FORBIDDEN, accounts.logout(partner))
    with pytest.raises(DomainError) as e:
        await accounts.list_api_keys(partner)
    assert e.value.code is ErrorCode.FORBIDDEN
    for role in (Role.MEDIATOR, Role.INSPECTOR):
        staff = await factories.staff(role)
        await expect_domain_error(
            ErrorCode.FORBIDDEN,
            accounts.create_api_key_for(staff.principal, "ERP", [Scope.READ], None),
        )


# Staff users


@pytest.mark.parametrize(
    ("role", "kind"),
    [(Role.MEDIATOR, CompanyKind.PLATFORM), (Role.INSPECTOR, CompanyKind.INSPECTOR)],
)
async def test_create_user_makes_a_company_of_the_right_kind(role: Role, kind: CompanyKind) -> None:
    user = await accounts.create_user(
        email="Staff@Example.com",
        password=PASSWORD,
        full_name="Sam Staff",
        role=role,
        company_name="Inspect & Co",
        country="ch",
    )
    assert (user.email, user.role) == ("staff@example.com", role.value)
    company = await Company.objects().get(Company.id == user.company)
    assert company is not None
    assert (company.kind, company.country) == (kind.value, "CH")
    assert await SupplierProfile.count() == 0
    colleague = await accounts.create_user(
        email="second@example.com",
        password=PASSWORD,
        full_name="Second",
        role=role,
        company_id=company.id,
    )
    assert colleague.company == company.id
    assert await Company.count() == 1
    _, token, _ = await accounts.login("second@example.com", PASSWORD)
    principal = await accounts.authenticate(token)
    assert (principal.role, principal.company_kind, principal.company_id) == (
        role,
        kind,
        company.id,
    )


async def test_mediator_company_gets_a_default_name() -> None:
    user = await accounts.create_user(
        email="m@example.com", password=PASSWORD, full_name="M", role=Role.MEDIATOR
    )
    company = await Company.objects().get(Company.id == user.company)
    assert company is not None and company.legal_name == "Trade Assurance Platform"


async def test_create_user_refuses_wrong_company_kind_unknown_company_and_partners() -> None:
    shopper = await factories.buyer()
    inspector = await factories.staff(Role.INSPECTOR)
    error = await expect_domain_error(
        ErrorCode.INVALID_INPUT,
        accounts.create_user(
            email="x@example.com",
            password=PASSWORD,
            full_name="X",
            role=Role.INSPECTOR,
            company_id=shopper.principal.company_id,
        ),
    )
    assert error.field == "role"
    await expect_domain_error(
        ErrorCode.INVALID_INPUT,
        accounts.create_user(
            email="y@example.com",
            password=PASSWORD,
            full_name="Y",
            role=Role.MEDIATOR,
            company_id=inspector.principal.company_id,
        ),
    )
    await expect_domain_error(
        ErrorCode.NOT_FOUND,
        accounts.create_user(
            email="z@example.com",
            password=PASSWORD,
            full_name="Z",
            role=Role.MEDIATOR,
            company_id=999999,
        ),
    )
    await expect_domain_error(
        ErrorCode.INVALID_INPUT,
        accounts.create_user(
            email="p@example.com",
            password=PASSWORD,
            full_name="P",
            role=Role.PARTNER,
            company_name="Partner",
        ),
    )
    await expect_domain_error(
        ErrorCode.EMAIL_TAKEN,
        accounts.create_user(
            email=inspector.email.upper(), password=PASSWORD, full_name="D", role=Role.MEDIATOR
        ),
    )


# Visibility


async def test_may_see_company() -> None:
    shopper, other_shopper = await factories.buyer(), await factories.buyer()
    seller = await factories.supplier()
    mediator = await factories.staff(Role.MEDIATOR)
    inspector = await factories.staff(Role.INSPECTOR)
    _, secret = await accounts.create_api_key_for(shopper.principal, "ERP", [Scope.READ], None)
    partner = await accounts.authenticate(secret)
    companies = await accounts.get_companies(
        [shopper.principal.company_id, seller.principal.company_id]
    )
    buyer_co = companies[shopper.principal.company_id]
    supplier_co = companies[seller.principal.company_id]
    everyone: list[Principal | None] = [
        None,
        shopper.principal,
        other_shopper.principal,
        seller.principal,
        mediator.principal,
        inspector.principal,
        partner,
    ]
    assert all(accounts.may_see_company(p, supplier_co) for p in everyone)
    assert [accounts.may_see_company(p, buyer_co) for p in everyone] == [
        False,
        True,
        False,
        False,
        True,
        False,
        True,
    ]


async def test_may_see_user() -> None:
    shopper, other_shopper = await factories.buyer(), await factories.buyer()
    seller = await factories.supplier()
    mediator = await factories.staff(Role.MEDIATOR)
    _, secret = await accounts.create_api_key_for(shopper.principal, "ERP", [Scope.READ], None)
    partner = await accounts.authenticate(secret)
    colleague = await accounts.create_user(
        email="colleague@example.com",
        password=PASSWORD,
        full_name="Colleague",
        role=Role.BUYER,
        company_id=shopper.principal.company_id,
    )
    users = await accounts.get_users([shopper.principal.user_id or 0, colleague.id])
    assert set(users) == {shopper.principal.user_id, colleague.id}
    for user in users.values():
        assert [
            accounts.may_see_user(p, user)
            for p in (
                None,
                shopper.principal,
                other_shopper.principal,
                seller.principal,
                mediator.principal,
                partner,
            )
        ] == [False, True, False, False, True, False]
