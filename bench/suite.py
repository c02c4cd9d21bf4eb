"""`python -m bench` (or `python -m bench all`): the whole suite, small sizes, one table.

Runs order-status (order status, order list, memory, PostgreSQL scale-out) in this
process's orchestration, then each older benchmark as its own `python -m bench <name>`
with small sizes (their output streams through and is kept in the JSON), and prints one
table: the order figures with their ratios and targets, and each folded benchmark's
status and time. Results go to `--json` (default bench-results/<UTC time>.json,
git-ignored) so runs can be compared.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

from bench import gateway, order_status

DEFAULT_PG_URL = "postgres://postgres@127.0.0.1:5432/ta_bench_suite"
RESULTS_DIR = gateway.PROJECT_ROOT / "bench-results"

# The folded benchmarks, with sizes that keep the whole suite to a few minutes.
FOLDED: dict[str, list[str]] = {
    "supplier-search": ["--suppliers", "5000", "--requests", "300", "--warmup", "30"],
    "money-path": ["--orders", "60", "--concurrency", "1,4", "--warmup", "5"],
    "deadline-sweep": ["--orders", "5000", "--due", "200"],
    # Small sizes for the suite; `python -m bench fanout` alone runs the 10,000.
    "fanout": ["--subscribers", "1000", "--sustained-subscribers", "200", "--duration", "15"],
}


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "all",
        help="the whole suite on both engines, one table and a JSON file (the default)",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_arguments(p)
    p.set_defaults(run=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument(
        "--database-url",
        default=DEFAULT_PG_URL,
        help="scratch PostgreSQL db; each benchmark uses its own database named after "
        "this one plus a suffix",
    )
    p.add_argument("--json", type=Path, help="default: bench-results/<UTC time>.json")
    p.add_argument(
        "--skip", default="", help="comma-separated benchmarks to leave out, e.g. money-path"
    )
    p.add_argument(
        "--orders", type=order_status._positive, default=100, help="order-status: orders"
    )
    p.add_argument("--requests", type=order_status._positive, default=1000)
    p.add_argument("--list-requests", type=order_status._positive, default=100)
    p.add_argument("--latency-requests", type=order_status._positive, default=300)


def _database(url: str, suffix: str) -> str:
    parts = urlparse(url)
    return urlunparse(parts._replace(path=f"{parts.path.rstrip('/')}_{suffix}"))


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    load1 = os.getloadavg()
    print(
        f"host: {os.cpu_count()} CPUs, load average {load1[0]:.2f} {load1[1]:.2f} "
        f"{load1[2]:.2f} at start",
        flush=True,
    )
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    doc: dict[str, Any] = {"load_average_at_start": load1, "engine": args.engine}
    failed = False
    results: list[order_status.EngineResult] = []
    if "order-status" not in skip:
        order_args = argparse.Namespace(
            engine=args.engine,
            database_url=_database(args.database_url, "orders"),
            orders=args.orders,
            list_size=min(100, args.orders),
            requests=args.requests,
            list_requests=args.list_requests,
            concurrency=8,
            latency_requests=args.latency_requests,
            warmup=50,
            rounds=3,
            workers=[1, 2],
            repeat=3,
            profile=False,
            profile_requests=0,
        )
        try:
            results = order_status.measure(order_args)
            failed |= not all(order_status.ok(r) for r in results)
        except Exception:
            traceback.print_exc()
            failed = True
        doc["order-status"] = order_status.to_json(results)
    folded: list[tuple[str, str, float]] = []
    for name, sizes in FOLDED.items():
        if name in skip:
            continue
        argv = [
            sys.executable,
            "-m",
            "bench",
            name,
            "--engine",
            args.engine,
            "--database-url",
            _database(args.database_url, name.replace("-", "_")),
            *sizes,
        ]
        print(f"\n== {' '.join(argv[2:])} ==", flush=True)
        t0 = time.perf_counter()
        output = _tee(argv)
        seconds = time.perf_counter() - t0
        status = "ok" if output[0] == 0 else f"FAILED (exit {output[0]})"
        failed |= output[0] != 0
        folded.append((name, status, seconds))
        doc[name] = {"argv": argv[2:], "exit": output[0], "seconds": seconds, "output": output[1]}

    print(
        f"\n== the suite ({time.perf_counter() - started:.0f} s; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end) =="
    )
    rows = [row for r in results for row in order_status.table_rows(r)]
    rows += [
        (
            "both" if args.engine == "both" else args.engine,
            name,
            status,
            "",
            "",
            "",
            "",
            f"{seconds:.0f} s; figures above",
        )
        for name, status, seconds in folded
    ]
    order_status.print_table(rows)
    path = args.json or RESULTS_DIR / f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    order_status.write_json(path, doc)
    return 1 if failed else 0


def _tee(argv: list[str]) -> tuple[int, list[str]]:
    """Run a benchmark, its output both shown and kept."""
    lines: list[str] = []
    with subprocess.Popen(
        argv, cwd=gateway.PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
            lines.append(line.rstrip("\n"))
    return proc.returncode, lines
