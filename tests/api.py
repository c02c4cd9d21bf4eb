"""Shared helpers for the end-to-end tests: the ASGI app driven through the `gql` client.

The fixtures built on these live in `tests/api_plugin.py`; a test module loads them with
`pytest_plugins = ("tests.api_plugin",)`. They are a separate module because pytest must
import a plugin itself to rewrite its asserts, and test modules import this one first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport
from starlette.applications import Starlette
from strawberry.relay import to_base64

from server.app import create_app
from server.settings import Settings

URL = "http://gateway.test/graphql"
CLI = str(Path(sys.executable).with_name("trade-assurance"))
ROOT = Path(__file__).resolve().parent.parent

Vars = dict[str, Any] | None


def make_app(**overrides: Any) -> Starlette:
    """The gateway app from the environment's settings, with some of them replaced."""
    return create_app(dataclasses.replace(Settings.from_env(), **overrides))


def gid(type_name: str, node_id: int | str) -> str:
    """A Relay global ID, as the API hands them out."""
    return to_base64(type_name, node_id)


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


@dataclasses.dataclass
class Api:
    """Sends GraphQL operations to one app through gql's httpx transport."""

    app: Starlette

    def client(self) -> Client:
        transport = HTTPXAsyncTransport(url=URL, transport=httpx.ASGITransport(app=self.app))
        return Client(transport=transport)

    async def _run(self, query: str, variables: Vars, token: str | None) -> dict[str, Any]:
        async with self.client() as session:
            request = GraphQLRequest(query, variable_values=variables)
            data: dict[str, Any] = await session.execute(
                request, extra_args={"headers": bearer(token)}
            )
            return data

    async def data(self, query: str, variables: Vars = None, token: str | None = None) -> Any:
        """The `data` of a successful operation (gql raises on any GraphQL error)."""
        return await self._run(query, variables, token)

    async def errors(
        self, query: str, variables: Vars = None, token: str | None = None
    ) -> list[dict[str, Any]]:
        """The top-level GraphQL errors of an operation that must fail."""
        with pytest.raises(TransportQueryError) as failure:
            await self._run(query, variables, token)
        assert failure.value.errors, failure.value
        return failure.value.errors

    async def http(self, method: str, path: str = "/graphql", **kwargs: Any) -> httpx.Response:
        """A raw HTTP exchange, for status codes and bodies gql does not expose."""
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as c:
            return await c.request(method, path, **kwargs)

    async def post(self, query: str, token: str | None = None, **headers: str) -> httpx.Response:
        return await self.http("POST", json={"query": query}, headers={**bearer(token), **headers})


def codes(errors: list[dict[str, Any]]) -> list[str | None]:
    """The `extensions.code` of each top-level GraphQL error."""
    return [(e.get("extensions") or {}).get("code") for e in errors]


# --- a real gateway process, for WebSocket and CLI tests ---------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli_env(**overrides: str) -> dict[str, str]:
    """The test database's environment (TA_DATA_DIR or DATABASE_URL, set by conftest)."""
    return {
        **os.environ,
        "TA_LOG_LEVEL": "warning",
        "TA_SCHEDULER_INTERVAL_SECONDS": "0",  # tests run the sweep themselves
        **overrides,
    }


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own console script
        [CLI, *args], env=env or cli_env(), capture_output=True, text=True, timeout=120, cwd=ROOT
    )


@dataclasses.dataclass
class Server:
    process: subprocess.Popen[str]
    port: int
    # The process's output goes to this file, not a pipe: a pipe nobody reads fills up
    # (a few hundred log lines) and the server stalls writing to it.
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", timeout=5)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> str:
        """Stop the process (if running) and return everything it printed."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.output()


def start_server(
    env: dict[str, str] | None = None, port: int | None = None, log: Path | None = None
) -> Server:
    """A gateway process on `port` (a free one by default; the same port again restarts it
    where clients expect it), its output in `log` (a temporary file by default)."""
    port = port or free_port()
    if log is None:
        log = Path(tempfile.mkdtemp(prefix="ta-server-")) / "output.log"
    with log.open("w") as out:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [CLI, "serve", "--port", str(port)],
            env=env or cli_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )
    return Server(process, port, log)


@contextlib.contextmanager
def serving(**env: str) -> Iterator[Server]:
    """A ready gateway process on the test database with these settings, stopped after."""
    server = start_server(cli_env(**env))
    try:
        assert wait_ready(server), server.stop()
        yield server
    finally:
        server.stop()


def wait_ready(server: Server, timeout: float = 30) -> bool:
    """True once /readyz says ready; False if the process exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        try:
            if server.get("/readyz").status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"gateway not ready after {timeout}s")
