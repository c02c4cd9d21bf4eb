"""Applying for Trade Assurance and the mediator's review."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from models import clock, config, supplier_events
from models.accounts import Principal
from models.db import for_update, write_transaction
from models.enums import ApplicationStatus, Role, TradeAssuranceStatus, Verification
from models.errors import DomainError, ErrorCode
from models.money import Money
from models.tables import SupplierProfile, TradeAssuranceApplication


def add_business_days(start: dt.datetime, days: int) -> dt.datetime:
    """`days` working days (Mon-Fri) after `start`, at the same time of day."""
    current = start
    while days > 0:
        current += dt.timedelta(days=1)
        if current.weekday() < 5:
            days -= 1
    return current


def is_overdue(application: TradeAssuranceApplication) -> bool:
    return bool(
        application.status == ApplicationStatus.PENDING.value
        and application.review_due_at <= clock.now()
    )


def _check_limit(limit: Money, field: str) -> None:
    expected = config.current().limit_currency
    if limit.currency != expected:
        raise DomainError(
            ErrorCode.INVALID_CURRENCY,
            f"Trade Assurance limits are kept in {expected}, not {limit.currency}",
            f"{field}.currency",
        )
    if limit.minor <= 0:
        raise DomainError(ErrorCode.INVALID_AMOUNT, "the limit must be positive", field)


def _check_eligible(profile: SupplierProfile, field: str | None) -> None:
    """Not suspended, Gold and verified: when a supplier applies, and again when a mediator
    approves."""
    if profile.ta_status == TradeAssuranceStatus.SUSPENDED.value:
        raise DomainError(
            ErrorCode.TRADE_ASSURANCE_SUSPENDED,
            "Trade Assurance is suspended after an investigation",
            field,
        )
    if not profile.gold:
        raise DomainError(
            ErrorCode.NOT_GOLD_SUPPLIER, "only Gold Suppliers hold Trade Assurance", field
        )
    if profile.verification == Verification.NONE.value:
        raise DomainError(
            ErrorCode.NOT_VERIFIED, "the supplier must pass verification first", field
        )


async def apply(principal: Principal, requested_limit: Money | None) -> TradeAssuranceApplication:
    """A Gold, verified supplier asks for Trade Assurance; a mediator must decide it."""
    if principal.role is not Role.SUPPLIER:
        raise DomainError(ErrorCode.FORBIDDEN, "only a supplier's users can apply")
    if requested_limit is not None:
        _check_limit(requested_limit, "requestedLimit")
    async with write_transaction():
        profile = (
            await for_update(
                SupplierProfile.objects().where(SupplierProfile.company == principal.company_id)
            )
        )[0]
        if profile.ta_status == TradeAssuranceStatus.ACTIVE.value:
            raise DomainError(
                ErrorCode.TRADE_ASSURANCE_ALREADY_ACTIVE, "Trade Assurance is already active"
            )
        _check_eligible(profile, None)
        if await TradeAssuranceApplication.exists().where(
            (TradeAssuranceApplication.supplier == profile.id)
            & (TradeAssuranceApplication.status == ApplicationStatus.PENDING.value)
        ):
            raise DomainError(
                ErrorCode.APPLICATION_ALREADY_PENDING, "an application is already under review"
            )
        now = clock.now()
        application = TradeAssuranceApplication(
            supplier=profile.id,
            submitted_by=principal.user_id,
            status=ApplicationStatus.PENDING.value,
            requested_limit_minor=requested_limit.minor if requested_limit else None,
            requested_limit_currency=requested_limit.currency if requested_limit else None,
            submitted_at=now,
            review_due_at=add_business_days(now, config.current().application_review_business_days),
        )
        await application.save()
        await supplier_events.record(
            profile.id, "APPLICATION_FILED", user_id=principal.user_id,
            detail=f"application {application.id}"
            + (f": a limit of {requested_limit} asked" if requested_limit else ""),
        )  # fmt: skip
    return application


async def review(
    principal: Principal,
    application_id: int,
    *,
    approve: bool,
    limit: Money | None = None,
    reason: str | None = None,
) -> TradeAssuranceApplication:
    """A mediator approves (granting a limit) or rejects (with a reason) a pending application."""
    if principal.role is not Role.MEDIATOR:
        raise DomainError(ErrorCode.FORBIDDEN, "only mediators review applications")
    reason = (reason or "").strip() or None
    if approve:
        if limit is None:
            raise DomainError(ErrorCode.LIMIT_REQUIRED, "an approval grants a limit", "limit")
        _check_limit(limit, "limit")
    elif reason is None:
        raise DomainError(ErrorCode.REASON_REQUIRED, "a rejection needs a reason", "reason")
    async with write_transaction():
        found = await for_update(
            TradeAssuranceApplication.objects().where(
                TradeAssuranceApplication.id == application_id
            )
        )
        if not found:
            raise DomainError(ErrorCode.NOT_FOUND, "no such application", "applicationId")
        application: TradeAssuranceApplication = found[0]
        if application.status != ApplicationStatus.PENDING.value:
            raise DomainError(
                ErrorCode.APPLICATION_ALREADY_DECIDED,
                f"this application was already {application.status.lower()}",
                "applicationId",
            )
        now = clock.now()
        application.decided_at = now
        application.decided_by = principal.user_id
        application.rejection_reason = reason if not approve else None
        if approve and limit is not None:
            # Locked and checked again: a suspension, or a lost Gold membership or
            # verification, may have come while the application was pending (unlocked, a
            # suspension committing meanwhile on PostgreSQL was overwritten with ACTIVE).
            profile = (
                await for_update(
                    SupplierProfile.objects().where(SupplierProfile.id == application.supplier)
                )
            )[0]
            _check_eligible(profile, "applicationId")
            application.status = ApplicationStatus.APPROVED.value
            application.granted_limit_minor = limit.minor
            application.granted_limit_currency = limit.currency
            await supplier_events.record(
                application.supplier, "TRADE_ASSURANCE_GRANTED", user_id=principal.user_id,
                detail=f"application {application.id}: a limit of {limit}",
            )  # fmt: skip
            await SupplierProfile.update(
                {
                    SupplierProfile.ta_status: TradeAssuranceStatus.ACTIVE.value,
                    SupplierProfile.ta_limit_minor: limit.minor,
                    SupplierProfile.ta_limit_currency: limit.currency,
                    SupplierProfile.ta_since: now,
                    SupplierProfile.updated_at: now,
                }
            ).where(SupplierProfile.id == application.supplier)
        else:
            application.status = ApplicationStatus.REJECTED.value
            await supplier_events.record(
                application.supplier, "APPLICATION_REJECTED", user_id=principal.user_id,
                detail=f"application {application.id}: {reason}",
            )  # fmt: skip
        await application.save()
    return application


async def get_applications(ids: Sequence[int]) -> dict[int, TradeAssuranceApplication]:
    rows = await TradeAssuranceApplication.objects().where(
        TradeAssuranceApplication.id.is_in(list(ids))
    )
    return {a.id: a for a in rows}


def may_see(
    principal: Principal | None, application: TradeAssuranceApplication, own_supplier_id: int | None
) -> bool:
    if principal is None:
        return False
    return principal.role is Role.MEDIATOR or application.supplier == own_supplier_id


async def list_applications(
    principal: Principal,
    *,
    status: ApplicationStatus | None,
    overdue_only: bool,
    first: int,
    after_id: int | None,
    own_supplier_id: int | None,
) -> tuple[list[TradeAssuranceApplication], bool]:
    """Mediators see the whole queue (oldest first); a supplier sees its own applications."""
    query = TradeAssuranceApplication.objects()
    if principal.role is not Role.MEDIATOR:
        if own_supplier_id is None:
            return [], False
        query = query.where(TradeAssuranceApplication.supplier == own_supplier_id)
    if status is not None:
        query = query.where(TradeAssuranceApplication.status == status.value)
    if overdue_only:
        query = query.where(
            (TradeAssuranceApplication.status == ApplicationStatus.PENDING.value)
            & (TradeAssuranceApplication.review_due_at <= clock.now())
        )
    if after_id is not None:
        query = query.where(TradeAssuranceApplication.id > after_id)
    rows = await query.order_by(TradeAssuranceApplication.id).limit(first + 1)
    return rows[:first], len(rows) > first
