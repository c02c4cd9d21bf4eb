"""Thinner resolvers for fields without field extensions.

Strawberry wraps every resolver for what a field might need: argument conversion, field
extensions (permissions), exception handlers, and for async resolvers one more
coroutine around the resolver's own. A field with no arguments and no extensions needs
none of it, yet pays it on every value: an order list of 100 orders resolves 2,500
fields, and the wrappers were about a fifth of its CPU time (docs/performance.md,
session 5). So, once the schema is built, such fields get a resolver that calls the
same function with the same arguments (the source as `self`/`root`/`parent`, the same
`Info`, the field's arguments converted by Strawberry's own `convert_arguments`) and
hands back its result, awaitable or not, for graphql-core to complete; a plain
attribute becomes a plain `getattr`, as Strawberry's default resolver is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from graphql import GraphQLObjectType, GraphQLResolveInfo, GraphQLSchema
from strawberry import relay
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.arguments import convert_arguments
from strawberry.types.field import StrawberryField

# Strawberry's own resolver functions (GraphQLCoreConverter.from_resolver): only these
# are replaced, never a resolver something else wrapped or set.
_STRAWBERRY = frozenset({"_get_basic_result", "_resolver", "_async_resolver"})


def thin_resolvers(
    schema: GraphQLSchema, config: StrawberryConfig, scalars: Mapping[object, Any]
) -> int:
    """Replace the eligible fields' resolvers in place; returns how many."""
    replaced = 0
    for name, t in schema.type_map.items():
        if name.startswith("__") or not isinstance(t, GraphQLObjectType):
            continue
        if t is schema.subscription_type:
            continue  # subscriptions resolve events through `subscribe`
        for gfield in t.fields.values():
            field = gfield.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
            resolve = gfield.resolve
            if (
                not isinstance(field, StrawberryField)
                or resolve is None
                or resolve.__name__ not in _STRAWBERRY
                or "from_resolver" not in resolve.__qualname__
                or gfield.subscribe is not None
                or field.extensions
            ):
                continue
            thin = _node_id(t, field, config) or _thin(field, config, scalars)
            if thin is not None:
                gfield.resolve = thin
                replaced += 1
    return replaced


def _node_id(
    t: GraphQLObjectType, field: StrawberryField, config: StrawberryConfig
) -> Callable[..., Any] | None:
    """A Node's `id` as relay.Node._id makes it, for a type that keeps Strawberry's
    `resolve_id` and `resolve_typename` (the NodeID attribute; the type's name, which is
    `info.path.typename` there): without the Info, the class look-ups and the checks
    around them. Anything else (a subclass's instance, a missing id) takes the general
    path, which raises as before."""
    resolver = field.base_resolver
    fn = resolver.wrapped_func if resolver is not None else None
    if getattr(fn, "__qualname__", None) != "Node._id" or not callable(fn):
        return None
    if getattr(fn, "__module__", None) != relay.Node.__module__:
        return None
    definition = t.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    origin = getattr(definition, "origin", None)
    if not (isinstance(origin, type) and issubclass(origin, relay.Node)):
        return None
    for hook in ("resolve_id", "resolve_typename"):
        if getattr(origin, hook).__func__ is not getattr(relay.Node, hook).__func__:
            return None
    attribute, type_name = origin.resolve_id_attr(), t.name
    general = _thin(field, config, {})  # Node._id: no arguments
    assert general is not None

    def node_id(root: Any, info: GraphQLResolveInfo[Any]) -> Any:
        value = getattr(root, attribute, None) if type(root) is origin else None
        if value is None:
            return general(root, info)
        return relay.GlobalID(type_name=type_name, node_id=str(value))

    node_id._is_default = False  # type: ignore[attr-defined]
    return node_id


def _thin(
    field: StrawberryField, config: StrawberryConfig, scalars: Mapping[object, Any]
) -> Callable[..., Any] | None:
    resolver = field.base_resolver
    if resolver is None:
        attribute, default = field.python_name, config.default_resolver

        def attribute_of(source: Any, _: GraphQLResolveInfo[Any]) -> Any:
            return default(source, attribute)

        attribute_of._is_default = True  # type: ignore[attr-defined]  # as Strawberry marks it
        attribute_of._ignores_info = True  # type: ignore[attr-defined]  # resolvers/plans.py
        if default is getattr:  # resolvers/plans.py reads the attribute itself
            attribute_of._attribute = attribute  # type: ignore[attr-defined]
        return attribute_of
    fn = resolver.wrapped_func
    if not callable(fn):
        return None
    arguments = resolver.arguments
    as_self = resolver.self_parameter is not None
    named_source = [p.name for p in (resolver.parent_parameter, resolver.root_parameter) if p]
    info_name = resolver.info_parameter.name if resolver.info_parameter else None
    info_class = config.info_class

    # As StrawberryField.get_result calls it: `self` first when it takes one, then the
    # source and the Info by the names it gives them. The two shapes of nearly every
    # resolver here get a closure of their own.
    if arguments:

        def with_arguments(source: Any, info: GraphQLResolveInfo[Any], **raw: Any) -> Any:
            strawberry_info = info_class(_raw_info=info, _field=field)
            # As Strawberry's get_arguments converts them (input types, enums, IDs).
            kwargs = convert_arguments(
                raw, arguments, scalar_registry=scalars, config=config, info=strawberry_info
            )
            kwargs.update(dict.fromkeys(named_source, source))
            if info_name is not None:
                kwargs[info_name] = strawberry_info
            return fn(source, **kwargs) if as_self else fn(**kwargs)

        resolve: Callable[..., Any] = with_arguments
    elif as_self and not named_source and info_name is None:

        def of_self(source: Any, _: GraphQLResolveInfo[Any]) -> Any:
            return fn(source)

        of_self._ignores_info = True  # type: ignore[attr-defined]  # resolvers/plans.py
        resolve = of_self
    elif as_self and not named_source and info_name is not None:
        name = info_name

        def of_self_info(source: Any, info: GraphQLResolveInfo[Any]) -> Any:
            return fn(source, **{name: info_class(_raw_info=info, _field=field)})

        resolve = of_self_info
    else:

        def call(source: Any, info: GraphQLResolveInfo[Any]) -> Any:
            kwargs: dict[str, Any] = dict.fromkeys(named_source, source)
            if info_name is not None:
                kwargs[info_name] = info_class(_raw_info=info, _field=field)
            return fn(source, **kwargs) if as_self else fn(**kwargs)

        resolve = call
    resolve._is_default = False  # type: ignore[attr-defined]
    return resolve
