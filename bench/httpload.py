"""A lean HTTP/1.1 load generator in its own process: keep-alive connections over asyncio
streams, requests pre-encoded, answers checked by status and a byte search only.

httpx costs a few hundred microseconds of client CPU per request, enough to make the
load generator, not a bare Starlette endpoint, the bottleneck on a small machine. This
client spends a few tens. Two modes, as issue 7 asks: a closed loop at some concurrency
for requests/s, and one connection for latency percentiles (a saturated event loop
starves some connections for seconds, which measures the client, not the server).
"""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing
import operator
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from urllib.parse import urlparse

from bench import progress

MAX_FAILURE_SAMPLES = 5


@dataclasses.dataclass
class Result:
    latencies_ms: list[float]
    elapsed_s: float
    failures: int
    failure_samples: list[str]

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.elapsed_s if self.elapsed_s else 0.0


def request_bytes(url: str, body: bytes, headers: dict[str, str]) -> bytes:
    u = urlparse(url)
    head = [
        f"POST {u.path or '/'} HTTP/1.1",
        f"host: {u.netloc}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def run(
    url: str,
    bodies: Sequence[bytes],
    headers: dict[str, str],
    *,
    requests: int,
    concurrency: int,
    warmup: int,
) -> Result:
    """POST the bodies (rotating) from a fresh process; blocks until done."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        job = pool.submit(_worker, url, list(bodies), headers, requests, concurrency, warmup)
        return job.result()


def _worker(
    url: str,
    bodies: list[bytes],
    headers: dict[str, str],
    requests: int,
    concurrency: int,
    warmup: int,
) -> Result:
    return asyncio.run(_drive(url, bodies, headers, requests, concurrency, warmup))


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bytes]:
    """One whole answer: its status code, status line and body (Content-Length framed,
    as uvicorn answers these requests)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, _, rest = head.partition(b"\r\n")
    length = -1
    for line in rest.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length < 0:
        raise ValueError(f"no content-length: {head[:200]!r}")
    body = await reader.readexactly(length)
    return int(status_line.split()[1]), status_line, body


class Connection:
    """One keep-alive connection, one exchange at a time: for clients that read the
    answers (the money path chains each step's order id into the next)."""

    def __init__(self, url: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.url, self.reader, self.writer = url, reader, writer

    @classmethod
    async def open(cls, url: str) -> Connection:
        u = urlparse(url)
        reader, writer = await asyncio.open_connection(u.hostname, u.port)
        return cls(url, reader, writer)

    async def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        self.writer.write(request_bytes(self.url, body, headers))
        status, _, answer = await read_response(self.reader)
        return status, answer

    def close(self) -> None:
        self.writer.close()


async def _one(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> str | None:
    """Send one request, read its whole answer; what went wrong, or None."""
    writer.write(request)
    status, status_line, body = await read_response(reader)
    if status != 200:
        return f"{status_line.decode()}: {body[:300]!r}"
    if body.startswith(b'{"errors"') or b'"errors":[' in body[-2000:]:
        return f"GraphQL errors: {body[:300]!r}"
    return None


async def _drive(
    url: str,
    bodies: list[bytes],
    headers: dict[str, str],
    requests: int,
    concurrency: int,
    warmup: int,
) -> Result:
    u = urlparse(url)
    encoded = [request_bytes(url, b, headers) for b in bodies]
    result = Result([], 0.0, 0, [])
    conns = [await asyncio.open_connection(u.hostname, u.port) for _ in range(concurrency)]

    async def phase(total: int, measured: bool) -> None:
        counter = iter(range(total))

        async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            for n in counter:  # shared: exactly `total` requests in all
                started = time.perf_counter()
                try:
                    problem = await _one(reader, writer, encoded[n % len(encoded)])
                except (OSError, asyncio.IncompleteReadError, ValueError) as e:
                    problem = f"{type(e).__name__}: {e}"
                took_ms = (time.perf_counter() - started) * 1000
                if problem is not None:
                    result.failures += 1
                    if len(result.failure_samples) < MAX_FAILURE_SAMPLES:
                        result.failure_samples.append(problem)
                    return  # this connection's stream is in an unknown state
                if measured:
                    result.latencies_ms.append(took_ms)

        # The bar reads how far the shared iterator got: nothing more per request.
        label = f"{'measuring' if measured else 'warming up'} at {concurrency}"
        sent = lambda: total - operator.length_hint(counter)  # noqa: E731
        async with progress.watch(total, label, "req", sent):
            await asyncio.gather(*(worker(rd, wr) for rd, wr in conns))

    try:
        await phase(warmup, measured=False)
        started = time.perf_counter()
        await phase(requests, measured=True)
        result.elapsed_s = time.perf_counter() - started
    finally:
        for _, writer in conns:
            writer.close()
    return result
