"""A GraphQL load generator that runs in its own process.

Separate from the benchmark's own process so the client's CPU work never shares an
interpreter (or a GIL) with the orchestration, and never runs inside the server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import multiprocessing
import operator
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import httpx

from bench import progress

MAX_FAILURE_SAMPLES = 10


@dataclasses.dataclass
class LoadResult:
    # Measured requests only (warm-up excluded); `payload_of[i]` indexes the payload list.
    latencies_ms: list[float]
    payload_of: list[int]
    elapsed_s: float
    failures: int  # warm-up included: a broken query is broken whenever it happens
    failure_samples: list[str]
    edges_of: dict[int, int]  # payload index -> result count of its last response

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.elapsed_s if self.elapsed_s else 0.0


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (no interpolation): a latency that was actually observed."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def run(
    url: str, payloads: Sequence[dict[str, Any]], *, requests: int, concurrency: int, warmup: int
) -> LoadResult:
    """POST `requests` payloads (rotating) to `url` from a fresh process; blocks until done."""
    spawn = multiprocessing.get_context("spawn")  # no forked copies of parent state
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        return pool.submit(_worker, url, list(payloads), requests, concurrency, warmup).result()


def _worker(
    url: str, payloads: list[dict[str, Any]], requests: int, concurrency: int, warmup: int
) -> LoadResult:
    return asyncio.run(_drive(url, payloads, requests, concurrency, warmup))


async def _drive(
    url: str, payloads: list[dict[str, Any]], requests: int, concurrency: int, warmup: int
) -> LoadResult:
    bodies = [json.dumps(p).encode() for p in payloads]
    result = LoadResult([], [], 0.0, 0, [], {})
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(limits=limits, timeout=30.0, headers=headers) as client:

        async def phase(total: int, measured: bool) -> None:
            counter = iter(range(total))

            async def one_worker() -> None:
                # Workers share one iterator, so exactly `total` requests go out in all.
                for n in counter:
                    k = n % len(bodies)
                    started = time.perf_counter()
                    problem, edges = await _post(client, url, bodies[k])
                    took_ms = (time.perf_counter() - started) * 1000
                    if problem is not None:
                        result.failures += 1
                        if len(result.failure_samples) < MAX_FAILURE_SAMPLES:
                            result.failure_samples.append(f"query #{k}: {problem}")
                    else:
                        result.edges_of[k] = edges
                    if measured:
                        result.latencies_ms.append(took_ms)
                        result.payload_of.append(k)

            # The bar reads how far the shared iterator got: nothing more per request.
            label = f"{'measuring' if measured else 'warming up'} at {concurrency}"
            sent = lambda: total - operator.length_hint(counter)  # noqa: E731
            async with progress.watch(total, label, "req", sent):
                await asyncio.gather(*(one_worker() for _ in range(concurrency)))

        await phase(warmup, measured=False)
        started = time.perf_counter()
        await phase(requests, measured=True)
        result.elapsed_s = time.perf_counter() - started
    return result


async def _post(client: httpx.AsyncClient, url: str, body: bytes) -> tuple[str | None, int]:
    """(what went wrong or None, number of edges in the answer)."""
    try:
        resp = await client.post(url, content=body)
    except httpx.HTTPError as e:
        return f"{type(e).__name__}: {e}", 0
    if resp.status_code != 200:
        return f"HTTP {resp.status_code}: {resp.text[:300]}", 0
    try:
        doc = resp.json()
    except ValueError:
        return f"not JSON: {resp.text[:300]}", 0
    if not isinstance(doc, dict) or "errors" in doc or not doc.get("data"):
        return f"GraphQL errors: {json.dumps(doc)[:300]}", 0
    # Every payload asks for a single root connection; count what it returned.
    root = next(iter(doc["data"].values()), None)
    edges = root.get("edges") if isinstance(root, dict) else None
    return None, len(edges) if isinstance(edges, list) else 0
