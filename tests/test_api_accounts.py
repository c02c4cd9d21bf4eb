"""Accounts over the API: sign-up, login, tokens, API keys, and who may see whom."""

from __future__ import annotations

import pytest
from strawberry.relay import to_base64

from models import trade_assurance
from models.clock import FrozenClock
from models.enums import ApplicationStatus, Role, Verification
from models.tables import ApiKey, Company, SupplierProfile, TradeAssuranceApplication, UserAccount
from tests import factories
from tests.api import Api, codes, gid

pytest_plugins = ("tests.api_plugin",)

VIEWER = """{ viewer { role actingRole scopes isPartner user { email fullName }
  company { legalName kind country } } }"""
REGISTER = """mutation($input: RegisterInput!) { register(input: $input) {
  token expiresAt viewer { role company { legalName } } errors { code field } } }"""
LOGIN = """mutation($email: String!, $password: String!) {
  login(input: {email: $email, password: $password}) {
    token expiresAt viewer { role user { email } } errors { code message field } } }"""
LOGOUT = "mutation { logout(input: {}) { revokedTokens errors { code } } }"
CREATE_KEY = """mutation($name: String!, $scopes: [ApiScope!]!) {
  createApiKey(input: {name: $name, scopes: $scopes}) {
    secret apiKey { id name prefix scopes revokedAt } errors { code } } }"""
REVOKE_KEY = """mutation($id: ID!) { revokeApiKey(input: {apiKeyId: $id}) {
  apiKey { revokedAt } errors { code field } } }"""
NODE = "query($id: ID!) { node(id: $id) { __typename id ... on User { email } } }"


def _registration(email: str, password: str = factories.PASSWORD) -> dict[str, str]:
    return {
        "companyName": "Acme Imports LLC",
        "kind": "BUYER",
        "country": "us",
        "fullName": "Ann Buyer",
        "email": email,
        "password": password,
    }


async def test_register_returns_a_token_that_works_for_viewer(api: Api) -> None:
    payload = (await api.data(REGISTER, {"input": _registration("ann@example.com")}))["register"]
    assert payload["errors"] == []
    assert payload["token"].startswith("tat_")
    assert payload["expiresAt"].endswith("+00:00")
    assert payload["viewer"] == {"role": "BUYER", "company": {"legalName": "Acme Imports LLC"}}

    viewer = (await api.data(VIEWER, token=payload["token"]))["viewer"]
    assert viewer == {
        "role": "BUYER",
        "actingRole": "BUYER",
        "scopes": ["READ", "ORDERS", "PAYMENTS"],
        "isPartner": False,
        "user": {"email": "ann@example.com", "fullName": "Ann Buyer"},
        "company": {"legalName": "Acme Imports LLC", "kind": "BUYER", "country": "US"},
    }


async def test_refused_registration_creates_nothing(api: Api) -> None:
    buyer = await factories.buyer()
    before = (await Company.count(), await UserAccount.count())
    weak = await api.data(REGISTER, {"input": _registration("bob@example.com", "short")})
    taken = await api.data(REGISTER, {"input": _registration(buyer.email.upper())})
    assert weak["register"]["errors"] == [{"code": "WEAK_PASSWORD", "field": "password"}]
    assert taken["register"]["errors"] == [{"code": "EMAIL_TAKEN", "field": "email"}]
    assert weak["register"]["token"] is None and taken["register"]["token"] is None
    assert (await Company.count(), await UserAccount.count()) == before


async def test_login_with_the_right_password_issues_a_token(api: Api) -> None:
    buyer = await factories.buyer()
    payload = await api.data(LOGIN, {"email": buyer.email, "password": factories.PASSWORD})
    login = payload["login"]
    assert login["errors"] == []
    assert login["viewer"] == {"role": "BUYER", "user": {"email": buyer.email}}
    assert (await api.data(VIEWER, token=login["token"]))["viewer"]["role"] == "BUYER"


