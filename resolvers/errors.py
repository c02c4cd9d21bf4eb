"""`UserError`: expected business failures, returned as data in every mutation payload."""

from typing import Protocol, TypeVar

import strawberry
from strawberry import relay

from models.errors import DomainError, ErrorCode
from models.tables import MAX_DB_ID
from resolvers.conventions import describe_values
from resolvers.error_codes import ERROR_CODES
from resolvers.observability import count_business_error

strawberry.enum(
    ErrorCode, description="Why a mutation was refused. Stable: clients may switch on it."
)
describe_values(ErrorCode, ERROR_CODES)


@strawberry.type(description="An expected failure of a mutation; nothing was changed.")
class UserError:
    code: ErrorCode = strawberry.field(description="Machine-readable reason.")
    message: str = strawberry.field(description="Human-readable explanation.")
    field: str | None = strawberry.field(
        default=None, description="The input field at fault, as a path (e.g. `limit.currency`)."
    )

    @classmethod
    def of(cls, error: DomainError) -> "UserError":
        count_business_error(error.code.value)  # every payload error is built here
        return cls(code=error.code, message=error.message, field=error.field)


class _Payload(Protocol):
    def __init__(self, *, errors: list[UserError]) -> None: ...


P = TypeVar("P", bound=_Payload)


def failed(payload: type[P], error: DomainError) -> P:
    return payload(errors=[UserError.of(error)])


def row_id(node_id: str) -> int:
    """The database id in a global ID (or a download's path), or -1 (matches nothing)
    when it cannot be one: past MAX_DB_ID too, so such an ID is just not found rather than
    a database error (and Python refuses to read an integer of over 4,300 digits)."""
    if not (node_id.isascii() and node_id.isdigit()) or len(node_id) > _MAX_DIGITS:
        return -1
    value = int(node_id)
    return value if 0 < value <= MAX_DB_ID else -1


_MAX_DIGITS = len(str(MAX_DB_ID))


def decode_id(gid: relay.GlobalID, type_name: str, field: str) -> int:
    """A global ID of the expected type, as its database id; anything else is NOT_FOUND."""
    value = row_id(gid.node_id) if gid.type_name == type_name else -1
    if value < 0:
        raise DomainError(ErrorCode.NOT_FOUND, f"not a {type_name} id", field)
    return value
