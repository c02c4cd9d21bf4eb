"""`fanout`: live order events from one gateway process to many WebSocket subscribers.

Per engine: a fresh database, `trade-assurance migrate`, a mediator, then one
`trade-assurance serve` process, the one measured (its WebSocket cap per account raised
for the bench); a buyer and a supplier with Trade Assurance register through the API and
the buyer creates orders. Order events are `proposeOrderModification` mutations sent
through the API, by default to that same process on SQLite (embedded: one process) and
to a second gateway process on PostgreSQL (deployed: the event reaches the measured
process by LISTEN/NOTIFY); `--writer same|separate` chooses. A load generator in its own
process opens real WebSocket connections (graphql-transport-ws, the token in
connection_init, `--connect-batch` handshakes at a time), one subscription each:

* one event to many: `--subscribers` (10,000), all but `--mediator-share` (5 %) of them
  `orderStatusChanged` on one order (half with the buyer's token, half with the
  supplier's), the rest mediators on `orderEvents`. Once all have subscribed, the
  gateway's resident memory against before -> KiB per idle subscriber. Then warm-up
  events until every subscriber has had one (so each is known to be subscribed), quiet,
  and one measured event: per subscriber, receipt time minus the event's `at`, the time
  its transaction wrote it just before committing (an upper bound of commit-to-receipt,
  by the commit itself). Also printed: receipt minus the instant the mutation's HTTP
  response came back (a lower bound). Both processes read the same clock.
* sustained: `--sustained-subscribers` (1,000) over `--sustained-orders` (100) orders,
  each order watched by its buyer and its supplier, `--sustained-mediators` (5) of them
  on `orderEvents`; the generator sends `--rate` (100) events a second, open loop,
  round-robin over the orders, for `--duration` (60) s. Every subscriber must get every
  event it may see exactly once, with rising cursors: losses (a subscriber cut off for
  falling `TA_SUBSCRIBER_QUEUE` behind loses the rest), duplicates and disorder are
  counted, and the lag (receipt minus `at`).

RSS is VmRSS of /proc/<pid>/status. The load average is printed at the start and end:
on a busy machine the figures are indicative only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import itertools
import json
import multiprocessing
import os
import resource
import tempfile
import time
import traceback
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from bench import gateway, progress, setup
from bench.load import percentile
from bench.setup import ERRORS, Actors
from models.feed import Position

DEFAULT_PG_URL = "postgres://postgres@127.0.0.1:5432/ta_bench_fanout"
TAG = "fanout"
P99_TARGET_S = 2.0
KIB_PER_SUBSCRIBER_TARGET = 50.0
SUBPROTOCOL = Subprotocol("graphql-transport-ws")

CREATE_ORDER = f"""mutation CreateOrder($input: CreateOrderInput!) {{
  createOrder(input: $input) {{ order {{ id }} {ERRORS} }}
}}"""
PROPOSE = f"""mutation Propose($input: ProposeOrderModificationInput!) {{
  proposeOrderModification(input: $input) {{ modificationId {ERRORS} }}
}}"""
# What a client showing live order status asks for: the event, and the order as it is now.
EVENT_FIELDS = "cursor event { kind reason newStatus at } order { id status }"
EVENT_FIELDS_WITHOUT_ORDER = "cursor event { kind reason newStatus at }"
SUBSCRIBE_ORDER = "subscription($id: ID!) { orderStatusChanged(orderId: $id) { %s } }"
SUBSCRIBE_ALL = "subscription { orderEvents { %s } }"


def _contract() -> dict[str, Any]:
    deadline = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=30)
    return {
        "currency": "USD",
        "lines": [{"productName": "LED panel light 600x600", "specification": "40 W, 4000 K",
                   "quantity": 100, "unitPrice": "12.50"}],
        "incoterm": "FOB", "shippingMethod": "SEA", "destinationCountry": "US",
        "shippingDeadline": deadline.isoformat(), "initialPayment": "1250.00",
    }  # fmt: skip


# --- command line ------------------------------------------------------------------


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "fanout",
        help="live order events to 10,000 WebSocket subscribers of one gateway process",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--engine",
        choices=["sqlite", "postgres", "both"],
        default=None,
        help="default: postgres if --database-url is given, else sqlite",
    )
    p.add_argument("--database-url", default=None, help=f"scratch db (e.g. {DEFAULT_PG_URL})")
    p.add_argument("--phase", choices=["fanout", "sustained", "both"], default="both")
    p.add_argument("--subscribers", type=_positive, default=10_000, help="one event to these")
    p.add_argument(
        "--mediator-share", type=float, default=0.05, help="of them on orderEvents (mediators)"
    )
    p.add_argument("--sustained-subscribers", type=_positive, default=1_000)
    p.add_argument(
        "--sustained-mediators",
        type=int,
        default=5,
        help="of them on orderEvents: each gets every event (--rate a second)",
    )
    p.add_argument("--sustained-orders", type=_positive, default=100, help="events spread over")
    p.add_argument("--rate", type=_positive, default=100, help="order events per second")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of sustained events")
    p.add_argument(
        "--writer",
        choices=["same", "separate"],
        default=None,
        help="gateway process the events' mutations go to; default: the same one on SQLite "
        "(embedded, one process), another one on PostgreSQL (deployed: several processes, "
        "events reach the measured one by LISTEN/NOTIFY)",
    )
    p.add_argument("--connect-batch", type=_positive, default=200, help="handshakes in flight")
    p.add_argument(
        "--compression",
        action="store_true",
        help="offer permessage-deflate as browsers do (the gateway declines it by default)",
    )
    p.add_argument(
        "--without-order", action="store_true", help="subscribe to the event only, not `order`"
    )
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for receipts")
    p.set_defaults(run=run)


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def raise_fd_limit() -> int:
    """Every socket is a file descriptor: lift the soft limit to the hard one (inherited by
    the gateway and the generator, which call this too)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def run(args: argparse.Namespace) -> int:
    engine = args.engine or ("postgres" if args.database_url else "sqlite")
    engines = ["sqlite", "postgres"] if engine == "both" else [engine]
    fds = raise_fd_limit()
    needed = max(args.subscribers, args.sustained_subscribers) + 100
    if fds < needed:
        print(f"file descriptor limit {fds} < {needed} needed per process; raise `ulimit -Hn`")
        return 2
    load1, _, _ = os.getloadavg()
    print(f"host: {os.cpu_count()} CPUs, load average {load1:.2f} at start", flush=True)
    failed = False
    for name in engines:
        try:
            failed |= not _run_engine(name, args)
        except Exception:
            traceback.print_exc()
            print(f"\n{name}: benchmark did not complete\n", flush=True)
            failed = True
    load1, _, _ = os.getloadavg()
    print(f"\nload average {load1:.2f} at the end", flush=True)
    return 1 if failed else 0