@pytest.mark.parametrize("which", ["wrong password", "unknown e-mail"])
async def test_bad_login_is_a_payload_error_not_a_graphql_error(api: Api, which: str) -> None:
    buyer = await factories.buyer()
    email, password = (
        (buyer.email, "not the password")
        if which == "wrong password"
        else ("nobody@example.com", factories.PASSWORD)
    )
    login = (await api.data(LOGIN, {"email": email, "password": password}))["login"]
    assert login["token"] is None and login["viewer"] is None
    assert [e["code"] for e in login["errors"]] == ["INVALID_CREDENTIALS"]


async def test_viewer_is_null_when_anonymous(api: Api) -> None:
    assert await api.data("{ viewer { role } }") == {"viewer": None}


async def test_expired_token_is_refused_with_401(api: Api, frozen_clock: FrozenClock) -> None:
    buyer = await factories.buyer()
    assert (await api.post("{ viewer { role } }", buyer.token)).status_code == 200
    frozen_clock.advance(hours=24)
    response = await api.post("{ viewer { role } }", buyer.token)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["errors"][0]["extensions"]["code"] == "TOKEN_EXPIRED"


async def test_logout_revokes_only_that_token(api: Api) -> None:
    buyer = await factories.buyer()
    other = await api.data(LOGIN, {"email": buyer.email, "password": factories.PASSWORD})
    other_token = other["login"]["token"]
    logout = (await api.data(LOGOUT, token=buyer.token))["logout"]
    assert logout == {"revokedTokens": 1, "errors": []}

    response = await api.post("{ viewer { role } }", buyer.token)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "TOKEN_REVOKED"
    assert (await api.data("{ viewer { role } }", token=other_token))["viewer"]["role"] == "BUYER"


async def test_unknown_token_is_refused_with_401(api: Api) -> None:
    response = await api.post("{ viewer { role } }", "tat_not-a-real-token")
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "TOKEN_INVALID"


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Token abc", ""])
async def test_malformed_authorization_header_is_refused_with_401(api: Api, header: str) -> None:
    response = await api.post("{ viewer { role } }", Authorization=header)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "MALFORMED_AUTHORIZATION"


async def test_api_key_is_shown_once_and_acts_for_its_company(api: Api) -> None:
    buyer = await factories.buyer()
    created = (
        await api.data(CREATE_KEY, {"name": "ERP", "scopes": ["ORDERS", "READ"]}, buyer.token)
    )["createApiKey"]
    assert created["errors"] == []
    secret = created["secret"]
    assert secret.startswith("tak_")
    assert created["apiKey"]["prefix"] == secret[:12]
    assert created["apiKey"]["scopes"] == ["READ", "ORDERS"]
    stored = await ApiKey.select(ApiKey.key_hash).first()
    assert stored is not None and secret not in stored["key_hash"]

    viewer = (await api.data(VIEWER, token=secret))["viewer"]
    assert viewer["isPartner"] is True
    assert (viewer["role"], viewer["actingRole"]) == ("PARTNER", "BUYER")
    assert viewer["scopes"] == ["READ", "ORDERS"]
    assert viewer["user"] is None
    listed = await api.data("{ viewer { apiKeys { name prefix } } }", token=buyer.token)
    assert listed["viewer"]["apiKeys"] == [{"name": "ERP", "prefix": secret[:12]}]


async def test_a_partner_key_cannot_mint_more_keys(api: Api) -> None:
    buyer = await factories.buyer()
    first = await api.data(CREATE_KEY, {"name": "ERP", "scopes": ["READ"]}, buyer.token)
    secret = first["createApiKey"]["secret"]
    again = await api.data(CREATE_KEY, {"name": "more", "scopes": ["READ"]}, secret)
    assert [e["code"] for e in again["createApiKey"]["errors"]] == ["FORBIDDEN"]
    assert again["createApiKey"]["secret"] is None
    assert await ApiKey.count() == 1


