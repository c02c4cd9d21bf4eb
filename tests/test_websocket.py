"""GraphQL over WebSocket (graphql-transport-ws) against a real uvicorn process."""

from __future__ import annotations

from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportConnectionFailed, TransportQueryError
from gql.transport.websockets import WebsocketsTransport
from websockets.exceptions import ConnectionClosed

from models import accounts, suppliers
from models.enums import Scope
from tests import factories
from tests.api import Server, codes, gid

pytest_plugins = ("tests.api_plugin",)

VIEWER = "{ viewer { role isPartner user { email } } }"


def transport(
    server: Server, token: str | None = None, subprotocol: str | None = None
) -> WebsocketsTransport:
    return WebsocketsTransport(
        url=server.ws_url,
        init_payload={"Authorization": f"Bearer {token}"} if token else {},
        subprotocols=[subprotocol or WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        connect_timeout=5,
        ack_timeout=5,
    )


async def ws_data(server: Server, query: str, token: str | None = None) -> dict[str, Any]:
    async with Client(transport=transport(server, token)) as session:
        data: dict[str, Any] = await session.execute(GraphQLRequest(query))
        return data


async def test_viewer_over_websocket_with_a_token(live_server: Server) -> None:
    buyer = await factories.buyer()
    viewer = (await ws_data(live_server, VIEWER, buyer.token))["viewer"]
    assert viewer == {"role": "BUYER", "isPartner": False, "user": {"email": buyer.email}}


async def test_api_key_over_websocket(live_server: Server) -> None:
    seller = await factories.supplier()
    _, secret = await accounts.create_api_key(
        company_id=seller.principal.company_id, name="ERP", scopes=[Scope.READ]
    )
    viewer = (await ws_data(live_server, VIEWER, secret))["viewer"]
    assert viewer == {"role": "PARTNER", "isPartner": True, "user": None}


async def test_anonymous_connection_sees_no_viewer(live_server: Server) -> None:
    assert await ws_data(live_server, VIEWER) == {"viewer": None}


async def test_every_operation_reads_fresh_data(live_server: Server) -> None:
    seller = await factories.supplier(keywords=("cotton",))
    query = f'{{ supplier(id: "{gid("Supplier", seller.supplier_id or 0)}") {{ keywords }} }}'
    async with Client(transport=transport(live_server, seller.token)) as session:
        first = await session.execute(GraphQLRequest(query))
        await suppliers.update_profile(seller.principal, keywords=["denim"])
        second = await session.execute(GraphQLRequest(query))
    assert (first["supplier"]["keywords"], second["supplier"]["keywords"]) == (
        ["cotton"],
        ["denim"],
    )


async def close_code(server: Server, token: str | None, subprotocol: str | None = None) -> int:
    """The WebSocket close code with which the server refused the connection."""
    with pytest.raises(TransportConnectionFailed) as refused:
        async with Client(transport=transport(server, token, subprotocol)) as session:
            await session.execute(GraphQLRequest(VIEWER))
    closed = refused.value.__cause__
    assert isinstance(closed, ConnectionClosed) and closed.rcvd is not None, refused.value
    return closed.rcvd.code


async def test_invalid_token_in_connection_init_is_refused(live_server: Server) -> None:
    assert await close_code(live_server, "tat_garbage") == 4403


async def test_revoked_token_is_refused(live_server: Server) -> None:
    buyer = await factories.buyer()
    assert (await ws_data(live_server, VIEWER, buyer.token))["viewer"]["role"] == "BUYER"
    await accounts.logout(buyer.principal)
    assert await close_code(live_server, buyer.token) == 4403


async def test_other_subprotocols_are_refused(live_server: Server) -> None:
    assert await close_code(live_server, None, WebsocketsTransport.APOLLO_SUBPROTOCOL) == 4406


async def test_mutations_use_the_principal_of_connection_init(live_server: Server) -> None:
    seller = await factories.supplier()
    apply = (
        "mutation { applyForTradeAssurance(input: {}) { application { status } errors { code } } }"
    )
    applied = (await ws_data(live_server, apply, seller.token))["applyForTradeAssurance"]
    assert applied == {"application": {"status": "PENDING"}, "errors": []}
    with pytest.raises(TransportQueryError) as anonymous:
        await ws_data(live_server, apply)
    assert codes(anonymous.value.errors or []) == ["UNAUTHENTICATED"]
