"""Persisted operations (resolvers/persisted.py): automatic persisted queries and trusted
documents, over HTTP and over the WebSocket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport
from graphql import parse, print_ast

from models.tables import ApiKey
from resolvers.persisted import Mode, PersistedError, PersistedOperations, load_manifest, sha256
from server.settings import Settings
from tests import factories
from tests.api import Api, Server, bearer, make_app, serving

VIEWER = "query Viewer { viewer { role } }"
CREATE_KEY = 'mutation { createApiKey(input: {name: "x", scopes: [READ]}) { secret } }'
EVENTS = "subscription { orderEvents { cursor } }"


def _persisted(digest: str, version: int = 1) -> dict[str, Any]:
    return {"persistedQuery": {"version": version, "sha256Hash": digest}}


async def _send(api: Api, token: str | None = None, **body: Any) -> dict[str, Any]:
    response = await api.http("POST", json=body, headers=bearer(token))
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _code(answer: dict[str, Any]) -> str:
    assert answer.get("data") is None, answer
    code: str = answer["errors"][0]["extensions"]["code"]
    return code


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    # gql sends documents as graphql-core prints them: the WebSocket test's texts.
    texts = [VIEWER, print_ast(parse(VIEWER))]
    path = tmp_path / "trusted.json"
    path.write_text(json.dumps({sha256(text): text for text in texts}))
    return path


def _trusted_app(manifest: Path) -> Api:
    return Api(make_app(persisted_operations="trusted", trusted_documents=str(manifest)))


async def test_automatic_persisted_queries_register_then_run_by_hash() -> None:
    api = Api(make_app())
    buyer = await factories.buyer()
    digest = sha256(VIEWER)
    miss = await _send(api, buyer.token, extensions=_persisted(digest))
    assert _code(miss) == "PERSISTED_QUERY_NOT_FOUND"
    assert miss["errors"][0]["message"] == "PersistedQueryNotFound"  # what clients match
    registered = await _send(api, buyer.token, query=VIEWER, extensions=_persisted(digest))
    assert registered == {"data": {"viewer": {"role": "BUYER"}}}
    by_hash = await _send(api, buyer.token, extensions=_persisted(digest))
    assert by_hash == registered
    # The plain text still runs without any extension.
    assert await _send(api, buyer.token, query=VIEWER) == registered


async def test_a_hash_that_does_not_match_its_text_is_refused_and_not_stored() -> None:
    api = Api(make_app())
    buyer = await factories.buyer()
    wrong = sha256(VIEWER + " ")
    answer = await _send(api, buyer.token, query=CREATE_KEY, extensions=_persisted(wrong))
    assert _code(answer) == "PERSISTED_QUERY_HASH_MISMATCH"
    assert await ApiKey.count() == 0  # nothing ran
    again = await _send(api, buyer.token, extensions=_persisted(wrong))
    assert _code(again) == "PERSISTED_QUERY_NOT_FOUND"


@pytest.mark.parametrize(
    ("extensions", "code"),
    [
        (_persisted(sha256(VIEWER), version=2), "PERSISTED_QUERY_NOT_SUPPORTED"),
        (_persisted("ABC"), "PERSISTED_QUERY_INVALID"),
        ({"persistedQuery": "yes"}, "PERSISTED_QUERY_NOT_SUPPORTED"),
    ],
)
async def test_malformed_persisted_query_requests_get_their_own_code(
    extensions: dict[str, Any], code: str
) -> None:
    assert _code(await _send(Api(make_app()), query=VIEWER, extensions=extensions)) == code


async def test_persisted_queries_can_be_turned_off() -> None:
    api = Api(make_app(persisted_operations="off"))
    answer = await _send(api, query=VIEWER, extensions=_persisted(sha256(VIEWER)))
    assert _code(answer) == "PERSISTED_QUERY_NOT_SUPPORTED"
    assert await _send(api, query=VIEWER) == {"data": {"viewer": None}}


async def test_trusted_documents_run_only_the_manifests_operations(manifest: Path) -> None:
    api = _trusted_app(manifest)
    buyer = await factories.buyer()
    expected = {"data": {"viewer": {"role": "BUYER"}}}
    assert await _send(api, buyer.token, extensions=_persisted(sha256(VIEWER))) == expected
    assert await _send(api, buyer.token, query=VIEWER) == expected  # its exact text
    for body in (
        {"query": CREATE_KEY},  # an unregistered text
        {"query": CREATE_KEY, "extensions": _persisted(sha256(CREATE_KEY))},  # registering
        {"query": VIEWER + " "},  # not byte for byte
    ):
        assert _code(await _send(api, buyer.token, **body)) == "OPERATION_NOT_TRUSTED"
    unknown = await _send(api, buyer.token, extensions=_persisted(sha256(CREATE_KEY)))
    assert _code(unknown) == "PERSISTED_QUERY_NOT_FOUND"
    assert await ApiKey.count() == 0


@pytest.fixture
def trusted_server(manifest: Path, database: None) -> Iterator[Server]:
    with serving(TA_PERSISTED_OPERATIONS="trusted", TA_TRUSTED_DOCUMENTS=str(manifest)) as server:
        yield server


async def test_trusted_documents_hold_over_the_websocket(trusted_server: Server) -> None:
    buyer = await factories.buyer()
    transport = WebsocketsTransport(
        url=trusted_server.ws_url,
        init_payload={"Authorization": f"Bearer {buyer.token}"},
        connect_timeout=5,
        ack_timeout=5,
    )
    async with Client(transport=transport) as session:
        assert await session.execute(GraphQLRequest(VIEWER)) == {"viewer": {"role": "BUYER"}}
        with pytest.raises(TransportQueryError) as refused:
            async for _ in session.subscribe(
                GraphQLRequest("subscription { orderEvents { cursor } }")
            ):
                pass
        assert refused.value.errors
        assert refused.value.errors[0]["extensions"]["code"] == "OPERATION_NOT_TRUSTED"


def test_the_automatic_store_is_bounded_oldest_first() -> None:
    store = PersistedOperations(Mode.APQ, store_bytes=40)
    texts = [f"{{ viewer {{ role }} }} # {n:02}" for n in range(3)]  # 25 bytes each
    for text in texts:
        store.resolve(text, _persisted(sha256(text)))
    assert store.resolve(None, _persisted(sha256(texts[2]))) == texts[2]
    with pytest.raises(PersistedError) as evicted:
        store.resolve(None, _persisted(sha256(texts[0])))
    assert evicted.value.code == "PERSISTED_QUERY_NOT_FOUND"


def test_a_manifest_entry_that_is_not_its_texts_hash_fails_at_start(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({sha256(VIEWER): CREATE_KEY}))
    with pytest.raises(ValueError, match="not the SHA-256 of its text"):
        load_manifest(path)


def test_trusted_mode_needs_a_manifest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TA_PERSISTED_OPERATIONS", "trusted")
    monkeypatch.delenv("TA_TRUSTED_DOCUMENTS", raising=False)
    with pytest.raises(ValueError, match="TA_TRUSTED_DOCUMENTS"):
        Settings.from_env()
    monkeypatch.setenv("TA_PERSISTED_OPERATIONS", "sometimes")
    with pytest.raises(ValueError, match="one of off, apq, trusted"):
        Settings.from_env()
