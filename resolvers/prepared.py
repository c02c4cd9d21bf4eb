"""Operations already parsed and validated, executed without the per-request extensions.

Strawberry runs every request through its extension machinery: each extension built
anew, its operation, parsing, validation and execution hooks entered and left, the parse
and validation caches hashing the document. For a query text seen before (and valid)
none of that can change the outcome: the depth, alias and token limits and the
validation rules are functions of the text alone. So the first valid run of a text
(and operation name) keeps its document, and later runs go straight to graphql-core's
execution with the same execution context class, with errors processed and masked
exactly as the extensions would (tests/test_prepared.py compares both paths). Measured
with `python -m bench order-status --profile`: see docs/performance.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import strawberry
from graphql import DocumentNode, GraphQLError, execute, get_operation_ast
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.relay.types import GlobalIDValueError
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES, StreamResult
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.types.graphql import OperationType
from strawberry.utils.await_maybe import await_maybe

from models.db import is_transient
from resolvers.observability import record_operation
from resolvers.persisted import PersistedError, PersistedOperations
from resolvers.text_input import nul_refusal

MAX_PREPARED = 1024  # distinct operations kept; the oldest goes first
RETRIES = 2  # a mutation hit by a deadlock or a serialization failure runs this often again

_Key = tuple[str, str | None]  # the text and the operation name the request gave


class _Prepared(NamedTuple):
    document: DocumentNode
    kind: OperationType
    name: str | None  # the operation's own name (for the metrics)


log = logging.getLogger("trade_assurance.graphql")


class PreparedSchema(strawberry.Schema):
    """A `strawberry.Schema` that executes operations it has validated before directly.
    `mask` is the schema's MaskErrors extension, applied to the direct path's errors."""

    def __init__(
        self,
        *,
        extensions: Sequence[Callable[[], SchemaExtension]],
        mask: MaskErrors,
        persisted: PersistedOperations,
        **kwargs: Any,
    ) -> None:
        super().__init__(extensions=[*extensions, lambda: _Remember(self)], **kwargs)
        self._mask = mask
        self._persisted = persisted
        self._prepared: dict[_Key, _Prepared] = {}

    def process_errors(
        self, errors: list[GraphQLError], execution_context: Any | None = None
    ) -> None:
        """Instead of Strawberry's logging of every error with its text and the document.

        An error in the caller's input (the document's validation, a variable's coercion,
        a malformed ID) repeats that input, passwords and card numbers included: it is not
        logged (`ta_graphql_errors_total` counts it). A busy or unreachable database
        (answered TRY_AGAIN) gets one line: a restart would flood the log. Anything else
        is logged by class and path, with its traceback."""
        for error in errors:
            original = error.original_error
            if original is None or isinstance(original, GraphQLError | GlobalIDValueError):
                continue
            if is_transient(original):
                log.warning("answered TRY_AGAIN: %s", type(original).__name__)
                continue
            path = ".".join(str(p) for p in error.path or ()) or "(no path)"
            log.error("unexpected %s at %s", type(original).__name__, path, exc_info=original)

    def remember(
        self, key: _Key, document: DocumentNode, kind: OperationType, name: str | None
    ) -> None:
        if len(self._prepared) >= MAX_PREPARED:
            del self._prepared[next(iter(self._prepared))]
        self._prepared[key] = _Prepared(document, kind, name)

    def prepared_kind(self, query: str, operation_name: str | None) -> OperationType | None:
        """The kind of a prepared operation; None if this text and name are not prepared."""
        prepared = self._prepared.get((query, operation_name))
        return None if prepared is None else prepared.kind

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        refusal: GraphQLError | None
        try:
            query = self._persisted.resolve(query, operation_extensions)
        except PersistedError as e:
            refusal = _refusal(e)
        else:
            refusal = nul_refusal(query, variable_values)
        if refusal is not None:
            record_operation(operation_name, "unknown", 0.0, [refusal], None)
            return ExecutionResult(data=None, errors=[refusal], extensions={})
        for attempt in range(1, RETRIES + 2):
            result = await self._execute_once(
                query,
                variable_values,
                context_value,
                root_value,
                operation_name,
                allowed_operation_types,
                operation_extensions,
            )
            if attempt > RETRIES or not self._may_run_again(result, query, operation_name):
                return result
            await asyncio.sleep(0.01 * 2**attempt)  # let the other transaction finish
            forget = getattr(context_value, "forget_loads", None)
            if forget is not None:
                forget()  # nothing read by the failed attempt is reused
        raise AssertionError("unreachable")

    def _may_run_again(
        self, result: ExecutionResult, query: str | None, operation_name: str | None
    ) -> bool:
        """A mutation of one root field refused only because its transaction hit a deadlock
        or a serialization failure: rolled back, nothing done, safe to run again (money
        mutations also carry idempotency keys)."""
        errors = result.errors or []
        if not errors or any(not (e.extensions or {}).get("retryable") for e in errors):
            return False
        prepared = self._prepared.get((query, operation_name)) if query else None
        if prepared is None or prepared.kind is not OperationType.MUTATION:
            return False
        operation = get_operation_ast(prepared.document, operation_name)
        return operation is not None and len(operation.selection_set.selections) == 1

    async def _execute_once(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None,
        context_value: Any | None,
        root_value: Any | None,
        operation_name: str | None,
        allowed_operation_types: Iterable[OperationType] | None,
        operation_extensions: dict[str, Any] | None,
    ) -> ExecutionResult:
        prepared = self._prepared.get((query, operation_name)) if query else None
        allowed = allowed_operation_types or DEFAULT_ALLOWED_OPERATION_TYPES
        if prepared is None or prepared.kind not in allowed:
            # First sight, invalid, or not allowed here (a mutation over GET): the full
            # path, which validates, refuses and reports as always.
            return await super().execute(
                query,
                variable_values,
                context_value,
                root_value,
                operation_name,
                allowed_operation_types,
                operation_extensions,
            )
        started = time.perf_counter()
        result = await await_maybe(
            execute(
                self._schema,
                prepared.document,
                root_value=root_value,
                context_value=context_value,
                variable_values=variable_values,
                operation_name=operation_name,
                executor_class=self.execution_context_class,
                is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]
                operation_extensions=operation_extensions,
            )
        )
        errors: list[GraphQLError] | None = result.errors
        record_operation(
            prepared.name,
            prepared.kind.value,
            time.perf_counter() - started,
            errors,
            getattr(context_value, "principal", None),
        )  # what the OperationMetrics extension does on the full path
        if errors:
            self._process_errors(errors)  # logs them, drops field suggestions
            errors = self._mask._process_errors(errors)
        return ExecutionResult(data=result.data, errors=errors, extensions={})

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> StreamResult:
        # Subscriptions (and WebSocket queries): only the persisted-operation check here.
        try:
            query = self._persisted.resolve(query, operation_extensions)
        except PersistedError as e:
            return _refused(_refusal(e))
        refusal = nul_refusal(query, variable_values)
        if refusal is not None:
            return _refused(refusal)
        return await super().stream(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            operation_extensions,
            allowed_operation_types,
        )


def _refusal(e: PersistedError) -> GraphQLError:
    return GraphQLError(e.message, extensions={"code": e.code})


async def _refused(refusal: GraphQLError) -> StreamResult:
    yield PreExecutionError(data=None, errors=[refusal])


class _Remember(SchemaExtension):
    """The last extension: after a validation without errors, the document is kept."""

    def __init__(self, schema: PreparedSchema) -> None:
        self._schema = schema

    def on_validate(self) -> Iterator[None]:
        yield
        context = self.execution_context
        document = context.graphql_document
        if context.query is None or document is None or context.pre_execution_errors:
            return
        try:
            kind = context.operation_type
        except RuntimeError:  # no such operation name: let the full path say so
            return
        # The name the request gave (None: its only operation), as `execute` looks it up.
        named = context._provided_operation_name
        self._schema.remember((context.query, named), document, kind, context.operation_name)
