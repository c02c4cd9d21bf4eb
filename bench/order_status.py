"""`order-status`: the gateway's two everyday reads against a ceiling and a peer.

Per engine: a fresh database, `trade-assurance migrate`, the gateway; a buyer, a Trade
Assurance supplier and `--orders` paid orders made through the API (bench/order_fixture).
Then, side by side in the same run, over real HTTP from a separate load process
(bench/httpload), as the buyer with a bearer token:

  order status  one order by id: supplier, money (paid/held/released/refunded), events
  order list    the buyer's newest `--list-size` orders: buyer, supplier, payments

each against the gateway; the *ceiling*, a bare Starlette endpoint doing the same token
check and the same reads and answering the same JSON (bench/ceiling_app); and the *peer*,
a minimal schema-first graphql-core server over the same reads (bench/peer_app). All
three must answer each query with the same `data` before anything is timed.

Requests/s come from a closed loop at `--concurrency`; p50 and p99 from one connection
(a saturated loop measures the client's scheduling, not the server). Also: the gateway's
SQL statements per request (counted in-process, database drivers wrapped), resident
memory of each server idle and after each load, and on PostgreSQL the order-status
requests/s with one and with two gateway processes (`--workers`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import datetime as dt
import importlib
import json
import multiprocessing
import os
import pstats
import statistics
import tempfile
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from bench import gateway, httpload, load, order_fixture, order_reads, order_servers

DEFAULT_PG_URL = "postgres://postgres@127.0.0.1:5432/ta_bench_orders"
SERVERS = ("gateway", "ceiling", "peer")
BENCHES = ("order-status", "order-list")
# Issue 7's targets.
CEILING_SHARE = 0.5  # order status: the gateway at >= 50 % of the ceiling's requests/s
PEER_SHARE = 1.0  # both: at least the peer's
MAX_STATEMENTS = 5  # order list: at most this many statements, whatever the page size
SCALE_OUT = 1.6  # two processes on PostgreSQL: >= 1.6x one
IDLE_RSS_MB = 150.0
# Repeated runs "do not grow" when the last is within this of the first (allocator noise:
# arenas and free lists settle over a run or two).
GROWTH_MB = 3.0
STATUS_ORDERS = 10  # order-status requests rotate over this many orders


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "order-status",
        help="order status and order list: gateway vs. a bare Starlette ceiling and a "
        "graphql-core peer",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_arguments(p)
    p.add_argument("--json", type=Path, help="also write the results here")
    p.set_defaults(run=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--database-url", default=DEFAULT_PG_URL, help="scratch PostgreSQL db")
    p.add_argument("--orders", type=_positive, default=100, help="orders to make (API)")
    p.add_argument("--list-size", type=_positive, default=100, help="orders per list page")
    p.add_argument("--requests", type=_positive, default=2000, help="order status, per server")
    p.add_argument("--list-requests", type=_positive, default=200, help="order list, per server")
    p.add_argument("--concurrency", type=_positive, default=8, help="for requests/s")
    p.add_argument(
        "--latency-requests",
        type=_positive,
        default=500,
        help="one connection, for p50/p99 (order list: a fifth as many)",
    )
    p.add_argument("--warmup", type=int, default=100, help="unmeasured requests first")
    p.add_argument(
        "--rounds",
        type=_positive,
        default=3,
        help="the requests split into rounds, servers taking turns; req/s is the median",
    )
    p.add_argument(
        "--workers",
        type=_levels,
        default="1,2",
        help="PostgreSQL scale-out: gateway processes, levels measured one after the other "
        "(an empty string skips it)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="then the gateway's two loads this many times more against the same process, "
        "its resident size after each (does it grow across runs?)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="also cProfile order-status requests in-process (where the time goes)",
    )
    p.add_argument("--profile-requests", type=_positive, default=500)


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _levels(raw: str) -> list[int]:
    return [_positive(part) for part in raw.split(",") if part.strip()]


# --- results -----------------------------------------------------------------------


@dataclasses.dataclass
class Figure:
    rps: float  # closed loop at `concurrency`, the median of the rounds
    concurrency: int
    p50_ms: float  # one connection
    p99_ms: float
    failures: int
    rss_mb: float | None  # the server's, after its loads
    samples: list[str] = dataclasses.field(default_factory=list)
    rounds: list[float] = dataclasses.field(default_factory=list)  # req/s of each round


@dataclasses.dataclass
class EngineResult:
    engine: str
    figures: dict[str, dict[str, Figure]]  # bench -> server -> figure
    rss_idle_mb: dict[str, float | None]  # server -> resident size before any query
    rss_gateway_mb: list[tuple[str, float | None]]  # the gateway after each step
    rss_repeats_mb: list[float | None]  # the gateway after each repeated pass of both loads
    same_data: bool
    byte_identical: dict[str, bool]  # "<bench> <server>" -> answer bytes == gateway's
    statements: dict[str, Any]  # in-process counts
    scale_out: dict[int, float]  # gateway processes -> order-status requests/s
    profile: list[str]
    load_avg: tuple[float, float, float]


def measure(args: argparse.Namespace) -> list[EngineResult]:
    engines = ["sqlite", "postgres"] if args.engine == "both" else [args.engine]
    results = []
    for engine in engines:
        print(f"\n== order-status on {engine} ==", flush=True)
        results.append(_run_engine(engine, args))
    return results


def run(args: argparse.Namespace) -> int:
    print(f"host: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    failed = False
    results: list[EngineResult] = []
    for engine in ["sqlite", "postgres"] if args.engine == "both" else [args.engine]:
        try:
            results += measure(argparse.Namespace(**{**vars(args), "engine": engine}))
        except Exception:
            traceback.print_exc()
            print(f"{engine}: order-status did not complete", flush=True)
            failed = True
    print_report(results)
    if args.json:
        write_json(args.json, {"order-status": to_json(results)})
    return 1 if failed or any(not ok(r) for r in results) else 0


def ok(r: EngineResult) -> bool:
    """Ran correctly (targets are reported, not enforced)."""
    return r.same_data and not any(
        f.failures for by_server in r.figures.values() for f in by_server.values()
    )


# --- one engine --------------------------------------------------------------------


def _payloads(fx: order_fixture.Fixture, list_size: int) -> dict[str, list[bytes]]:
    status = [
        json.dumps({"query": order_reads.ORDER_STATUS, "variables": {"id": i}}).encode()
        for i in fx.order_ids[-STATUS_ORDERS:]
    ]
    listing = json.dumps(
        {"query": order_reads.ORDER_LIST, "variables": {"first": list_size}}
    ).encode()
    return {"order-status": status, "order-list": [listing]}


def _run_engine(engine: str, args: argparse.Namespace) -> EngineResult:
    load_avg = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix=f"ta-bench-orders-{engine}-") as tmp:
        work = Path(tmp)
        if engine == "sqlite":
            env = gateway.gateway_env(TA_DATA_DIR=str(work))
            location = str(work / "trade_assurance.sqlite3")
        else:
            asyncio.run(gateway.recreate_postgres_database(args.database_url))
            env = gateway.gateway_env(DATABASE_URL=args.database_url)
            location = args.database_url
        gateway.migrate(env)
        rss_gateway: list[tuple[str, float | None]] = []
        rss_idle: dict[str, float | None] = {}
        figures: dict[str, dict[str, Figure]] = {b: {} for b in BENCHES}
        with contextlib.ExitStack() as stack:
            gw = stack.enter_context(gateway.serve(env, work / "gateway.log"))
            gw_pid = gateway.gateway_pid(urlparse(gw).port or 0)
            rss_idle["gateway"] = order_servers.rss_mb(gw_pid)
            rss_gateway.append(("idle", rss_idle["gateway"]))
            started = time.perf_counter()
            fx = order_fixture.make(f"{gw}/graphql", env, max(args.orders, STATUS_ORDERS))
            print(
                f"fixture: {len(fx.order_ids)} orders through the API in "
                f"{time.perf_counter() - started:.1f} s",
                flush=True,
            )
            rss_gateway.append(("after making the orders", order_servers.rss_mb(gw_pid)))
            urls: dict[str, dict[str, str]] = {b: {"gateway": f"{gw}/graphql"} for b in BENCHES}
            pids: dict[str, int | None] = {"gateway": gw_pid}
            for name, app in [("ceiling", "bench.ceiling_app"), ("peer", "bench.peer_app")]:
                base, pid = stack.enter_context(
                    order_servers.serve(app, engine, location, work / f"{name}.log")
                )
                pids[name] = pid
                rss_idle[name] = order_servers.rss_mb(pid)
                urls["order-status"][name] = (
                    f"{base}/order-status" if name == "ceiling" else f"{base}/graphql"
                )
                urls["order-list"][name] = (
                    f"{base}/order-list" if name == "ceiling" else f"{base}/graphql"
                )
            payloads = _payloads(fx, args.list_size)
            headers = {"authorization": f"Bearer {fx.buyer_token}"}
            same, identical = _compare(urls, payloads, headers)
            print(
                f"same data from gateway, ceiling and peer: {'yes' if same else 'NO'}", flush=True
            )
            if not same:
                raise RuntimeError("the servers disagree; nothing timed (see above)")
            for bench in BENCHES:
                requests = args.requests if bench == "order-status" else args.list_requests
                latency = (
                    args.latency_requests
                    if bench == "order-status"
                    else max(20, args.latency_requests // 5)
                )
                runs: dict[str, list[tuple[httpload.Result, httpload.Result]]] = {
                    server: [] for server in SERVERS
                }
                # Rounds, each server in turn (a different one first each round): load
                # from other work on the machine comes and goes, and should hit all three.
                for n in range(args.rounds):
                    for server in SERVERS[n % 3 :] + SERVERS[: n % 3]:
                        runs[server].append(
                            _measure(
                                urls[bench][server],
                                payloads[bench],
                                headers,
                                max(1, requests // args.rounds),
                                max(1, latency // args.rounds),
                                args.concurrency,
                                args.warmup,
                            )
                        )
                for server in SERVERS:
                    f = figures[bench][server] = _figure(
                        runs[server], args.concurrency, pids[server]
                    )
                    print(
                        f"{bench:<13} {server:<8} {f.rps:8.1f} req/s at {f.concurrency} "
                        f"(rounds: {', '.join(f'{x:.0f}' for x in f.rounds)}); "
                        f"p50 {f.p50_ms:6.2f} ms, p99 {f.p99_ms:6.2f} ms at 1; "
                        f"{f.failures} failed",
                        flush=True,
                    )
                    for sample in f.samples:
                        print(f"  {sample}")
                rss_gateway.append((f"after {bench}", figures[bench]["gateway"].rss_mb))
            repeats = _repeat(urls, payloads, headers, args, gw_pid)
        statements: dict[str, Any] = {}
        profile: list[str] = []
        try:
            statements, profile = run_inprocess(
                env, fx, args.list_size, args.profile, args.profile_requests
            )
        except Exception:
            traceback.print_exc()
            print("in-process statement count did not complete", flush=True)
        scale_out: dict[int, float] = {}
        if engine == "postgres" and args.workers:
            scale_out = _scale_out(env, work, payloads["order-status"], headers, args)
    return EngineResult(
        engine,
        figures,
        rss_idle,
        rss_gateway,
        repeats,
        same,
        identical,
        statements,
        scale_out,
        profile,
        load_avg,
    )


def _repeat(
    urls: dict[str, dict[str, str]],
    payloads: dict[str, list[bytes]],
    headers: dict[str, str],
    args: argparse.Namespace,
    pid: int | None,
) -> list[float | None]:
    """Both loads again, `--repeat` times, on the same gateway process: its resident size
    after each pass (issue 7: no growth across repeated runs)."""
    sizes: list[float | None] = []
    for n in range(args.repeat):
        for bench in BENCHES:
            requests = args.requests if bench == "order-status" else args.list_requests
            httpload.run(
                urls[bench]["gateway"],
                payloads[bench],
                headers,
                requests=requests,
                concurrency=args.concurrency,
                warmup=0,
            )
        size = order_servers.rss_mb(pid)
        sizes.append(size)
        print(f"repeat {n + 1}: gateway resident {size or 0:.1f} MB", flush=True)
    return sizes


def _compare(
    urls: dict[str, dict[str, str]], payloads: dict[str, list[bytes]], headers: dict[str, str]
) -> tuple[bool, dict[str, bool]]:
    """Every payload once to every server: the same `data`? (and the same bytes?)"""
    same, identical = True, dict[str, bool]()
    with httpx.Client(timeout=30.0, headers={**headers, "content-type": "application/json"}) as c:
        for bench, bodies in payloads.items():
            for body in bodies:
                answers = {s: c.post(urls[bench][s], content=body) for s in SERVERS}
                want = answers["gateway"]
                doc = want.json()
                if want.status_code != 200 or "errors" in doc or not doc.get("data"):
                    print(f"{bench}: the gateway answered {want.status_code} {want.text[:500]}")
                    same = False
                    continue
                for server in ("ceiling", "peer"):
                    got = answers[server]
                    key = f"{bench} {server}"
                    identical[key] = identical.get(key, True) and got.content == want.content
                    if got.status_code != 200 or got.json() != doc:
                        same = False
                        print(
                            f"{bench}: {server} differs from the gateway:\n"
                            f"  gateway: {want.text[:800]}\n  {server}: {got.text[:800]}"
                        )
    return same, identical


def _measure(
    url: str,
    bodies: list[bytes],
    headers: dict[str, str],
    requests: int,
    latency_requests: int,
    concurrency: int,
    warmup: int,
) -> tuple[httpload.Result, httpload.Result]:
    """(closed loop at `concurrency`, one connection)."""
    loaded = httpload.run(
        url, bodies, headers, requests=requests, concurrency=concurrency, warmup=warmup
    )
    single = httpload.run(
        url, bodies, headers, requests=latency_requests, concurrency=1, warmup=min(warmup, 20)
    )
    return loaded, single


def _figure(
    runs: list[tuple[httpload.Result, httpload.Result]], concurrency: int, pid: int | None
) -> Figure:
    rounds = [loaded.throughput for loaded, _ in runs]
    latencies = [ms for _, single in runs for ms in single.latencies_ms]
    return Figure(
        rps=statistics.median(rounds),
        concurrency=concurrency,
        p50_ms=load.percentile(latencies, 50),
        p99_ms=load.percentile(latencies, 99),
        failures=sum(a.failures + b.failures for a, b in runs),
        rss_mb=order_servers.rss_mb(pid),
        samples=[x for a, b in runs for x in a.failure_samples + b.failure_samples],
        rounds=rounds,
    )


def _scale_out(
    env: dict[str, str],
    work: Path,
    bodies: list[bytes],
    headers: dict[str, str],
    args: argparse.Namespace,
) -> dict[int, float]:
    """Order-status requests/s with 1, 2, … gateway processes sharing the database, and
    where the machine's CPU went meanwhile: on a machine where the gateways, PostgreSQL
    and the load generator share few cores, the cores run out before the processes do."""
    out: dict[int, float] = {}
    cores = os.cpu_count() or 1
    # The same connections at every level, enough for each process to get several: the
    # processes share one listening socket, and 8 keep-alive connections were seen to
    # land mostly on one of two.
    concurrency = max(args.concurrency, 8 * max(args.workers))
    for workers in args.workers:
        with gateway.serve(env, work / f"gateway-{workers}.log", workers=workers) as base:
            pid = gateway.gateway_pid(urlparse(base).port or 0)
            busy0, all0 = gateway.machine_busy()
            own0 = gateway.cpu_seconds(pid)
            result = httpload.run(
                f"{base}/graphql",
                bodies,
                headers,
                requests=args.requests,
                concurrency=concurrency,
                warmup=args.warmup * workers,
            )
            busy1, all1 = gateway.machine_busy()
            own1 = gateway.cpu_seconds(pid)
        out[workers] = result.throughput
        wall = (all1 - all0) / cores  # seconds that passed
        used = ""
        if wall > 0 and own0 is not None and own1 is not None:
            used = (
                f"; CPU in use {100 * (busy1 - busy0) / wall:.0f} % of {100 * cores} %: "
                f"gateway {100 * (own1 - own0) / wall:.0f} %, the rest (PostgreSQL, the "
                f"load generator) {100 * (busy1 - busy0 - (own1 - own0)) / wall:.0f} %"
            )
        print(
            f"scale-out: {workers} gateway process(es): {result.throughput:.1f} req/s"
            f"{f' ({result.failures} failed)' if result.failures else ''}{used}",
            flush=True,
        )
    return out


# --- in-process: statements per request, and (--profile) where the time goes -------


def run_inprocess(
    env: dict[str, str],
    fx: order_fixture.Fixture,
    list_size: int,
    profile: bool,
    profile_requests: int,
) -> tuple[dict[str, Any], list[str]]:
    """The gateway's ASGI app in a fresh process on the same database, its drivers
    wrapped to count statements; requests one at a time."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        job = pool.submit(_inprocess_worker, env, fx, list_size, profile, profile_requests)
        return job.result()


