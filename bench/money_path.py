"""`money-path`: the escrow money path end to end, against SQLite and PostgreSQL.

Per engine: fresh database, `trade-assurance migrate`, a mediator (`create-user`), then
`trade-assurance serve`; a buyer and a supplier register through the API, the mediator
makes the supplier Gold and verified and approves its Trade Assurance application. A
separate process then drives N full money paths over HTTP, each four mutations:
createOrder (buyer; one line, the whole total due at once), confirmOrder (supplier),
payOrder (card, the whole total) and releaseFunds (everything held). Afterwards
`trade-assurance ledger-check` and SQL checks that every path left exactly its rows.

The ceiling, on the same database after the gateway run: the row writes of one money
path (recorded by triggers on the gateway's own tables during calibration paths, then
removed) replayed with plain SQL (sqlite3 / asyncpg) in the same transactions, at the
same concurrency. Transactions are told apart by the txid on PostgreSQL; on SQLite, which
has none, the calibration paths run through the gateway's app in a process of our own
that marks each commit. The gateway's paths/s as a share of the ceiling's is the figure to
watch: what the API, the ORM and the domain checks cost on top of the writes.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import datetime as dt
import gc
import importlib
import json
import multiprocessing
import os
import pstats
import re
import sqlite3
import subprocess
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import asyncpg
import httpx
from asyncpg.pool import PoolConnectionProxy

from bench import gateway, httpload, load, setup
from bench.setup import ERRORS, Actors

T = TypeVar("T")

TARGET_RATIO = 0.25
DEFAULT_PG_URL = "postgres://postgres@127.0.0.1:5432/ta_bench_money"
MUTATIONS = ("createOrder", "confirmOrder", "payOrder", "releaseFunds")
# What a money path writes. Setup writes none of these tables, so after the run their
# rows (and, on PostgreSQL, their update counters) are exactly the paths' own.
MONEY_TABLES = ("trade_order", "order_line", "quality_requirement", "order_event", "payment",
                "idempotency_record", "ledger_posting")  # fmt: skip
ORDER_TABLE = "trade_order"
CALIBRATION_PATHS = 2  # sequential, with write-logging triggers; must agree with each other
STATEMENT_COUNT_PATHS = 50  # in-process, after the run: SQL statements per mutation
SQLITE_TIMEOUT_S = 5.0  # as the gateway's busy timeout (TA_SQLITE_BUSY_TIMEOUT_MS)
MAX_FAILURE_SAMPLES = 10

CARD = "4242424242424242"  # the sandbox's test card that succeeds
QUANTITY, UNIT_PRICE, TOTAL = 100, "12.50", "1250.00"  # USD, one line

# The money path: what a client would ask back from each step, no more.
CREATE_ORDER = f"""mutation CreateOrder($input: CreateOrderInput!) {{
  createOrder(input: $input) {{ order {{ id status total {{ amount currency }} }} {ERRORS} }}
}}"""
CONFIRM_ORDER = f"""mutation ConfirmOrder($input: OrderIdInput!) {{
  confirmOrder(input: $input) {{ order {{ id status }} {ERRORS} }}
}}"""
PAY_ORDER = f"""mutation PayOrder($input: PayOrderInput!) {{
  payOrder(input: $input) {{
    payment {{ id status amount {{ amount currency }} fee {{ amount currency }} }}
    order {{ id status }} {ERRORS}
  }}
}}"""
RELEASE_FUNDS = f"""mutation ReleaseFunds($input: ReleaseFundsInput!) {{
  releaseFunds(input: $input) {{ released {{ amount currency }} order {{ id status }} {ERRORS} }}
}}"""
SETUP_TAG = "money-path"  # the accounts' emails: buyer@money-path.bench, ...


# --- results -----------------------------------------------------------------------


@dataclasses.dataclass
class PathsResult:
    """Money paths through the gateway; latencies of measured paths that went through."""

    latencies_ms: dict[str, list[float]]  # per mutation
    elapsed_s: float
    completed: int  # measured paths without a failure
    started: int  # every path begun, warm-up included
    failures: int  # warm-up included
    failure_samples: list[str]

    @property
    def throughput(self) -> float:
        return self.completed / self.elapsed_s if self.elapsed_s else 0.0


@dataclasses.dataclass
class CeilingResult:
    elapsed_s: float
    completed: int
    started: int
    failures: int
    failure_samples: list[str]
    statements_per_path: int
    transactions_per_path: int

    @property
    def throughput(self) -> float:
        return self.completed / self.elapsed_s if self.elapsed_s else 0.0


@dataclasses.dataclass(frozen=True)
class Write:
    """One row written by the gateway: its table, INSERT/UPDATE/DELETE, and its id."""

    table: str
    op: str
    row_id: int


@dataclasses.dataclass(frozen=True)
class Step:
    mutation: str
    transactions: tuple[tuple[Write, ...], ...]


Plan = tuple[Step, ...]


def _shape(plan: Plan) -> tuple[tuple[str, tuple[tuple[tuple[str, str], ...], ...]], ...]:
    """The plan without row ids: what two paths must have in common."""
    return tuple(
        (s.mutation, tuple(tuple((w.table, w.op) for w in t) for t in s.transactions)) for s in plan
    )


@dataclasses.dataclass
class InProcessReport:
    """Sequential money paths through the ASGI app in one process, the driver wrapped."""

    paths: int
    wall_ms: dict[str, float]  # per mutation, mean
    db_ms: dict[str, float]  # of which awaiting the database driver, mean
    gc_ms: dict[str, float]  # of which in Python's cyclic garbage collector, mean
    sql: dict[str, dict[str, float]]  # per mutation: statement kind -> per path
    cpu_ms: float  # process CPU per path (the in-process client's included)
    profile: list[str]  # cProfile breakdown lines (empty unless --profile)


@dataclasses.dataclass
class Level:
    concurrency: int
    gateway: PathsResult
    gateway_cpu_ms: float | None  # the gateway process's CPU time per path (user + system)
    ceiling: CeilingResult | None = None


@dataclasses.dataclass
class EngineRun:
    engine: str
    plan: Plan
    levels: list[Level]
    checks: list[str]  # what was verified, one line each
    problems: list[str]  # verification failures
    ledger_line: str = ""
    inprocess: InProcessReport | None = None


# --- command line ------------------------------------------------------------------


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "money-path",
        help="createOrder -> confirmOrder -> payOrder -> releaseFunds over HTTP vs. plain SQL",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--engine",
        choices=["sqlite", "postgres", "both"],
        default="both",
        help="both: sqlite first",
    )
    p.add_argument("--orders", type=_positive, default=300, help="measured money paths per level")
    p.add_argument(
        "--concurrency",
        type=_levels,
        default="1,4",
        help="money paths in flight, comma-separated levels measured one after the other",
    )
    p.add_argument("--warmup", type=int, default=20, help="unmeasured paths before each level")
    p.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="gateway processes on PostgreSQL (as deployed: several share one database); "
        "SQLite always runs one",
    )
    p.add_argument("--database-url", default=DEFAULT_PG_URL, help="scratch PostgreSQL db")
    p.add_argument(
        "--profile",
        action="store_true",
        help="afterwards, also profile money paths in-process (cProfile) per engine",
    )
    p.add_argument("--profile-paths", type=_positive, default=100, help="paths for --profile")
    p.set_defaults(run=run)


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _levels(raw: str) -> list[int]:
    return [_positive(part) for part in raw.split(",") if part.strip()]


def run(args: argparse.Namespace) -> int:
    engines = ["sqlite", "postgres"] if args.engine == "both" else [args.engine]
    load1, _, _ = os.getloadavg()
    print(f"host: {os.cpu_count()} CPUs, load average {load1:.2f} at start", flush=True)
    failed = False
    runs: list[EngineRun] = []
    for engine in engines:
        try:
            result = _run_engine(engine, args)
        except Exception:  # report it, and still try the other engine
            traceback.print_exc()
            print(f"\n{engine}: benchmark did not complete\n", flush=True)
            failed = True
            continue
        runs.append(result)
        _report(result)
        failed |= _failed(result)
    if len(runs) > 1:
        print("\n== money-path summary ==")
        _print_table(runs)
        if _shape(runs[0].plan) != _shape(runs[1].plan):
            print("note: the engines' calibration paths wrote differently (see above)")
    return 1 if failed else 0


def _failed(r: EngineRun) -> bool:
    return bool(r.problems) or any(
        lv.gateway.failures or lv.ceiling is None or lv.ceiling.failures for lv in r.levels
    )


# --- one engine --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Target:
    """The scratch database, as the benchmark's own processes reach it."""

    engine: str  # "sqlite" or "postgres"
    location: str  # the SQLite file, or the PostgreSQL DSN

    def rows(self, sql: str) -> list[dict[str, Any]]:
        if self.engine == "sqlite":
            conn = sqlite3.connect(self.location, timeout=SQLITE_TIMEOUT_S)
            try:
                conn.row_factory = sqlite3.Row
                return [dict(r) for r in conn.execute(sql)]
            finally:
                conn.close()
        return asyncio.run(_pg_rows(self.location, sql))

    def script(self, statements: Sequence[str]) -> None:
        if self.engine == "sqlite":
            conn = sqlite3.connect(self.location, timeout=SQLITE_TIMEOUT_S, isolation_level=None)
            try:
                for sql in statements:
                    conn.execute(sql)
            finally:
                conn.close()
        else:
            asyncio.run(_pg_script(self.location, statements))

    def count(self, table: str) -> int:
        return int(self.rows(f"SELECT COUNT(*) AS n FROM {_q(table)}")[0]["n"])  # noqa: S608