# --- one engine --------------------------------------------------------------------


def _run_engine(engine: str, args: argparse.Namespace) -> bool:
    print(f"\n== fanout on {engine} ==", flush=True)
    with tempfile.TemporaryDirectory(prefix=f"ta-bench-fanout-{engine}-") as tmp:
        work = Path(tmp)
        limits = {
            # One principal holds thousands of connections here; the default caps are per
            # real user and would refuse them.
            "TA_WS_CONNECTIONS_PER_PRINCIPAL": "1000000",
            "TA_SCHEDULER_INTERVAL_SECONDS": "0",
        }
        if engine == "sqlite":
            env = gateway.gateway_env(TA_DATA_DIR=str(work), **limits)
        else:
            url = args.database_url or DEFAULT_PG_URL
            asyncio.run(gateway.recreate_postgres_database(url))
            env = gateway.gateway_env(DATABASE_URL=url, **limits)
        gateway.migrate(env)
        setup.create_mediator(env, TAG)
        ok = True
        writer = args.writer or ("same" if engine == "sqlite" else "separate")
        with contextlib.ExitStack() as running:
            base = running.enter_context(gateway.serve(env, work / "gateway.log"))
            url = f"{base}/graphql"
            pid = gateway.gateway_pid(urlparse(base).port or 0)
            if pid is None:
                raise RuntimeError("gateway process not found in /proc")
            writer_url = url
            if writer == "separate":
                writer_base = running.enter_context(gateway.serve(env, work / "writer.log"))
                writer_url = f"{writer_base}/graphql"
            print(f"events written through {'the same' if writer == 'same' else 'another'} "
                  "gateway process", flush=True)  # fmt: skip
            actors = setup.setup_actors(url, TAG)
            orders = _create_orders(url, actors, max(1, args.sustained_orders))
            fields = EVENT_FIELDS_WITHOUT_ORDER if args.without_order else EVENT_FIELDS
            print(f"subscription selects: {fields}", flush=True)
            plan = Plan(url, writer_url, actors, fields, args.connect_batch, args.compression,
                        args.timeout)  # fmt: skip
            if args.phase in ("fanout", "both"):
                ok &= _fanout(plan, pid, orders[0], args)
            if args.phase in ("sustained", "both"):
                ok &= _sustained(plan, pid, orders, args)
        if not ok:
            print(f"gateway log (tail):\n{gateway.tail(work / 'gateway.log')}", flush=True)
    return ok


