"""The WebSocket endpoint's credentials and limits against a real uvicorn process: every
operation re-checks the connection's credential and is charged to the caller's request
rate (HTTP's budget), and a refused connection says why in its close code and reason."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
import websockets
from playwright.async_api import async_playwright, expect

from models import accounts
from models.accounts import Principal
from models.enums import CompanyKind, Role, Scope
from models.tables import AccessToken, ApiKey, UserAccount
from resolvers.context import Context
from server.auth import token_from_connection_params
from server.ws_handler import TransportWSHandler
from tests import factories
from tests.api import Server, bearer, serving

pytest_plugins = ("tests.api_plugin",)

VIEWER = "{ viewer { role } }"
CREATE_KEY = """mutation { createApiKey(input: {name: "kept", scopes: [READ]}) {
  secret errors { code } } }"""
ORDER_EVENTS = "subscription { orderEvents { cursor } }"
PER_MINUTE = 5
ANONYMOUS_PER_MINUTE = 2
CONNECTIONS = 2
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def gateway(database: None) -> Iterator[Server]:
    with serving(TA_WS_CONNECTIONS_PER_PRINCIPAL=str(CONNECTIONS)) as server:
        yield server


@pytest.fixture
def limited(database: None) -> Iterator[Server]:
    """Rate limits on, a gateway per test: its buckets are keyed by user id, and the ids of
    emptied tables come again."""
    with serving(
        TA_RATE_LIMIT_PER_MINUTE=str(PER_MINUTE),
        TA_ANONYMOUS_RATE_LIMIT_PER_MINUTE=str(ANONYMOUS_PER_MINUTE),
    ) as server:
        yield server


class Socket:
    """A raw graphql-transport-ws connection: the exact messages and close frame."""

    def __init__(self, conn: websockets.ClientConnection, ack: dict[str, Any] | None) -> None:
        self.conn = conn
        self.ack = ack

    @property
    def closed(self) -> tuple[int | None, str | None]:
        return self.conn.close_code, self.conn.close_reason

    async def send(self, message: dict[str, Any]) -> None:
        await self.conn.send(json.dumps(message))

    async def recv(self) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(self.conn.recv(), 10))
        return message

    async def run(self, op_id: str, query: str) -> dict[str, Any]:
        """The first answer to an operation (`next` or `error`), its `complete` read too."""
        await self.send({"id": op_id, "type": "subscribe", "payload": {"query": query}})
        answer = await self.recv()
        assert answer["id"] == op_id, answer
        if answer["type"] == "next":
            assert await self.recv() == {"id": op_id, "type": "complete"}
        return answer

    async def wait_closed(self) -> tuple[int | None, str | None]:
        with pytest.raises(websockets.ConnectionClosed):
            await self.recv()
        return self.closed


@pytest.fixture
async def sockets() -> AsyncIterator[Callable[..., Awaitable[Socket]]]:
    """Opens sockets (connection_init with the token, or else `payload`), closed after."""
    opened: list[Socket] = []

    async def connect(
        server: Server, token: str | None = None, payload: dict[str, object] | None = None
    ) -> Socket:
        conn = await websockets.connect(
            server.ws_url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
        )
        init = {"type": "connection_init", "payload": bearer(token) if payload is None else payload}
        await conn.send(json.dumps(init))
        try:
            socket = Socket(conn, json.loads(await asyncio.wait_for(conn.recv(), 10)))
        except websockets.ConnectionClosed:
            socket = Socket(conn, None)
        opened.append(socket)
        return socket

    yield connect
    for socket in opened:
        await socket.conn.close()


def _past() -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)


async def _logout_everywhere(actor: factories.Actor) -> str:
    await accounts.logout(actor.principal, all_sessions=True)
    return "TOKEN_REVOKED"


async def _expire(actor: factories.Actor) -> str:
    await AccessToken.update({AccessToken.expires_at: _past()}).where(
        AccessToken.id == actor.principal.token_id
    )
    return "TOKEN_EXPIRED"


async def _disable(actor: factories.Actor) -> str:
    await UserAccount.update({UserAccount.active: False}).where(
        UserAccount.id == actor.principal.user_id
    )
    return "ACCOUNT_DISABLED"


async def _api_key(actor: factories.Actor) -> tuple[str, int]:
    key, secret = await accounts.create_api_key(
        company_id=actor.principal.company_id, name="erp", scopes=[Scope.READ, Scope.ORDERS]
    )
    return secret, key.id


@pytest.mark.parametrize("spoil", [_logout_everywhere, _expire, _disable])
async def test_an_open_socket_stops_working_once_its_token_does(
    gateway: Server,
    sockets: Callable[..., Awaitable[Socket]],
    spoil: Callable[[factories.Actor], Awaitable[str]],
) -> None:
    buyer = await factories.buyer()
    ws = await sockets(gateway, buyer.token)
    assert ws.ack == {"type": "connection_ack", "payload": {"role": "BUYER"}}
    # A subscription in flight, and an operation that works while the token does.
    await ws.send({"id": "live", "type": "subscribe", "payload": {"query": ORDER_EVENTS}})
    assert (await ws.run("1", VIEWER))["payload"] == {"data": {"viewer": {"role": "BUYER"}}}
    code = await spoil(buyer)
    # The mutation is refused as a revoked subscription's stream ends (the code as a
    # GraphQL error), then the connection is closed as connection_init would be.
    refused = await ws.run("2", CREATE_KEY)
    assert refused["type"] == "error", refused
    assert [e["extensions"] for e in refused["payload"]] == [{"code": code}]
    assert await ws.wait_closed() == (4403, code)
    assert await ApiKey.count().where(ApiKey.company == buyer.principal.company_id) == 0


@pytest.mark.parametrize(("spoilt", "code"), [("revoked_at", "REVOKED"), ("expires_at", "EXPIRED")])
async def test_an_open_socket_stops_working_once_its_api_key_does(
    gateway: Server, sockets: Callable[..., Awaitable[Socket]], spoilt: str, code: str
) -> None:
    supplier = await factories.supplier()
    secret, key_id = await _api_key(supplier)
    ws = await sockets(gateway, secret)
    assert ws.ack == {"type": "connection_ack", "payload": {"role": "PARTNER"}}
    assert (await ws.run("1", VIEWER))["payload"] == {"data": {"viewer": {"role": "PARTNER"}}}
    await ApiKey.update({getattr(ApiKey, spoilt): _past()}).where(ApiKey.id == key_id)
    refused = await ws.run("2", VIEWER)
    assert refused["type"] == "error", refused
    assert refused["payload"][0]["extensions"] == {"code": f"API_KEY_{code}"}
    assert await ws.wait_closed() == (4403, f"API_KEY_{code}")


async def test_socket_operations_share_the_callers_http_rate(
    limited: Server, sockets: Callable[..., Awaitable[Socket]]
) -> None:
    buyer = await factories.buyer()
    ws = await sockets(limited, buyer.token)
    answers = [await ws.run(str(n), VIEWER) for n in range(PER_MINUTE + 1)]
    assert [a["type"] for a in answers] == ["next"] * PER_MINUTE + ["error"]
    (error,) = answers[-1]["payload"]
    seconds = error["extensions"]["retryAfterSeconds"]
    assert error["extensions"] == {"code": "RATE_LIMITED", "retryAfterSeconds": seconds}
    assert 1 <= seconds <= 60 // PER_MINUTE
    assert error["message"] == f"too many requests; try again in {seconds} s"
    # Over its rate, not refused: the connection stays.
    await ws.send({"type": "ping"})
    assert await ws.recv() == {"type": "pong"}
    # One budget: the socket spent it for HTTP too.
    async with httpx.AsyncClient(base_url=limited.base, timeout=10) as client:
        response = await client.post(
            "/graphql", json={"query": VIEWER}, headers=bearer(buyer.token)
        )
    assert response.status_code == 429
    # Another caller has its own.
    other = await sockets(limited, (await factories.buyer()).token)
    assert (await other.run("1", VIEWER))["type"] == "next"


async def test_anonymous_socket_operations_are_limited_by_address(
    limited: Server, sockets: Callable[..., Awaitable[Socket]]
) -> None:
    ws = await sockets(limited)
    assert ws.ack is not None and ws.ack["type"] == "connection_ack"
    answers = [await ws.run(str(n), VIEWER) for n in range(ANONYMOUS_PER_MINUTE + 1)]
    assert [a["type"] for a in answers] == ["next"] * ANONYMOUS_PER_MINUTE + ["error"]
    assert answers[-1]["payload"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_a_refused_connection_says_why(
    gateway: Server, sockets: Callable[..., Awaitable[Socket]]
) -> None:
    revoked, expired = await factories.buyer(), await factories.buyer()
    await accounts.logout(revoked.principal)
    await _expire(expired)
    for token, reason in [
        ("tat_garbage", "TOKEN_INVALID"),
        (revoked.token, "TOKEN_REVOKED"),
        (expired.token, "TOKEN_EXPIRED"),
    ]:
        ws = await sockets(gateway, token)
        assert (ws.ack, ws.closed) == (None, (4403, reason))


async def test_too_many_connections_has_a_close_code_of_its_own(
    gateway: Server, sockets: Callable[..., Awaitable[Socket]]
) -> None:
    buyer = await factories.buyer()
    held = [await sockets(gateway, buyer.token) for _ in range(CONNECTIONS)]
    assert all(ws.ack is not None for ws in held)
    over = await sockets(gateway, buyer.token)
    assert (over.ack, over.closed) == (None, (4029, "TOO_MANY_CONNECTIONS"))


@pytest.mark.parametrize(
    "payload",
    [
        {"Authorization": "Basic YWRhOnNlY3JldA=="},
        {"Authorization": 42},
        {"authorization": None},
        {"token": ["tat_x"]},
        {"Authorization": ""},
    ],
)
async def test_a_malformed_credential_is_refused_not_anonymous(
    gateway: Server, sockets: Callable[..., Awaitable[Socket]], payload: dict[str, Any]
) -> None:
    ws = await sockets(gateway, payload=payload)
    assert (ws.ack, ws.closed) == (None, (4403, "MALFORMED_AUTHORIZATION"))


def test_connection_params_without_a_credential_are_anonymous() -> None:
    assert token_from_connection_params(None) is None
    assert token_from_connection_params({"Content-Type": "application/json"}) is None
    assert token_from_connection_params({"Authorization": "Bearer tat_x"}) == "tat_x"
    assert token_from_connection_params({"token": "tat_y"}) == "tat_y"


class _FakeSocket:
    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.closed: tuple[int, str] | None = None

    async def send_json(self, message: Any) -> None:
        self.sent.append(message)

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


async def test_an_operation_whose_credential_cannot_be_checked_is_not_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The database away for a moment (a restart): TRY_AGAIN for that operation, not run,
    and the connection stays."""

    async def away(_: object) -> dict[Principal, accounts.AuthError]:
        raise ConnectionResetError("the database is restarting")  # models.db.is_transient

    monkeypatch.setattr(accounts, "recheck", away)
    principal = Principal(
        Role.BUYER, company_id=1, company_kind=CompanyKind.BUYER, user_id=1, token_id=1
    )
    socket = _FakeSocket()
    handler = TransportWSHandler(
        view=cast(Any, SimpleNamespace(limiter=None)),
        websocket=cast(Any, socket),
        context=Context(principal=principal, request=SimpleNamespace(scope={})),
        root_value=None,
        schema=cast(Any, None),  # never reached: the operation does not run
        connection_init_wait_timeout=dt.timedelta(seconds=10),
    )
    handler.connection_acknowledged = True
    await handler.handle_subscribe({"id": "1", "type": "subscribe", "payload": {"query": VIEWER}})
    assert socket.sent == [
        {
            "id": "1",
            "type": "error",
            "payload": [
                {
                    "message": "the database is unavailable for a moment; try again",
                    "extensions": {"code": "TRY_AGAIN"},
                }
            ],
        }
    ]
    assert socket.closed is None and handler.operations == {}


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (`apt-get install chromium`)")
async def test_the_live_page_waits_for_a_free_connection_slot(database: None) -> None:
    """Before, the 2nd connection of a 1-connection token closed with 4403, which the page
    took for a refused token and gave up on; a refused token now says why."""
    b, _, order = await factories.confirmed_order()
    assert CHROMIUM is not None
    with serving(TA_WS_CONNECTIONS_PER_PRINCIPAL="1", TA_LIVE_POLL_SECONDS="0.1") as server:
        held = await websockets.connect(
            server.ws_url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
        )
        await held.send(json.dumps({"type": "connection_init", "payload": bearer(b.token)}))
        assert json.loads(await held.recv())["type"] == "connection_ack"
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM)
            try:
                page = await browser.new_page()
                await page.goto(f"{server.base}/orders/{order.id}/live")
                await page.fill("#token", b.token)
                await page.click("button[type=submit]")
                connection = page.locator("#connection")
                await expect(connection).to_contain_text("too many live connections")
                await expect(connection).to_have_attribute("data-state", "lost")
                await held.close()  # the slot frees: the page's next attempt gets it
                await expect(connection).to_have_attribute("data-state", "live", timeout=15_000)
                await expect(page.locator("#problem")).to_be_hidden()
                refused = await browser.new_page()
                await refused.goto(f"{server.base}/orders/{order.id}/live")
                await refused.fill("#token", "tat_garbage")
                await refused.click("button[type=submit]")
                await expect(refused.locator("#problem")).to_contain_text(
                    "token refused: TOKEN_INVALID (4403)"
                )
                await expect(refused.locator("#connection")).to_have_attribute(
                    "data-state", "stopped"
                )
            finally:
                await browser.close()
