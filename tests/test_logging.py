"""Structured logs and the request id, against a real uvicorn gateway: the X-Request-ID
header on every response, JSON lines carrying it, and no secret in them."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from resolvers.observability import RequestInfo, current_request
from server.logs import RequestIdFilter, log_config
from tests import factories
from tests.api import Server, cli_env, start_server, wait_ready

GENERATED = re.compile(r"[0-9a-f]{32}")
LOG_IN = """mutation LogIn($email: String!, $password: String!) {
  login(input: {email: $email, password: $password}) { token errors { code } } }"""


@pytest.fixture(scope="module")
def logged(
    database: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Path]]:
    log = tmp_path_factory.mktemp("logs") / "gateway.log"
    env = cli_env(TA_LOG_LEVEL="info", TA_LOG_FORMAT="json", TA_MAX_BODY_BYTES="4000")
    server = start_server(env, log=log)
    try:
        assert wait_ready(server), log.read_text()
        yield server, log
    finally:
        server.stop()


def lines(log: Path) -> list[dict[str, Any]]:
    """Every line the gateway wrote after start-up's banner: each must be a JSON object."""
    out = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def access_line(log: Path, request_id: str, message: str = "") -> dict[str, Any]:
    """The access line of a request, once the server has written it (it comes after the
    response, so poll)."""
    deadline = time.monotonic() + 10
    while True:
        for entry in lines(log):
            if (
                entry.get("logger") == "trade_assurance.access"
                and entry.get("request_id") == request_id
                and message in entry["message"]
            ):
                return entry
        assert time.monotonic() < deadline, f"no access line for {request_id}"
        time.sleep(0.05)


def test_the_request_id_is_echoed_or_generated_on_every_response(
    logged: tuple[Server, Path],
) -> None:
    server, _ = logged
    given = server.get("/healthz")
    assert GENERATED.fullmatch(given.headers["x-request-id"])
    with httpx.Client(base_url=server.base, timeout=5) as client:
        echoed = client.get("/healthz", headers={"X-Request-ID": "probe-1.a_B"})
        assert echoed.headers["x-request-id"] == "probe-1.a_B"
        for insane in ["x" * 65, "has space", "semi;colon"]:
            replaced = client.get("/healthz", headers={"X-Request-ID": insane})
            assert GENERATED.fullmatch(replaced.headers["x-request-id"]), insane
        missing = client.get("/no/such/page", headers={"X-Request-ID": "lost-404"})
        assert missing.status_code == 404 and missing.headers["x-request-id"] == "lost-404"
        too_large = client.post(
            "/graphql",
            content=json.dumps({"query": "{ __typename }", "pad": "x" * 5000}),
            headers={"Content-Type": "application/json", "X-Request-ID": "big-413"},
        )
        assert too_large.status_code == 413 and too_large.headers["x-request-id"] == "big-413"
        refused = client.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers={"Authorization": "Bearer tat_nonsense", "X-Request-ID": "bad-401"},
        )
        assert refused.status_code == 401 and refused.headers["x-request-id"] == "bad-401"


async def test_access_lines_are_json_with_the_request_id_and_no_secrets(
    logged: tuple[Server, Path],
) -> None:
    server, log = logged
    buyer = await factories.buyer()
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as client:
        login = await client.post(
            "/graphql",
            json={"query": LOG_IN, "variables": {"email": buyer.email,
                                                 "password": factories.PASSWORD}},
            headers={"X-Request-ID": "login-1"},
        )  # fmt: skip
        token = login.json()["data"]["login"]["token"]
        assert token
        viewer = await client.post(
            "/graphql",
            json={"query": "query Me { viewer { role } }"},
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": "viewer-1"},
        )
        assert viewer.json()["data"]["viewer"]["role"] == "BUYER"

    entry = access_line(log, "login-1")
    assert entry["method"] == "POST" and entry["path"] == "/graphql"
    assert entry["status"] == 200 and entry["operation"] == "LogIn"
    assert isinstance(entry["duration_ms"], float | int) and "time" in entry
    me = access_line(log, "viewer-1")
    assert me["operation"] == "Me"
    assert me["principal"] == f"user:{buyer.principal.user_id}" and me["role"] == "BUYER"

    text = log.read_text()
    for secret in [factories.PASSWORD, token, buyer.token]:
        assert secret not in text
    assert "authorization" not in text.lower()


