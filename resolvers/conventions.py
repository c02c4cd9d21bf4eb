"""Descriptions that follow from the API's conventions (root types, Relay connections and
pagination arguments, mutation payloads and inputs, filters, ids, idempotency keys, `errors`),
written once here instead of on every field. Only what the resolvers left undescribed is
filled, so a description written on a definition always wins.

`describe_values` is the one tool here for definitions: it describes the values of an enum
that models/ defines (models know nothing of GraphQL, so the descriptions live beside the
resolvers' `strawberry.enum` call)."""

import enum
from collections.abc import Mapping
from typing import TypeVar

from graphql import (
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
)
from strawberry.types.enum import StrawberryEnumDefinition

ROOTS = {
    "Query": "Reads. Most need a token (`Authorization: Bearer …`); each returns only what "
    "the caller may see.",
    "Mutation": "Writes. Each takes one `input` and returns a payload with its result and "
    "`errors` for expected business failures.",
    "Subscription": "Live streams over WebSocket (`graphql-transport-ws`, the token in the "
    "`connection_init` payload), resumable from a cursor.",
}
FIRST = "How many items the page holds (1 to the server's page size limit)."
AFTER = "Start after this cursor (`pageInfo.endCursor` of the previous page); null: from the start."
ERRORS = (
    "Expected business failures, each with a `code`, a message and the input field at "
    "fault; empty on success."
)
IDEMPOTENCY_KEY = (
    "Your key for this request: the same key with the same input returns the first "
    "result, with other input it is refused (`IDEMPOTENCY_KEY_REUSED`)."
)


E = TypeVar("E", bound=enum.Enum)


def describe_values(enum_type: type[E], descriptions: Mapping[E, str]) -> None:
    """Describe the values of an enum already exposed with `strawberry.enum`.

    Keyed by member, so a renamed or removed value fails here (and tests/test_descriptions.py
    names any value left without a description)."""
    definition = getattr(enum_type, "__strawberry_definition__", None)
    if not isinstance(definition, StrawberryEnumDefinition):
        raise TypeError(f"{enum_type.__name__} is not a strawberry.enum yet")
    for value in definition.values:
        value.description = descriptions.get(enum_type(value.value), value.description)


def _article_id(name: str) -> str:
    return f"The global ID of the {_words(name)}."


def _words(camel: str) -> str:
    """`tradeAssuranceApplication` -> `trade assurance application`."""
    out = "".join(f" {c.lower()}" if c.isupper() else c for c in camel[0].lower() + camel[1:])
    return out.strip()


def listing(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def describe(schema: GraphQLSchema) -> None:
    types = schema.type_map
    inputs_of: dict[str, list[str]] = {}
    payload_of: dict[str, list[str]] = {}
    filter_of: dict[str, list[str]] = {}
    mutation = schema.mutation_type
    if mutation is not None:
        for name, field in mutation.fields.items():
            payload_of.setdefault(get_named_type(field.type).name, []).append(name)
            for arg_name, arg in field.args.items():
                if arg_name == "input":
                    inputs_of.setdefault(get_named_type(arg.type).name, []).append(name)
    query = schema.query_type
    if query is not None:
        for name, field in query.fields.items():
            for arg_name, arg in field.args.items():
                if arg_name == "filter":
                    filter_of.setdefault(get_named_type(arg.type).name, []).append(name)

    for type_name, named in types.items():
        if type_name.startswith("__"):
            continue
        _describe_type(named, type_name, inputs_of, payload_of, filter_of)
        if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in named.fields.items():
                if not field.description:
                    if field_name == "errors":
                        field.description = ERRORS
                    elif field_name == "id":
                        nodes = any(i.name == "Node" for i in getattr(named, "interfaces", ()))
                        field.description = (
                            "Its global ID (for `node(id:)`)." if nodes else "Its global ID."
                        )
                for arg_name, arg in field.args.items():
                    if arg.description:
                        continue
                    target = get_named_type(field.type).name
                    if arg_name == "first":
                        arg.description = FIRST
                    elif arg_name == "after":
                        arg.description = AFTER
                    elif arg_name == "input":
                        arg.description = f"See `{get_named_type(arg.type).name}`."
                    elif arg_name == "filter":
                        arg.description = "Which to list: every condition given must hold."
                    elif arg_name.endswith("Id") and len(arg_name) > 2:
                        arg.description = _article_id(arg_name[:-2])
                    elif arg_name == "id":
                        arg.description = f"The {_words(target)}'s global ID."
        if isinstance(named, GraphQLInputObjectType):
            for field_name, input_field in named.fields.items():
                if input_field.description:
                    continue
                if field_name == "idempotencyKey":
                    input_field.description = IDEMPOTENCY_KEY
                elif field_name.endswith("Id") and len(field_name) > 2:
                    input_field.description = _article_id(field_name[:-2])


def _describe_type(
    named: GraphQLNamedType,
    name: str,
    inputs_of: dict[str, list[str]],
    payload_of: dict[str, list[str]],
    filter_of: dict[str, list[str]],
) -> None:
    if named.description:
        return
    if name in ROOTS:
        named.description = ROOTS[name]
    elif name.endswith("Connection") and isinstance(named, GraphQLObjectType):
        node = _words(name.removesuffix("Connection"))
        named.description = (
            f"A page of {node} results: `edges` (each a cursor and its node) and `pageInfo`; "
            "pass `pageInfo.endCursor` as `after` for the next page."
        )
    elif name in payload_of:
        named.description = (
            f"What {listing(payload_of[name])} returns: the result, or `errors` and no result."
        )
    elif name in inputs_of:
        named.description = f"The input of {listing(inputs_of[name])}."
    elif name in filter_of:
        named.description = (
            f"Narrows {listing(filter_of[name])}: every condition given must hold; "
            "a condition left out does not narrow."
        )
