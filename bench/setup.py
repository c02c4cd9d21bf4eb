"""Shared benchmark setup: the accounts a benchmark needs, made as a client would make
them (`trade-assurance create-user` for the mediator, the API for everyone else)."""

from __future__ import annotations

import dataclasses
import subprocess
from typing import Any

import httpx

from bench import gateway

PASSWORD = "bench-password-2026"  # noqa: S105 - scratch accounts
LIMIT = "10000000000.00"  # USD, 10^12 minor units: coverage is never what limits a bench

ERRORS = "errors { code message field }"
REGISTER = f"""mutation Register($input: RegisterInput!) {{
  register(input: $input) {{ token viewer {{ company {{ supplier {{ id }} }} }} {ERRORS} }}
}}"""
LOGIN = f"""mutation Login($input: LoginInput!) {{
  login(input: $input) {{ token {ERRORS} }}
}}"""
SET_STANDING = f"""mutation Standing($input: SetSupplierStandingInput!) {{
  setSupplierStanding(input: $input) {{ supplier {{ id }} {ERRORS} }}
}}"""
APPLY = f"""mutation Apply($input: ApplyForTradeAssuranceInput!) {{
  applyForTradeAssurance(input: $input) {{ application {{ id }} {ERRORS} }}
}}"""
REVIEW = f"""mutation Review($input: ReviewTradeAssuranceApplicationInput!) {{
  reviewTradeAssuranceApplication(input: $input) {{
    supplier {{ tradeAssurance {{ status limit {{ amount currency }} }} }} {ERRORS}
  }}
}}"""


@dataclasses.dataclass(frozen=True)
class Actors:
    buyer_token: str
    supplier_token: str
    supplier_id: str  # global ID
    mediator_token: str


def mediator_email(tag: str) -> str:
    return f"mediator@{tag}.bench"


def create_mediator(env: dict[str, str], tag: str) -> None:
    done = subprocess.run(
        [gateway.CLI, "create-user", "--email", mediator_email(tag), "--full-name",
         "Bench Mediator", "--role", "MEDIATOR", "--company-name", "Trade Assurance Platform"],
        env={**env, "TA_NEW_USER_PASSWORD": PASSWORD},
        cwd=gateway.PROJECT_ROOT, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"`trade-assurance create-user` failed:\n{done.stdout}{done.stderr}")


def gql(
    client: httpx.Client, url: str, document: str, variables: dict[str, Any], token: str | None
) -> Any:
    """The payload of a mutation that must go through (raises otherwise)."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    resp = client.post(url, json={"query": document, "variables": variables}, headers=headers)
    doc = resp.json()
    data = doc.get("data") if isinstance(doc, dict) else None
    payload = next(iter(data.values()), None) if isinstance(data, dict) else None
    if resp.status_code != 200 or "errors" in doc or not payload or payload["errors"]:
        raise RuntimeError(f"setup failed: HTTP {resp.status_code} {resp.text[:500]}")
    return payload


def setup_actors(url: str, tag: str) -> Actors:
    """A buyer, and a supplier with active Trade Assurance, all through the API; the
    mediator (made by `create_mediator` with the same tag) logs in."""
    with httpx.Client(timeout=30.0) as client:
        title = tag.replace("-", " ").title()
        for kind, company, country in [
            ("BUYER", f"{title} Buyer Inc.", "US"),
            ("SUPPLIER", f"{title} Supplier Co., Ltd.", "CN"),
        ]:
            registered = gql(client, url, REGISTER, {"input": {
                "companyName": company, "kind": kind, "country": country,
                "fullName": f"Bench {kind.title()}", "email": f"{kind.lower()}@{tag}.bench",
                "password": PASSWORD,
            }}, None)  # fmt: skip
            if kind == "SUPPLIER":
                supplier_id = str(registered["viewer"]["company"]["supplier"]["id"])

        def login(email: str) -> str:
            payload = gql(client, url, LOGIN, {"input": {"email": email, "password": PASSWORD}},
                          None)  # fmt: skip
            return str(payload["token"])

        buyer, supplier = login(f"buyer@{tag}.bench"), login(f"supplier@{tag}.bench")
        mediator = login(mediator_email(tag))
        limit = {"amount": LIMIT, "currency": "USD"}
        gql(client, url, SET_STANDING, {"input": {"supplierId": supplier_id,
            "goldSupplier": True, "verification": "VERIFIED"}}, mediator)  # fmt: skip
        application = gql(client, url, APPLY, {"input": {"requestedLimit": limit}}, supplier)
        review = {"applicationId": application["application"]["id"], "decision": "APPROVE",
                  "limit": limit}  # fmt: skip
        reviewed = gql(client, url, REVIEW, {"input": review}, mediator)
        ta = reviewed["supplier"]["tradeAssurance"]
        if ta["status"] != "ACTIVE":
            raise RuntimeError(f"supplier's Trade Assurance is {ta}, not ACTIVE")
    return Actors(buyer, supplier, supplier_id, mediator)