def _create_orders(url: str, actors: Actors, count: int) -> list[str]:
    with httpx.Client(timeout=30.0) as client:
        variables = {"input": {"supplierId": actors.supplier_id, "contract": _contract()}}
        created = [
            setup.gql(client, url, CREATE_ORDER, variables, actors.buyer_token)
            for _ in range(count)
        ]
        return [str(c["order"]["id"]) for c in created]


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of the process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclasses.dataclass(frozen=True)
class Plan:
    """What the generator needs besides its phase (picklable: it goes to a new process)."""

    url: str
    writer_url: str  # mutations (events) go here: this gateway or another one
    actors: Actors
    fields: str
    connect_batch: int
    compression: bool
    timeout: float


@dataclasses.dataclass(frozen=True)
class Want:
    """One subscription: whose token, and which order (None: orderEvents)."""

    token: str
    order: str | None


def _subscriptions(actors: Actors, orders: Sequence[str], count: int, mediators: int) -> list[Want]:
    wants = [Want(actors.mediator_token, None) for _ in range(mediators)]
    for n in range(count - mediators):
        token = actors.buyer_token if n % 2 == 0 else actors.supplier_token
        wants.append(Want(token, orders[(n // 2) % len(orders)]))
    return wants


def _ms(values: Sequence[float]) -> str:
    if not values:
        return "no samples"
    p = [percentile(values, q) * 1000 for q in (50, 95, 99, 100)]
    return f"p50 {p[0]:.0f} ms, p95 {p[1]:.0f} ms, p99 {p[2]:.0f} ms, max {p[3]:.0f} ms"


def _generator(conn: Connection, plan: Plan, wants: list[Want], phase: dict[str, Any]) -> Any:
    """Runs the load generator in its own process, talking to the parent over `conn`."""
    raise_fd_limit()
    return asyncio.run(_Generator(conn, plan, wants).run(phase))


def _start(plan: Plan, wants: list[Want], phase: dict[str, Any]) -> tuple[Any, Connection]:
    spawn = multiprocessing.get_context("spawn")  # no forked copies of parent state
    parent, child = spawn.Pipe()
    proc = spawn.Process(target=_generator, args=(child, plan, wants, phase), daemon=True)
    proc.start()
    child.close()
    return proc, parent


def _expect(conn: Connection, kind: str, timeout: float) -> Any:
    if not conn.poll(timeout):
        raise RuntimeError(f"load generator: no {kind!r} within {timeout:.0f} s")
    message = conn.recv()
    if message[0] == "failed":
        raise RuntimeError(f"load generator failed:\n{message[1]}")
    if message[0] != kind:
        raise RuntimeError(f"load generator: expected {kind!r}, got {message!r}")
    return message[1]


def _fanout(plan: Plan, pid: int, order: str, args: argparse.Namespace) -> bool:
    mediators = round(args.subscribers * args.mediator_share)
    wants = _subscriptions(plan.actors, [order], args.subscribers, mediators)
    mediators = sum(w.order is None for w in wants)
    print(
        f"\n-- one event to {len(wants)} subscribers: {len(wants) - mediators} on one order "
        f"(orderStatusChanged, buyer and supplier), {mediators} mediators (orderEvents)",
        flush=True,
    )
    before = rss_kib(pid)
    proc, conn = _start(plan, wants, {"kind": "fanout", "order": order})
    try:
        connected = _expect(conn, "connected", 600)
        print(f"connected and subscribed in {connected:.1f} s", flush=True)
        # The last subscribe messages are handled, the server settles.
        time.sleep(min(3.0, 0.5 + len(wants) / 2000))
        idle = rss_kib(pid)
        conn.send("warm up")
        _expect(conn, "warm", plan.timeout)
        warm = rss_kib(pid)
        cpu = [(time.time(), cpu_s(pid))]
        conn.send("fire")
        # The gateway's CPU time, sampled until the receipts are in: its share of the
        # (shared, noisy) CPUs shows apart from the wall-clock latency.
        while not conn.poll(0.05):
            cpu.append((time.time(), cpu_s(pid)))
        r = _expect(conn, "done", plan.timeout + 60)
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.kill()
    after = rss_kib(pid)
    per = (idle - before) / len(wants)
    last = r["last_receipt"]
    fan_cpu = [c for t, c in cpu if t <= last + 0.05][-1] - cpu[0][1] if last else float("nan")
    received = len(r["from_at"])
    print(f"gateway RSS: {before / 1024:.1f} MiB before, {idle / 1024:.1f} MiB with "
          f"{len(wants)} idle subscribers  ->  {per:.1f} KiB per idle subscriber (target <= "
          f"{KIB_PER_SUBSCRIBER_TARGET:.0f}); {warm / 1024:.1f} MiB after the warm-up events, "
          f"{after / 1024:.1f} MiB after the measured one")  # fmt: skip
    print(f"received by {received} of {len(wants)} subscribers; errors: {r['errors'] or 'none'}")
    print(f"commit (event `at`) to receipt:     {_ms(r['from_at'])}")
    print(f"HTTP response to receipt (lower bound): {_ms(r['from_response'])}")
    print(f"mutation took {r['mutation_ms']:.0f} ms; last receipt "
          f"{max(r['from_at'], default=0):.2f} s after the commit; gateway CPU from the "
          f"mutation to the last receipt {fan_cpu:.2f} s")  # fmt: skip
    p99 = percentile(r["from_at"], 99) if r["from_at"] else float("inf")
    ok = received == len(wants) and not r["errors"]
    verdict = "met" if ok and p99 <= P99_TARGET_S and per <= KIB_PER_SUBSCRIBER_TARGET else "MISSED"
    print(f"targets (p99 <= {P99_TARGET_S:.0f} s for all, <= 50 KiB each): {verdict}", flush=True)
    return ok


def _sustained(plan: Plan, pid: int, orders: list[str], args: argparse.Namespace) -> bool:
    wants = _subscriptions(
        plan.actors, orders, args.sustained_subscribers, args.sustained_mediators
    )
    mediators = sum(w.order is None for w in wants)
    print(
        f"\n-- sustained: {args.rate} events/s for {args.duration:.0f} s over {len(orders)} "
        f"orders, {len(wants) - mediators} orderStatusChanged subscribers (buyer and supplier "
        f"of each order) and {mediators} mediators on orderEvents",
        flush=True,
    )
    before = rss_kib(pid)
    phase = {"kind": "sustained", "orders": orders, "rate": args.rate, "duration": args.duration}
    proc, conn = _start(plan, wants, phase)
    try:
        connected = _expect(conn, "connected", 600)
        print(f"connected and subscribed in {connected:.1f} s", flush=True)
        conn.send("warm up")
        _expect(conn, "warm", plan.timeout)
        idle = rss_kib(pid)
        conn.send("fire")
        r = _expect(conn, "done", args.duration + plan.timeout + 60)
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.kill()
    after = rss_kib(pid)
    print(f"writer: {r['sent']} events in {r['send_s']:.1f} s ({r['sent'] / r['send_s']:.1f}/s), "
          f"{r['write_failures']} failed; mutation {_ms(r['mutation_s'])}")  # fmt: skip
    print(f"deliveries: {r['delivered']} expected {r['expected']} "
          f"({r['delivered'] / r['send_s']:.0f}/s)")  # fmt: skip
    if r["write_failures"]:
        print(f"writer failures, e.g.: {r['write_failure_samples']}")
    print(f"lost {r['lost']} {r['lost_by']}, duplicated {r['duplicates']}, "
          f"out of order {r['disorder']}, "
          f"subscribers with errors {len(r['errors'])} {r['errors'][:3]}")  # fmt: skip
    print(f"lag (commit to receipt): {_ms(r['lag'])}")
    print(f"gateway RSS: {before / 1024:.1f} MiB before, {idle / 1024:.1f} MiB subscribed, "
          f"{after / 1024:.1f} MiB after")  # fmt: skip
    ok = not (r["lost"] or r["duplicates"] or r["disorder"] or r["errors"] or r["write_failures"])
    print(f"no loss, no duplicate, in order: {'yes' if ok else 'NO'}", flush=True)
    return ok


# --- the load generator (its own process) ----------------------------------------------


class _Sub:
    """One connection with one subscription, and what it received."""

    __slots__ = ("error", "got", "order", "ws")  # 10,000 of them

    def __init__(self, order: str | None) -> None:
        self.order = order
        self.ws: ClientConnection | None = None
        # (receipt time, cursor, reason, event `at`) per event; parsed later.
        self.got: list[tuple[float, str, str, str]] = []
        self.error: str | None = None


class _Generator:
    # A hand-rolled graphql-transport-ws client on `websockets`: gql's client costs a
    # task group, a transport and a session per connection, too heavy for 10,000 of them
    # in one process; this is connection_init, subscribe and a receive loop.

    def __init__(self, conn: Connection, plan: Plan, wants: list[Want]) -> None:
        self.conn = conn
        self.plan = plan
        self.wants = wants
        self.subs = [_Sub(w.order) for w in wants]
        self.ws_url = plan.url.replace("http://", "ws://", 1)
        self.http: httpx.AsyncClient | None = None
        self.pending = len(wants)  # connections not yet subscribed (or failed)
        self.all_subscribed = asyncio.Event()

    async def run(self, phase: dict[str, Any]) -> None:
        try:
            limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
            async with httpx.AsyncClient(timeout=60.0, limits=limits) as self.http:
                started = time.perf_counter()
                gate = asyncio.Semaphore(self.plan.connect_batch)
                readers = [
                    asyncio.create_task(self._subscribe(s, w, gate))
                    for s, w in zip(self.subs, self.wants, strict=True)
                ]
                if self.subs:
                    subscribed = lambda: len(self.subs) - self.pending  # noqa: E731
                    async with progress.watch(len(self.subs), "subscribing", "conn", subscribed):
                        await self.all_subscribed.wait()
                failed = [s.error for s in self.subs if s.error]
                if failed:
                    raise RuntimeError(f"{len(failed)} connections failed, e.g. {failed[0]}")
                self.conn.send(("connected", time.perf_counter() - started))
                await asyncio.get_running_loop().run_in_executor(None, self.conn.recv)
                await self._warm_up(phase)
                self.conn.send(("warm", None))
                await asyncio.get_running_loop().run_in_executor(None, self.conn.recv)
                if phase["kind"] == "fanout":
                    result = await self._one_event(phase["order"])
                else:
                    result = await self._sustained(phase)
                for task in readers:
                    task.cancel()
                await asyncio.gather(*readers, return_exceptions=True)
                await asyncio.gather(
                    *(s.ws.close() for s in self.subs if s.ws is not None),
                    return_exceptions=True,
                )
                self.conn.send(("done", result))
        except Exception:
            self.conn.send(("failed", traceback.format_exc()))

    async def _subscribe(self, sub: _Sub, want: Want, gate: asyncio.Semaphore) -> None:
        try:
            async with gate:  # a few hundred handshakes at a time: the accept backlog
                ws = await connect(
                    self.ws_url,
                    subprotocols=[SUBPROTOCOL],
                    compression="deflate" if self.plan.compression else None,
                    ping_interval=None,  # the server pings; the client answers by itself
                    open_timeout=120,
                    close_timeout=5,
                )
                sub.ws = ws
                init = {"Authorization": f"Bearer {want.token}"}
                await ws.send(json.dumps({"type": "connection_init", "payload": init}))
                ack = json.loads(await ws.recv())
                if ack.get("type") != "connection_ack":
                    raise RuntimeError(f"no connection_ack: {ack}")
                payload: dict[str, Any] = {"query": SUBSCRIBE_ALL % self.plan.fields}
                if want.order is not None:
                    payload = {"query": SUBSCRIBE_ORDER % self.plan.fields,
                               "variables": {"id": want.order}}  # fmt: skip
                await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        except Exception as e:
            sub.error = f"{type(e).__name__}: {e}"
            return
        finally:
            self.pending -= 1
            if self.pending == 0:
                self.all_subscribed.set()
        await self._receive(sub, ws)

    async def _receive(self, sub: _Sub, ws: ClientConnection) -> None:
        field = "orderEvents" if sub.order is None else "orderStatusChanged"
        try:
            async for raw in ws:
                now = time.time()
                message = json.loads(raw)
                if message.get("type") == "next" and "errors" not in message["payload"]:
                    live = message["payload"]["data"][field]
                    event = live["event"]
                    sub.got.append((now, live["cursor"], event["reason"], event["at"]))
                elif message.get("type") != "ping":
                    sub.error = json.dumps(message)[:300]
                    return
                else:
                    await ws.send('{"type":"pong"}')
        except Exception as e:
            sub.error = f"{type(e).__name__}: {e}"
            return
        sub.error = f"closed: {ws.close_code} {ws.close_reason}"

    async def _propose(self, order: str, reason: str) -> tuple[float, float]:
        """One order event through the API; (seconds it took, wall clock on the response)."""
        assert self.http is not None
        body = {"query": PROPOSE, "variables": {"input": {
            "orderId": order, "contract": _contract(), "reason": reason}}}  # fmt: skip
        headers = {"authorization": f"Bearer {self.plan.actors.buyer_token}"}
        started = time.perf_counter()
        resp = await self.http.post(self.plan.writer_url, json=body, headers=headers)
        returned = time.time()
        took = time.perf_counter() - started
        doc = resp.json()
        payload = (doc.get("data") or {}).get("proposeOrderModification")
        if resp.status_code != 200 or "errors" in doc or not payload or payload["errors"]:
            raise RuntimeError(f"proposeOrderModification: {resp.status_code} {resp.text[:300]}")
        return took, returned

    async def _warm_up(self, phase: dict[str, Any]) -> None:
        """Events until every subscriber has received one: then each is surely subscribed
        (a subscribe message is handled after its connection's ack, in the background).
        Another round only once the previous one has stopped arriving, and then quiet:
        a fan-out still under way would slow the measured one down."""
        orders = [phase["order"]] if phase["kind"] == "fanout" else list(phase["orders"])
        deadline = time.monotonic() + self.plan.timeout
        while time.monotonic() < deadline:
            waiting = {s.order for s in self.subs if not s.got and not s.error}
            if not waiting:
                break
            targets = orders if None in waiting else [o for o in orders if o in waiting]
            for order in targets:
                await self._propose(order, "warm-up")
            await self._quiet(deadline)
        await self._quiet(deadline)
        broken = [s.error for s in self.subs if s.error]
        silent = sum(not s.got for s in self.subs)
        if broken or silent:
            raise RuntimeError(f"warm-up: {silent} silent, {len(broken)} broken {broken[:3]}")

    async def _quiet(self, deadline: float, calm: float = 1.0) -> None:
        """Until nothing has arrived for `calm` seconds (or the deadline)."""
        seen, still = -1, time.monotonic()
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            now = sum(len(s.got) for s in self.subs)
            if now != seen:
                seen, still = now, time.monotonic()
            elif time.monotonic() - still >= calm:
                return

    async def _one_event(self, order: str) -> dict[str, Any]:
        reason = "measured"
        took, returned = await self._propose(order, reason)
        deadline = time.monotonic() + self.plan.timeout
        while time.monotonic() < deadline:
            if all(s.error or any(g[2] == reason for g in s.got) for s in self.subs):
                break
            await asyncio.sleep(0.05)
        from_at: list[float] = []
        from_response: list[float] = []
        for s in self.subs:
            for received, _, why, at in s.got:
                if why == reason:
                    from_at.append(received - dt.datetime.fromisoformat(at).timestamp())
                    from_response.append(received - returned)
        errors = [s.error for s in self.subs if s.error]
        last = max((g[0] for s in self.subs for g in s.got if g[2] == reason), default=0.0)
        return {"from_at": from_at, "from_response": from_response, "mutation_ms": took * 1000,
                "errors": errors[:5], "last_receipt": last}  # fmt: skip

    async def _sustained(self, phase: dict[str, Any]) -> dict[str, Any]:
        orders: list[str] = phase["orders"]
        rate, duration = phase["rate"], phase["duration"]
        total = int(rate * duration)
        done: dict[str, set[str]] = {o: set() for o in orders}  # committed reasons per order
        took: list[float] = []
        failures: list[str] = []

        async def one(n: int) -> None:
            order, reason = orders[n % len(orders)], f"s{n}"
            try:
                took.append((await self._propose(order, reason))[0])
                done[order].add(reason)
            except Exception as e:
                failures.append(f"{type(e).__name__}: {e}")

        # Open loop: the n-th event leaves at start + n / rate whether or not earlier ones
        # have come back, so a slow gateway shows as lag, not as a lower rate.
        started = time.perf_counter()
        writers: list[asyncio.Task[None]] = []
        for n in range(total):
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            writers.append(asyncio.create_task(one(n)))
        await asyncio.gather(*writers)
        send_s = time.perf_counter() - started
        every = set().union(*done.values())

        def expected(s: _Sub) -> set[str]:
            return every if s.order is None else done[s.order]

        def measured(s: _Sub) -> list[tuple[float, str, str, str]]:
            return [g for g in s.got if g[2] != "warm-up"]

        deadline = time.monotonic() + self.plan.timeout
        while time.monotonic() < deadline:
            if all(s.error or len(measured(s)) >= len(expected(s)) for s in self.subs):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # anything extra (a duplicate) arrives too
        lost = duplicates = disorder = delivered = 0
        lost_by: dict[str, int] = {"orderStatusChanged": 0, "orderEvents": 0}
        lag: list[float] = []
        for s in self.subs:
            got = measured(s)
            reasons = [g[2] for g in got]
            delivered += len(got)
            missing = len(expected(s) - set(reasons))
            lost += missing
            lost_by["orderEvents" if s.order is None else "orderStatusChanged"] += missing
            duplicates += len(reasons) - len(set(reasons))
            # Opaque to clients, but the bench knows what a cursor holds: they must rise.
            cursors = [Position.parse(g[1]) for g in got]
            disorder += sum(a >= b for a, b in itertools.pairwise(cursors))
            lag += [g[0] - dt.datetime.fromisoformat(g[3]).timestamp() for g in got]
        return {
            "sent": total, "send_s": send_s, "write_failures": len(failures),
            "mutation_s": took, "expected": sum(len(expected(s)) for s in self.subs),
            "delivered": delivered, "lost": lost, "duplicates": duplicates,
            "disorder": disorder, "lag": lag, "lost_by": lost_by,
            "write_failure_samples": failures[:3],
            "errors": [s.error for s in self.subs if s.error][:5],
        }  # fmt: skip
