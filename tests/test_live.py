"""Live order events: the feed's resumable order, the per-process reader and its fan-out,
and subscriptions over graphql-transport-ws against real uvicorn processes."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import websockets
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport
from piccolo.engine.postgres import PostgresEngine

from models import accounts, db, events, feed, live
from models.enums import Role, Scope
from models.errors import DomainError, ErrorCode
from models.feed import Position
from models.tables import OrderEvent, UserAccount
from tests import factories
from tests.api import Server, cli_env, gid, start_server, wait_ready
from tests.conftest import ENGINE

pytest_plugins = ("tests.api_plugin",)

SCHEDULER = events.SCHEDULER
SUBSCRIBE_ORDER = """subscription($id: ID!, $after: String) {
  orderStatusChanged(orderId: $id, after: $after) {
    cursor event { kind reason newStatus } order { id status } } }"""
SUBSCRIBE_ALL = """subscription($after: String) {
  orderEvents(after: $after) { cursor event { kind reason } } }"""
postgres_only = pytest.mark.skipif(ENGINE != "postgres", reason="PostgreSQL: several processes")


async def _note(order_id: int, reason: str) -> int:
    """One order event in its own transaction (what every transition writes)."""
    async with db.write_transaction():
        return await events.record(
            order_id, "NOTE", old_status=None, new_status="PAID", actor=SCHEDULER,
            at=dt.datetime.now(dt.UTC), reason=reason,
        )  # fmt: skip


# --- the feed ---------------------------------------------------------------------------


async def _settled(start: Position, count: int) -> list[feed.FeedEvent]:
    """The feed after `start` once it holds `count` events (on PostgreSQL it stops at the
    oldest transaction of the database still running, which may be a moment behind)."""
    found: list[feed.FeedEvent] = []
    for _ in range(600):
        found = await feed.read_after(start, limit=100)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"the feed holds {len(found)} of {count} events")


def test_cursor_round_trip_and_garbage() -> None:
    position = Position(12345678901, 42)
    assert Position.parse(position.cursor()) == position
    for bad in ["", "nonsense", "ZXZ0OmE6Yg==", Position(1, 2).cursor()[:-3] + "!!"]:
        with pytest.raises(DomainError) as e:
            Position.parse(bad)
        assert e.value.code is ErrorCode.INVALID_CURSOR


async def test_feed_reads_in_order_and_only_what_the_viewer_may_see() -> None:
    b1, s1, o1 = await factories.confirmed_order()
    _, _, o2 = await factories.confirmed_order()
    start = await feed.head()
    for n in range(3):
        await _note(o1.id, f"one-{n}")
        await _note(o2.id, f"two-{n}")
    everything = await _settled(start, 6)
    assert [e.event.reason for e in everything] == [
        "one-0", "two-0", "one-1", "two-1", "one-2", "two-2"
    ]  # fmt: skip
    assert [e.position for e in everything] == sorted(e.position for e in everything)
    mine = await feed.read_after(start, limit=100, viewer=b1.principal)
    assert {e.event.order for e in mine} == {o1.id}
    theirs = await feed.read_after(start, limit=100, viewer=s1.principal)
    assert {e.event.order for e in theirs} == {o1.id}
    one_order = await feed.read_after(start, limit=100, order_id=o2.id)
    assert [e.event.reason for e in one_order] == ["two-0", "two-1", "two-2"]
    page = await feed.read_after(start, limit=2)
    rest = await feed.read_after(page[-1].position, limit=100)
    assert page + rest == everything
    assert await feed.head() == everything[-1].position


@pytest.mark.skipif(ENGINE != "postgres", reason="SQLite commits one writer at a time")
async def test_a_transaction_committing_out_of_id_order_is_not_skipped() -> None:
    """T1 starts first, T2 writes event A and commits, T1 then writes event B (a higher id)
    and commits. A reader that saw A must still get B: it is held back until T1 ends."""
    _, _, order = await factories.confirmed_order()
    start = await feed.head()
    engine = db.engine()
    assert isinstance(engine, PostgresEngine)
    t1 = await engine.get_new_connection()
    try:
        await t1.execute("BEGIN")
        await t1.execute("SELECT pg_current_xact_id()")  # T1 takes its transaction id first
        await _note(order.id, "A")  # T2: commits first, with a later transaction id
        assert await feed.read_after(start, limit=10) == []  # held back: T1 still runs
        await t1.execute(
            'INSERT INTO order_event ("order", kind, new_status, actor_kind, reason, created_at)'
            " VALUES ($1, 'NOTE', 'PAID', 'SCHEDULER', 'B', now())",
            order.id,
        )
        await t1.execute("COMMIT")
    finally:
        await t1.close()
    seen = await _settled(start, 2)
    assert sorted(e.event.reason for e in seen) == ["A", "B"]
    first = seen[0].position  # resuming after either event still yields the other
    assert [e.event.reason for e in await feed.read_after(first, limit=10)] == [
        seen[1].event.reason
    ]


@pytest.mark.skipif(ENGINE != "postgres", reason="PostgreSQL transaction ids")
async def test_another_databases_open_transaction_does_not_hold_the_feed_back() -> None:
    import asyncpg

    _, _, order = await factories.confirmed_order()
    start = await feed.head()
    dsn = str(db.engine().config["dsn"])  # type: ignore[attr-defined]
    elsewhere = await asyncpg.connect(dsn.rsplit("/", 1)[0] + "/postgres")
    try:
        await elsewhere.execute("BEGIN")
        await elsewhere.execute("SELECT pg_current_xact_id()")  # an older, still open writer
        await _note(order.id, "through")
        assert [e.event.reason for e in await _settled(start, 1)] == ["through"]
    finally:
        await elsewhere.close()


# --- the hub ----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running_hub(**kwargs: Any) -> AsyncIterator[live.Hub]:
    dsn = str(db.engine().config["dsn"]) if ENGINE == "postgres" else None  # type: ignore[attr-defined]
    hub = live.Hub(dsn=dsn, poll_interval=0.05, **kwargs)
    await hub.start()
    try:
        yield hub
    finally:
        await hub.stop()


async def subscribed(hub: live.Hub, count: int) -> None:
    """Until `count` subscribers have joined the hub (which has no event to tell it)."""
    async with asyncio.timeout(30):
        while hub.subscriber_count < count:  # noqa: ASYNC110 - see above
            await asyncio.sleep(0.01)


async def _drain(subscriber: live.Subscriber, count: int, within: float = 30) -> list[str]:
    got: list[str] = []
    async with asyncio.timeout(within):
        while len(got) < count:
            item = await subscriber.queue.get()
            assert isinstance(item, feed.FeedEvent), item
            got.append(item.event.reason)
    return got


async def test_hub_fans_out_to_those_who_may_see() -> None:
    b1, _, o1 = await factories.confirmed_order()
    b2, _, o2 = await factories.confirmed_order()
    mediator = await factories.staff()
    async with running_hub() as hub:
        mine, _ = hub.subscribe(b1.principal, None)
        theirs_order, _ = hub.subscribe(b2.principal, o2.id)
        everyone, _ = hub.subscribe(mediator.principal, None)
        await _note(o1.id, "a")
        await _note(o2.id, "b")
        await _note(o1.id, "c")
        assert await _drain(mine, 2) == ["a", "c"]
        assert await _drain(theirs_order, 1) == ["b"]
        assert await _drain(everyone, 3) == ["a", "b", "c"]
        await asyncio.sleep(0.2)
        assert mine.queue.empty() and theirs_order.queue.empty()


async def test_a_subscriber_that_stops_reading_is_cut_off_and_others_go_on() -> None:
    b, _, order = await factories.confirmed_order()
    cut: list[bool] = []
    async with running_hub(queue_size=5) as hub:
        stalled, _ = hub.subscribe(b.principal, None, on_overflow=lambda: cut.append(True))
        reader, _ = hub.subscribe(b.principal, None)
        got: list[str] = []
        for n in range(12):
            await _note(order.id, str(n))
            got += await _drain(reader, 1)
        assert got == [str(n) for n in range(12)]
        assert stalled.overflowed and cut == [True]
        assert stalled.queue.qsize() == 5  # bounded: nothing more was kept for it
        assert not hub.subscribed(stalled)


async def test_events_whose_delivery_failed_are_delivered_at_the_next_wake_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The database going away between reading events and checking their recipients'
    credentials must not move the hub past them."""
    b, _, order = await factories.confirmed_order()
    recheck = accounts.recheck
    failures = [ConnectionResetError("cut")]

    async def flaky(principals: Any) -> Any:
        if failures:
            raise failures.pop()
        return await recheck(principals)

    monkeypatch.setattr(accounts, "recheck", flaky)
    async with running_hub() as hub:
        subscriber, _ = hub.subscribe(b.principal, order.id)
        await _note(order.id, "before")
        await _note(order.id, "after")
        assert await _drain(subscriber, 2) == ["before", "after"]
        assert not failures


