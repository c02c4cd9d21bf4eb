"""Order events: every transition writes one, in the same transaction as the change."""

from __future__ import annotations

import dataclasses
import datetime as dt

from models import sql
from models.accounts import Principal
from models.enums import ActorKind
from models.tables import OrderEvent


@dataclasses.dataclass(frozen=True, slots=True)
class Actor:
    """Who or what caused a change: a user, a partner key, the scheduler, the provider."""

    kind: ActorKind
    user_id: int | None = None
    api_key_id: int | None = None

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        if principal.is_partner:
            return cls(ActorKind.PARTNER, api_key_id=principal.api_key_id)
        return cls(ActorKind.USER, user_id=principal.user_id)


# A message of the order's conversation (models.messages): it travels the order-event
# feed, but is not a step of the order's timeline or of its status streams.
MESSAGE_SENT = "MESSAGE_SENT"

SCHEDULER = Actor(ActorKind.SCHEDULER)
PAYMENT_PROVIDER = Actor(ActorKind.PAYMENT_PROVIDER)


async def record(
    order_id: int,
    kind: str,
    *,
    old_status: str | None,
    new_status: str,
    actor: Actor,
    at: dt.datetime,
    reason: str = "",
) -> int:
    """Append an event; call inside the transaction that makes the change."""
    return await sql.insert(
        OrderEvent,
        {"order": order_id, "kind": kind, "old_status": old_status, "new_status": new_status,
         "actor_kind": actor.kind.value, "actor_user": actor.user_id,
         "actor_api_key": actor.api_key_id, "reason": reason, "created_at": at},
    )  # fmt: skip