def _inprocess_worker(
    env: dict[str, str],
    fx: order_fixture.Fixture,
    list_size: int,
    profile: bool,
    profile_requests: int,
) -> tuple[dict[str, Any], list[str]]:
    # No background jobs or live-feed polls in between: only the requests' statements.
    gateway.become(env, **gateway.NO_BACKGROUND_JOBS, TA_LIVE_POLL_SECONDS="3600")
    return asyncio.run(_inprocess(fx, list_size, profile, profile_requests))


class _Counter:
    """Statements sent to the database, by either driver."""

    def __init__(self) -> None:
        self.n = 0
        self.sql: list[str] = []
        self.connects = 0  # SQLite connections opened (each a thread, a file, 3 PRAGMAs)

    def seen(self, sql: str) -> None:
        self.n += 1
        self.sql.append(" ".join(sql.split())[:160])

    def install(self) -> None:
        counter = self
        tuned = importlib.import_module("models.db")._TunedSQLiteConnection
        init = tuned.__init__

        def traced_init(self_: Any, *args: Any, **kwargs: Any) -> None:
            init(self_, *args, **kwargs)  # its own PRAGMAs run before the trace is on
            counter.connects += 1
            self_.set_trace_callback(counter.seen)

        tuned.__init__ = traced_init
        pg = importlib.import_module("asyncpg.connection").Connection
        for name in ("fetch", "fetchrow", "fetchval", "execute", "executemany"):

            def make(original: Callable[..., Any]) -> Callable[..., Any]:
                async def wrapper(self_: Any, query: str, *args: Any, **kwargs: Any) -> Any:
                    counter.seen(query)
                    return await original(self_, query, *args, **kwargs)

                return wrapper

            setattr(pg, name, make(getattr(pg, name)))


