"""Every type, field, argument, input field and enum value of the schema has a description,
so GraphiQL's documentation pane explains the whole API. Anything added without one fails
here, named.

Where descriptions go: `description=` on the Strawberry definition (types, fields,
`strawberry.argument`); for enums defined in models/, `describe_values` beside the
resolvers' `strawberry.enum` call (ErrorCode: resolvers/error_codes.py); what follows from
the API's conventions is filled by resolvers/conventions.py."""

from __future__ import annotations

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
)

from resolvers.schema import build_schema


def undescribed(schema: GraphQLSchema) -> list[str]:
    missing: list[str] = []
    for name, named in schema.type_map.items():
        if name.startswith("__"):  # introspection: GraphQL's own, described by graphql-core
            continue
        if not named.description:
            missing.append(f"type {name}")
        if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in named.fields.items():
                if not field.description:
                    missing.append(f"field {name}.{field_name}")
                for arg_name, arg in field.args.items():
                    if not arg.description:
                        missing.append(f"argument {name}.{field_name}({arg_name})")
        elif isinstance(named, GraphQLInputObjectType):
            for field_name, input_field in named.fields.items():
                if not input_field.description:
                    missing.append(f"input field {name}.{field_name}")
        elif isinstance(named, GraphQLEnumType):
            for value_name, value in named.values.items():
                if not value.description:
                    missing.append(f"enum value {name}.{value_name}")
    return sorted(missing)


def test_everything_is_described() -> None:
    missing = undescribed(build_schema()._schema)
    assert missing == [], "describe these:\n" + "\n".join(missing)


def test_the_walk_finds_what_lacks_a_description() -> None:
    """The check can fail: an undescribed field is found."""
    schema = build_schema()._schema
    query = schema.query_type
    assert query is not None
    field = query.fields["order"]
    kept, field.description = field.description, None
    assert "field Query.order" in undescribed(schema)
    field.description = kept


def test_the_walk_finds_an_undescribed_enum_value_and_input_field() -> None:
    schema = build_schema()._schema
    error_code = schema.type_map["ErrorCode"]
    assert isinstance(error_code, GraphQLEnumType)
    value = error_code.values["NOT_FOUND"]
    login = schema.type_map["LoginInput"]
    assert isinstance(login, GraphQLInputObjectType)
    email = login.fields["email"]
    kept = value.description, email.description
    value.description = email.description = None
    assert {"enum value ErrorCode.NOT_FOUND", "input field LoginInput.email"} <= set(
        undescribed(schema)
    )
    value.description, email.description = kept