async def test_a_subscriber_joining_while_the_idle_hub_reads_the_head_misses_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With nobody listening the hub only keeps up with the feed's head. A subscriber who
    joins during that read starts from the old position: the hub must not then move past
    the events in between (they were lost to that subscriber)."""
    b, _, order = await factories.confirmed_order()
    hub = live.Hub(dsn=None)  # not started: only this test moves it, nothing wakes it
    hub.position = await feed.head()
    head = feed.head
    joined: list[live.Subscriber] = []

    async def joined_during_the_read() -> Position:
        subscriber, _ = hub.subscribe(b.principal, order.id)
        joined.append(subscriber)
        await _note(order.id, "meanwhile")  # after the subscriber's start
        return await head()

    monkeypatch.setattr(feed, "head", joined_during_the_read)
    await hub.catch_up()  # nobody listened when it began: it reads the head
    monkeypatch.setattr(feed, "head", head)
    await hub.catch_up()
    assert await _drain(joined[0], 1, within=5) == ["meanwhile"]


@pytest.mark.skipif(ENGINE != "postgres", reason="PostgreSQL's LISTEN connection")
async def test_hub_survives_its_listener_being_terminated_during_a_burst() -> None:
    _, _, order = await factories.confirmed_order()
    async with running_hub() as hub:
        hub.poll_interval = 3600  # only notifications (and reconnecting) wake it now
        mediator = await factories.staff()
        subscriber, _ = hub.subscribe(mediator.principal, order.id)
        await asyncio.sleep(0.3)  # the listener is connected

        async def burst() -> None:
            for n in range(1000):
                await _note(order.id, str(n))
                if n == 300:
                    await OrderEvent.raw(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE application_name = {}",
                        live.LISTENER_NAME,
                    )

        await asyncio.gather(burst(), asyncio.sleep(0))
        got = await _drain(subscriber, 1000, within=60)
        assert got == [str(n) for n in range(1000)]


# --- over WebSocket, against real gateway processes -------------------------------------


def ws(server: Server, token: str) -> Client:
    return Client(
        transport=WebsocketsTransport(
            url=server.ws_url,
            init_payload={"Authorization": f"Bearer {token}"},
            connect_timeout=5,
            ack_timeout=5,
        )
    )


@pytest.fixture
def quick_server(database: None) -> Iterator[Server]:
    """A gateway whose reader polls often: on SQLite, this test process writes the events
    and only the poll sees another process's commits. One per test: every test empties
    the tables and event ids start again, which a running reader would not expect."""
    server = start_server(cli_env(TA_LIVE_POLL_SECONDS="0.05", TA_SUBSCRIBER_QUEUE="60"))
    try:
        assert wait_ready(server), server.stop()
        yield server
    finally:
        server.stop()


async def _collect(
    server: Server,
    token: str,
    query: str,
    variables: dict[str, Any],
    count: int,
    within: float = 20,
) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    async with ws(server, token) as session:
        async with asyncio.timeout(within):
            async for result in session.subscribe(GraphQLRequest(query, variable_values=variables)):
                got.append(result)
                if len(got) == count:
                    break
    return got


async def _subscribed(server: Server, task: asyncio.Task[Any]) -> None:
    """Wait until the server holds the subscription (its open-subscription gauge): from
    then on its start is fixed, and every event written is the subscriber's. (A fixed
    sleep was not always enough on a loaded machine: the events came before the start.)"""
    held = re.compile(r"^ta_open_subscriptions 1\.0$", re.MULTILINE)
    async with httpx.AsyncClient(base_url=server.base) as client, asyncio.timeout(20):
        while not held.search((await client.get("/metrics")).text):
            assert not task.done(), task.result()
            await asyncio.sleep(0.02)


async def test_subscriber_sees_each_event_of_its_order_with_the_fresh_order(
    quick_server: Server,
) -> None:
    b, _, order = await factories.confirmed_order()
    variables = {"id": gid("Order", order.id)}
    task = asyncio.create_task(_collect(quick_server, b.token, SUBSCRIBE_ORDER, variables, 3))
    await _subscribed(quick_server, task)
    for n in range(3):
        await _note(order.id, f"step-{n}")
    got = await task
    assert [g["orderStatusChanged"]["event"]["reason"] for g in got] == [
        "step-0", "step-1", "step-2"
    ]  # fmt: skip
    assert got[0]["orderStatusChanged"]["order"] == {
        "id": gid("Order", order.id), "status": order.status
    }  # fmt: skip


async def test_resuming_from_a_cursor_misses_nothing_and_repeats_nothing(
    quick_server: Server,
) -> None:
    b, _, order = await factories.confirmed_order()
    variables: dict[str, Any] = {"id": gid("Order", order.id)}
    task = asyncio.create_task(_collect(quick_server, b.token, SUBSCRIBE_ORDER, variables, 2))
    await _subscribed(quick_server, task)
    await _note(order.id, "0")
    await _note(order.id, "1")
    first = await task
    cursor = first[-1]["orderStatusChanged"]["cursor"]
    for n in range(2, 6):  # while the client is away
        await _note(order.id, str(n))
    variables["after"] = cursor
    task = asyncio.create_task(_collect(quick_server, b.token, SUBSCRIBE_ORDER, variables, 6))
    await _subscribed(quick_server, task)
    await _note(order.id, "6")
    await _note(order.id, "7")
    again = await task
    reasons = [g["orderStatusChanged"]["event"]["reason"] for g in first + again]
    assert reasons == [str(n) for n in range(8)]


async def test_another_buyers_order_cannot_be_subscribed(quick_server: Server) -> None:
    _, _, order = await factories.confirmed_order()
    stranger = await factories.buyer()
    with pytest.raises(TransportQueryError) as e:
        await _collect(
            quick_server, stranger.token, SUBSCRIBE_ORDER, {"id": gid("Order", order.id)}, 1
        )
    assert e.value.errors and e.value.errors[0]["extensions"]["code"] == "NOT_FOUND"
    with pytest.raises(TransportQueryError) as e:
        await _collect(quick_server, stranger.token, SUBSCRIBE_ALL, {"after": "garbage"}, 1)
    assert e.value.errors and e.value.errors[0]["extensions"]["code"] == "INVALID_CURSOR"


async def test_the_feed_of_all_orders_shows_only_the_viewers(quick_server: Server) -> None:
    b, _, mine = await factories.confirmed_order()
    _, _, other = await factories.confirmed_order()
    task = asyncio.create_task(_collect(quick_server, b.token, SUBSCRIBE_ALL, {}, 2))
    await _subscribed(quick_server, task)
    await _note(other.id, "not yours")
    await _note(mine.id, "yours-1")
    await _note(other.id, "not yours")
    await _note(mine.id, "yours-2")
    assert [g["orderEvents"]["event"]["reason"] for g in await task] == ["yours-1", "yours-2"]


async def test_a_revoked_token_stops_the_stream(quick_server: Server) -> None:
    b, _, order = await factories.confirmed_order()
    task = asyncio.create_task(
        _collect(quick_server, b.token, SUBSCRIBE_ORDER, {"id": gid("Order", order.id)}, 2)
    )
    await _subscribed(quick_server, task)
    await _note(order.id, "before")
    await asyncio.sleep(0.5)
    await accounts.logout(b.principal)
    await _note(order.id, "after")
    with pytest.raises(TransportQueryError) as e:
        await task
    assert e.value.errors and e.value.errors[0]["extensions"]["code"] == "TOKEN_REVOKED"


@postgres_only
async def test_events_from_mutations_on_one_process_reach_subscribers_on_another(
    quick_server: Server,
) -> None:
    other = start_server()
    try:
        assert wait_ready(other), other.stop()
        b, s, order = await factories.confirmed_order()
        task = asyncio.create_task(
            _collect(quick_server, b.token, SUBSCRIBE_ORDER, {"id": gid("Order", order.id)}, 2)
        )
        await _subscribed(quick_server, task)

        async with httpx.AsyncClient(base_url=other.base) as client:
            for reason in ("first", "second"):
                resp = await client.post("/graphql", json={
                    "query": """mutation($id: ID!, $r: String!) {
                      proposeOrderModification(input: {orderId: $id, reason: $r,
                        contract: {currency: "USD", lines: [{productName: "x", quantity: 1,
                        unitPrice: "10.00"}], incoterm: FOB, shippingMethod: SEA,
                        destinationCountry: "US", shippingDeadline: "2030-01-01T00:00:00Z",
                        initialPayment: "0.00"}}) { errors { code message } } }""",
                    "variables": {"id": gid("Order", order.id), "r": reason},
                }, headers={"Authorization": f"Bearer {s.token}"})  # fmt: skip
                assert resp.json()["data"]["proposeOrderModification"]["errors"] == [], resp.text
        got = await task
        assert len(got) == 2
        assert len({g["orderStatusChanged"]["cursor"] for g in got}) == 2
    finally:
        other.stop()


async def _handshake(
    server: Server, token: str, origin: str | None = None
) -> tuple[websockets.ClientConnection, dict[str, Any] | None]:
    """Open a raw graphql-transport-ws connection; its answer to connection_init (None if
    the server closed instead)."""
    conn = await websockets.connect(
        server.ws_url,
        subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
        origin=websockets.Origin(origin) if origin else None,
    )
    try:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await conn.send(json.dumps(init))
        answer: dict[str, Any] = json.loads(await conn.recv())
        return conn, answer
    except websockets.ConnectionClosed:
        return conn, None


@pytest.fixture
def strict_server(database: None) -> Iterator[Server]:
    server = start_server(
        cli_env(
            TA_WS_ALLOWED_ORIGINS="https://app.example.com",
            TA_WS_CONNECTIONS_PER_PRINCIPAL="1",
            TA_WS_SUBSCRIPTIONS_PER_CONNECTION="1",
        )
    )
    try:
        assert wait_ready(server), server.stop()
        yield server
    finally:
        server.stop()


async def test_origins_connections_and_subscriptions_are_capped(strict_server: Server) -> None:
    b, _, order = await factories.confirmed_order()
    other = await factories.buyer()
    # A page from another origin does not get past the handshake.
    with pytest.raises(websockets.InvalidStatus):
        await websockets.connect(
            strict_server.ws_url, origin=websockets.Origin("https://evil.example"),
            subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
        )  # fmt: skip
    first, answer = await _handshake(strict_server, b.token, "https://app.example.com")
    assert answer == {"type": "connection_ack", "payload": {"role": "BUYER"}}
    try:
        # One live connection per account here: the second is refused, another account's not.
        second, answer = await _handshake(strict_server, b.token)
        assert answer is None and second.close_code == 4029  # try again later, not Forbidden
        assert second.close_reason == "TOO_MANY_CONNECTIONS"
        third, answer = await _handshake(strict_server, other.token)
        assert answer is not None and answer["type"] == "connection_ack"
        await third.close()
        # One subscription per connection here.
        variables = {"id": gid("Order", order.id)}
        for n in ("1", "2"):
            await first.send(json.dumps({"id": n, "type": "subscribe",
                                         "payload": {"query": SUBSCRIBE_ORDER,
                                                     "variables": variables}}))  # fmt: skip
        refused = json.loads(await asyncio.wait_for(first.recv(), 10))
        assert refused["id"] == "2" and refused["type"] == "error"
        assert refused["payload"][0]["message"] == "Subscription limit reached"
    finally:
        await first.close()
    # Closed connections give their slot back: once the server's side of the connection
    # has ended, which may be a moment after the client's close handshake finished.
    async with asyncio.timeout(10):
        while True:
            again, answer = await _handshake(strict_server, b.token)
            if answer is not None:
                break
            await asyncio.sleep(0.05)
    assert answer["type"] == "connection_ack"
    await again.close()


async def test_credentials_are_rechecked_in_one_go() -> None:
    ok, revoked, disabled, promoted = [a async for a in _actors(4)]
    _, secret = await accounts.create_api_key(
        company_id=ok.principal.company_id, name="erp", scopes=[Scope.READ]
    )
    partner = await accounts.authenticate(secret)
    await accounts.logout(revoked.principal)
    await UserAccount.update({UserAccount.active: False}).where(
        UserAccount.id == disabled.principal.user_id
    )
    await UserAccount.update({UserAccount.role: Role.MEDIATOR.value}).where(
        UserAccount.id == promoted.principal.user_id
    )
    assert partner.api_key_id is not None
    await accounts.revoke_api_key(ok.principal, partner.api_key_id)
    principals = [a.principal for a in (ok, revoked, disabled, promoted)] + [partner]
    failed = await accounts.recheck(principals)
    assert {p: e.code for p, e in failed.items()} == {
        revoked.principal: "TOKEN_REVOKED",
        disabled.principal: "ACCOUNT_DISABLED",
        promoted.principal: "ROLE_CHANGED",
        partner: "API_KEY_REVOKED",
    }


async def _actors(n: int) -> AsyncIterator[factories.Actor]:
    for _ in range(n):
        yield await factories.buyer()


async def test_the_hub_ends_the_stream_of_a_revoked_subscriber() -> None:
    b, _, order = await factories.confirmed_order()
    async with running_hub() as hub:
        subscriber, _ = hub.subscribe(b.principal, order.id)
        await _note(order.id, "before")
        assert await _drain(subscriber, 1) == ["before"]
        await accounts.logout(b.principal)
        await _note(order.id, "after")
        async with asyncio.timeout(10):
            item = await subscriber.queue.get()
        assert isinstance(item, accounts.AuthError) and item.code == "TOKEN_REVOKED"
        assert not hub.subscribed(subscriber)


async def test_a_stream_from_a_cursor_reads_what_it_missed_then_goes_on_live() -> None:
    """Hub.stream, without GraphQL: the events after the cursor come from the table, those
    after joining live, each once and in order; a revoked credential ends it."""
    b, _, order = await factories.confirmed_order()
    await _note(order.id, "seen")
    cursor = await feed.head()
    for n in range(3):
        await _note(order.id, f"missed {n}")
    async with running_hub() as hub:
        stream = hub.stream(b.principal, order.id, cursor)
        got = [(await anext(stream)).event.reason for _ in range(3)]
        assert hub.subscriber_count == 1
        await _note(order.id, "live")
        async with asyncio.timeout(30):
            got.append((await anext(stream)).event.reason)
        assert got == ["missed 0", "missed 1", "missed 2", "live"]
        await accounts.logout(b.principal)
        await _note(order.id, "after the logout")
        with pytest.raises(accounts.AuthError, match="revoked"):
            async with asyncio.timeout(30):
                await anext(stream)
        assert hub.subscriber_count == 0


async def test_a_stream_that_falls_behind_is_cut_off() -> None:
    b, _, order = await factories.confirmed_order()
    async with running_hub(queue_size=2) as hub:
        cut: list[bool] = []
        stream = hub.stream(b.principal, order.id, None, on_overflow=lambda: cut.append(True))
        first = asyncio.ensure_future(anext(stream))
        await subscribed(hub, 1)
        async with asyncio.timeout(30):
            for n in range(4):  # at most one taken by `first`, two queued: one too many
                await _note(order.id, str(n))
            while not cut:  # noqa: ASYNC110 - the hub's delivery
                await asyncio.sleep(0.01)
            with pytest.raises(live.TooFarBehind):
                await first  # "0" if it was taken before the overflow, else the error
                await anext(stream)
        assert hub.subscriber_count == 0
