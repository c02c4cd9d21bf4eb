"""Cursor pagination helpers shared by every connection."""

from graphql import GraphQLError
from strawberry.relay.utils import from_base64, to_base64

from models import config


def check_first(first: int) -> int:
    cap = config.current().max_page_size
    if first < 0 or first > cap:
        raise GraphQLError(
            f"`first` must be between 0 and {cap}, got {first}",
            extensions={"code": "PAGE_SIZE_OUT_OF_RANGE", "max": cap},
        )
    return first


def encode_cursor(kind: str, value: int) -> str:
    return to_base64(kind, value)


def decode_cursor(kind: str, cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        found_kind, value = from_base64(cursor)
        if found_kind != kind:
            raise ValueError(found_kind)
        return int(value)
    except (ValueError, TypeError):
        raise GraphQLError(
            "`after` is not a cursor of this connection", extensions={"code": "INVALID_CURSOR"}
        ) from None