async def test_revoked_api_key_is_refused_with_401(api: Api) -> None:
    buyer = await factories.buyer()
    created = await api.data(CREATE_KEY, {"name": "ERP", "scopes": ["READ"]}, buyer.token)
    key_id, secret = created["createApiKey"]["apiKey"]["id"], created["createApiKey"]["secret"]

    revoked = (await api.data(REVOKE_KEY, {"id": key_id}, buyer.token))["revokeApiKey"]
    assert revoked["errors"] == [] and revoked["apiKey"]["revokedAt"] is not None
    response = await api.post("{ viewer { role } }", secret)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "API_KEY_REVOKED"

    twice = (await api.data(REVOKE_KEY, {"id": key_id}, buyer.token))["revokeApiKey"]
    assert [e["code"] for e in twice["errors"]] == ["ALREADY_REVOKED"]


EXPIRING_KEY = """mutation($at: DateTime) {
  createApiKey(input: {name: "temp", scopes: [READ], expiresAt: $at}) {
    secret apiKey { expiresAt } errors { code field } } }"""


async def test_an_api_key_expires_at_its_utc_expiry(api: Api, frozen_clock: FrozenClock) -> None:
    buyer = await factories.buyer()
    created = await api.data(EXPIRING_KEY, {"at": "2026-11-28T14:00:00+02:00"}, buyer.token)
    key = created["createApiKey"]
    assert key["apiKey"] == {"expiresAt": "2026-11-28T12:00:00+00:00"}
    assert (await api.post("{ viewer { role } }", key["secret"])).status_code == 200
    frozen_clock.advance(days=1)
    response = await api.post("{ viewer { role } }", key["secret"])
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "API_KEY_EXPIRED"


@pytest.mark.parametrize("expires_at", ["2020-01-01T00:00:00Z", "2030-01-01T12:00:00"])
async def test_an_api_key_expiry_must_be_a_future_utc_time(api: Api, expires_at: str) -> None:
    buyer = await factories.buyer()
    created = await api.data(EXPIRING_KEY, {"at": expires_at}, buyer.token)
    assert created["createApiKey"] == {
        "secret": None,
        "apiKey": None,
        "errors": [{"code": "INVALID_INPUT", "field": "expiresAt"}],
    }
    assert await ApiKey.count() == 0


async def test_another_company_cannot_revoke_a_key(api: Api) -> None:
    owner, stranger = await factories.buyer(), await factories.buyer()
    created = await api.data(CREATE_KEY, {"name": "ERP", "scopes": ["READ"]}, owner.token)
    key_id, secret = created["createApiKey"]["apiKey"]["id"], created["createApiKey"]["secret"]
    refused = (await api.data(REVOKE_KEY, {"id": key_id}, stranger.token))["revokeApiKey"]
    assert [e["code"] for e in refused["errors"]] == ["NOT_FOUND"]
    assert (await api.data("{ viewer { isPartner } }", token=secret))["viewer"]["isPartner"]


@pytest.mark.parametrize(
    "mutation",
    [
        LOGOUT,
        'mutation { createApiKey(input: {name: "x", scopes: [READ]}) { secret } }',
        "mutation { updateSupplierProfile(input: {keywords: []}) { supplier { id } } }",
        "mutation { applyForTradeAssurance(input: {}) { application { id } } }",
    ],
)
async def test_anonymous_mutation_needing_auth_is_a_graphql_error(api: Api, mutation: str) -> None:
    errors = await api.errors(mutation)
    assert codes(errors) == ["UNAUTHENTICATED"]
    assert await ApiKey.count() == 0


async def test_buyer_cannot_review_an_application(api: Api) -> None:
    buyer = await factories.buyer()
    applicant = await factories.supplier()
    application = await trade_assurance.apply(applicant.principal, None)
    review = """mutation($id: ID!) { reviewTradeAssuranceApplication(input: {
      applicationId: $id, decision: APPROVE, limit: {amount: "1000", currency: "USD"}}) {
        application { status } errors { code } } }"""
    variables = {"id": gid("TradeAssuranceApplication", application.id)}
    payload = (await api.data(review, variables, buyer.token))["reviewTradeAssuranceApplication"]
    assert payload == {"application": None, "errors": [{"code": "FORBIDDEN"}]}
    row = await TradeAssuranceApplication.objects().get(
        TradeAssuranceApplication.id == application.id
    )
    assert row is not None and row.status == ApplicationStatus.PENDING.value


