"""The order (the purchase contract): drafting, confirmation, modification, cancellation,
coverage, and who may see it. Each transition is one function and one transaction that
locks the order, checks the transition, writes the change and its order event."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Hashable, Sequence
from decimal import ROUND_DOWN, Decimal
from typing import Any, TypeVar

from piccolo.query import WhereRaw

from models import clock, config, deadlines, events, sql
from models.accounts import Principal
from models.db import for_update, is_postgres, write_transaction
from models.enums import (
    OPEN_ORDER_STATUSES,
    CompanyKind,
    Incoterm,
    OrderStatus,
    PaymentStatus,
    Role,
    Scope,
    ShippingMethod,
    TradeAssuranceStatus,
)
from models.errors import DomainError, ErrorCode
from models.geography import validate_country
from models.money import MAX_ORDER_MINOR, Money, exponent, validate_currency
from models.tables import (
    Company,
    Order,
    OrderEvent,
    OrderLine,
    OrderModification,
    Payment,
    QualityRequirement,
    SupplierProfile,
)

MAX_LINES = 100
# Names and attributes are Varchar(200) columns, which PostgreSQL enforces (and SQLite
# does not); free text is held to a message's 4000 characters (models.messages).
MAX_NAME, MAX_TEXT = 200, 4_000
MAX_QUALITY = 100  # requirements, written in one INSERT: within the engines' parameter limits
# Statuses in which either party may still propose a new contract (before the balance).
MODIFIABLE = frozenset(
    {
        OrderStatus.PENDING_CONFIRMATION,
        OrderStatus.AWAITING_INITIAL_PAYMENT,
        OrderStatus.AWAITING_BALANCE,
    }
)


@dataclasses.dataclass(frozen=True, slots=True)
class Line:
    product_name: str
    quantity: int
    unit_price_minor: int
    specification: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Quality:
    attribute: str
    requirement: str


@dataclasses.dataclass(frozen=True, slots=True)
class Contract:
    """What the parties agree: goods, quality, shipping, deadline and payment terms."""

    currency: str
    lines: tuple[Line, ...]
    quality: tuple[Quality, ...]
    incoterm: Incoterm
    shipping_method: ShippingMethod
    destination_country: str
    shipping_deadline: dt.datetime
    initial_payment_minor: int

    @property
    def total_minor(self) -> int:
        return sum(line.quantity * line.unit_price_minor for line in self.lines)

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["shipping_deadline"] = self.shipping_deadline.isoformat()
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Contract:
        data = json.loads(text)
        return cls(
            currency=data["currency"],
            lines=tuple(Line(**line) for line in data["lines"]),
            quality=tuple(Quality(**q) for q in data["quality"]),
            incoterm=Incoterm(data["incoterm"]),
            shipping_method=ShippingMethod(data["shipping_method"]),
            destination_country=data["destination_country"],
            shipping_deadline=dt.datetime.fromisoformat(data["shipping_deadline"]),
            initial_payment_minor=data["initial_payment_minor"],
        )


def validate_contract(contract: Contract) -> Contract:
    """Normalise and check a contract; raises DomainError naming the input field."""
    currency = validate_currency(contract.currency)
    if not contract.lines:
        raise DomainError(ErrorCode.INVALID_INPUT, "an order needs at least one line", "lines")
    if len(contract.lines) > MAX_LINES:
        raise DomainError(ErrorCode.INVALID_INPUT, f"at most {MAX_LINES} lines", "lines")
    lines = []
    for n, line in enumerate(contract.lines):
        name = line.product_name.strip()
        if not name or len(name) > MAX_NAME:
            raise DomainError(
                ErrorCode.INVALID_INPUT, f"a product name has 1 to {MAX_NAME} characters",
                f"lines.{n}.productName",
            )  # fmt: skip
        if len(line.specification) > MAX_TEXT:
            raise DomainError(
                ErrorCode.INVALID_INPUT, f"a specification has at most {MAX_TEXT} characters",
                f"lines.{n}.specification",
            )  # fmt: skip
        if line.quantity <= 0:
            raise DomainError(
                ErrorCode.INVALID_INPUT, "quantity must be positive", f"lines.{n}.quantity"
            )
        if line.unit_price_minor <= 0:
            raise DomainError(
                ErrorCode.INVALID_AMOUNT, "unit price must be positive", f"lines.{n}.unitPrice"
            )
        lines.append(dataclasses.replace(line, product_name=name))
    if len(contract.quality) > MAX_QUALITY:
        raise DomainError(
            ErrorCode.INVALID_INPUT, f"at most {MAX_QUALITY} quality requirements",
            "qualityRequirements",
        )  # fmt: skip
    quality = []
    for n, q in enumerate(contract.quality):
        attribute, requirement = q.attribute.strip(), q.requirement.strip()
        if not attribute or not requirement:
            raise DomainError(
                ErrorCode.INVALID_INPUT,
                "a quality requirement names an attribute and a measurable requirement",
                f"qualityRequirements.{n}",
            )
        if len(attribute) > MAX_NAME:
            raise DomainError(
                ErrorCode.INVALID_INPUT, f"an attribute has at most {MAX_NAME} characters",
                f"qualityRequirements.{n}.attribute",
            )  # fmt: skip
        if len(requirement) > MAX_TEXT:
            raise DomainError(
                ErrorCode.INVALID_INPUT, f"a requirement has at most {MAX_TEXT} characters",
                f"qualityRequirements.{n}.requirement",
            )  # fmt: skip
        quality.append(Quality(attribute, requirement))
    if contract.shipping_deadline.tzinfo is None:
        raise DomainError(
            ErrorCode.INVALID_INPUT, "the deadline needs a time zone", "shippingDeadline"
        )
    if contract.shipping_deadline <= clock.now():
        raise DomainError(
            ErrorCode.DEADLINE_IN_PAST, "the shipping deadline must be in the future",
            "shippingDeadline",
        )  # fmt: skip
    checked = dataclasses.replace(
        contract,
        currency=currency,
        lines=tuple(lines),
        quality=tuple(quality),
        destination_country=validate_country(contract.destination_country, "destinationCountry"),
    )
    if checked.total_minor > MAX_ORDER_MINOR:
        raise DomainError(
            ErrorCode.INVALID_AMOUNT,
            f"the order's total is too large: at most {Money(MAX_ORDER_MINOR, currency)}",
            "lines",
        )
    if not 0 <= checked.initial_payment_minor <= checked.total_minor:
        raise DomainError(
            ErrorCode.INVALID_AMOUNT,
            f"the initial payment must be between 0 and the total "
            f"({Money(checked.total_minor, currency)})",
            "initialPayment",
        )
    return checked


def _check_reason(reason: str) -> str:
    reason = reason.strip()
    if len(reason) > MAX_TEXT:
        raise DomainError(
            ErrorCode.INVALID_INPUT, f"a reason has at most {MAX_TEXT} characters", "reason"
        )
    return reason


def _party_role(principal: Principal, order: Order, supplier_company_id: int) -> Role | None:
    """BUYER or SUPPLIER if the caller is that party of this order, else None."""
    if principal.company_id == order.buyer:
        return Role.BUYER
    if principal.company_id == supplier_company_id:
        return Role.SUPPLIER
    return None


def require_scope(principal: Principal, scope: Scope) -> None:
    if principal.is_partner and scope not in principal.scopes:
        raise DomainError(ErrorCode.SCOPE_MISSING, f"this API key lacks the {scope.value} scope")


async def supplier_company(supplier_id: int) -> int:
    """The company behind a supplier profile (ledger accounts are per company)."""
    row = (
        await SupplierProfile.select(SupplierProfile.company)
        .where(SupplierProfile.id == supplier_id)
        .first()
    )
    if row is None:
        raise DomainError(ErrorCode.NOT_FOUND, "no such supplier", "supplierId")
    return int(row["company"])


@dataclasses.dataclass(frozen=True, slots=True)
class Locked:
    order: Order
    role: Role | None  # the caller's part in the order; None for the system or a mediator
    supplier_company: int
    buyer_country: str  # decides the payment methods open to the buyer


# The order, its supplier's company and its buyer's country in one statement: nearly every
# transition needs the company, payments the country.
_LOCK_SQL = (
    f"SELECT {sql.columns(Order, 'o')}, s.company AS supplier_company,"  # noqa: S608
    " b.country AS buyer_country FROM trade_order o"
    " JOIN supplier_profile s ON s.id = o.supplier JOIN company b ON b.id = o.buyer"
    " WHERE o.id = {}"
)


async def locked_order(principal: Principal | None, order_id: int) -> Locked:
    """The order, locked for this transaction, and the caller's part in it. Someone who
    is neither party nor mediator gets NOT_FOUND, as if the order did not exist."""
    rows = await sql.fetch(_LOCK_SQL + (" FOR UPDATE OF o" if is_postgres() else ""), order_id)
    if not rows:
        raise DomainError(ErrorCode.NOT_FOUND, "no such order", "orderId")
    company = int(rows[0].pop("supplier_company"))
    country = str(rows[0].pop("buyer_country"))
    order = sql.loaded(Order, rows[0])
    if principal is None:  # the system itself (scheduler, provider callbacks)
        return Locked(order, None, company, country)
    role = _party_role(principal, order, company)
    if role is None and principal.role is not Role.MEDIATOR:
        raise DomainError(ErrorCode.NOT_FOUND, "no such order", "orderId")
    return Locked(order, role, company, country)


async def lock_order(principal: Principal | None, order_id: int) -> tuple[Order, Role | None]:
    """`locked_order`, as (order, the caller's role)."""
    locked = await locked_order(principal, order_id)
    return locked.order, locked.role


def check_status(order: Order, allowed: Sequence[OrderStatus], action: str) -> None:
    if order.status not in {s.value for s in allowed}:
        raise DomainError(
            ErrorCode.INVALID_TRANSITION,
            f"cannot {action} an order that is {order.status}",
            "orderId",
        )


_STATUS_COLUMNS = [Order.status, Order.next_deadline_at, Order.updated_at]


async def move_to(
    order: Order,
    status: OrderStatus,
    kind: str,
    *,
    actor: events.Actor,
    at: dt.datetime,
    reason: str,
) -> None:
    """Put a locked order in `status` with no deadline left to enforce, and record the
    order event, in the caller's transaction."""
    old = order.status
    order.status = status.value
    order.next_deadline_at = None
    order.updated_at = at
    await sql.save_columns(order, _STATUS_COLUMNS)
    await events.record(
        order.id, kind, old_status=old, new_status=order.status, actor=actor, at=at,
        reason=reason,
    )  # fmt: skip


async def _write_contract(order_id: int, contract: Contract, *, replace: bool) -> None:
    if replace:  # a modification: the old lines and requirements go
        await OrderLine.delete().where(OrderLine.order == order_id)
        await QualityRequirement.delete().where(QualityRequirement.order == order_id)
    await sql.insert_many(
        OrderLine,
        [
            {"order": order_id, "position": n, "product_name": line.product_name,
             "specification": line.specification, "quantity": line.quantity,
             "unit_price_minor": line.unit_price_minor}
            for n, line in enumerate(contract.lines)
        ],
    )  # fmt: skip
    if contract.quality:
        await sql.insert_many(
            QualityRequirement,
            [
                {"order": order_id, "position": n, "attribute": q.attribute,
                 "requirement": q.requirement}
                for n, q in enumerate(contract.quality)
            ],
        )  # fmt: skip


def _apply_terms(order: Order, contract: Contract) -> None:
    order.currency = contract.currency
    order.total_minor = contract.total_minor
    order.initial_minor = contract.initial_payment_minor
    order.incoterm = contract.incoterm.value
    order.shipping_method = contract.shipping_method.value
    order.destination_country = contract.destination_country
    order.shipping_deadline = contract.shipping_deadline


async def create_order(
    principal: Principal,
    contract: Contract,
    *,
    supplier_id: int | None = None,
    buyer_company_id: int | None = None,
) -> Order:
    """A buyer places an order with a supplier, or a supplier drafts one for a buyer;
    the other party then confirms it."""
    require_scope(principal, Scope.ORDERS)
    role = principal.acting_role
    if role is Role.BUYER:
        if supplier_id is None:
            raise DomainError(ErrorCode.INVALID_INPUT, "name the supplier", "supplierId")
        buyer_company_id = principal.company_id
    elif role is Role.SUPPLIER:
        if buyer_company_id is None:
            raise DomainError(ErrorCode.INVALID_INPUT, "name the buyer", "buyerId")
        own = (
            await SupplierProfile.select(SupplierProfile.id)
            .where(SupplierProfile.company == principal.company_id)
            .first()
        )
        if own is None:
            raise DomainError(ErrorCode.NOT_FOUND, "this company has no supplier profile")
        supplier_id = int(own["id"])
    else:
        raise DomainError(ErrorCode.FORBIDDEN, "only buyers and suppliers create orders")
    contract = validate_contract(contract)
    now = clock.now()
    async with write_transaction():
        await _check_protected(supplier_id)
        if role is Role.SUPPLIER:  # a buyer placing an order is known to be one
            buyer = await Company.select(Company.kind).where(Company.id == buyer_company_id).first()
            if buyer is None or buyer["kind"] != CompanyKind.BUYER.value:
                raise DomainError(ErrorCode.NOT_FOUND, "no such buyer", "buyerId")
        order = Order(
            buyer=buyer_company_id,
            supplier=supplier_id,
            created_by=principal.user_id,
            drafted_by=role.value,
            status=OrderStatus.PENDING_CONFIRMATION.value,
            limit_reserved_minor=0,
            version=1,
            created_at=now,
            updated_at=now,
        )
        _apply_terms(order, contract)
        await sql.save_new(order)
        await _write_contract(order.id, contract, replace=False)
        await events.record(
            order.id, "CREATED", old_status=None, new_status=order.status,
            actor=events.Actor.of(principal), at=now,
            reason=f"drafted by the {role.value.lower()}",
        )  # fmt: skip
    return order


async def _check_protected(supplier_id: int) -> SupplierProfile:
    """Only a supplier with active Trade Assurance takes new orders. Locks its profile,
    which also serialises reservations against its limit."""
    profile = await sql.get(SupplierProfile, supplier_id, lock=True)
    if profile is None:
        raise DomainError(ErrorCode.NOT_FOUND, "no such supplier", "supplierId")
    if profile.ta_status == TradeAssuranceStatus.SUSPENDED.value:
        raise DomainError(
            ErrorCode.TRADE_ASSURANCE_SUSPENDED,
            "this supplier's Trade Assurance is suspended; it cannot take new orders",
            "supplierId",
        )
    if profile.ta_status != TradeAssuranceStatus.ACTIVE.value:
        raise DomainError(
            ErrorCode.SUPPLIER_NOT_PROTECTED,
            "this supplier has no active Trade Assurance",
            "supplierId",
        )
    return profile


def exchange_rate(currency: str, limit_currency: str) -> Decimal:
    """Units of the limit currency per unit of `currency`, from the configured table."""
    if currency == limit_currency:
        return Decimal(1)
    rates = dict(config.current().exchange_rates)
    if currency not in rates:
        raise DomainError(
            ErrorCode.INVALID_CURRENCY,
            f"no exchange rate from {currency} to {limit_currency} is configured",
            "currency",
        )
    return Decimal(rates[currency])


def convert(minor: int, from_currency: str, to_currency: str, rate: Decimal) -> int:
    """Minor units of one currency in another, rounded down (coverage never overstates)."""
    major = Decimal(minor).scaleb(-exponent(from_currency)) * rate
    return int(major.scaleb(exponent(to_currency)).to_integral_value(rounding=ROUND_DOWN))


_OPEN_STATUSES = sorted(s.value for s in OPEN_ORDER_STATUSES)
_RESERVED_SQL = (
    "SELECT CAST(COALESCE(SUM(limit_reserved_minor), 0) AS BIGINT) AS reserved"  # noqa: S608
    " FROM trade_order WHERE supplier = {} AND status IN ("
    + ", ".join("{}" for _ in _OPEN_STATUSES)
    + ") AND id != {}"
)


async def remaining_limit_minor(profile: SupplierProfile, *, excluding: int | None = None) -> int:
    """limit - the shares of it reserved by the supplier's open orders."""
    found = await sql.fetch(
        _RESERVED_SQL, profile.id, *_OPEN_STATUSES, -1 if excluding is None else excluding
    )
    return max(0, int(profile.ta_limit_minor or 0) - int(found[0]["reserved"]))


async def _reserve_coverage(order: Order, profile: SupplierProfile) -> None:
    """Cap coverage by the supplier's remaining limit, and reserve that share of it.

    An order confirmed before (a modification) keeps the rate recorded then and at least
    the share it holds: its coverage was fixed at confirmation, so a limit cut since only
    bounds what a larger total would add (an edit of one quality requirement used to cut
    a paid order's coverage to the reduced limit)."""
    confirmed = order.exchange_rate is not None
    limit_currency = (
        (order.limit_currency if confirmed else None)
        or profile.ta_limit_currency
        or config.current().limit_currency
    )
    rate = (
        Decimal(order.exchange_rate)
        if order.exchange_rate is not None
        else exchange_rate(order.currency, limit_currency)
    )
    remaining = await remaining_limit_minor(profile, excluding=order.id)
    if confirmed:
        remaining = max(remaining, order.limit_reserved_minor)
    wanted = convert(order.total_minor, order.currency, limit_currency, rate)
    order.limit_reserved_minor = min(wanted, remaining)
    order.limit_currency = limit_currency
    order.exchange_rate = str(rate)
    cap = (
        order.total_minor
        if wanted <= remaining
        else convert(remaining, limit_currency, order.currency, 1 / rate)
    )
    order.coverage_cap_minor = min(order.total_minor, cap)


# What confirmation changes (saving only these keeps the UPDATE short).
_CONFIRMED_COLUMNS = [
    Order.status, Order.confirmed_at, Order.payment_deadline, Order.next_deadline_at,
    Order.updated_at,
    Order.limit_reserved_minor, Order.limit_currency, Order.exchange_rate,
    Order.coverage_cap_minor,
]  # fmt: skip


async def confirm_order(principal: Principal, order_id: int) -> Order:
    """The other party agrees to the contract: coverage is reserved, payment is due."""
    require_scope(principal, Scope.ORDERS)
    async with write_transaction():
        order, role = await lock_order(principal, order_id)
        check_status(order, [OrderStatus.PENDING_CONFIRMATION], "confirm")
        if role is None or role.value == order.drafted_by:
            raise DomainError(
                ErrorCode.NOT_YOUR_TURN,
                "the party that did not draft the order confirms it",
                "orderId",
            )
        profile = await _check_protected(order.supplier)
        await _reserve_coverage(order, profile)
        now = clock.now()
        old = order.status
        order.status = (
            OrderStatus.AWAITING_INITIAL_PAYMENT if order.initial_minor > 0
            else OrderStatus.AWAITING_BALANCE
        ).value  # fmt: skip
        order.confirmed_at = now
        order.payment_deadline = now + dt.timedelta(days=config.current().payment_deadline_days)
        order.next_deadline_at = deadlines.next_due(
            order, anything_paid=False, payment_pending=False
        )
        order.updated_at = now
        await sql.save_columns(order, _CONFIRMED_COLUMNS)
        await events.record(
            order.id, "CONFIRMED", old_status=old, new_status=order.status,
            actor=events.Actor.of(principal), at=now,
            reason=f"coverage cap {Money(order.coverage_cap_minor or 0, order.currency)}",
        )  # fmt: skip
    return order


async def succeeded_minor(order_id: int) -> int:
    """The order's goods money paid into escrow (inspection fees are apart)."""
    found = await sql.fetch(
        "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS paid FROM payment"
        ' WHERE "order" = {} AND status = {} AND inspection IS NULL',
        order_id,
        PaymentStatus.SUCCEEDED.value,
    )
    return int(found[0]["paid"])


async def goods_payment_pending(order_id: int) -> bool:
    """Whether a payment for the order's goods (not an inspection fee) awaits the provider."""
    return bool(
        await Payment.exists().where(
            (Payment.order == order_id)
            & (Payment.status == PaymentStatus.PENDING.value)
            & Payment.inspection.is_null()
        )
    )


async def refuse_while_payment_pending(order_id: int) -> None:
    """PAYMENT_IN_PROGRESS: what is about to change (the contract, the order's end) would
    not match the money that payment's outcome brings."""
    if await goods_payment_pending(order_id):
        raise DomainError(
            ErrorCode.PAYMENT_IN_PROGRESS,
            "a payment for this order is still pending; wait for its outcome",
            "orderId",
        )


def awaiting_status(order: Order, paid_minor: int) -> str:
    """The status a confirmed, unshipped order is in with `paid_minor` of its goods money
    in escrow: PAID, waiting for the balance, or for the initial payment."""
    if paid_minor >= order.total_minor:
        return OrderStatus.PAID.value
    if paid_minor >= order.initial_minor:
        return OrderStatus.AWAITING_BALANCE.value
    return OrderStatus.AWAITING_INITIAL_PAYMENT.value


async def propose_modification(
    principal: Principal, order_id: int, contract: Contract, reason: str = ""
) -> OrderModification:
    """Either party proposes a new contract until the balance is paid; the other accepts."""
    require_scope(principal, Scope.ORDERS)
    contract = validate_contract(contract)
    reason = _check_reason(reason)
    async with write_transaction():
        order, role = await lock_order(principal, order_id)
        if role is None:
            raise DomainError(ErrorCode.FORBIDDEN, "only the buyer or the supplier may propose")
        check_status(order, list(MODIFIABLE), "modify")
        await _check_modification_fits(order, contract)
        now = clock.now()
        await OrderModification.update(
            {OrderModification.status: "SUPERSEDED", OrderModification.decided_at: now}
        ).where((OrderModification.order == order.id) & (OrderModification.status == "PENDING"))
        modification = OrderModification(
            order=order.id,
            proposed_by=principal.user_id,
            proposed_by_role=role.value,
            status="PENDING",
            contract=contract.to_json(),
            reason=reason,
            created_at=now,
        )
        await modification.save()
        await events.record(
            order.id, "MODIFICATION_PROPOSED", old_status=order.status, new_status=order.status,
            actor=events.Actor.of(principal), at=now, reason=reason,
        )  # fmt: skip
    return modification


async def _check_modification_fits(order: Order, contract: Contract) -> None:
    if contract.currency != order.currency:
        raise DomainError(
            ErrorCode.INVALID_CURRENCY, "the currency of an order cannot change", "currency"
        )
    # Its outcome could take the paid total above the new contract's.
    await refuse_while_payment_pending(order.id)
    paid = await succeeded_minor(order.id)
    if contract.total_minor < paid:
        raise DomainError(
            ErrorCode.INVALID_AMOUNT,
            f"the new total is less than what was already paid ({Money(paid, order.currency)})",
            "lines",
        )
    if paid and contract.initial_payment_minor != order.initial_minor:
        raise DomainError(
            ErrorCode.INVALID_AMOUNT,
            "the initial payment was made; it cannot change",
            "initialPayment",
        )


async def accept_modification(principal: Principal, modification_id: int) -> Order:
    require_scope(principal, Scope.ORDERS)
    async with write_transaction():
        found = await OrderModification.objects().where(OrderModification.id == modification_id)
        if not found:
            raise DomainError(ErrorCode.NOT_FOUND, "no such modification", "modificationId")
        try:
            order, role = await lock_order(principal, found[0].order)
        except DomainError as e:
            if e.code is not ErrorCode.NOT_FOUND:
                raise
            # Refused like a proposal that does not exist: an "orderId" the caller never
            # sent would tell it this one does (found by tests/test_authorization.py).
            raise DomainError(ErrorCode.NOT_FOUND, "no such modification", "modificationId") from e
        # Read again under the order's lock: on PostgreSQL a concurrent accept, or a newer
        # proposal superseding this one, may have committed since the read above.
        modification = await sql.get(OrderModification, modification_id, lock=True)
        assert modification is not None  # proposals are never deleted
        if modification.status != "PENDING":
            raise DomainError(
                ErrorCode.MODIFICATION_NOT_PENDING,
                f"this proposal is {modification.status.lower()}",
                "modificationId",
            )
        if role is None or role.value == modification.proposed_by_role:
            raise DomainError(
                ErrorCode.NOT_YOUR_TURN, "the other party accepts a proposal", "modificationId"
            )
        check_status(order, list(MODIFIABLE), "modify")
        contract = Contract.from_json(modification.contract)
        await _check_modification_fits(order, contract)
        now = clock.now()
        old = order.status
        _apply_terms(order, contract)
        if order.status != OrderStatus.PENDING_CONFIRMATION.value:
            await _reserve_coverage(order, await _check_protected_or_current(order.supplier))
            # What is due follows the new terms: a total brought down to what was paid
            # leaves nothing to pay (PAID), an initial payment brought down to it (or to
            # nothing) leaves the balance. Otherwise the order waited for a payment of 0.
            # An initial payment added before anything was paid is due first.
            paid = await succeeded_minor(order.id)
            order.status = awaiting_status(order, paid)
            order.next_deadline_at = deadlines.next_due(
                order, anything_paid=paid > 0, payment_pending=False
            )
        order.version += 1
        order.updated_at = now
        await order.save()
        await _write_contract(order.id, contract, replace=True)
        modification.status = "ACCEPTED"
        modification.decided_at = now
        await sql.save_columns(
            modification, [OrderModification.status, OrderModification.decided_at]
        )
        await events.record(
            order.id, "MODIFICATION_ACCEPTED", old_status=old, new_status=order.status,
            actor=events.Actor.of(principal), at=now, reason=f"contract version {order.version}",
        )  # fmt: skip
    return order


async def _check_protected_or_current(supplier_id: int) -> SupplierProfile:
    """The supplier's profile, locked. A confirmed order stays protected even if the
    supplier was suspended since (DOMAIN: open orders stay protected)."""
    found = await for_update(SupplierProfile.objects().where(SupplierProfile.id == supplier_id))
    profile: SupplierProfile = found[0]
    return profile


async def cancel_order(principal: Principal, order_id: int, reason: str) -> Order:
    """Either party cancels before any money has moved; the coverage share is returned."""
    require_scope(principal, Scope.ORDERS)
    reason = _check_reason(reason)
    async with write_transaction():
        order, role = await lock_order(principal, order_id)
        if role is None:
            raise DomainError(ErrorCode.FORBIDDEN, "only the buyer or the supplier may cancel")
        check_status(order, list(MODIFIABLE), "cancel")
        if await Payment.exists().where(
            (Payment.order == order.id) & Payment.status.is_in(["PENDING", "SUCCEEDED"])
        ):
            raise DomainError(
                ErrorCode.ORDER_HAS_PAYMENTS,
                "money has been paid or is on its way; the order can no longer be cancelled",
                "orderId",
            )
        await move_to(
            order, OrderStatus.CANCELLED, "CANCELLED",
            actor=events.Actor.of(principal), at=clock.now(), reason=reason,
        )  # fmt: skip
    return order


# Reads ------------------------------------------------------------------------------


def visibility_key(principal: Principal) -> Hashable:
    """Everything what a principal sees of an order depends on (`visibility`, and a
    partner key's scopes): principals with equal keys see the same (live fan-out shares
    reads and results by it)."""
    return (principal.role, principal.acting_role, principal.company_id, principal.scopes)


def visible_orders(principal: Principal) -> Any:
    """A subquery of the ids of the orders this caller may see, for `X.order.is_in(…)`;
    None for all (mediators). The rule itself is `_visible_sql`, shared with the plain
    statements of the order reads."""
    condition, values = _visible_sql(principal)
    if not condition:
        return None
    return Order.select(Order.id).where(WhereRaw(condition.removeprefix(" AND "), *values))


def _visible_sql(principal: Principal) -> tuple[str, tuple[Any, ...]]:
    """The orders this caller may see, as SQL text over `trade_order` to append to a
    WHERE (" AND …"), and its values ("" for everything)."""
    if principal.role is Role.MEDIATOR:
        return "", ()
    if principal.acting_role is Role.SUPPLIER:
        profiles = SupplierProfile._meta.tablename  # a class attribute, not input
        mine = f' AND "supplier" IN (SELECT "id" FROM "{profiles}" WHERE "company" = {{}})'  # noqa: S608
        return mine, (principal.company_id,)
    return ' AND "buyer" = {}', (principal.company_id,)


async def get_orders(principal: Principal, ids: Sequence[int]) -> dict[int, Order]:
    """Orders by id, only those the caller may see (one statement, its text built once
    per visibility and count: this read is on every order-shaped request)."""
    if not ids:
        return {}
    condition, values = _visible_sql(principal)
    rows = await sql.select(Order, sql.among("id", len(ids)) + condition, *ids, *values)
    return {vars(o)["id"]: o for o in rows}  # the value, without Piccolo's descriptor


async def list_orders(
    principal: Principal,
    *,
    statuses: Sequence[OrderStatus] = (),
    created_from: dt.datetime | None = None,
    created_to: dt.datetime | None = None,
    due_within_days: int | None = None,
    overdue_only: bool = False,
    first: int,
    after_id: int | None,
) -> tuple[list[Order], bool]:
    """The caller's orders, newest first, keyset-paginated by id.

    `due_within_days`: a supplier sees its paid, unshipped orders whose shipping deadline
    falls within that many days; anyone else the orders whose next deadline does.
    `overdue_only`: overdue orders, and those whose deadline has passed unenforced."""
    condition, values = _visible_sql(principal)
    where, args = ["1 = 1" + condition], list(values)

    def having(sql_text: str, *more: Any) -> None:
        where.append(sql_text)
        args.extend(more)

    now = clock.now()
    if due_within_days is not None:
        if not 0 <= due_within_days <= 3650:
            raise DomainError(
                ErrorCode.INVALID_INPUT, "dueWithinDays is 0 to 3650", "filter.dueWithinDays"
            )
        until = now + dt.timedelta(days=due_within_days)
        if principal.acting_role is Role.SUPPLIER:
            having(
                '"status" = {} AND "shipping_deadline" >= {} AND "shipping_deadline" <= {}',
                OrderStatus.PAID.value,
                now,
                until,
            )
        else:
            having('"next_deadline_at" >= {} AND "next_deadline_at" <= {}', now, until)
    if overdue_only:
        having('("status" = {} OR "next_deadline_at" <= {})', OrderStatus.OVERDUE.value, now)
    if statuses:
        having(sql.among("status", len(statuses)), *(s.value for s in statuses))
    if created_from is not None:
        having('"created_at" >= {}', created_from)
    if created_to is not None:
        having('"created_at" < {}', created_to)
    if after_id is not None:
        having('"id" < {}', after_id)
    rows = await sql.select(
        Order, " AND ".join(where), *args, order_by='"id" DESC', limit=first + 1, indexed=False
    )
    return rows[:first], len(rows) > first


R = TypeVar("R", OrderLine, QualityRequirement, OrderEvent, Payment)


async def rows_by_order(
    table: type[R], order_ids: Sequence[int], order_by: str, where: str = ""
) -> dict[int, list[R]]:
    """Child rows of many orders in one statement, grouped by order (for DataLoaders);
    `order_by` and `where` are SQL over the table's columns."""
    out: dict[int, list[R]] = {i: [] for i in order_ids}
    if order_ids:
        condition = sql.among("order", len(order_ids)) + where
        for row in await sql.select(table, condition, *order_ids, order_by=order_by):
            out[vars(row)["order"]].append(row)  # the id, without the foreign key's descriptor
    return out


async def lines_of(order_ids: Sequence[int]) -> dict[int, list[OrderLine]]:
    return await rows_by_order(OrderLine, order_ids, '"position"')


async def quality_of(order_ids: Sequence[int]) -> dict[int, list[QualityRequirement]]:
    return await rows_by_order(QualityRequirement, order_ids, '"position"')


async def events_of(order_ids: Sequence[int]) -> dict[int, list[OrderEvent]]:
    """The orders' timelines, oldest first; conversation messages are not part of them."""
    not_messages = f" AND \"kind\" <> '{events.MESSAGE_SENT}'"
    return await rows_by_order(OrderEvent, order_ids, '"id"', not_messages)


@dataclasses.dataclass(frozen=True, slots=True)
class Coverage:
    cap: int | None
    pre_shipment: int
    post_delivery: int


def coverage(order: Order, paid_minor: int) -> Coverage:
    """Pre-shipment: the initial payment actually paid; post-delivery: the total paid;
    both capped by the share of the supplier's limit fixed at confirmation."""
    cap = order.coverage_cap_minor
    pre = min(paid_minor, order.initial_minor)
    return Coverage(
        cap=cap,
        pre_shipment=min(pre, cap) if cap is not None else 0,
        post_delivery=min(paid_minor, cap) if cap is not None else 0,
    )