async def _inprocess(
    fx: order_fixture.Fixture, list_size: int, profile: bool, profile_requests: int
) -> tuple[dict[str, Any], list[str]]:
    counter = _Counter()
    counter.install()
    app = importlib.import_module("server.app").create_app()
    headers = {"authorization": f"Bearer {fx.buyer_token}"}
    out: dict[str, Any] = {}
    lines: list[str] = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gateway", headers=headers
        ) as client:

            async def ask(query: str, variables: dict[str, Any]) -> int:
                before = counter.n
                resp = await client.post("/graphql", json={"query": query, "variables": variables})
                if resp.status_code != 200 or "errors" in resp.json():
                    raise RuntimeError(f"in-process request failed: {resp.text[:300]}")
                return counter.n - before

            status_ids = fx.order_ids[-STATUS_ORDERS:]
            await ask(order_reads.ORDER_STATUS, {"id": status_ids[0]})  # warm
            # The first with the token look-up (once per token and 2 s), then cached.
            importlib.import_module("models.accounts").forget_sessions()
            counter.sql.clear()
            counts = [await ask(order_reads.ORDER_STATUS, {"id": i}) for i in status_ids]
            out["order-status"] = {
                "cached": min(counts[1:]),
                "uncached": counts[0],
                "sql": counter.sql[: counts[0]],
            }
            lists: dict[int, list[int]] = {}
            for first in sorted({1, 10, list_size}):
                counter.sql.clear()
                lists[first] = [
                    await ask(order_reads.ORDER_LIST, {"first": first}) for _ in range(3)
                ]
            out["order-list"] = {str(k): min(v) for k, v in lists.items()}
            out["order-list sql"] = counter.sql[: lists[max(lists)][0]]
            # Concurrent requests, as under load: does the SQLite pool keep up, or open
            # connections (beyond its idle limit) and close them again?
            connects = counter.connects
            for _ in range(10):
                await asyncio.gather(
                    *(ask(order_reads.ORDER_STATUS, {"id": i}) for i in status_ids[:8])
                )
            out["sqlite connections opened per request at concurrency 8"] = (
                counter.connects - connects
            ) / 80
            if profile:
                lines = await _profile(ask, status_ids, profile_requests)
    return out, lines


