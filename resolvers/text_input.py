"""Text both engines can store. PostgreSQL's text types cannot hold U+0000 (SQLite's can),
so a NUL character in a string input is refused before the operation runs, alike on both
engines, instead of failing inside a transaction as an internal error."""

from __future__ import annotations

import re
from typing import Any

from graphql import GraphQLError

_ESCAPED_NUL = re.compile(r"\\u(?:0000|\{0+\})")  # as a GraphQL string literal writes it


def nul_refusal(query: str | None, variables: Any) -> GraphQLError | None:
    """The error to answer with if the document or its variables hold a NUL, else None."""
    if query is not None and ("\x00" in query or ("\\u" in query and _ESCAPED_NUL.search(query))):
        return _refusal()
    return _refusal() if _holds_nul(variables) else None


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False  # numbers, booleans, null, uploads


def _refusal() -> GraphQLError:
    return GraphQLError(
        "text may not contain the NUL character (U+0000)", extensions={"code": "INVALID_INPUT"}
    )
