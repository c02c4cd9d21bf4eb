"""What the examples share: the gateway's address, the demo logins, and one rule: any
`errors` in an answer (top-level, or a mutation payload's business errors) ends the
script with exit status 1.

Every option can also come from the environment (in brackets), and defaults to the demo
data of `trade-assurance serve --demo`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, NoReturn

from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportError, TransportQueryError
from gql.transport.httpx import HTTPXTransport

DEMO_PASSWORD = "demo-password-2026"  # noqa: S105 - the published demo password
DEMO_LOGINS = {
    "buyer": "buyer.us@demo.trade-assurance.test",
    "supplier": "supplier@demo.trade-assurance.test",
}
LOGIN = """mutation LogIn($input: LoginInput!) {
  login(input: $input) { token errors { code message } } }"""


def parser(description: str | None, *roles: str) -> argparse.ArgumentParser:
    """--url, --password, and for each role --<role>-email and --<role>-token."""
    p = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    env = os.environ.get
    p.add_argument(
        "--url", default=env("TA_URL", "http://127.0.0.1:8000"), help="the gateway [TA_URL]"
    )
    p.add_argument("--password", default=env("TA_PASSWORD", DEMO_PASSWORD), help="[TA_PASSWORD]")
    for role in roles:
        upper = role.upper()
        p.add_argument(
            f"--{role}-email",
            default=env(f"TA_{upper}_EMAIL", DEMO_LOGINS[role]),
            help=f"log in as this {role} [TA_{upper}_EMAIL]",
        )
        p.add_argument(
            f"--{role}-token",
            default=env(f"TA_{upper}_TOKEN"),
            help=f"a {role}'s bearer token or API key instead of logging in [TA_{upper}_TOKEN]",
        )
    return p


def fail(message: str) -> NoReturn:
    sys.exit(f"error: {message}")  # to stderr, exit status 1


class Gateway:
    """One party's view of the API over HTTP: `run` returns an operation's data."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url, self.token = url.rstrip("/"), token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        transport = HTTPXTransport(url=f"{self.url}/graphql", headers=headers, timeout=30)
        self.client = Client(transport=transport)

    def run(self, document: str, **variables: Any) -> dict[str, Any]:
        try:
            data = self.client.execute(GraphQLRequest(document, variable_values=variables))
        except TransportQueryError as e:  # malformed request, missing authentication...
            fail(f"GraphQL errors: {e.errors}")
        except TransportError as e:  # HTTP 401 for a bad token, server unreachable...
            fail(f"{type(e).__name__}: {e}")
        for field, payload in data.items():
            if isinstance(payload, dict) and payload.get("errors"):
                problems = "; ".join(f"{e['code']}: {e['message']}" for e in payload["errors"])
                fail(f"{field}: {problems}")
        return data


def log_in(args: argparse.Namespace, role: str) -> Gateway:
    """The role's gateway: with its token if one was given, else by logging in."""
    token = getattr(args, f"{role}_token")
    if token is None:
        email = getattr(args, f"{role}_email")
        answer = Gateway(args.url).run(LOGIN, input={"email": email, "password": args.password})
        token = answer["login"]["token"]
        print(f"logged in as {email}")
    return Gateway(args.url, token)
