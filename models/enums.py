"""Closed vocabularies of the domain, stored by value."""

from __future__ import annotations

import enum


class CompanyKind(enum.StrEnum):
    BUYER = "BUYER"
    SUPPLIER = "SUPPLIER"
    INSPECTOR = "INSPECTOR"
    PLATFORM = "PLATFORM"  # the operator itself; mediators belong to it


class Role(enum.StrEnum):
    BUYER = "BUYER"
    SUPPLIER = "SUPPLIER"
    INSPECTOR = "INSPECTOR"
    MEDIATOR = "MEDIATOR"
    PARTNER = "PARTNER"  # an API key acting for one company


# Which role a company's users have.
ROLE_OF_KIND = {
    CompanyKind.BUYER: Role.BUYER,
    CompanyKind.SUPPLIER: Role.SUPPLIER,
    CompanyKind.INSPECTOR: Role.INSPECTOR,
    CompanyKind.PLATFORM: Role.MEDIATOR,
}


class Scope(enum.StrEnum):
    READ = "READ"
    ORDERS = "ORDERS"
    PAYMENTS = "PAYMENTS"


class Verification(enum.StrEnum):
    NONE = "NONE"
    VERIFIED = "VERIFIED"
    ASSESSED = "ASSESSED"


class TradeAssuranceStatus(enum.StrEnum):
    NONE = "NONE"
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"


