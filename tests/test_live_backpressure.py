"""A subscriber that stops reading is cut off; the server's memory stays bounded and the
other subscribers of the same order go on, against a real uvicorn process."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import socket
import struct
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from models import db, events
from tests import factories
from tests.api import Server, cli_env, gid, start_server, wait_ready

pytest_plugins = ("tests.api_plugin",)

SUBSCRIBE = """subscription($id: ID!) {
  orderStatusChanged(orderId: $id) { cursor event { reason } } }"""
QUEUE = 50  # TA_SUBSCRIBER_QUEUE: events a subscriber may fall behind
EVENTS = 1000
CHUNK = 10  # events written before waiting for the reading subscriber to have them
# Large events, so that what passes through the server (EVENTS x PAD, 62.5 MiB) is more
# than the memory bound below: had the server kept what the stalled client did not read,
# the bound would not hold.
PAD = 64 * 1024
RSS_GROWTH_BOUND = 50 * 1024 * 1024
# The server shares each event's payload between its subscribers for up to a second
# (resolvers.live.SHARE_ORDER_READ_S), so it holds up to a second's events by design.
# Unpaced, a fast machine wrote 600-850 a second here: 40-57 MB of shared payloads, at
# the bound. At most a chunk per CHUNK_SECONDS (250 events a second) keeps that at 16 MiB.
CHUNK_SECONDS = 0.04
TCP_ESTABLISHED = 1


@pytest.fixture
def server(database: None) -> Iterator[Server]:
    server = start_server(
        cli_env(TA_LIVE_POLL_SECONDS="0.05", TA_SUBSCRIBER_QUEUE=str(QUEUE), TA_LOG_LEVEL="error")
    )
    try:
        assert wait_ready(server), server.stop()
        yield server
    finally:
        server.stop()


async def _event(order_id: int, n: int) -> None:
    async with db.write_transaction():
        await events.record(
            order_id, "NOTE", old_status=None, new_status="PAID", actor=events.SCHEDULER,
            at=dt.datetime.now(dt.UTC), reason=f"{n}:" + "x" * PAD,
        )  # fmt: skip


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class StalledClient:
    """A graphql-transport-ws client on a raw socket (websockets' sans-I/O protocol), so
    that it can stop reading altogether, with a small receive buffer: set before connect,
    it also caps the TCP window it advertises (no autotuning)."""

    def __init__(self, server: Server, token: str, order_gid: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", server.port))
        self.ws = ClientProtocol(
            parse_uri(server.ws_url), subprotocols=[Subprotocol("graphql-transport-ws")]
        )
        self.ws.send_request(self.ws.connect())
        self._flush()
        self.pending: list[Frame] = []
        while not self._upgraded():
            self._receive()
        self._send({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        assert self._next_message()["type"] == "connection_ack"
        payload = {"query": SUBSCRIBE, "variables": {"id": order_gid}}
        self._send({"id": "1", "type": "subscribe", "payload": payload})

    def _flush(self) -> None:
        self.sock.sendall(b"".join(self.ws.data_to_send()))

    def _send(self, message: dict[str, Any]) -> None:
        self.ws.send_text(json.dumps(message).encode())
        self._flush()

    def _receive(self) -> None:
        data = self.sock.recv(65536)
        assert data, "the server closed the connection"
        self.ws.receive_data(data)
        for received in self.ws.events_received():
            if isinstance(received, Response):
                assert received.status_code == 101, received
            elif isinstance(received, Frame) and received.opcode is Opcode.TEXT:
                self.pending.append(received)

    def _upgraded(self) -> bool:
        return self.ws.state is State.OPEN

    def _next_message(self) -> dict[str, Any]:
        while not self.pending:
            self._receive()
        message: dict[str, Any] = json.loads(bytes(self.pending.pop(0).data))
        return message

    def next_reason(self) -> str:
        message = self._next_message()
        assert message["type"] == "next", message
        return str(message["payload"]["data"]["orderStatusChanged"]["event"]["reason"])

    def tcp_state(self) -> int:
        """The kernel's state of this connection (tcp_info.tcpi_state), read without
        reading any data: ESTABLISHED until the server closes or resets it."""
        info = self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
        return int(struct.unpack("B", info[:1])[0])

    def close(self) -> None:
        self.sock.close()


async def test_a_client_that_stops_reading_is_cut_off_and_others_get_every_event(
    server: Server,
) -> None:
    b, _, order = await factories.confirmed_order()
    order_gid = gid("Order", order.id)
    stalled = await asyncio.to_thread(StalledClient, server, b.token, order_gid)
    got: asyncio.Queue[str] = asyncio.Queue()
    transport = WebsocketsTransport(
        url=server.ws_url, init_payload={"Authorization": f"Bearer {b.token}"},
        connect_timeout=10, ack_timeout=10,
    )  # fmt: skip

    async def read() -> None:
        async with Client(transport=transport) as session:
            request = GraphQLRequest(SUBSCRIBE, variable_values={"id": order_gid})
            async for result in session.subscribe(request):
                await got.put(result["orderStatusChanged"]["event"]["reason"].split(":")[0])

    reader = asyncio.create_task(read())
    try:
        # Each is subscribed once it has an event (the first may come too early).
        async def warm_up(has_one: Callable[[], Awaitable[object]]) -> None:
            async with asyncio.timeout(30):
                while True:
                    await _event(order.id, -1)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(1):
                            await has_one()
                        return

        await warm_up(got.get)
        first = asyncio.ensure_future(asyncio.to_thread(stalled.next_reason))
        await warm_up(lambda: asyncio.shield(first))
        while not got.empty():
            got.get_nowait()
        # From here on the stalled client reads nothing.
        before = _rss(server.process.pid)
        received: list[str] = []
        async with asyncio.timeout(120):  # a guard against hanging, not a speed target
            for start in range(0, EVENTS, CHUNK):
                paced = asyncio.create_task(asyncio.sleep(CHUNK_SECONDS))
                for n in range(start, start + CHUNK):
                    await _event(order.id, n)
                while len(received) < start + CHUNK:
                    reason = await got.get()
                    if reason != "-1":  # a late warm-up event
                        received.append(reason)
                await paced
            # Cut off: the server resets the connection (its close frame waits behind
            # the data the client never read), so the socket leaves ESTABLISHED.
            while stalled.tcp_state() == TCP_ESTABLISHED:  # noqa: ASYNC110 - kernel state
                await asyncio.sleep(0.2)
        after = _rss(server.process.pid)
    finally:
        reader.cancel()
        stalled.close()
    assert received == [str(n) for n in range(EVENTS)]  # every one, in order, once
    assert after - before < RSS_GROWTH_BOUND, (before, after)
    assert server.get("/readyz").status_code == 200