async def test_websocket_connections_get_a_request_id(logged: tuple[Server, Path]) -> None:
    server, log = logged
    buyer = await factories.buyer()
    async with websockets.connect(
        server.ws_url,
        subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
        additional_headers={"X-Request-ID": "socket-7"},
    ) as socket:
        assert socket.response is not None
        assert socket.response.headers["x-request-id"] == "socket-7"
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {buyer.token}"}}
        await socket.send(json.dumps(init))
        assert json.loads(await socket.recv())["type"] == "connection_ack"
    assert access_line(log, "socket-7", "websocket connected")["path"] == "/graphql"
    closed = access_line(log, "socket-7", "websocket closed")
    assert closed["principal"] == f"user:{buyer.principal.user_id}"
    assert closed["close_code"] is not None
    assert buyer.token not in log.read_text()


def test_every_line_written_under_a_request_carries_its_id() -> None:
    """The filter stamps any logger's records, not only the access log's."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("tests.somewhere.deep")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("outside")
        token = current_request.set(RequestInfo("inside-1"))
        try:
            logger.info("inside")
        finally:
            current_request.reset(token)
    finally:
        logger.removeHandler(handler)
    assert [getattr(r, "request_id", "unset") for r in records] == [None, "inside-1"]


def test_text_format_is_available_for_development() -> None:
    config = log_config("text", "debug")
    assert "%(request_id)s" in config["formatters"]["default"]["format"]
    assert config["root"]["level"] == "DEBUG"
    assert config["loggers"]["uvicorn.access"]["propagate"] is False


def test_json_lines_hold_what_the_library_encoder_writes() -> None:
    """server.logs.json_line (orjson) against python-json-logger's own serializer: the same
    JSON value for ASCII and non-ASCII text, timestamps, exceptions, enums and non-string
    keys, and plain ASCII lines either way (non-ASCII escaped, as before)."""
    from pythonjsonlogger.json import JsonFormatter

    config = log_config("json", "info")["formatters"]["default"]
    ours = JsonFormatter(**{k: v for k, v in config.items() if k != "()"})
    library = JsonFormatter(
        **{k: v for k, v in config.items() if k not in ("()", "json_serializer")}
    )
    try:
        raise ValueError("boom")
    except ValueError:
        failure = sys.exc_info()
    cases: list[tuple[str, dict[str, Any], Any]] = [
        ("POST /graphql 200", {"status": 200, "duration_ms": 0.48, "principal": "user:1"}, None),
        ("Lieferant München — 供应商", {"who": "Zoë"}, None),
        ("with an error", {"status": HTTPStatus.OK, "at": Path("orders") / "1"}, failure),
        ("odd keys", {"counts": {1: "one"}}, None),
        ("values", {"on": dt.date(2026, 11, 27), "id": uuid.UUID(int=7), "raw": b"\x00"}, None),
    ]
    for message, extra, exc_info in cases:
        record = logging.getLogger("t").makeRecord(
            "t", logging.INFO, __file__, 1, message, (), exc_info, extra=extra
        )
        record.request_id = "r-1"
        line = ours.format(record)
        assert line.isascii() and "\n" not in line
        assert json.loads(line) == json.loads(library.format(record)), message


async def test_malformed_requests_do_not_log_the_secrets_they_carry(
    logged: tuple[Server, Path],
) -> None:
    # Strawberry logged every error's text at ERROR: a variable's coercion error repeats
    # the whole input (a password, a card number), a validation error the document's line.
    server, log = logged
    secret, card = "MySecretPassw0rd!", "4111111111111111"
    login_with = "mutation($i: LoginInput!) { login(input: $i) { token } }"
    bodies = [
        {"query": login_with, "variables": {"i": {"email": "a@b.c", "password": secret, "x": 1}}},
        {"query": 'mutation { login(input: {email: "a@b.c", password: "' + secret + '"}) '
                  "{ token errorz } }"},
        {"query": "mutation($i: PayOrderInput!) { payOrder(input: $i) { errors { code } } }",
         "variables": {"i": {"orderId": "T3JkZXI6MQ==", "paymentSource": card, "cvc": "1"}}},
    ]  # fmt: skip
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as client:
        for n, body in enumerate(bodies):
            answer = await client.post("/graphql", json=body, headers={"X-Request-ID": f"m-{n}"})
            assert answer.json()["errors"], answer.text
    access_line(log, "m-2")  # written, so the errors' lines would be too
    text = log.read_text()
    assert secret not in text and card not in text