async def _pg_rows(dsn: str, sql: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        return [dict(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


async def _pg_script(dsn: str, statements: Sequence[str]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _run_engine(engine: str, args: argparse.Namespace) -> EngineRun:
    print(f"\n== money-path on {engine} ==", flush=True)
    with tempfile.TemporaryDirectory(prefix=f"ta-bench-money-{engine}-") as tmp:
        work = Path(tmp)
        if engine == "sqlite":
            env = gateway.gateway_env(TA_DATA_DIR=str(work))
            target = Target("sqlite", str(work / "trade_assurance.sqlite3"))
        else:
            asyncio.run(gateway.recreate_postgres_database(args.database_url))
            env = gateway.gateway_env(DATABASE_URL=args.database_url)
            target = Target("postgres", args.database_url)
        gateway.migrate(env)
        setup.create_mediator(env, SETUP_TAG)

        log_path = work / "gateway.log"
        workers = args.workers if engine == "postgres" else 1
        with gateway.serve(env, log_path, workers=workers) as base:
            url = f"{base}/graphql"
            actors = setup.setup_actors(url, SETUP_TAG)
            baseline = {t: target.count(t) for t in _app_tables(target)}
            plan = _calibrate(url, env, actors, target)
            print("calibrated: " + "; ".join(_describe_plan(plan)), flush=True)
            levels: list[Level] = []
            pid = gateway.gateway_pid(urlparse(base).port or 0)
            for level in args.concurrency:
                cpu_before = gateway.cpu_seconds(pid)
                result = run_paths(
                    url, actors, paths=args.orders, concurrency=level, warmup=args.warmup
                )
                cpu_after = gateway.cpu_seconds(pid)
                cpu_ms = None
                if cpu_before is not None and cpu_after is not None and result.started:
                    cpu_ms = (cpu_after - cpu_before) * 1000 / result.started
                levels.append(Level(level, result, cpu_ms))
                print(
                    f"gateway, concurrency {level}: {result.throughput:.1f} paths/s "
                    f"({result.completed} paths, {result.failures} failed)",
                    flush=True,
                )
        if any(lv.gateway.failures for lv in levels):
            print(f"gateway log (tail):\n{gateway.tail(log_path)}", flush=True)

        started = CALIBRATION_PATHS + sum(lv.gateway.started for lv in levels)
        ledger_line, ledger_ok = _ledger_check(env)
        checks, problems = _verify(target, plan, started, baseline)
        if not ledger_ok:
            problems.append(f"ledger-check failed: {ledger_line}")

        for lv in levels:
            lv.ceiling = run_ceiling(
                target, plan, paths=args.orders, concurrency=lv.concurrency, warmup=args.warmup
            )
            print(
                f"ceiling, concurrency {lv.concurrency}: {lv.ceiling.throughput:.1f} paths/s",
                flush=True,
            )

        inprocess: InProcessReport | None = None
        try:
            paths = args.profile_paths if args.profile else STATEMENT_COUNT_PATHS
            inprocess = run_inprocess(env, actors, paths=paths, profile=args.profile)
        except Exception:  # optional: the table stands without it
            traceback.print_exc()
            print("in-process statement count did not complete", flush=True)
    return EngineRun(engine, plan, levels, checks, problems, ledger_line, inprocess)


# --- the money path over HTTP ------------------------------------------------------


def _payload(mutation: str, status: int, body: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """The mutation's payload, or what is wrong with the response."""
    text = body[:300].decode(errors="replace")
    if status != 200:
        return None, f"{mutation}: HTTP {status}: {text}"
    try:
        doc = json.loads(body)
    except ValueError:
        return None, f"{mutation}: not JSON: {text}"
    if not isinstance(doc, dict) or "errors" in doc or not isinstance(doc.get("data"), dict):
        return None, f"{mutation}: GraphQL errors: {json.dumps(doc)[:300]}"
    payload = doc["data"].get(mutation)
    if not isinstance(payload, dict) or payload.get("errors") != []:
        return None, f"{mutation}: payload errors: {json.dumps(payload)[:300]}"
    return payload, None


def _expect(ok: bool, mutation: str, payload: dict[str, Any]) -> str | None:
    return None if ok else f"{mutation}: unexpected answer {json.dumps(payload)[:300]}"


# POST one GraphQL body with these headers (besides the JSON content type): status, body.
Post = Callable[[bytes, dict[str, str]], Awaitable[tuple[int, bytes]]]


def httpx_post(client: httpx.AsyncClient, url: str) -> Post:
    async def post(body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        sent = {"content-type": "application/json", **headers}
        response = await client.post(url, content=body, headers=sent)
        return response.status_code, response.content

    return post


async def money_path(
    post: Post,
    actors: Actors,
    *,
    before: Callable[[str], None] | None = None,
    record: Callable[[str, float], None] | None = None,
    after: Callable[[str], Awaitable[None]] | None = None,
) -> str | None:
    """One full money path; None if every step went through, else what went wrong."""

    async def call(
        mutation: str, document: str, variables: dict[str, Any], token: str
    ) -> tuple[dict[str, Any] | None, str | None]:
        body = json.dumps({"query": document, "variables": {"input": variables}}).encode()
        headers = {"authorization": f"Bearer {token}"}
        if before is not None:
            before(mutation)
        started = time.perf_counter()
        try:
            status, answer = await post(body, headers)
        except (httpx.HTTPError, OSError, asyncio.IncompleteReadError, ValueError) as e:
            return None, f"{mutation}: {type(e).__name__}: {e}"
        took_ms = (time.perf_counter() - started) * 1000
        if after is not None:
            await after(mutation)
        payload, problem = _payload(mutation, status, answer)
        if problem is None and record is not None:
            record(mutation, took_ms)
        return payload, problem

    deadline = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=30)
    created, problem = await call("createOrder", CREATE_ORDER, {
        "supplierId": actors.supplier_id,
        "contract": {
            "currency": "USD",
            "lines": [{"productName": "LED panel light 600x600", "specification": "40 W, 4000 K",
                       "quantity": QUANTITY, "unitPrice": UNIT_PRICE}],
            "incoterm": "FOB", "shippingMethod": "SEA", "destinationCountry": "US",
            "shippingDeadline": deadline.isoformat(), "initialPayment": TOTAL,
        },
    }, actors.buyer_token)  # fmt: skip
    if created is None:
        return problem
    order = created["order"]
    if problem := _expect(order["total"]["amount"] == TOTAL, "createOrder", created):
        return problem
    order_id = order["id"]

    confirmed, problem = await call(
        "confirmOrder", CONFIRM_ORDER, {"orderId": order_id}, actors.supplier_token
    )
    if confirmed is None:
        return problem

    paid, problem = await call("payOrder", PAY_ORDER, {
        "orderId": order_id, "amount": {"amount": TOTAL, "currency": "USD"}, "method": "CARD",
        "paymentSource": CARD, "idempotencyKey": str(uuid.uuid4()),
    }, actors.buyer_token)  # fmt: skip
    if paid is None:
        return problem
    ok = paid["payment"]["status"] == "SUCCEEDED" and paid["order"]["status"] == "PAID"
    if problem := _expect(ok, "payOrder", paid):
        return problem

    released, problem = await call("releaseFunds", RELEASE_FUNDS, {
        "orderId": order_id, "idempotencyKey": str(uuid.uuid4()),
    }, actors.buyer_token)  # fmt: skip
    if released is None:
        return problem
    return _expect(released["released"]["amount"] == TOTAL, "releaseFunds", released)


def run_paths(
    url: str, actors: Actors, *, paths: int, concurrency: int, warmup: int
) -> PathsResult:
    """Drive money paths from a fresh process (as bench.load does); blocks until done."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        return pool.submit(_paths_worker, url, actors, paths, concurrency, warmup).result()


def _paths_worker(
    url: str, actors: Actors, paths: int, concurrency: int, warmup: int
) -> PathsResult:
    return asyncio.run(_drive(url, actors, paths, concurrency, warmup))


async def _drive(
    url: str, actors: Actors, paths: int, concurrency: int, warmup: int
) -> PathsResult:
    result = PathsResult({m: [] for m in MUTATIONS}, 0.0, 0, 0, 0, [])
    # A lean keep-alive connection per worker (bench.httpload), not httpx: httpx spends
    # several hundred microseconds of client CPU per request, and the client shares the
    # machine's cores with the gateway and the database.
    connections = [await httpload.Connection.open(url) for _ in range(concurrency)]

    async def phase(total: int, measured: bool) -> None:
        counter = iter(range(total))

        async def one_worker(connection: httpload.Connection) -> None:
            for _ in counter:  # shared: exactly `total` paths in all
                result.started += 1
                took: dict[str, float] = {}
                problem = await money_path(connection.post, actors, record=took.__setitem__)
                if problem is not None:
                    result.failures += 1
                    if len(result.failure_samples) < MAX_FAILURE_SAMPLES:
                        result.failure_samples.append(problem)
                    return  # this connection's stream may be in an unknown state
                if measured:
                    result.completed += 1
                    for mutation, ms in took.items():
                        result.latencies_ms[mutation].append(ms)

        await asyncio.gather(*(one_worker(c) for c in connections))

    try:
        await phase(warmup, measured=False)
        started = time.perf_counter()
        await phase(paths, measured=True)
        result.elapsed_s = time.perf_counter() - started
    finally:
        for connection in connections:
            connection.close()
    return result


# --- calibration: which rows one money path writes ---------------------------------


def _app_tables(target: Target) -> list[str]:
    """The application's tables (those with an `id`), not Piccolo's, FTS5's or ours."""
    if target.engine == "sqlite":
        tables = target.rows("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
        virtual = [t["name"] for t in tables if str(t["sql"]).upper().startswith("CREATE VIRTUAL")]
        names = [
            str(t["name"]) for t in tables
            if t["name"] not in virtual and not t["name"].startswith("sqlite_")
            and not any(t["name"].startswith(f"{v}_") for v in virtual)
        ]  # fmt: skip
        with_id = [n for n in names if any(c["name"] == "id" for c in target.rows(
            f"PRAGMA table_info({_q(n)})"))]  # fmt: skip
    else:
        with_id = [str(r["table_name"]) for r in target.rows(
            "SELECT table_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND column_name = 'id'")]  # fmt: skip
    return sorted(n for n in with_id if n != "migration" and not n.startswith("bench_"))


def _logging_on(target: Target, tables: Sequence[str]) -> None:
    """Log every row written to `tables`: table, operation, row id, and on PostgreSQL a
    transaction mark (the txid). SQLite has no transaction id; its calibration marks each
    commit instead (`_sqlite_calibration_worker`)."""
    if target.engine == "sqlite":
        statements = [
            "CREATE TABLE bench_write_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
            "tbl TEXT NOT NULL, op TEXT NOT NULL, row_id INTEGER NOT NULL, mark INTEGER)"
        ]
        for t in tables:
            for op, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
                statements.append(
                    f"CREATE TRIGGER {_q(f'bench_log_{t}_{op.lower()}')} AFTER {op} ON {_q(t)} "  # noqa: S608
                    f"BEGIN INSERT INTO bench_write_log (tbl, op, row_id, mark) "
                    f"VALUES ('{t}', '{op}', {row}.id, NULL); END"
                )
    else:
        statements = [
            "CREATE TABLE bench_write_log (seq bigserial PRIMARY KEY, tbl text NOT NULL, "
            "op text NOT NULL, row_id bigint NOT NULL, mark bigint)",
            """CREATE FUNCTION bench_log_write() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF TG_OP = 'DELETE' THEN
                INSERT INTO bench_write_log (tbl, op, row_id, mark)
                VALUES (TG_TABLE_NAME, TG_OP, OLD.id, txid_current());
              ELSE
                INSERT INTO bench_write_log (tbl, op, row_id, mark)
                VALUES (TG_TABLE_NAME, TG_OP, NEW.id, txid_current());
              END IF;
              RETURN NULL;
            END $$""",
        ]
        statements += [
            f"CREATE TRIGGER bench_log AFTER INSERT OR UPDATE OR DELETE ON {_q(t)} "
            "FOR EACH ROW EXECUTE FUNCTION bench_log_write()"
            for t in tables
        ]
    target.script(statements)


def _logging_off(target: Target, tables: Sequence[str]) -> None:
    if target.engine == "sqlite":
        statements = [f"DROP TRIGGER IF EXISTS {_q(f'bench_log_{t}_{op}')}"
                      for t in tables for op in ("insert", "update", "delete")]  # fmt: skip
    else:
        statements = [f"DROP TRIGGER IF EXISTS bench_log ON {_q(t)}" for t in tables]
        statements.append("DROP FUNCTION IF EXISTS bench_log_write()")
    target.script([*statements, "DROP TABLE IF EXISTS bench_write_log"])


def _last_seq(target: Target) -> int:
    return int(target.rows("SELECT COALESCE(MAX(seq), 0) AS s FROM bench_write_log")[0]["s"])


async def _calibration_paths(
    url: str, actors: Actors, target: Target, app: Any = None
) -> list[tuple[str, int]]:
    """CALIBRATION_PATHS money paths one by one, over HTTP (or to an in-process ASGI
    `app`); after each step, the write log's last seq."""
    marks: list[tuple[str, int]] = []

    async def after(mutation: str) -> None:
        marks.append((mutation, await asyncio.to_thread(_last_seq, target)))

    transport = None if app is None else httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(timeout=30.0, transport=transport) as client:
        for _ in range(CALIBRATION_PATHS):
            problem = await money_path(httpx_post(client, url), actors, after=after)
            if problem is not None:
                raise RuntimeError(f"calibration path failed: {problem}")
    return marks


def _sqlite_calibration_worker(
    env: dict[str, str], actors: Actors, location: str
) -> tuple[list[tuple[str, int]], list[int]]:
    """SQLite's calibration paths, through the gateway's ASGI app in this process (its code,
    its database settings), with each commit marked by the write log's last seq so far:
    SQLite has no transaction id for the triggers to log, and the gateway's pooled
    connections leave nothing else that tells one transaction from the next."""
    gateway.become(env, **gateway.NO_BACKGROUND_JOBS)
    engine = importlib.import_module("models.sqlite_engine").PooledSQLiteEngine
    commits: list[int] = []

    def mark(seq: int) -> None:
        if not commits or seq > commits[-1]:  # else the transaction wrote no logged row
            commits.append(seq)

    control = engine.control

    async def marked(self: Any, connection: Any, statement: str, *args: Any) -> None:
        if statement == "COMMIT":  # read inside the transaction: its own rows included
            last = "SELECT COALESCE(MAX(seq), 0) AS s FROM bench_write_log"
            mark(int(connection._conn.execute(last).fetchone()["s"]))  # a dict_factory row
        await control(self, connection, statement, *args)

    outside = engine._run_in_new_connection

    async def autocommitted(self: Any, *args: Any, **kwargs: Any) -> Any:
        rows = await outside(self, *args, **kwargs)
        mark(_last_seq(Target("sqlite", location)))  # a write outside a transaction
        return rows

    engine.control = marked
    engine._run_in_new_connection = autocommitted

    async def run() -> list[tuple[str, int]]:
        app = importlib.import_module("server.app").create_app()
        async with app.router.lifespan_context(app):
            return await _calibration_paths(
                "http://gateway/graphql", actors, Target("sqlite", location), app
            )

    return asyncio.run(run()), commits


def _calibrate(url: str, env: dict[str, str], actors: Actors, target: Target) -> Plan:
    """Run CALIBRATION_PATHS paths one by one with the write log on; their plans must agree."""
    tables = _app_tables(target)
    _logging_on(target, tables)
    try:
        if target.engine == "sqlite":
            marks, commits = _in_worker(_sqlite_calibration_worker, env, actors, target.location)
        else:
            marks = asyncio.run(_calibration_paths(url, actors, target))
        log = target.rows("SELECT seq, tbl, op, row_id, mark FROM bench_write_log ORDER BY seq")
    finally:
        _logging_off(target, tables)
    if target.engine == "sqlite":  # the mark: the commit that wrote the row
        for e in log:
            e["mark"] = next((i for i, c in enumerate(commits) if e["seq"] <= c), len(commits))

    plans: list[Plan] = []
    steps: list[Step] = []
    previous = 0
    for mutation, mark in marks:
        entries = [e for e in log if previous < int(e["seq"]) <= mark]
        previous = mark
        steps.append(Step(mutation, _transactions(entries)))
        if len(steps) == len(MUTATIONS):
            plans.append(tuple(steps))
            steps = []
    if any(_shape(p) != _shape(plans[0]) for p in plans):
        raise RuntimeError(
            "calibration paths wrote differently:\n"
            + "\n".join("; ".join(_describe_plan(p)) for p in plans)
        )
    return plans[-1]


def _transactions(entries: list[dict[str, Any]]) -> tuple[tuple[Write, ...], ...]:
    """The step's writes, grouped by transaction mark."""
    groups: list[list[Write]] = []
    previous: Any = None
    for e in entries:
        if e["mark"] != previous or not groups:
            groups.append([])
        groups[-1].append(Write(str(e["tbl"]), str(e["op"]), int(e["row_id"])))
        previous = e["mark"]
    return tuple(tuple(g) for g in groups)


def _describe_plan(plan: Plan) -> list[str]:
    """`createOrder 1 txn [trade_order+1 order_line+1 order_event+1]`, one per step."""
    sign = {"INSERT": "+", "UPDATE": "~", "DELETE": "-"}
    out = []
    for step in plan:
        txns = []
        for txn in step.transactions:
            counted = Counter((w.table, w.op) for w in txn)
            txns.append(" ".join(f"{t}{sign[op]}{n}" for (t, op), n in counted.items()))
        n = len(step.transactions)
        out.append(f"{step.mutation} {n} txn{'s' if n != 1 else ''} [" + "] [".join(txns) + "]")
    return out


def _per_path(plan: Plan, op: str) -> Counter[str]:
    return Counter(w.table for s in plan for t in s.transactions for w in t if w.op == op)


# --- checks after the gateway run --------------------------------------------------


def _ledger_check(env: dict[str, str]) -> tuple[str, bool]:
    done = subprocess.run(
        [gateway.CLI, "ledger-check"], env=dict(env), cwd=gateway.PROJECT_ROOT,
        capture_output=True, text=True,
    )  # fmt: skip
    lines = done.stdout.strip().splitlines() or done.stderr.strip().splitlines()
    line = lines[-1] if lines else f"(no output, exit {done.returncode})"
    print(f"`trade-assurance ledger-check`: {line} (exit {done.returncode})", flush=True)
    return line, done.returncode == 0


def _verify(
    target: Target, plan: Plan, paths: int, baseline: dict[str, int]
) -> tuple[list[str], list[str]]:
    """Rows per table = paths x the calibrated rows per path; every path completed."""
    checks: list[str] = []
    problems: list[str] = []

    def check(ok: bool, text: str) -> None:
        (checks if ok else problems).append(text if ok else f"MISMATCH {text}")

    inserts, updates = _per_path(plan, "INSERT"), _per_path(plan, "UPDATE")
    for table in sorted(set(MONEY_TABLES) | set(inserts)):
        rows = target.count(table) - baseline.get(table, 0)
        expected = paths * inserts[table]
        check(rows == expected, f"{table}: {rows} new rows, expected {paths} x {inserts[table]}")

    orders = target.rows(f"SELECT status, COUNT(*) AS n FROM {ORDER_TABLE} GROUP BY status")  # noqa: S608
    check({r["status"]: r["n"] for r in orders} == {"PAID": paths}, f"orders by status: {orders}")
    payments = target.rows("SELECT status, COUNT(*) AS n FROM payment GROUP BY status")
    check(
        {r["status"]: r["n"] for r in payments} == {"SUCCEEDED": paths},
        f"payments by status: {payments}",
    )
    money = target.rows(
        "SELECT (SELECT COALESCE(SUM(amount_minor), 0) FROM ledger_posting "
        "        WHERE account LIKE 'escrow:%') AS held, "
        "       (SELECT COALESCE(-SUM(amount_minor), 0) FROM ledger_posting "
        "        WHERE account LIKE 'supplier:%') AS released, "
        "       (SELECT COALESCE(SUM(total_minor), 0) FROM trade_order) AS ordered"
    )[0]
    check(
        int(money["held"]) == 0 and int(money["released"]) == int(money["ordered"]),
        f"escrow holds {int(money['held'])}, released {int(money['released'])} of "
        f"{int(money['ordered'])} ordered (minor units)",
    )
    if target.engine == "postgres":
        # The gateway's backends flushed their statistics when its pool closed.
        tables = sorted(set(MONEY_TABLES) | set(inserts) | set(updates))
        listed = ", ".join(f"'{t}'" for t in tables)
        sql = (
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables "  # noqa: S608
            f"WHERE relname IN ({listed})"
        )
        expected_counts = {t: (paths * inserts[t], paths * updates[t], 0) for t in tables}
        for _ in range(20):
            seen = {r["relname"]: (r["n_tup_ins"], r["n_tup_upd"], r["n_tup_del"])
                    for r in target.rows(sql)}  # fmt: skip
            if all(seen.get(t) == c for t, c in expected_counts.items()):
                break
            time.sleep(0.25)
        for t, (ins, upd, dele) in expected_counts.items():
            got = seen.get(t)
            check(
                got == (ins, upd, dele),
                f"pg_stat_user_tables {t}: (inserted, updated, deleted) {got}, "
                f"expected {(ins, upd, dele)}",
            )
    for line in checks:
        print(f"  ok: {line}")
    for line in problems:
        print(f"  {line}")
    return checks, problems


# --- the ceiling: the same writes in plain SQL -------------------------------------


@dataclasses.dataclass(frozen=True)
class TableInfo:
    columns: tuple[str, ...]  # written by a copy: all but `id` and generated columns
    fks: dict[str, str]  # column -> referenced table
    unique: frozenset[str]  # text columns closing a unique index: fresh value per copy


@dataclasses.dataclass(frozen=True)
class Statement:
    table: str
    op: str  # INSERT (one row per template id, one statement), UPDATE or DELETE
    template_ids: tuple[int, ...]
    sql: str


Ids = dict[tuple[str, int], int]  # (table, the gateway's row id) -> the copy's row id
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_ORDER_REF = re.compile(r"^(.*order:)(\d+)$")  # e.g. the ledger's `escrow:order:12`


@dataclasses.dataclass
class Replica:
    """One money path's writes as SQL: copies of the gateway's own rows (of the last
    calibration path, in their final state), linked to each other like the originals."""

    transactions: list[list[Statement]]
    infos: dict[str, TableInfo]
    templates: dict[tuple[str, int], dict[str, Any]]

    @property
    def statements(self) -> int:
        return sum(len(t) for t in self.transactions)

    def args(self, stmt: Statement, ids: Ids, fresh: dict[str, str]) -> list[Any]:
        if stmt.op == "INSERT":
            return [v for t in stmt.template_ids for v in self._values(stmt.table, t, ids, fresh)]
        mine = ids.get((stmt.table, stmt.template_ids[0]), stmt.template_ids[0])
        if stmt.op == "DELETE":
            return [mine]
        return [*self._values(stmt.table, stmt.template_ids[0], ids, fresh), mine]

    def remember(self, stmt: Statement, new_ids: list[int], ids: Ids) -> None:
        for template_id, new in zip(stmt.template_ids, sorted(new_ids), strict=True):
            ids[(stmt.table, template_id)] = new

    def _values(self, table: str, template_id: int, ids: Ids, fresh: dict[str, str]) -> list[Any]:
        info, row = self.infos[table], self.templates[(table, template_id)]
        out = []
        for column in info.columns:
            value = row[column]
            ref = info.fks.get(column)
            if ref is not None and type(value) is int:
                value = ids.get((ref, value), value)
            elif column in info.unique and isinstance(value, str):
                value = f"bench-{uuid.uuid4().hex}"
            elif isinstance(value, str):
                value = _remap_text(value, ids, fresh)
            out.append(value)
        return out


def _remap_text(value: str, ids: Ids, fresh: dict[str, str]) -> str:
    if _UUID.match(value):  # e.g. the ledger txn: one new uuid per original, per path
        return fresh.setdefault(value, str(uuid.uuid4()))
    m = _ORDER_REF.match(value)
    if m and (ORDER_TABLE, int(m[2])) in ids:
        return f"{m[1]}{ids[(ORDER_TABLE, int(m[2]))]}"
    return value


def _build_replica(
    plan: Plan,
    infos: dict[str, TableInfo],
    templates: dict[tuple[str, int], dict[str, Any]],
    postgres: bool,
) -> Replica:
    """Consecutive inserts into one table in one transaction are one statement, as the
    gateway writes them (ledger legs, order lines); every update or delete is its own.
    A row the path did not insert itself is updated in place (the same row, as the
    gateway does); deleting one is refused (it would destroy the gateway's data)."""

    def p(i: int) -> str:
        return f"${i}" if postgres else "?"

    transactions: list[list[Statement]] = []
    inserted: set[tuple[str, int]] = set()
    for step in plan:
        for txn in step.transactions:
            runs: list[list[Write]] = []
            for w in txn:
                if runs and w.op == "INSERT" and runs[-1][0].op == "INSERT" \
                        and runs[-1][0].table == w.table:  # fmt: skip
                    runs[-1].append(w)
                else:
                    runs.append([w])
            statements = []
            for writes in runs:
                table, op = writes[0].table, writes[0].op
                if op == "DELETE" and (table, writes[0].row_id) not in inserted:
                    raise RuntimeError(f"the money path deletes {table} {writes[0].row_id}, "
                                       "which it did not insert: no replay for that")  # fmt: skip
                inserted |= {(table, w.row_id) for w in writes if op == "INSERT"}
                cols = infos[table].columns
                if op == "INSERT":
                    values = ", ".join(
                        "(" + ", ".join(p(r * len(cols) + c + 1) for c in range(len(cols))) + ")"
                        for r in range(len(writes))
                    )
                    sql = (f"INSERT INTO {_q(table)} ({', '.join(_q(c) for c in cols)}) "  # noqa: S608
                           f"VALUES {values} RETURNING id")  # fmt: skip
                elif op == "UPDATE":
                    sets = ", ".join(f"{_q(c)} = {p(i + 1)}" for i, c in enumerate(cols))
                    sql = f"UPDATE {_q(table)} SET {sets} WHERE id = {p(len(cols) + 1)}"  # noqa: S608
                else:
                    sql = f"DELETE FROM {_q(table)} WHERE id = {p(1)}"  # noqa: S608
                statements.append(Statement(table, op, tuple(w.row_id for w in writes), sql))
            transactions.append(statements)
    return Replica(transactions, infos, templates)


def run_ceiling(
    target: Target, plan: Plan, *, paths: int, concurrency: int, warmup: int
) -> CeilingResult:
    """The plan's writes per path in plain SQL, from a fresh process; blocks until done."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        return pool.submit(_ceiling_worker, target, plan, paths, concurrency, warmup).result()


def _ceiling_worker(
    target: Target, plan: Plan, paths: int, concurrency: int, warmup: int
) -> CeilingResult:
    if target.engine == "sqlite":
        return _sqlite_ceiling(target.location, plan, paths, concurrency, warmup)
    return asyncio.run(_pg_ceiling(target.location, plan, paths, concurrency, warmup))


def _new_result(replica: Replica) -> CeilingResult:
    return CeilingResult(0.0, 0, 0, 0, [], replica.statements, len(replica.transactions))


def _failed_path(result: CeilingResult, e: BaseException) -> None:
    result.failures += 1
    if len(result.failure_samples) < MAX_FAILURE_SAMPLES:
        result.failure_samples.append(f"{type(e).__name__}: {e}")


def _sqlite_connect(path: str) -> sqlite3.Connection:
    """Settings as the gateway's connections (models.db), kept open: the ideal client."""
    conn = sqlite3.connect(path, timeout=SQLITE_TIMEOUT_S, isolation_level=None)
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(f"PRAGMA busy_timeout = {int(SQLITE_TIMEOUT_S * 1000)}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _sqlite_replica(conn: sqlite3.Connection, plan: Plan) -> Replica:
    conn.row_factory = sqlite3.Row
    infos: dict[str, TableInfo] = {}
    for table in {w.table for s in plan for t in s.transactions for w in t}:
        columns = tuple(r["name"] for r in conn.execute(f"PRAGMA table_xinfo({_q(table)})")
                        if r["hidden"] == 0 and r["name"] != "id")  # fmt: skip
        fks = {r["from"]: r["table"] for r in conn.execute(f"PRAGMA foreign_key_list({_q(table)})")}
        unique = set()
        for index in conn.execute(f"PRAGMA index_list({_q(table)})"):
            if index["unique"] and index["origin"] != "pk":
                cols = list(conn.execute(f"PRAGMA index_info({_q(index['name'])})"))
                unique.add(str(cols[-1]["name"]))
        infos[table] = TableInfo(columns, fks, frozenset(unique))
    templates = {}
    for w in {w for s in plan for t in s.transactions for w in t}:
        row = conn.execute(f"SELECT * FROM {_q(w.table)} WHERE id = ?", (w.row_id,)).fetchone()  # noqa: S608
        templates[(w.table, w.row_id)] = dict(row)
    conn.row_factory = None
    return _build_replica(plan, infos, templates, postgres=False)


def _sqlite_path(conn: sqlite3.Connection, replica: Replica) -> None:
    ids: Ids = {}
    fresh: dict[str, str] = {}
    for txn in replica.transactions:
        conn.execute("BEGIN IMMEDIATE")  # as models.db.write_transaction
        try:
            for stmt in txn:
                cursor = conn.execute(stmt.sql, replica.args(stmt, ids, fresh))
                if stmt.op == "INSERT":
                    replica.remember(stmt, [int(r[0]) for r in cursor.fetchall()], ids)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _sqlite_ceiling(
    path: str, plan: Plan, paths: int, concurrency: int, warmup: int
) -> CeilingResult:
    conn = _sqlite_connect(path)
    try:
        replica = _sqlite_replica(conn, plan)
    finally:
        conn.close()
    result = _new_result(replica)
    lock = threading.Lock()

    def phase(total: int, measured: bool) -> None:
        counter = iter(range(total))

        def worker() -> None:
            conn = _sqlite_connect(path)
            try:
                while True:
                    with lock:
                        if next(counter, None) is None:
                            return
                        result.started += 1
                    try:
                        _sqlite_path(conn, replica)
                    except Exception as e:
                        with lock:
                            _failed_path(result, e)
                    else:
                        if measured:
                            with lock:
                                result.completed += 1
            finally:
                conn.close()

        with ThreadPoolExecutor(max_workers=concurrency) as threads:
            for future in [threads.submit(worker) for _ in range(concurrency)]:
                future.result()

    phase(warmup, measured=False)
    started = time.perf_counter()
    phase(paths, measured=True)
    result.elapsed_s = time.perf_counter() - started
    return result


async def _pg_replica(conn: PoolConnectionProxy[Any], plan: Plan) -> Replica:
    infos: dict[str, TableInfo] = {}
    for table in {w.table for s in plan for t in s.transactions for w in t}:
        columns = tuple(
            r["column_name"]
            for r in await conn.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = "
                "'public' AND table_name = $1 AND is_generated = 'NEVER' AND column_name <> 'id' "
                "ORDER BY ordinal_position",
                table,
            )
        )
        fks = {
            r["col"]: r["ref"]
            for r in await conn.fetch(
                "SELECT a.attname AS col, c.confrelid::regclass::text AS ref FROM pg_constraint c "
                "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
                "WHERE c.contype = 'f' AND c.conrelid = $1::regclass",
                _q(table),
            )
        }
        unique = {
            r["col"]
            for r in await conn.fetch(
                "SELECT a.attname AS col FROM pg_index i JOIN pg_attribute a "
                "ON a.attrelid = i.indrelid AND a.attnum = i.indkey[i.indnkeyatts - 1] "
                "WHERE i.indrelid = $1::regclass AND i.indisunique AND NOT i.indisprimary",
                _q(table),
            )
        }
        infos[table] = TableInfo(columns, fks, frozenset(unique))
    templates = {}
    for w in {w for s in plan for t in s.transactions for w in t}:
        row = await conn.fetchrow(f"SELECT * FROM {_q(w.table)} WHERE id = $1", w.row_id)  # noqa: S608
        assert row is not None, f"{w.table} {w.row_id} is gone"
        templates[(w.table, w.row_id)] = dict(row)
    return _build_replica(plan, infos, templates, postgres=True)


async def _pg_path(conn: PoolConnectionProxy[Any], replica: Replica) -> None:
    ids: Ids = {}
    fresh: dict[str, str] = {}
    for txn in replica.transactions:
        async with conn.transaction():
            for stmt in txn:
                args = replica.args(stmt, ids, fresh)
                if stmt.op == "INSERT":
                    rows = await conn.fetch(stmt.sql, *args)
                    replica.remember(stmt, [int(r["id"]) for r in rows], ids)
                else:
                    await conn.execute(stmt.sql, *args)


async def _pg_ceiling(
    dsn: str, plan: Plan, paths: int, concurrency: int, warmup: int
) -> CeilingResult:
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    try:
        async with pool.acquire() as conn:
            replica = await _pg_replica(conn, plan)
        result = _new_result(replica)

        async def phase(total: int, measured: bool) -> None:
            counter = iter(range(total))

            async def worker() -> None:
                async with pool.acquire() as conn:
                    for _ in counter:
                        result.started += 1
                        try:
                            await _pg_path(conn, replica)
                        except Exception as e:
                            _failed_path(result, e)
                        else:
                            result.completed += measured

            await asyncio.gather(*(worker() for _ in range(concurrency)))

        await phase(warmup, measured=False)
        started = time.perf_counter()
        await phase(paths, measured=True)
        result.elapsed_s = time.perf_counter() - started
        return result
    finally:
        await pool.close()


# --- in-process: SQL statements per mutation, and (--profile) where the time goes ---


def run_inprocess(
    env: dict[str, str], actors: Actors, *, paths: int, profile: bool
) -> InProcessReport:
    """Money paths through the ASGI app in a fresh process (the gateway's code, its
    database settings), one at a time, with the database drivers wrapped."""
    return _in_worker(_inprocess_worker, env, actors, paths, profile)


def _in_worker(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in a fresh process (the gateway's code imported there only)."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        return pool.submit(function, *args).result()


def _inprocess_worker(
    env: dict[str, str], actors: Actors, paths: int, profile: bool
) -> InProcessReport:
    gateway.become(env, **gateway.NO_BACKGROUND_JOBS)
    return asyncio.run(_inprocess(actors, paths, profile))


def _sql_kind(sql: str) -> str:
    if "pg_advisory_unlock_all()" in sql:  # asyncpg's reset of a connection back to its pool
        return "RESET"
    word = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "?"
    return word.rstrip(";")


class _Probe:
    """Counts statements and the time spent awaiting the database drivers, per label."""

    def __init__(self) -> None:
        self.label = ""
        self.db_s: defaultdict[str, float] = defaultdict(float)
        self.gc_s: defaultdict[str, float] = defaultdict(float)
        self._gc_started = 0.0
        self.kinds: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.on = False

    def _gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self.on:
            self.gc_s[self.label] += time.perf_counter() - self._gc_started

    def install(self) -> None:
        probe = self
        gc.callbacks.append(self._gc)
        aio = importlib.import_module("aiosqlite.core").Connection
        pg = importlib.import_module("asyncpg.connection").Connection

        # SQLite: statements go through the gateway's engine (models.sqlite_engine): inside
        # a write transaction and BEGIN/COMMIT on the loop's thread, short reads on the
        # loop's reader, the rest a hop to a pooled connection's thread.
        engine = importlib.import_module("models.sqlite_engine").PooledSQLiteEngine

        def statement(original: Any, position: int, name: str) -> Any:
            async def wrapper(self_: Any, *args: Any, **kwargs: Any) -> Any:
                if not probe.on:
                    return await original(self_, *args, **kwargs)
                sql = args[position] if len(args) > position else kwargs[name]  # Piccolo: keywords
                probe.kinds[probe.label][_sql_kind(sql)] += 1
                started = time.perf_counter()
                try:
                    return await original(self_, *args, **kwargs)
                finally:
                    probe.db_s[probe.label] += time.perf_counter() - started

            return wrapper

        engine.control = statement(engine.control, 1, "statement")
        run_in = engine._run_in_existing_connection
        engine._run_in_existing_connection = statement(run_in, 1, "query")
        engine._run_in_new_connection = statement(engine._run_in_new_connection, 0, "query")
        engine.read_here = statement(engine.read_here, 0, "query")
        # `_connect` starts a connection's thread and opens the file (3 PRAGMAs, models.db).
        connect = aio._connect

        async def counted_connect(self_: Any) -> Any:
            if probe.on:
                probe.kinds[probe.label]["CONNECT"] += 1
            return await connect(self_)

        aio._connect = counted_connect
        for name in ("fetch", "fetchrow", "fetchval", "execute"):
            original = getattr(pg, name)

            def make(original: Any) -> Any:
                async def wrapper(self_: Any, query: str, *args: Any, **kwargs: Any) -> Any:
                    if not probe.on:
                        return await original(self_, query, *args, **kwargs)
                    probe.kinds[probe.label][_sql_kind(query)] += 1
                    if os.environ.get("BENCH_SQL_LOG"):
                        print(probe.label, " ".join(query.split())[:300], flush=True)
                    started = time.perf_counter()
                    try:
                        return await original(self_, query, *args, **kwargs)
                    finally:
                        probe.db_s[probe.label] += time.perf_counter() - started

                return wrapper

            setattr(pg, name, make(original))


async def _inprocess(actors: Actors, paths: int, profile: bool) -> InProcessReport:
    probe = _Probe()
    probe.install()
    app = importlib.import_module("server.app").create_app()
    wall: defaultdict[str, float] = defaultdict(float)
    lines: list[str] = []
    # The app's own start-up and shutdown, as `serve` runs them (pool, live hub, heap).
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:

            def label(mutation: str) -> None:
                probe.label = mutation

            def took(mutation: str, ms: float) -> None:
                wall[mutation] += ms

            async def batch(n: int) -> None:
                for _ in range(n):
                    problem = await money_path(
                        httpx_post(client, "/graphql"), actors, before=label, record=took
                    )
                    if problem is not None:
                        raise RuntimeError(problem)

            await batch(5)  # warm: imports, caches, the pool
            wall.clear()
            probe.on = True
            cpu_started = time.process_time()
            await batch(paths)
            cpu_ms = (time.process_time() - cpu_started) * 1000 / paths
            probe.on = False
            wall_ms = {m: wall[m] / paths for m in MUTATIONS}
            if profile:
                profiler = cProfile.Profile()
                profiler.enable()
                started = time.perf_counter()
                await batch(paths)
                elapsed = time.perf_counter() - started
                profiler.disable()
                if os.environ.get("BENCH_PSTATS"):  # scratch: keep the raw profile
                    profiler.dump_stats(os.environ["BENCH_PSTATS"])
                lines = _profile_lines(profiler, paths, elapsed)
    return InProcessReport(
        paths=paths,
        wall_ms=wall_ms,
        cpu_ms=cpu_ms,
        db_ms={m: probe.db_s[m] * 1000 / paths for m in MUTATIONS},
        gc_ms={m: probe.gc_s[m] * 1000 / paths for m in MUTATIONS},
        sql={m: {k: n / paths for k, n in probe.kinds[m].items()} for m in MUTATIONS},
        profile=lines,
    )


def _bucket(file: str, function: str) -> str:
    """Group a profiled function by where it lives: a library, the project, the stdlib."""
    if file == "~":
        if "poll" in function or "select" in function:
            return "waiting in epoll (DB I/O, SQLite threads)"
        return "builtins / C calls"
    parts = Path(file).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].split(".")[0]
    root = gateway.PROJECT_ROOT.parts
    if parts[: len(root)] == root and len(parts) > len(root):
        return f"{parts[len(root)]}/ (project)"
    if "asyncio" in parts:
        return "asyncio (stdlib)"
    return "other stdlib"


# pstats keys a function by (file, line, name); the value is (primitive calls, calls,
# own seconds, cumulative seconds, callers).
_Func = tuple[str, int, str]
_FuncStats = tuple[int, int, float, float, Any]


def _profile_lines(profiler: cProfile.Profile, paths: int, elapsed: float) -> list[str]:
    raw: dict[_Func, _FuncStats] = vars(pstats.Stats(profiler))["stats"]  # untyped in typeshed
    buckets: defaultdict[str, float] = defaultdict(float)
    for (file, _, name), (_, _, own, _, _) in raw.items():
        buckets[_bucket(file, name)] += own
    total = sum(buckets.values()) or 1.0
    out = [f"cProfile, {paths} paths one at a time: {elapsed * 1000 / paths:.1f} ms per path "
           "under the profiler; own time by package:"]  # fmt: skip
    for bucket, seconds in sorted(buckets.items(), key=lambda kv: kv[1], reverse=True)[:14]:
        out.append(f"  {bucket:<44} {seconds * 1000 / paths:7.2f} ms/path {seconds / total:6.1%}")
    out.append("top functions by own time:")
    by_own = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)
    out += [_profile_line(func, st[1], st[2], paths) for func, st in by_own[:15]]
    # Coroutines count only while they run, so this is time on the CPU (or blocking) per
    # function, never time spent awaiting the database.
    out.append("the gateway's code and Piccolo's query layer, cumulative (awaiting excluded):")
    root, piccolo = str(gateway.PROJECT_ROOT), ("piccolo/query/base.py", "piccolo/engine/")
    mine = [
        (func, st) for func, st in raw.items()
        if (func[0].startswith(root) and "/.venv/" not in func[0] and "/bench/" not in func[0])
        or any(p in func[0] for p in piccolo)
    ]  # fmt: skip
    by_cum = sorted(mine, key=lambda kv: kv[1][3], reverse=True)
    out += [_profile_line(func, st[1], st[3], paths) for func, st in by_cum[:25]]
    return out


def _profile_line(func: _Func, calls: int, seconds: float, paths: int) -> str:
    file, line, name = func
    where = "/".join(Path(file).parts[-2:]) if file != "~" else "~"
    per_path = f"{seconds * 1000 / paths:6.2f} ms/path {calls / paths:7.1f} calls/path"
    return f"  {per_path}  {name} ({where}:{line})"


# --- report ------------------------------------------------------------------------


def _ms(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{load.percentile(values, 50):.1f}/{load.percentile(values, 95):.1f}"


def _print_table(runs: list[EngineRun]) -> None:
    head = ("engine", "conc", "paths", "gateway/s", "ceiling/s", "ratio",
            f">={TARGET_RATIO:.0%}", *(f"{m} p50/p95 ms" for m in MUTATIONS))  # fmt: skip
    rows = []
    for r in runs:
        for lv in r.levels:
            g, c = lv.gateway, lv.ceiling
            ratio = g.throughput / c.throughput if c and c.throughput else float("nan")
            rows.append((r.engine, f"{lv.concurrency}", f"{g.completed}", f"{g.throughput:.1f}",
                         f"{c.throughput:.1f}" if c else "-", f"{ratio:.1%}",
                         "PASS" if ratio >= TARGET_RATIO else "FAIL",
                         *(_ms(g.latencies_ms[m]) for m in MUTATIONS)))  # fmt: skip
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    print("  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True)))
    for row in rows:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))


def _report(r: EngineRun) -> None:
    print()
    _print_table([r])
    writes = sum(len(t) for s in r.plan for t in s.transactions)
    txns = sum(len(s.transactions) for s in r.plan)
    ceiling = next((lv.ceiling for lv in r.levels if lv.ceiling), None)
    print(f"\nrow writes per money path ({r.engine}, counted by triggers on the gateway's tables):")
    for line in _describe_plan(r.plan):
        print(f"  {line}")
    inserts, updates = _per_path(r.plan, "INSERT"), _per_path(r.plan, "UPDATE")
    replayed = ceiling.statements_per_path if ceiling else "?"
    print(f"  = {writes} rows ({sum(inserts.values())} inserted, {sum(updates.values())} "
          f"updated) in {txns} transactions; the ceiling: {replayed} statements")  # fmt: skip
    cpu = [(lv.concurrency, lv.gateway_cpu_ms) for lv in r.levels if lv.gateway_cpu_ms]
    if cpu:
        print("gateway CPU per path (user + system, all its processes): " + ", ".join(
            f"{ms:.1f} ms at concurrency {c} (= at most {1000 / ms:.0f} paths/s per core)"
            for c, ms in cpu))  # fmt: skip
    if r.inprocess is not None:
        _report_inprocess(r.inprocess)
    print(f"ledger-check: {r.ledger_line}")
    failed = f", {len(r.problems)} FAILED" if r.problems else ""
    print(f"verified: {len(r.checks)} checks passed{failed}")
    for problem in r.problems:
        print(f"  {problem}")
    for lv in r.levels:
        for name, failures, samples in [
            ("gateway", lv.gateway.failures, lv.gateway.failure_samples),
            ("ceiling", lv.ceiling.failures if lv.ceiling else 0,
             lv.ceiling.failure_samples if lv.ceiling else []),
        ]:  # fmt: skip
            if failures:
                print(f"\nFAILED {name} paths at concurrency {lv.concurrency}: {failures}")
                for sample in samples:
                    print(f"  {sample}")
    print(flush=True)


def _report_inprocess(rep: InProcessReport) -> None:
    kinds = ["SELECT", "INSERT", "UPDATE", "DELETE", "BEGIN", "COMMIT", "PRAGMA", "RESET"]
    kinds = [k for k in kinds if any(rep.sql[m].get(k) for m in MUTATIONS)]
    kinds += sorted({k for m in MUTATIONS for k in rep.sql[m]} - {*kinds, "CONNECT"})
    sqlite = any(rep.sql[m].get("CONNECT") for m in MUTATIONS)
    print(f"\nSQL per money path, counted in-process (the gateway's ASGI app, {rep.paths} paths one"
          " at a time, database drivers wrapped; db ms = awaiting the driver, gc ms = in the"
          " cyclic garbage collector):")  # fmt: skip
    if sqlite:
        print("  (connect = a new aiosqlite connection: a thread, the file opened, 3 PRAGMAs)")
    head = [
        "mutation",
        "wall ms",
        "db ms",
        "gc ms",
        *kinds,
        *(["connect"] if sqlite else []),
        "calls",
    ]
    print("  " + "  ".join(f"{h:<12}" if i == 0 else f"{h:>7}" for i, h in enumerate(head)))
    totals: defaultdict[str, float] = defaultdict(float)
    for m in [*MUTATIONS, "path"]:
        if m == "path":
            counts, wall = dict(totals), sum(rep.wall_ms.values())
            db, gcms = sum(rep.db_ms.values()), sum(rep.gc_ms.values())
        else:
            counts, wall, db, gcms = rep.sql[m], rep.wall_ms[m], rep.db_ms[m], rep.gc_ms[m]
            for k, v in counts.items():
                totals[k] += v
        cells = [
            f"{wall:7.1f}",
            f"{db:7.1f}",
            f"{gcms:7.1f}",
            *(f"{counts.get(k, 0):7.1f}" for k in kinds),
        ]
        if sqlite:
            cells.append(f"{counts.get('CONNECT', 0):7.1f}")
        cells.append(f"{sum(v for k, v in counts.items() if k != 'CONNECT'):7.1f}")
        print(f"  {m:<12}  " + "  ".join(cells))
    print(f"  CPU per path in this process (client included): {rep.cpu_ms:.1f} ms")
    for line in rep.profile:
        print(line)