async def test_buyer_cannot_set_a_supplier_standing(api: Api) -> None:
    buyer = await factories.buyer()
    target = await factories.supplier(gold=False, verification=Verification.NONE)
    standing = """mutation($id: ID!) { setSupplierStanding(input: {
      supplierId: $id, goldSupplier: true, verification: ASSESSED}) {
        supplier { goldSupplier } errors { code } } }"""
    variables = {"id": gid("Supplier", target.supplier_id or 0)}
    payload = (await api.data(standing, variables, buyer.token))["setSupplierStanding"]
    assert payload == {"supplier": None, "errors": [{"code": "FORBIDDEN"}]}
    row = await SupplierProfile.select(SupplierProfile.gold, SupplierProfile.verification).first()
    assert row == {"gold": False, "verification": "NONE"}


async def test_node_shows_own_colleagues_but_not_other_companies_users(api: Api) -> None:
    buyer, other = await factories.buyer(), await factories.buyer()
    mediator = await factories.staff(Role.MEDIATOR)
    own_id = gid("User", buyer.principal.user_id or 0)
    other_id = gid("User", other.principal.user_id or 0)

    own = (await api.data(NODE, {"id": own_id}, buyer.token))["node"]
    assert own == {"__typename": "User", "id": own_id, "email": buyer.email}
    assert (await api.data(NODE, {"id": other_id}, buyer.token))["node"] is None
    assert (await api.data(NODE, {"id": own_id}))["node"] is None
    assert (await api.data(NODE, {"id": other_id}, mediator.token))["node"]["email"] == other.email
    company = gid("Company", other.principal.company_id)
    assert (await api.data(NODE, {"id": company}, buyer.token))["node"] is None


@pytest.mark.parametrize("bad_id", ["garbage", "Tm9Db2xvbg=="])
async def test_garbage_global_id_is_a_graphql_error(api: Api, bad_id: str) -> None:
    buyer = await factories.buyer()
    errors = await api.errors(NODE, {"id": bad_id}, buyer.token)
    assert "GlobalID" in errors[0]["message"]
    assert codes(errors) == ["INVALID_ID"]


async def test_a_global_id_of_no_node_type_is_not_found(api: Api) -> None:
    buyer = await factories.buyer()
    assert await api.data(NODE, {"id": to_base64("NoSuchType", 1)}, buyer.token) == {"node": None}


async def test_ids_that_cannot_exist_are_simply_not_found(api: Api) -> None:
    mediator = await factories.staff(Role.MEDIATOR)
    for type_name in ("User", "Company", "Supplier", "TradeAssuranceApplication"):
        for node_id in ("0", "-1", str(10**20), "\u0661"):  # the last: an Arabic-Indic 1
            variables = {"id": to_base64(type_name, node_id)}
            assert await api.data(NODE, variables, mediator.token) == {"node": None}


@pytest.mark.parametrize("node_id", ["0", str(10**20), "²"])
async def test_mutations_report_impossible_ids_as_not_found(api: Api, node_id: str) -> None:
    mediator = await factories.staff(Role.MEDIATOR)
    revoke = await api.data(REVOKE_KEY, {"id": to_base64("ApiKey", node_id)}, mediator.token)
    assert revoke["revokeApiKey"]["errors"] == [{"code": "NOT_FOUND", "field": "apiKeyId"}]


async def test_a_user_id_where_a_supplier_id_is_expected_is_not_found(api: Api) -> None:
    mediator = await factories.staff(Role.MEDIATOR)
    await factories.supplier(gold=False)
    wrong = gid("User", mediator.principal.user_id or 0)
    standing = """mutation($id: ID!) { setSupplierStanding(input: {supplierId: $id,
      goldSupplier: true}) { supplier { id } errors { code field } } }"""
    payload = (await api.data(standing, {"id": wrong}, mediator.token))["setSupplierStanding"]
    assert payload == {"supplier": None, "errors": [{"code": "NOT_FOUND", "field": "supplierId"}]}
    assert await SupplierProfile.count().where(SupplierProfile.gold.eq(True)) == 0
    assert (await api.data("query($id: ID!) { supplier(id: $id) { id } }", {"id": wrong})) == {
        "supplier": None
    }