async def _profile(
    ask: Callable[[str, dict[str, Any]], Any], ids: Sequence[str], n: int
) -> list[str]:
    for i in range(50):  # warm
        await ask(order_reads.ORDER_STATUS, {"id": ids[i % len(ids)]})
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for i in range(n):
        await ask(order_reads.ORDER_STATUS, {"id": ids[i % len(ids)]})
    profiler.disable()
    elapsed = time.perf_counter() - started
    if os.environ.get("BENCH_PSTATS"):  # scratch: keep the raw profile
        profiler.dump_stats(os.environ["BENCH_PSTATS"])
    return profile_lines(profiler, n, elapsed)


def _bucket(file: str, function: str) -> str:
    """Where a profiled function lives: a library, the project, the stdlib."""
    if file == "~":
        return (
            "waiting (epoll, SQLite threads)"
            if "poll" in function or "select" in function
            else "builtins / C calls"
        )
    parts = Path(file).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].split(".")[0]
    root = gateway.PROJECT_ROOT.parts
    if parts[: len(root)] == root and len(parts) > len(root):
        return f"{parts[len(root)]}/ (project)"
    return "asyncio (stdlib)" if "asyncio" in parts else "other stdlib"


def profile_lines(profiler: cProfile.Profile, n: int, elapsed: float) -> list[str]:
    # pstats: (file, line, name) -> (primitive calls, calls, own s, cumulative s, callers)
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = vars(
        pstats.Stats(profiler)
    )["stats"]
    buckets: defaultdict[str, float] = defaultdict(float)
    for (file, _, name), (_, _, own, _, _) in raw.items():
        buckets[_bucket(file, name)] += own
    total = sum(buckets.values()) or 1.0

    def line(func: tuple[str, int, str], calls: int, seconds: float) -> str:
        file, lineno, name = func
        where = "/".join(Path(file).parts[-2:]) if file != "~" else "~"
        per = f"{seconds * 1e6 / n:8.1f} µs/req {calls / n:7.1f} calls/req"
        return f"  {per}  {name} ({where}:{lineno})"

    out = [
        f"cProfile, {n} order-status requests in-process (ASGI, one at a time): "
        f"{elapsed * 1e3 / n:.2f} ms per request under the profiler; own time by package:"
    ]
    for bucket, s in sorted(buckets.items(), key=lambda kv: kv[1], reverse=True)[:14]:
        out.append(f"  {bucket:<40} {s * 1e6 / n:8.1f} µs/req {s / total:6.1%}")
    out.append("top functions by own time:")
    by_own = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:20]
    out += [line(f, st[1], st[2]) for f, st in by_own]
    out.append("cumulative (coroutines count while running, not while awaiting):")
    wanted = (
        "strawberry/schema/",
        "strawberry/http/",
        "graphql/execution/execute.py",
        "graphql/validation/validate.py",
        "graphql/language/parser.py",
        "starlette/",
        "uvicorn/",
        "/resolvers/",
        "/models/",
        "/server/",
        "piccolo/",
    )
    mine = [(f, st) for f, st in raw.items() if any(w in f[0] for w in wanted)]
    by_cum = sorted(mine, key=lambda kv: kv[1][3], reverse=True)[:30]
    out += [line(f, st[1], st[3]) for f, st in by_cum]
    return out


