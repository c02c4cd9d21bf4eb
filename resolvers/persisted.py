"""Persisted operations: a client may send an operation's SHA-256 instead of its text.

Two modes, following the conventions clients already speak:

- **Automatic persisted queries** (`apq`, the default): a request carries
  `extensions: {persistedQuery: {version: 1, sha256Hash}}`. Without a `query`, the hash
  is looked up among the texts this process has seen; if it is unknown the answer is the
  error `PERSISTED_QUERY_NOT_FOUND` (message `PersistedQueryNotFound`), and the client
  sends hash and text together, which registers the text. A text that does not hash to
  the hash sent is refused (`PERSISTED_QUERY_HASH_MISMATCH`) and not stored. The store is
  per process and bounded in bytes (the oldest go first): a miss only costs a retry.
- **Trusted documents** (`trusted`): only the operations of a manifest the operator
  deploys (`{"<sha256>": "<text>", …}`, as GraphQL Codegen and Relay write them) run,
  sent by hash or as their exact text; anything else is refused (`OPERATION_NOT_TRUSTED`).
  Nothing is registered at run time.

`off` ignores nothing: a request that asks for a persisted query is told
`PERSISTED_QUERY_NOT_SUPPORTED`. The same check runs for HTTP and WebSocket operations
(resolvers/prepared.py calls it before anything else).
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

APQ_STORE_BYTES = 8 * 1024 * 1024  # texts kept per process for automatic persisted queries
_SHA256 = re.compile(r"[0-9a-f]{64}")


class Mode(enum.StrEnum):
    OFF = "off"
    APQ = "apq"
    TRUSTED = "trusted"


class PersistedError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def load_manifest(path: Path) -> dict[str, str]:
    """A trusted-documents manifest: a JSON object of SHA-256 hex digest -> operation
    text. Every entry is checked, so a stale or edited manifest fails at start-up."""
    entries = json.loads(path.read_text())
    if not isinstance(entries, dict):
        raise ValueError(f"{path}: expected a JSON object of sha256 -> operation text")
    for digest, text in entries.items():
        if not isinstance(text, str) or sha256(text) != digest:
            raise ValueError(f"{path}: the entry {digest!r} is not the SHA-256 of its text")
    return entries


class PersistedOperations:
    def __init__(
        self,
        mode: Mode = Mode.APQ,
        trusted: Mapping[str, str] | None = None,
        store_bytes: int = APQ_STORE_BYTES,
    ) -> None:
        if mode is Mode.TRUSTED and trusted is None:
            raise ValueError("trusted documents need a manifest")
        self.mode = mode
        self._trusted = dict(trusted or {})
        self._store: OrderedDict[str, str] = OrderedDict()
        self._store_bytes = store_bytes
        self._held = 0

    def resolve(self, query: str | None, extensions: Mapping[str, Any] | None) -> str | None:
        """The operation text to run; raises PersistedError when the request may not run."""
        asked = (extensions or {}).get("persistedQuery")
        if asked is None:
            if self.mode is Mode.TRUSTED and query is not None:
                self._require_trusted(sha256(query))
            return query
        digest = self._digest(asked)
        if query is None:
            found = self._trusted.get(digest) if self.mode is Mode.TRUSTED else self._hit(digest)
            if found is None:
                raise PersistedError("PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound")
            return found
        if sha256(query) != digest:
            raise PersistedError(
                "PERSISTED_QUERY_HASH_MISMATCH", "the query's SHA-256 is not the hash sent"
            )
        if self.mode is Mode.TRUSTED:
            self._require_trusted(digest)
        else:
            self._keep(digest, query)
        return query

    def _require_trusted(self, digest: str) -> None:
        if digest not in self._trusted:
            raise PersistedError(
                "OPERATION_NOT_TRUSTED", "only registered operations run on this server"
            )

    def _digest(self, asked: object) -> str:
        if self.mode is Mode.OFF:
            raise PersistedError(
                "PERSISTED_QUERY_NOT_SUPPORTED", "persisted queries are off on this server"
            )
        if not isinstance(asked, dict) or asked.get("version") != 1:
            raise PersistedError(
                "PERSISTED_QUERY_NOT_SUPPORTED", "persistedQuery.version must be 1"
            )
        digest = asked.get("sha256Hash")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise PersistedError(
                "PERSISTED_QUERY_INVALID", "persistedQuery.sha256Hash must be 64 lowercase hex"
            )
        return digest

    def _hit(self, digest: str) -> str | None:
        found = self._store.get(digest)
        if found is not None:
            self._store.move_to_end(digest)
        return found

    def _keep(self, digest: str, query: str) -> None:
        size = len(query.encode())
        if digest in self._store or size > self._store_bytes:
            return
        self._store[digest] = query
        self._held += size
        while self._held > self._store_bytes:
            _, dropped = self._store.popitem(last=False)
            self._held -= len(dropped.encode())
