"""Selection plans: an object's sub-selection completed by a plan made once per document.

graphql-core completes a value field by field, and for each field it looks the field up,
builds a `GraphQLResolveInfo` and a path, checks for awaitables and errors, and for each
object collects its sub-selection again (memoised per request only). For a prepared
operation (resolvers/prepared.py) none of that changes between requests, and it was most
of an order status's CPU time (docs/performance.md). So the first time an object's
selection is completed, a plan is made from the same pieces graphql-core uses (its field
collection, the fields' resolvers, the types' output coercion), kept with the document's
nodes, and later completions run the plan: a loop over the fields, a resolver call (with
an Info only for resolvers that read it), and one completer per field's type.

The plan takes only the plain case; anything else is graphql-core's, unchanged:
- a selection with directives (@skip/@include by variable, @defer/@stream), fragment
  arguments, an abstract type (interface or union) or a custom `is_type_of`: no plan;
- a value a plan cannot complete as graphql-core would without its error handling (a
  resolver that raises, an awaitable, null for a non-null field, a list that is not a
  list, a leaf that does not coerce): the plan stops and graphql-core completes the same
  object again from the start, so errors, their paths and null propagation are its own.
  The resolvers run twice then; they are synchronous here (an awaitable stops the plan
  before it is awaited, and that plan is not tried again), so that costs time, not
  behaviour. An unfinished coroutine is closed, a DataLoader's future is left to its batch.

A query of one root field skips graphql-core's operation machinery too (`_RootPlan`): the
field is collected once per document, and each request builds its Info and arguments,
calls and awaits the resolver, and completes the value through `complete_value` (plans
below it), with graphql-core's own error handling and null propagation. Anything else
(mutations, subscriptions, several root fields, directives, an abort signal) is
graphql-core's `execute_operation`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import GeneratorType
from typing import Any, TypeVar

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentSpreadNode,
    GraphQLBoolean,
    GraphQLError,
    GraphQLField,
    GraphQLID,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLString,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_nullable_type,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetails, collect_fields
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path, Undefined
from graphql.type.introspection import TypeNameMetaFieldDef

from resolvers.acyclic import AcyclicExecutionContext

MAX_PLANS = 4096  # object selections kept; the oldest goes first

Completer = Callable[[Any, "PlannedExecutionContext", Path], Any]
_Key = tuple[int, tuple[int, ...]]
_P = TypeVar("_P")


class _Stop(Exception):
    pass


class _Awaitable(_Stop):
    """A resolver answered with an awaitable: this selection is not completed by plan."""


class _Unplannable(Exception):
    pass


_Unplanned: Any = object()  # not looked at yet (None: looked at, not planned)


# Types whose values are never awaitable: the common leaves and lists, then each class
# seen with no `__await__` (the GraphQL object types), so their values skip the check.
_SYNC = {str, int, bool, float, type(None), list, tuple, dict}
MAX_SYNC_TYPES = 1024
# graphql-core's String, ID and Boolean coercions return a value of this type as it is.
_AS_IS: dict[Any, type] = {GraphQLString: str, GraphQLID: str, GraphQLBoolean: bool}
_NO_INFO: Any = None  # Strawberry's is_type_of ignores its Info; others are not planned


class _Field:
    __slots__ = (
        "args",
        "attribute",
        "complete",
        "definition",
        "info",
        "key",
        "nodes",
        "path",
        "resolve",
    )

    def __init__(
        self,
        key: str,
        definition: GraphQLField,
        resolve: Callable[..., Any],
        nodes: list[FieldNode],
        complete: Completer,
    ) -> None:
        self.key = key
        self.definition = definition
        self.resolve = resolve
        self.nodes = nodes
        self.complete = complete
        self.args = bool(definition.args or nodes[0].arguments)
        # Strawberry's default resolver and fast_fields' thin ones ignore their Info.
        self.info = not getattr(resolve, "_ignores_info", False)
        # A plain attribute (fast_fields): read here, without a call.
        self.attribute: str | None = getattr(resolve, "_attribute", None)
        # A leaf's completion reads no path: only an Info, a list or an object needs one.
        self.path = self.info or not is_leaf_type(get_nullable_type(definition.type))


class _ObjectPlan:
    __slots__ = ("fields", "is_type_of", "key", "nodes", "type")

    def __init__(self, key: _Key, t: GraphQLObjectType, nodes: list[FieldNode]) -> None:
        self.key = key
        self.type = t
        self.nodes = nodes  # kept: the plan is keyed by their ids
        self.is_type_of = t.is_type_of
        self.fields: list[_Field] = []

    def run(self, source: Any, ex: PlannedExecutionContext, path: Path) -> dict[str, Any]:
        if self.is_type_of is not None and not self.is_type_of(source, _NO_INFO):
            raise _Stop
        t, out = self.type, {}
        for f in self.fields:
            field_path = Path(path, f.key, t.name) if f.path else path
            if f.attribute is not None:
                value = getattr(source, f.attribute)
            elif f.info:
                info = ex.build_resolve_info(f.definition, f.nodes, t, field_path)
                if f.args:
                    args = get_argument_values(f.definition, f.nodes[0], ex.variable_values)
                    value = f.resolve(source, info, **args)
                else:
                    value = f.resolve(source, info)
            else:
                value = f.resolve(source, None)
            if type(value) not in _SYNC:
                _check_sync(value, ex)
            out[f.key] = f.complete(value, ex, field_path)
        return out


class _RootPlan:
    """A query's single root field, collected once: what graphql-core's
    `execute_operation`, `execute_fields` and `execute_field` do for it, without their
    general machinery (field collection, gathering, incremental delivery, abort signals)."""

    __slots__ = ("args", "definition", "details", "key", "nodes", "operation", "type")

    def __init__(
        self,
        operation: OperationDefinitionNode,
        t: GraphQLObjectType,
        key: str,
        definition: GraphQLField,
        details: Any,
    ) -> None:
        self.operation = operation  # kept: roots are keyed by its id
        self.type = t
        self.key = key
        self.definition = definition
        self.details = details
        self.nodes = [d.node for d in details]
        self.args = bool(definition.args or self.nodes[0].arguments)

    async def run(self, ex: PlannedExecutionContext) -> ExecutionResult:
        definition, details = self.definition, self.details
        return_type = definition.type
        path = Path(None, self.key, self.type.name)
        info = ex.build_resolve_info(definition, self.nodes, self.type, path)
        try:
            try:
                resolve = definition.resolve or ex.field_resolver
                if self.args:
                    args = get_argument_values(
                        definition, self.nodes[0], ex.variable_values, None, ex.hide_suggestions
                    )
                    value = resolve(ex.root_value, info, **args)
                else:
                    value = resolve(ex.root_value, info)
                if ex.is_awaitable(value):
                    value = await value
                completed = ex.complete_value(return_type, details, info, path, value, None)
                if ex.is_awaitable(completed):
                    completed = await completed
            except Exception as raw_error:
                ex.handle_field_error(raw_error, return_type, details, path)  # raises if non-null
                completed = None
        except GraphQLError as error:  # a non-null root field's error nulls the whole data
            ex.collected_errors.add(error, None)
            return ex.build_response(None)  # type: ignore[return-value]
        return ex.build_response({self.key: completed})  # type: ignore[return-value]


class PlannedExecutionContext(AcyclicExecutionContext):
    """Strawberry's execution context, completing objects by plan where it can."""

    _plans: dict[_Key, _ObjectPlan | None] = {}
    _roots: dict[int, _RootPlan | None] = {}

    def execute_operation(self, serially: bool | None = None) -> Any:
        root = self._root() if serially is None else None
        if root is None:
            return super().execute_operation(serially)
        return root.run(self)

    def _root(self) -> _RootPlan | None:
        operation = self.operation
        if (
            operation.operation is not OperationType.QUERY
            or self.middleware_manager is not None
            or self.abort_signal is not None
        ):
            return None
        roots = PlannedExecutionContext._roots
        found = roots.get(id(operation), _Unplanned)
        if found is None or (found is not _Unplanned and found.operation is operation):
            return found  # type: ignore[no-any-return]
        root: _RootPlan | None
        try:
            root = self._make_root(operation)
        except _Unplannable:
            root = None
        return _keep(roots, id(operation), root)

    def _make_root(self, operation: OperationDefinitionNode) -> _RootPlan:
        t = self.schema.query_type
        if t is None or operation.directives:
            raise _Unplannable
        self._plain(operation.selection_set)  # the fields are the same whatever the variables
        grouped, defers, _ = collect_fields(
            self.schema, self.fragments, self.variable_values, t, operation, self.hide_suggestions
        )
        if defers or len(grouped) != 1:
            raise _Unplannable
        ((key, details),) = grouped.items()
        if any(d.defer_usage is not None or d.fragment_variable_values for d in details):
            raise _Unplannable
        definition = self.schema.get_field(t, details[0].node.name.value)
        if definition is None:
            raise _Unplannable
        return _RootPlan(operation, t, key, definition, details)

    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: Any,
        info: Any,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        plan = self._plan(return_type, field_details_list)
        if plan is not None:
            try:
                return plan.run(result, self, path)
            except _Awaitable:
                PlannedExecutionContext._plans[plan.key] = None  # not the plain case here
            except Exception:  # noqa: S110 - graphql-core reports it, below
                pass
        return super().complete_object_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _plan(self, t: GraphQLObjectType, field_details_list: list[FieldDetails]) -> Any:
        if self.middleware_manager is not None:
            return None
        key = (id(t), tuple(id(d.node) for d in field_details_list))
        plans = PlannedExecutionContext._plans
        try:
            return plans[key]
        except KeyError:
            pass
        try:
            plan: _ObjectPlan | None = self._make_plan(key, t, field_details_list)
        except _Unplannable:
            plan = None
        return _keep(plans, key, plan)

    def _make_plan(
        self, key: _Key, t: GraphQLObjectType, field_details_list: list[FieldDetails]
    ) -> _ObjectPlan:
        if t.is_type_of is not None and "_get_is_type_of" not in t.is_type_of.__qualname__:
            raise _Unplannable  # someone's own is_type_of may read the Info we do not pass
        for details in field_details_list:
            if details.defer_usage is not None or details.fragment_variable_values:
                raise _Unplannable
            self._plain(details.node.selection_set)
        plan = _ObjectPlan(key, t, [d.node for d in field_details_list])
        grouped = self.collect_subfields(t, field_details_list).grouped_field_set
        for response_key, group in grouped.items():
            plan.fields.append(self._field(t, response_key, group))
        return plan

    def _field(self, t: GraphQLObjectType, key: str, group: list[FieldDetails]) -> _Field:
        nodes = [d.node for d in group]
        name = nodes[0].name.value
        definition = self.schema.get_field(t, name)
        if definition is None:
            raise _Unplannable
        resolve = definition.resolve or self.field_resolver
        if definition is TypeNameMetaFieldDef:
            type_name = t.name

            def typename(_source: Any, _info: Any) -> str:
                return type_name

            typename._ignores_info = True  # type: ignore[attr-defined]
            resolve = typename
        return _Field(key, definition, resolve, nodes, self._completer(definition.type, group))

    def _completer(
        self, t: GraphQLOutputType, group: list[FieldDetails], *, non_null: bool = False
    ) -> Completer:
        """How a value of type `t` is completed; `non_null`: `t` is wrapped in a non-null,
        and a null stops the plan."""
        if isinstance(t, GraphQLNonNull):
            if is_leaf_type(t.of_type) or isinstance(t.of_type, GraphQLObjectType):
                return self._completer(t.of_type, group, non_null=True)  # checked in one call
            inner = self._completer(t.of_type, group)

            def non_null_list(value: Any, ex: PlannedExecutionContext, path: Path) -> Any:
                completed = inner(value, ex, path)
                if completed is None:
                    raise _Stop
                return completed

            return non_null_list
        if isinstance(t, GraphQLList):
            item = self._completer(t.of_type, group)

            def list_of(value: Any, ex: PlannedExecutionContext, path: Path) -> Any:
                if value is None or value is Undefined:
                    return None
                if not isinstance(value, list | tuple):
                    raise _Stop
                completed = []
                for i, v in enumerate(value):
                    if type(v) not in _SYNC:
                        _check_sync(v, ex)
                    completed.append(item(v, ex, path.add_key(i, None)))
                return completed

            return list_of
        if is_leaf_type(t):
            coerce = t.coerce_output_value
            same = _AS_IS.get(t)  # values graphql-core's coercion returns unchanged
            # A Strawberry enum's members, coerced once: its coercion scans the values.
            members = getattr(t, "wrapped_cls", None)
            names = _coerced_members(members, coerce) if members is not None else {}

            def leaf(value: Any, ex: PlannedExecutionContext, path: Path) -> Any:
                if type(value) is same:
                    return value
                if type(value) is members:
                    return names[value]
                if value is None or value is Undefined:
                    if non_null:
                        raise _Stop
                    return None
                coerced = coerce(value)
                if coerced is None or coerced is Undefined:
                    raise _Stop
                return coerced

            return leaf
        if not isinstance(t, GraphQLObjectType):
            raise _Unplannable  # an interface or a union: graphql-core resolves its type
        plan = self._plan(t, group)
        if plan is None:
            raise _Unplannable
        run = plan.run

        def object_of(value: Any, ex: PlannedExecutionContext, path: Path) -> Any:
            if value is None or value is Undefined:
                if non_null:
                    raise _Stop
                return None
            return run(value, ex, path)

        return object_of

    def _plain(self, selection_set: SelectionSetNode | None) -> None:
        """No directives and no fragment arguments anywhere below: the collected fields are
        the same whatever the variables."""
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if selection.directives:
                raise _Unplannable
            if isinstance(selection, FragmentSpreadNode):
                if getattr(selection, "arguments", None):
                    raise _Unplannable
                fragment = self.fragment_definitions.get(selection.name.value)
                if fragment is None or fragment.directives:
                    raise _Unplannable
                self._plain(fragment.selection_set)
            elif isinstance(selection, InlineFragmentNode | FieldNode):
                self._plain(selection.selection_set)