# --- report ------------------------------------------------------------------------


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def _verdict(value: float, target: float) -> str:
    return "PASS" if value >= target else "FAIL"


def table_rows(r: EngineResult) -> list[tuple[str, ...]]:
    """(engine, figure, gateway, ceiling, peer, ratios, target verdicts) rows."""
    rows: list[tuple[str, ...]] = []
    for bench in BENCHES:
        f = r.figures.get(bench)
        if not f or len(f) < len(SERVERS):
            continue
        g, c, p = f["gateway"], f["ceiling"], f["peer"]
        vs_c, vs_p = _ratio(g.rps, c.rps), _ratio(g.rps, p.rps)
        target = (
            f"{_verdict(vs_c, CEILING_SHARE)} >={CEILING_SHARE:.0%} ceiling, "
            if bench == "order-status"
            else ""
        )
        target += f"{_verdict(vs_p, PEER_SHARE)} >= peer"
        rows.append(
            (
                r.engine,
                f"{bench} req/s (c={g.concurrency})",
                f"{g.rps:.0f}",
                f"{c.rps:.0f}",
                f"{p.rps:.0f}",
                f"{vs_c:.0%}",
                f"{vs_p:.0%}",
                target,
            )
        )
        for label, attr in (("p50 ms (1 conn)", "p50_ms"), ("p99 ms (1 conn)", "p99_ms")):
            gv, cv, pv = (getattr(x, attr) for x in (g, c, p))
            rows.append(
                (
                    r.engine,
                    f"{bench} {label}",
                    f"{gv:.2f}",
                    f"{cv:.2f}",
                    f"{pv:.2f}",
                    f"{_ratio(gv, cv):.1f}x",
                    f"{_ratio(gv, pv):.1f}x",
                    "",
                )
            )
    s = r.statements
    if s:
        status = s["order-status"]
        rows.append(
            (
                r.engine,
                "order-status SQL statements/request",
                f"{status['cached']}",
                "",
                "",
                "",
                "",
                f"({status['uncached']} with the token look-up, once per token per 2 s)",
            )
        )
        lists = s["order-list"]
        counts = ", ".join(f"{v} at {k}" for k, v in lists.items())
        flat = len(set(lists.values())) == 1 and max(lists.values()) <= MAX_STATEMENTS
        rows.append(
            (
                r.engine,
                "order-list SQL statements/request",
                counts,
                "",
                "",
                "",
                "",
                f"{'PASS' if flat else 'FAIL'} constant, <= {MAX_STATEMENTS}",
            )
        )
        opened = s.get("sqlite connections opened per request at concurrency 8")
        if r.engine == "sqlite" and opened is not None:
            rows.append(
                (r.engine, "SQLite connections opened/request (c=8)", f"{opened:.2f}") + ("",) * 5
            )
    idle = r.rss_idle_mb.get("gateway")
    after = " -> ".join(f"{v:.0f}" for _, v in r.rss_gateway_mb if v is not None)
    rows.append(
        (
            r.engine,
            "resident MB: idle -> after each load",
            after,
            f"{r.rss_idle_mb.get('ceiling') or 0:.0f}",
            f"{r.rss_idle_mb.get('peer') or 0:.0f}",
            "",
            "",
            f"{_verdict(-(idle or 1e9), -IDLE_RSS_MB)} idle < {IDLE_RSS_MB:.0f} MB",
        )
    )
    sizes = [v for v in r.rss_repeats_mb if v is not None]
    if len(sizes) > 1:
        growth = sizes[-1] - sizes[0]
        rows.append(
            (
                r.engine,
                f"resident MB over {len(sizes)} repeated runs of both loads",
                " -> ".join(f"{v:.1f}" for v in sizes),
                "",
                "",
                "",
                "",
                f"{_verdict(-growth, -GROWTH_MB)} growth {growth:+.1f} MB (<= {GROWTH_MB:.0f} MB)",
            )
        )
    if len(r.scale_out) > 1:
        one = r.scale_out.get(1, 0.0)
        most = max(r.scale_out)
        gain = _ratio(r.scale_out[most], one)
        rows.append(
            (
                r.engine,
                f"order-status req/s with {', '.join(map(str, r.scale_out))} gateway processes",
                " / ".join(f"{v:.0f}" for v in r.scale_out.values()),
                "",
                "",
                f"{gain:.2f}x",
                "",
                f"{_verdict(gain, SCALE_OUT)} >= {SCALE_OUT}x",
            )
        )
    return rows


