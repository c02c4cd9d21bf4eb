"""The ceiling and peer servers as their own uvicorn processes, and process memory."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench import gateway


@contextlib.contextmanager
def serve(app: str, engine: str, location: str, log_path: Path) -> Iterator[tuple[str, int]]:
    """`app` ("bench.ceiling_app" or "bench.peer_app") under uvicorn with its defaults, as
    the gateway runs (uvloop and httptools when installed); yields (base URL, pid)."""
    port = gateway.free_port()
    base = f"http://127.0.0.1:{port}"
    env = gateway.gateway_env(BENCH_READS_ENGINE=engine, BENCH_READS_LOCATION=location)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                f"{app}:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=gateway.PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + gateway.READY_TIMEOUT_S
            with httpx.Client(timeout=2.0) as client:
                while True:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"{app} did not start:\n{gateway.tail(log_path)}")
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get(f"{base}/readyz").status_code == 200:
                            break
                    time.sleep(0.1)
            yield base, proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == str(pid):  # the parent pid
            found.append(int(stat.parent.name))
    return found


def rss_mb(pid: int | None) -> float | None:
    """Resident size (VmRSS) of the process and its children (uvicorn's workers), in MB."""
    if pid is None:
        return None
    total_kb = 0
    for p in [pid, *_children(pid)]:
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
    return total_kb / 1024 if total_kb else None
