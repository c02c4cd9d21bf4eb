"""A supplier's audit trail: one `SupplierEvent` row per change of its standing (penalty
points, complaints, investigations and their outcomes, Gold membership, verification,
Trade Assurance granted), written in the same transaction as the change."""

from __future__ import annotations

from models import clock, sql
from models.tables import SupplierEvent

USER, SYSTEM = "USER", "SYSTEM"  # a person; or another domain function (e.g. a dispute)


async def record(
    supplier_id: int,
    kind: str,
    *,
    user_id: int | None = None,
    investigation_id: int | None = None,
    complaint_id: int | None = None,
    dispute_id: int | None = None,
    detail: str = "",
) -> None:
    await sql.insert(
        SupplierEvent,
        {"supplier": supplier_id, "kind": kind, "actor_kind": USER if user_id else SYSTEM,
         "actor_user": user_id, "investigation": investigation_id, "complaint": complaint_id,
         "dispute_id": dispute_id, "detail": detail, "created_at": clock.now()},
    )  # fmt: skip
