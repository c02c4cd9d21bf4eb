"""What the GraphQL layer tells operators: Prometheus metrics per operation and per error
code, and the request being served (for the access log and every log line under it).

One operation-level extension does the measuring; there are no per-field hooks, so a
query costs the same however many fields it selects. The server (server/metrics.py)
exposes the registry at /metrics and adds its own families (subscriptions, sweeps, the
ledger check).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import re
import time
from collections.abc import Iterable, Iterator

from graphql import GraphQLError
from prometheus_client import Counter, Histogram
from strawberry.extensions import SchemaExtension

from models.accounts import Principal

OPERATIONS = Histogram(
    "ta_graphql_operation_duration_seconds",
    "GraphQL operations by name and type, and how long each took (a subscription: how "
    "long its stream lived). The _count is the number of operations.",
    ["operation_name", "operation_type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
GRAPHQL_ERRORS = Counter(
    "ta_graphql_errors_total",
    "Top-level GraphQL errors by extensions.code (malformed requests, authentication).",
    ["code"],
)
BUSINESS_ERRORS = Counter(
    "ta_business_errors_total",
    "Refused mutations: the `errors { code }` of mutation payloads, by code.",
    ["code"],
)

# Client-chosen names become label values: keep their shape and their number bounded, or
# one caller sending random names would grow every scrape (and the server's memory).
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_OPERATION_NAMES = 500
_names: set[str] = set()
_timers: dict[tuple[str | None, str], Histogram] = {}  # (name, kind) -> OPERATIONS' child


def label_for(name: str | None) -> str:
    """The label for an operation name: `anonymous`, the name, or `other`."""
    if not name:
        return "anonymous"
    if name in _names:
        return name
    if _NAME.fullmatch(name) is None or len(_names) >= MAX_OPERATION_NAMES:
        return "other"
    _names.add(name)
    return name


def count_business_error(code: str) -> None:
    BUSINESS_ERRORS.labels(code).inc()


def _error_code(error: GraphQLError, parsed: bool) -> str:
    code = (error.extensions or {}).get("code")
    if isinstance(code, str) and _NAME.fullmatch(code):
        return code
    if not parsed:
        return "GRAPHQL_PARSE_FAILED"
    # Without a path it was raised before execution: validation or variable coercion.
    return "GRAPHQL_VALIDATION_FAILED" if error.path is None else "INTERNAL_SERVER_ERROR"


# --- the request being served ------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class RequestInfo:
    """One HTTP request or WebSocket connection. The ASGI middleware creates it; the
    GraphQL extension fills in the operation. Mutated in place, so what a callee writes
    is seen by the middleware however contexts were copied in between."""

    request_id: str
    operation: str | None = None
    principal: Principal | None = None  # who was authenticated, once known


current_request: contextvars.ContextVar[RequestInfo | None] = contextvars.ContextVar(
    "ta_current_request", default=None
)


class OperationMetrics(SchemaExtension):
    """Times each operation and counts its top-level errors by code."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:  # a subscription's stream ends by cancellation: count it all the same
            self._record(time.perf_counter() - started)

    def _record(self, elapsed: float) -> None:
        context = self.execution_context
        document = context.graphql_document
        kind = "unknown"  # a document that did not parse, or names no such operation
        if document is not None:
            with contextlib.suppress(RuntimeError):
                kind = context.operation_type.value
        record_operation(
            context.operation_name,
            kind,
            elapsed,
            # The original errors: MaskErrors replaces the result's list, not this one.
            context.pre_execution_errors,
            getattr(context.context, "principal", None),
            parsed=document is not None,
        )


def record_operation(
    name: str | None,
    kind: str,
    elapsed: float,
    errors: Iterable[GraphQLError] | None,
    principal: Principal | None,
    *,
    parsed: bool = True,
) -> None:
    """One operation done: its metrics, and its name and caller for the access log. The
    extension calls it, and so does the prepared path (resolvers/prepared.py), which
    skips the extensions."""
    info = current_request.get()
    if info is not None:
        if name:
            info.operation = name if _NAME.fullmatch(name) else "other"
        if principal is not None:
            info.principal = principal
    timer = _timers.get((name, kind))
    if timer is None:  # prometheus-client's look-up per label set, once per name and kind
        timer = OPERATIONS.labels(label_for(name), kind)
        if len(_timers) < MAX_OPERATION_NAMES:
            _timers[(name, kind)] = timer
    timer.observe(elapsed)
    for error in errors or ():
        GRAPHQL_ERRORS.labels(_error_code(error, parsed)).inc()