TABLE_HEAD = ("engine", "figure", "gateway", "ceiling", "peer", "gw/ceil", "gw/peer", "target")


def print_table(rows: Sequence[tuple[str, ...]], head: tuple[str, ...] = TABLE_HEAD) -> None:
    widths = [
        max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)
    ]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)), flush=True)


def print_report(results: Sequence[EngineResult]) -> None:
    print(
        "\n== order status / order list: gateway vs. ceiling (bare Starlette, same reads) "
        "and peer (graphql-core) =="
    )
    print_table([row for r in results for row in table_rows(r)])
    for r in results:
        differ = [k for k, v in r.byte_identical.items() if not v]
        print(
            f"{r.engine}: answers JSON-equal to the gateway's; byte-identical "
            f"{'except ' + ', '.join(differ) if differ else 'too'}"
        )
        if r.statements:
            print(f"{r.engine}: the gateway's statements for one order status:")
            for sql in r.statements["order-status"]["sql"]:
                print(f"    {sql}")
        for line in r.profile:
            print(line)


def to_json(results: Sequence[EngineResult]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(r) for r in results]


def write_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    full = {"written_at": stamp, "cpus": os.cpu_count(), **doc}
    path.write_text(json.dumps(full, indent=2, default=str) + "\n")
    print(f"results written to {path}", flush=True)
