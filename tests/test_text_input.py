"""A NUL character (U+0000) in any string input is refused before the operation runs
(resolvers/text_input.py): PostgreSQL cannot store it, and used to fail mid-transaction
with an internal error while SQLite stored it."""

from __future__ import annotations

import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport

from models.tables import LoginThrottle
from resolvers.text_input import nul_refusal
from tests import factories
from tests.api import Api, Server, codes

pytest_plugins = ("tests.api_plugin",)

LOGIN = """mutation($email: String!) {
  login(input: {email: $email, password: "demo-password-2026"}) { token errors { code } } }"""


@pytest.mark.parametrize(
    ("query", "variables", "refused"),
    [
        ("{ a }", {"x": "plain", "y": [1, None, {"z": "text"}]}, False),
        ("{ a }", {"x": {"y": ["ok", "a\x00b"]}}, True),
        ('{ a(t: "\\u0041") }', None, False),
        ('{ a(t: "a\\u0000b") }', None, True),
        ('{ a(t: "a\\u{0}b") }', None, True),
    ],
)
def test_what_is_refused(query: str, variables: object, refused: bool) -> None:
    assert (nul_refusal(query, variables) is not None) is refused


async def test_a_nul_in_a_variable_or_a_literal_is_refused_over_http(api: Api) -> None:
    errors = await api.errors(LOGIN, {"email": "anna\x00@acme.example"})
    assert codes(errors) == ["INVALID_INPUT"] and "NUL" in errors[0]["message"]
    literal = LOGIN.replace("($email: String!)", "").replace("$email", '"anna\\u0000@acme.example"')
    assert codes(await api.errors(literal)) == ["INVALID_INPUT"]
    assert await LoginThrottle.count() == 0  # the login never ran


async def test_a_nul_is_refused_over_the_websocket(live_server: Server) -> None:
    buyer = await factories.buyer()
    transport = WebsocketsTransport(
        url=live_server.ws_url,
        init_payload={"Authorization": f"Bearer {buyer.token}"},
        connect_timeout=5,
        ack_timeout=5,
    )
    async with Client(transport=transport) as session:
        with pytest.raises(TransportQueryError) as refused:
            await session.execute(GraphQLRequest(LOGIN, variable_values={"email": "a\x00b"}))
        assert codes(refused.value.errors or []) == ["INVALID_INPUT"]
