"""Fresh databases and a real gateway process (`trade-assurance serve`) for benchmarks."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import asyncpg
import httpx

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The venv's console scripts, so the benchmark runs the gateway it was installed with.
CLI = str(Path(sysconfig.get_path("scripts")) / "trade-assurance")
READY_TIMEOUT_S = 60.0


def gateway_env(**overrides: str) -> dict[str, str]:
    """The caller's environment without database settings, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TA_DATA_DIR")}
    env.update(overrides)
    return env


async def recreate_postgres_database(url: str) -> None:
    """Drop and create the database named in `url`, via the server's `postgres` database."""
    parts = urlparse(url)
    name = parts.path.lstrip("/")
    if not name or name == "postgres":
        raise ValueError(f"refusing to recreate database {name!r}: name a scratch database")
    admin = await asyncpg.connect(urlunparse(parts._replace(path="/postgres")))
    try:
        ident = '"' + name.replace('"', '""') + '"'
        await admin.execute(f"DROP DATABASE IF EXISTS {ident} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {ident}")
    finally:
        await admin.close()


# No deadline sweeps or ledger checks (one runs at start-up) among measured statements.
NO_BACKGROUND_JOBS = {"TA_SCHEDULER_INTERVAL_SECONDS": "0", "TA_LEDGER_CHECK_MINUTES": "0"}


def become(env: Mapping[str, str], **overrides: str) -> None:
    """A spawned bench process takes on the gateway's environment and directory, before
    its first import of piccolo_conf (which reads them), to run the gateway's code itself."""
    os.environ.clear()
    os.environ.update(env)
    os.environ.update(overrides)
    os.chdir(PROJECT_ROOT)


def migrate(env: Mapping[str, str]) -> None:
    done = subprocess.run(
        [CLI, "migrate"], env=dict(env), cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"`trade-assurance migrate` failed:\n{done.stdout}{done.stderr}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(env: Mapping[str, str], log_path: Path, *, workers: int = 1) -> Iterator[str]:
    """Run the gateway (`workers` processes) until the block ends (also on error); yields
    its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
            env={**env, "TA_LOG_LEVEL": "warning"},
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_ready(proc, base, log_path)
            yield base
        finally:
            _stop(proc)


def _wait_ready(proc: subprocess.Popen[bytes], base: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {proc.returncode}:\n{tail(log_path)}")
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{base}/readyz").status_code == 200:
                    return
            time.sleep(0.1)
    raise RuntimeError(f"gateway not ready after {READY_TIMEOUT_S:.0f} s:\n{tail(log_path)}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()  # uvicorn shuts down gracefully on SIGTERM
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        print("gateway ignored SIGTERM; killing it", file=sys.stderr)
        proc.kill()
        proc.wait()


def gateway_pid(port: int) -> int | None:
    """The `trade-assurance serve --port <port>` process (Linux /proc), if found."""
    if not Path("/proc").is_dir():
        return None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in argv and b"--port" in argv and str(port).encode() in argv:
            return int(entry.name)
    return None


def tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time so far of a process and its live children (uvicorn's worker
    processes), from /proc/<pid>/stat."""
    if pid is None:
        return None
    total = 0
    found = False
    for stat_path in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = stat_path.read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after the command name: state is field 3
        if stat_path.parent.name == str(pid) or fields[1] == str(pid):  # itself, or a child
            found = found or stat_path.parent.name == str(pid)
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK") if found else None


def machine_busy() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine so far, every core (/proc/stat): the
    share of the cores in use between two readings, whoever used them."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / tick, sum(fields) / tick