def _keep(cache: dict[Any, Any], key: Any, value: _P) -> _P:
    """`value` kept under `key` in one of the plan caches; past MAX_PLANS the oldest goes."""
    if len(cache) >= MAX_PLANS:
        del cache[next(iter(cache))]
    cache[key] = value
    return value


def _coerced_members(members: Any, coerce: Callable[[Any], Any]) -> dict[Any, Any]:
    """Each member's coerced name; one that does not coerce is left to graphql-core (the
    plan's look-up fails, and graphql-core completes the object and reports it)."""
    names = {}
    for member in members:
        try:
            names[member] = coerce(member)
        except Exception:  # noqa: S112 - reported when a value has it, as always
            continue
    return names


def _check_sync(value: Any, ex: PlannedExecutionContext) -> None:
    """Stop the plan at an awaitable; remember a class whose values cannot be one."""
    if ex.is_awaitable(value):
        _stop(value)
    cls = type(value)
    if not hasattr(cls, "__await__") and cls is not GeneratorType and len(_SYNC) < MAX_SYNC_TYPES:
        _SYNC.add(cls)


def _stop(value: Any) -> None:
    """Hand an awaitable back to graphql-core: close a coroutine (it calls the resolver
    again for itself); a DataLoader's future is left to its batch."""
    if inspect.iscoroutine(value):
        value.close()
    raise _Awaitable
