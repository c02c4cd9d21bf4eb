"""Cursor pagination helpers shared by every connection."""

from collections.abc import Sequence
from typing import Any

from graphql import GraphQLError
from strawberry import relay
from strawberry.relay.utils import from_base64, to_base64

from models import config
from models.tables import MAX_DB_ID


def check_first(first: int) -> int:
    cap = config.current().max_page_size
    if first < 0 or first > cap:
        raise GraphQLError(
            f"`first` must be between 0 and {cap}, got {first}",
            extensions={"code": "PAGE_SIZE_OUT_OF_RANGE", "max": cap},
        )
    return first


def page_info(
    edges: Sequence[relay.Edge[Any]], *, has_next: bool, has_previous: bool
) -> relay.PageInfo:
    return relay.PageInfo(
        has_next_page=has_next,
        has_previous_page=has_previous,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=edges[-1].cursor if edges else None,
    )


def encode_cursor(kind: str, value: int) -> str:
    return to_base64(kind, value)


def decode_cursor(kind: str, cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        found_kind, value = from_base64(cursor)
        if found_kind != kind or not (value.isascii() and value.isdigit()):
            raise ValueError(found_kind)
        # A row id, or an offset into rows with such ids: never negative, never past
        # MAX_DB_ID (a larger id would reach the database and fail there).
        if int(value) > MAX_DB_ID:
            raise ValueError(value)
        return int(value)
    except (ValueError, TypeError):
        raise GraphQLError(
            "`after` is not a cursor of this connection", extensions={"code": "INVALID_CURSOR"}
        ) from None
