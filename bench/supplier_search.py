"""`supplier-search`: the directory search a buyer runs, against SQLite and PostgreSQL.

Per engine: fresh database, `trade-assurance migrate`, bulk seed, `trade-assurance serve`,
then a separate load process POSTs the search over HTTP with a rotating set of filters.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench import gateway, load, seed

TARGET_P95_MS = 50.0
DEFAULT_PG_URL = "postgres://postgres@127.0.0.1:5432/ta_bench"

QUERY = """query Search($f: SupplierFilter) {
  suppliers(filter: $f, first: 20) {
    edges { node { id legalName country rating categories
                   tradeAssurance { status limit { amount currency } } } }
    pageInfo { hasNextPage endCursor }
  }
}"""

# What buyers type: product words with a filter or two, and browse-only filters.
FILTERS: list[tuple[str, dict[str, Any]]] = [
    ("led, DE, TA only", {"text": "led", "country": "DE", "tradeAssuranceOnly": True}),
    ("solar panel, gold", {"text": "solar panel", "goldOnly": True}),
    ("cotton, rating>=4", {"text": "cotton", "minRating": 4.0}),
    ("category Consumer Electronics, CN",
     {"category": "Consumer Electronics", "country": "CN"}),
    ("cnc, ASSESSED", {"text": "cnc", "verification": ["ASSESSED"]}),
    ("TA only, CN", {"tradeAssuranceOnly": True, "country": "CN"}),
    ("office chair, VN", {"text": "office chair", "country": "VN"}),
    ("category Auto Parts, gold, rating>=4.5",
     {"category": "Auto Parts", "goldOnly": True, "minRating": 4.5}),
    ("power bank, VERIFIED|ASSESSED, TA only",
     {"text": "power bank", "verification": ["VERIFIED", "ASSESSED"],
      "tradeAssuranceOnly": True}),
    ("pump", {"text": "pump"}),
    ("shenzhen led", {"text": "shenzhen led"}),
    ("gold, rating>=4.8", {"goldOnly": True, "minRating": 4.8}),
]  # fmt: skip


@dataclasses.dataclass
class EngineRun:
    engine: str
    suppliers: int
    seed_s: float
    loads: list[tuple[int, load.LoadResult]]  # (concurrency, result), one per level


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "supplier-search",
        help="supplier directory search over HTTP, SQLite and/or PostgreSQL",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--engine",
        choices=["sqlite", "postgres", "both"],
        default="both",
        help="both: sqlite first",
    )
    p.add_argument("--suppliers", type=_positive, default=100_000, help="suppliers to seed")
    p.add_argument("--requests", type=_positive, default=2_000, help="measured requests")
    p.add_argument(
        "--concurrency",
        type=_levels,
        default="1,4",
        help="requests in flight, comma-separated levels measured one after the other",
    )
    p.add_argument("--warmup", type=int, default=200, help="unmeasured requests first")
    p.add_argument("--seed", type=int, default=2026, help="random seed of the data")
    p.add_argument("--database-url", default=DEFAULT_PG_URL, help="scratch PostgreSQL db")
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
    # Client, gateway and PostgreSQL share this host's CPUs: say how busy it was.
    load1, _, _ = os.getloadavg()
    print(f"host: {os.cpu_count()} CPUs, load average {load1:.2f} at start", flush=True)
    failed = False
    for engine in engines:
        try:
            result = _run_engine(engine, args)
        except Exception:  # report it, and still try the other engine
            traceback.print_exc()
            print(f"\n{engine}: benchmark did not complete\n", flush=True)
            failed = True
            continue
        _report(result, args)
        failed |= any(r.failures > 0 for _, r in result.loads)
    return 1 if failed else 0


def _run_engine(engine: str, args: argparse.Namespace) -> EngineRun:
    print(f"\n== supplier-search on {engine} ==", flush=True)
    with tempfile.TemporaryDirectory(prefix=f"ta-bench-{engine}-") as tmp:
        work = Path(tmp)
        if engine == "sqlite":
            env = gateway.gateway_env(TA_DATA_DIR=str(work))
        else:
            asyncio.run(gateway.recreate_postgres_database(args.database_url))
            env = gateway.gateway_env(DATABASE_URL=args.database_url)
        gateway.migrate(env)

        started = time.perf_counter()
        if engine == "sqlite":
            seed.seed_sqlite(work / "trade_assurance.sqlite3", args.suppliers, args.seed)
        else:
            asyncio.run(seed.seed_postgres(args.database_url, args.suppliers, args.seed))
        seed_s = time.perf_counter() - started
        print(f"seeded {args.suppliers} suppliers in {seed_s:.1f} s", flush=True)

        log_path = work / "gateway.log"
        with gateway.serve(env, log_path) as base:
            payloads = [{"query": QUERY, "variables": {"f": f}} for _, f in FILTERS]
            loads = [
                (
                    level,
                    load.run(
                        f"{base}/graphql",
                        payloads,
                        requests=args.requests,
                        concurrency=level,
                        warmup=args.warmup,
                    ),
                )
                for level in args.concurrency
            ]
        if any(r.failures for _, r in loads):
            print(f"gateway log (tail):\n{gateway.tail(log_path)}", flush=True)
    return EngineRun(engine, args.suppliers, seed_s, loads)


def _report(r: EngineRun, args: argparse.Namespace) -> None:
    head = ("engine", "suppliers", "requests", "concurrency", "requests/s", "p50 ms", "p95 ms",
            "p99 ms", f"p95<={TARGET_P95_MS:.0f}ms")  # fmt: skip
    rows = []
    for level, result in r.loads:
        lat = result.latencies_ms
        p50, p95, p99 = (load.percentile(lat, p) for p in (50, 95, 99))
        rows.append((r.engine, f"{r.suppliers}", f"{len(lat)}", f"{level}",
                     f"{result.throughput:.1f}", f"{p50:.1f}", f"{p95:.1f}", f"{p99:.1f}",
                     "PASS" if p95 <= TARGET_P95_MS else "FAIL"))  # fmt: skip
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    print()
    print("  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True)))
    for row in rows:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))
    print(f"seeding: {r.seed_s:.1f} s")
    first_level, first = r.loads[0]
    lat = first.latencies_ms

    # Which filters are slow, and that each one finds something (an empty page is cheap).
    # Under concurrency each latency includes queueing behind the other requests in flight,
    # so the breakdown is of the first level.
    print(f"\nper query at concurrency {first_level}:")
    print(f"  {'filter':<40} {'hits':>4}  {'p50 ms':>6}  {'p95 ms':>6}")
    for k, (label, _) in enumerate(FILTERS):
        mine = [ms for ms, j in zip(lat, first.payload_of, strict=True) if j == k]
        print(
            f"  {label[:40]:<40} {first.edges_of.get(k, 0):>4}  "
            f"{load.percentile(mine, 50):>6.1f}  {load.percentile(mine, 95):>6.1f}"
        )
    for level, result in r.loads:
        if result.failures:
            print(f"\nFAILED requests at concurrency {level}: {result.failures}")
            for sample in result.failure_samples:
                print(f"  {sample}")
    print(flush=True)