class ApplicationStatus(enum.StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


class OrderStatus(enum.StrEnum):
    PENDING_CONFIRMATION = "PENDING_CONFIRMATION"  # drafted by one party, awaiting the other
    AWAITING_INITIAL_PAYMENT = "AWAITING_INITIAL_PAYMENT"
    AWAITING_BALANCE = "AWAITING_BALANCE"  # the initial payment is in escrow; production
    PAID = "PAID"  # everything is in escrow; ready to ship
    SHIPPED = "SHIPPED"  # the supplier recorded the shipment
    RECEIVED = "RECEIVED"  # receipt confirmed (by the buyer or automatically); claim window
    COMPLETED = "COMPLETED"  # the claim window ended; the held balance went to the supplier
    OVERDUE = "OVERDUE"  # the shipping deadline passed without a shipment
    # Ended by a full refund of the goods money escrow held (late shipment, failed inspection)
    REFUNDED = "REFUNDED"
    CANCELLED = "CANCELLED"


# Statuses in which an order holds a share of its supplier's Trade Assurance limit.
OPEN_ORDER_STATUSES = frozenset(
    {
        OrderStatus.AWAITING_INITIAL_PAYMENT,
        OrderStatus.AWAITING_BALANCE,
        OrderStatus.PAID,
        OrderStatus.SHIPPED,
        OrderStatus.RECEIVED,
        OrderStatus.OVERDUE,
    }
)


class Incoterm(enum.StrEnum):
    EXW = "EXW"
    FCA = "FCA"
    CPT = "CPT"
    CIP = "CIP"
    DAP = "DAP"
    DPU = "DPU"
    DDP = "DDP"
    FAS = "FAS"
    FOB = "FOB"
    CFR = "CFR"
    CIF = "CIF"


class ShippingMethod(enum.StrEnum):
    EXPRESS = "EXPRESS"
    AIR = "AIR"
    SEA = "SEA"
    LAND = "LAND"


class DeadlineKind(enum.StrEnum):
    """The order deadlines the system enforces by itself."""

    PAYMENT = "PAYMENT"  # nothing paid by then: the order is cancelled
    SHIPPING = "SHIPPING"  # not shipped by then: the order is overdue
    RECEIPT = "RECEIPT"  # receipt not confirmed by then: it is confirmed automatically
    CLAIM_WINDOW = "CLAIM_WINDOW"  # the claim window ends: the held balance is released


class PaymentMethod(enum.StrEnum):
    CARD = "CARD"
    TT = "TT"  # bank transfer: pending until the provider confirms
    E_CHECKING = "E_CHECKING"  # US buyers only
    BOLETO = "BOLETO"  # Brazilian buyers only
    PAY_LATER = "PAY_LATER"  # US buyers only; refunds go back to the loan


class PaymentStatus(enum.StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class RefundStatus(enum.StrEnum):
    PENDING = "PENDING"
    SETTLED = "SETTLED"
    FAILED = "FAILED"  # the last attempt failed; it is retried, never counted as paid out


class ActorKind(enum.StrEnum):
    USER = "USER"
    PARTNER = "PARTNER"
    SCHEDULER = "SCHEDULER"
    PAYMENT_PROVIDER = "PAYMENT_PROVIDER"


class InspectionStatus(enum.StrEnum):
    AWAITING_FEE = "AWAITING_FEE"  # booked; the fee payment is on its way (e.g. T/T)
    REQUESTED = "REQUESTED"  # the fee is held; the inspector accepts or declines
    ACCEPTED = "ACCEPTED"  # the inspector will inspect on the date; a report follows
    DECLINED = "DECLINED"  # the inspector declined; the fee goes back to the buyer
    PASSED = "PASSED"  # report: the goods conform; the fee is paid out to the inspector
    FAILED = "FAILED"  # report: they do not (supplier at fault); the fee goes back
    CANCELLED = "CANCELLED"  # the fee payment failed; nothing is held


class InspectionResult(enum.StrEnum):
    PASSED = "PASSED"
    FAILED = "FAILED"


class ComplaintStatus(enum.StrEnum):
    PENDING = "PENDING"  # filed by a buyer; a mediator reviews it
    ACCEPTED = "ACCEPTED"  # an investigation opened (or the open one took it in)
    REJECTED = "REJECTED"  # closed with the mediator's reason


class InvestigationStatus(enum.StrEnum):
    OPEN = "OPEN"
    CLOSED = "CLOSED"


class InvestigationTrigger(enum.StrEnum):
    PENALTY_POINTS = "PENALTY_POINTS"  # unconsumed points reached the threshold
    COMPLAINT = "COMPLAINT"  # a mediator accepted a buyer's complaint


class InvestigationOutcome(enum.StrEnum):
    WARNING = "WARNING"
    LIMIT_REDUCED = "LIMIT_REDUCED"
    SUSPENDED = "SUSPENDED"


class DisputeStatus(enum.StrEnum):
    OPEN = "OPEN"  # the supplier answers, the parties negotiate
    ESCALATED = "ESCALATED"  # a mediator decides
    RESOLVED = "RESOLVED"


class DisputeReason(enum.StrEnum):
    LATE_SHIPMENT = "LATE_SHIPMENT"
    QUALITY_NOT_AS_AGREED = "QUALITY_NOT_AS_AGREED"
    NOT_AS_DESCRIBED = "NOT_AS_DESCRIBED"
    QUANTITY_SHORT = "QUANTITY_SHORT"
    NOT_RECEIVED = "NOT_RECEIVED"


class DisputeResponse(enum.StrEnum):
    ACCEPT = "ACCEPT"  # refund as asked
    OFFER = "OFFER"  # a different refund, for the buyer to accept
    REJECT = "REJECT"  # stays open for escalation


class DisputeDecision(enum.StrEnum):
    FULL_REFUND = "FULL_REFUND"
    PARTIAL_REFUND = "PARTIAL_REFUND"
    RELEASE_TO_SUPPLIER = "RELEASE_TO_SUPPLIER"


class DisputeOutcome(enum.StrEnum):
    SUPPLIER_ACCEPTED = "SUPPLIER_ACCEPTED"
    OFFER_ACCEPTED = "OFFER_ACCEPTED"
    FULL_REFUND = "FULL_REFUND"
    PARTIAL_REFUND = "PARTIAL_REFUND"
    RELEASE_TO_SUPPLIER = "RELEASE_TO_SUPPLIER"


class AssessmentRule(enum.StrEnum):
    """The published rejection rules a dispute is assessed against when it is opened."""

    BEFORE_PAYMENT = "BEFORE_PAYMENT"
    OUTSIDE_CLAIM_WINDOW = "OUTSIDE_CLAIM_WINDOW"
    NO_QUALITY_STANDARD = "NO_QUALITY_STANDARD"
    RAISED_AFTER_ARRIVAL_WITHOUT_INSPECTION = "RAISED_AFTER_ARRIVAL_WITHOUT_INSPECTION"
    INSPECTION_PASSED = "INSPECTION_PASSED"
    DELAY_ACCEPTED_IN_WRITING = "DELAY_ACCEPTED_IN_WRITING"
    FREIGHT_OR_AFTER_SALES = "FREIGHT_OR_AFTER_SALES"


class AssessmentEffect(enum.StrEnum):
    BLOCKS = "BLOCKS"  # the dispute is refused
    WEIGHS_AGAINST = "WEIGHS_AGAINST"  # stored; weighs in the mediator's decision
