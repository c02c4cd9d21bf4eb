"""Piccolo tables. Money columns are BigInt minor units beside a currency code."""

from __future__ import annotations

from piccolo.columns import (
    BigInt,
    Boolean,
    Date,
    DoublePrecision,
    ForeignKey,
    Integer,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.table import Table

from models.enums import (
    ActorKind,
    ApplicationStatus,
    CompanyKind,
    ComplaintStatus,
    Incoterm,
    InspectionResult,
    InspectionStatus,
    InvestigationOutcome,
    InvestigationStatus,
    InvestigationTrigger,
    OrderStatus,
    PaymentMethod,
    PaymentStatus,
    RefundStatus,
    Role,
    ShippingMethod,
    TradeAssuranceStatus,
    Verification,
)

# Serial keys, and the foreign keys to them, are `integer` on PostgreSQL: no row has a
# larger id, and asyncpg refuses to send one. Ids from clients are checked against it.
MAX_DB_ID = 2**31 - 1


class Company(Table):
    id = Serial(primary_key=True)
    legal_name = Varchar(length=200)
    kind = Varchar(length=16, choices=CompanyKind, index=True)
    country = Varchar(length=2)
    created_at = Timestamptz()


class UserAccount(Table):
    id = Serial(primary_key=True)
    company = ForeignKey(Company, null=False, index=True)
    email = Varchar(length=254, unique=True)
    password_hash = Varchar(length=200)
    full_name = Varchar(length=200)
    role = Varchar(length=16, choices=Role)
    active = Boolean(default=True)
    created_at = Timestamptz()


class AccessToken(Table):
    """A bearer token issued by login; only its SHA-256 is kept."""

    id = Serial(primary_key=True)
    user = ForeignKey(UserAccount, null=False, index=True)
    token_hash = Varchar(length=64, unique=True)
    created_at = Timestamptz()
    expires_at = Timestamptz()
    revoked_at = Timestamptz(null=True, default=None)


class ApiKey(Table):
    """A partner key acting for one company with scopes; only its SHA-256 is kept."""

    id = Serial(primary_key=True)
    company = ForeignKey(Company, null=False, index=True)
    created_by = ForeignKey(UserAccount, null=True, default=None)
    name = Varchar(length=100)
    prefix = Varchar(length=16)
    key_hash = Varchar(length=64, unique=True)
    scopes = Varchar(length=100)  # comma-separated Scope values
    created_at = Timestamptz()
    expires_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


class LoginThrottle(Table):
    """Failed log-ins counted per account and per client address (`key`: `account:<e-mail>`
    or `address:<ip>`), shared by every gateway process: past a threshold the key waits,
    longer after each further failure (models.accounts.login)."""

    id = Serial(primary_key=True)
    key = Varchar(length=320, unique=True)
    failures = Integer(default=0)
    last_failure_at = Timestamptz()
    blocked_until = Timestamptz(null=True, default=None)


class SupplierProfile(Table):
    id = Serial(primary_key=True)
    company = ForeignKey(Company, null=False, unique=True)
    # Copied from the company (which never changes country) so every search filter and
    # sort key lives in one table and can share one index.
    country = Varchar(length=2)
    year_joined = Integer()
    gold = Boolean(default=False)
    verification = Varchar(length=16, choices=Verification, default=Verification.NONE)
    rating = DoublePrecision(default=0.0)  # 0.0-5.0 stars; not money
    response_rate = Integer(default=0)  # percent
    categories = Text(default="")  # newline-separated, display order
    keywords = Text(default="")  # newline-separated
    # Legal name + categories + keywords: the document the full-text index is built on
    # (FTS5 on SQLite, a generated tsvector on PostgreSQL; see the migrations).
    search_text = Text(default="")
    # The search indexes (full-text, and composite ones Piccolo cannot declare) are in the
    # raw-SQL migration "Supplier search indexes".
    ta_status = Varchar(length=16, choices=TradeAssuranceStatus, default=TradeAssuranceStatus.NONE)
    ta_limit_minor = BigInt(null=True, default=None)
    ta_limit_currency = Varchar(length=3, null=True, default=None)
    ta_since = Timestamptz(null=True, default=None)
    updated_at = Timestamptz()


class SupplierCategory(Table):
    """One row per (supplier, category) so the category filter is an index lookup
    (on (category, supplier), created by the search-index migration)."""

    id = Serial(primary_key=True)
    supplier = ForeignKey(SupplierProfile, null=False, index=True)
    category = Varchar(length=100)


class InspectorProfile(Table):
    """An inspection company's terms: the fee a buyer pays per booking (converted into
    the order's currency at the configured rates when the currencies differ)."""

    id = Serial(primary_key=True)
    company = ForeignKey(Company, null=False, unique=True)
    fee_minor = BigInt()
    fee_currency = Varchar(length=3)
    updated_at = Timestamptz()


class TradeAssuranceApplication(Table):
    id = Serial(primary_key=True)
    supplier = ForeignKey(SupplierProfile, null=False, index=True)
    submitted_by = ForeignKey(UserAccount, null=False)
    status = Varchar(
        length=16, choices=ApplicationStatus, default=ApplicationStatus.PENDING, index=True
    )
    requested_limit_minor = BigInt(null=True, default=None)
    requested_limit_currency = Varchar(length=3, null=True, default=None)
    submitted_at = Timestamptz()
    review_due_at = Timestamptz(index=True)
    decided_at = Timestamptz(null=True, default=None)
    decided_by = ForeignKey(UserAccount, null=True, default=None)
    granted_limit_minor = BigInt(null=True, default=None)
    granted_limit_currency = Varchar(length=3, null=True, default=None)
    rejection_reason = Text(null=True, default=None)
    # Set once by the deadline sweep when the review is still pending after its due date.
    flagged_at = Timestamptz(null=True, default=None)


class Order(Table, tablename="trade_order"):  # "order" is an SQL keyword
    id = Serial(primary_key=True)
    buyer = ForeignKey(Company, null=False, index=True)
    supplier = ForeignKey(SupplierProfile, null=False, index=True)
    created_by = ForeignKey(UserAccount, null=True, default=None)
    drafted_by = Varchar(length=16, choices=Role)  # BUYER or SUPPLIER: the other confirms
    status = Varchar(length=32, choices=OrderStatus, index=True)
    currency = Varchar(length=3)
    total_minor = BigInt()
    initial_minor = BigInt()  # the deposit; the balance is total - initial
    incoterm = Varchar(length=3, choices=Incoterm)
    shipping_method = Varchar(length=8, choices=ShippingMethod)
    destination_country = Varchar(length=2)
    shipping_deadline = Timestamptz()
    payment_deadline = Timestamptz(null=True, default=None)  # set at confirmation
    # Coverage, fixed at confirmation: the cap in the order's currency, the share of the
    # supplier's limit it reserves (in the limit's currency) and the rate used.
    coverage_cap_minor = BigInt(null=True, default=None)
    limit_reserved_minor = BigInt(default=0)
    limit_currency = Varchar(length=3, null=True, default=None)
    exchange_rate = Varchar(length=32, null=True, default=None)  # decimal string
    version = Integer(default=1)  # bumped by each accepted modification
    created_at = Timestamptz()
    confirmed_at = Timestamptz(null=True, default=None)
    updated_at = Timestamptz()
    # The shipment, as the supplier records it. `shipped_at` is the shipment date it
    # declares; late when after the shipping deadline (or once the order was overdue).
    shipped_at = Timestamptz(null=True, default=None)
    shipment_recorded_at = Timestamptz(null=True, default=None)
    carrier = Varchar(length=100, null=True, default=None)
    tracking_number = Varchar(length=100, null=True, default=None)
    shipment_method = Varchar(length=8, choices=ShippingMethod, null=True, default=None)
    shipped_late = Boolean(default=False)
    # Receipt: by the buyer, or automatically (`receipt_auto`); the claim window follows.
    received_at = Timestamptz(null=True, default=None)
    receipt_auto = Boolean(default=False)
    claim_window_ends_at = Timestamptz(null=True, default=None)
    completed_at = Timestamptz(null=True, default=None)
    # When the next deadline the system enforces falls due (None: none is pending). Kept
    # by every transition (models/deadlines.py); the sweep selects on it through a
    # partial index (migration "Due-deadline index").
    next_deadline_at = Timestamptz(null=True, default=None)


class OrderLine(Table):
    id = Serial(primary_key=True)
    order = ForeignKey(Order, null=False, index=True)
    position = Integer()
    product_name = Varchar(length=200)
    specification = Text(default="")
    quantity = BigInt()
    unit_price_minor = BigInt()


class QualityRequirement(Table):
    """A measurable requirement of the contract (what an inspection checks)."""

    id = Serial(primary_key=True)
    order = ForeignKey(Order, null=False, index=True)
    position = Integer()
    attribute = Varchar(length=200)
    requirement = Text()


class OrderModification(Table):
    """A proposed new contract (lines, terms, amounts as JSON); the other party accepts."""

    id = Serial(primary_key=True)
    order = ForeignKey(Order, null=False, index=True)
    proposed_by = ForeignKey(UserAccount, null=True, default=None)
    proposed_by_role = Varchar(length=16, choices=Role)
    status = Varchar(length=16)  # PENDING, ACCEPTED, SUPERSEDED
    contract = Text()  # JSON
    reason = Text(default="")
    created_at = Timestamptz()
    decided_at = Timestamptz(null=True, default=None)


class OrderEvent(Table):
    """The order's timeline, audit trail and (later) the subscriptions' outbox."""

    id = Serial(primary_key=True)
    order = ForeignKey(Order, null=False, index=True, on_delete=OnDelete.restrict)
    kind = Varchar(length=40)
    old_status = Varchar(length=32, null=True, default=None)
    new_status = Varchar(length=32)
    actor_kind = Varchar(length=20, choices=ActorKind)
    actor_user = ForeignKey(UserAccount, null=True, default=None)
    actor_api_key = ForeignKey(ApiKey, null=True, default=None)
    reason = Text(default="")
    created_at = Timestamptz()


class Inspection(Table):
    """A pre-shipment inspection the buyer books (and pays for) with an inspector."""

    id = Serial(primary_key=True)
    order = ForeignKey(Order, null=False, index=True, on_delete=OnDelete.restrict)
    inspector = ForeignKey(Company, null=False, index=True)  # an INSPECTOR company
    booked_by = ForeignKey(UserAccount, null=True, default=None)
    status = Varchar(length=16, choices=InspectionStatus, index=True)
    scheduled_on = Date()
    currency = Varchar(length=3)  # the order's
    fee_minor = BigInt()
    result = Varchar(length=8, choices=InspectionResult, null=True, default=None)
    findings = Text(default="")
    decline_reason = Text(null=True, default=None)
    created_at = Timestamptz()
    decided_at = Timestamptz(null=True, default=None)  # accepted or declined
    reported_at = Timestamptz(null=True, default=None)


class InspectionAttachment(Table):
    """A file of an inspection report. The bytes live on disk, named by their SHA-256,
    which is checked again whenever the file is served."""

    id = Serial(primary_key=True)
    inspection = ForeignKey(Inspection, null=False, index=True, on_delete=OnDelete.restrict)
    filename = Varchar(length=200)
    content_type = Varchar(length=64)  # sniffed from the bytes, never the client's claim
    size_bytes = BigInt()
    sha256 = Varchar(length=64)
    created_at = Timestamptz()


class Dispute(Table):
    """A buyer's dispute on an order: the claim, its assessment against the published
    rules, the supplier's answer, escalation and the mediator's decision (issue 5)."""

    id = Serial(primary_key=True)
    order = ForeignKey(Order, null=False, index=True, on_delete=OnDelete.restrict)
    opened_by = ForeignKey(UserAccount, null=True, default=None)
    # OPEN (supplier answers / parties negotiate), ESCALATED (a mediator decides), RESOLVED
    status = Varchar(length=16, index=True)
    reason = Varchar(length=32)
    description = Text(default="")
    currency = Varchar(length=3)
    requested_minor = BigInt()
    delay_accepted_in_writing = Boolean(default=False)
    concerns_freight_or_after_sales = Boolean(default=False)
    assessment = Text(default="[]")  # JSON: [{"rule", "effect", "reason"}]
    opened_at = Timestamptz()
    response_due_at = Timestamptz()
    escalation_allowed_at = Timestamptz()
    auto_escalation_at = Timestamptz()
    # While OPEN: when the sweep escalates it (None otherwise); the sweep's selection
    # reads the index on it.
    dispute_due_at = Timestamptz(null=True, default=None, index=True)
    # The supplier's answer: ACCEPT, OFFER or REJECT
    supplier_response = Varchar(length=8, null=True, default=None)
    supplier_response_text = Text(default="")
    offered_minor = BigInt(null=True, default=None)
    responded_at = Timestamptz(null=True, default=None)
    escalated_at = Timestamptz(null=True, default=None)
    escalated_automatically = Boolean(default=False)
    supplier_cooperated = Boolean(null=True, default=None)  # set at escalation
    # How it ended: SUPPLIER_ACCEPTED, OFFER_ACCEPTED, FULL_REFUND, PARTIAL_REFUND,
    # RELEASE_TO_SUPPLIER
    outcome = Varchar(length=24, null=True, default=None)
    refunded_minor = BigInt(null=True, default=None)
    decision_reason = Text(default="")
    decided_by = ForeignKey(UserAccount, null=True, default=None)
    inspection_fee_refunded = Boolean(default=False)
    resolved_at = Timestamptz(null=True, default=None)


class OrderMessage(Table):
    """A message of an order's conversation (issue 6). Recorded in the same transaction
    as an order event of kind MESSAGE_SENT (`event`): messages travel the order-event feed.
    Paged by the index on ("order", id) (migration "Order conversation indexes")."""

    id = Serial(primary_key=True)
    order = ForeignKey(Order, null=False, on_delete=OnDelete.restrict)
    event = ForeignKey(OrderEvent, null=False, unique=True, on_delete=OnDelete.restrict)
    author_user = ForeignKey(UserAccount, null=True, default=None)
    author_api_key = ForeignKey(ApiKey, null=True, default=None)
    author_company = ForeignKey(Company, null=False)
    author_role = Varchar(length=16, choices=Role)  # BUYER, SUPPLIER or MEDIATOR
    body = Text()
    created_at = Timestamptz()


class OrderMessageAttachment(Table):
    """A file sent with a message, stored like inspection attachments (by SHA-256)."""

    id = Serial(primary_key=True)
    message = ForeignKey(OrderMessage, null=False, index=True, on_delete=OnDelete.restrict)
    filename = Varchar(length=200)
    content_type = Varchar(length=64)  # sniffed from the bytes, never the client's claim
    size_bytes = BigInt()
    sha256 = Varchar(length=64)
    created_at = Timestamptz()


class DisputeEvidence(Table):
    """Text, a file (stored like inspection attachments, named by SHA-256) or a cited
    message of the order's conversation that a party adds to a dispute."""

    id = Serial(primary_key=True)
    dispute = ForeignKey(Dispute, null=False, index=True, on_delete=OnDelete.restrict)
    party = Varchar(length=16, choices=Role)  # BUYER or SUPPLIER
    added_by = ForeignKey(UserAccount, null=True, default=None)
    text = Text(default="")
    filename = Varchar(length=200, null=True, default=None)
    content_type = Varchar(length=64, null=True, default=None)
    size_bytes = BigInt(null=True, default=None)
    sha256 = Varchar(length=64, null=True, default=None)
    message = ForeignKey(OrderMessage, null=True, default=None, on_delete=OnDelete.restrict)
    created_at = Timestamptz()


class Payment(Table):
    id = Serial(primary_key=True)
    order = ForeignKey(Order, null=False, index=True, on_delete=OnDelete.restrict)
    # Set for an inspection fee; null for the order's goods money.
    inspection = ForeignKey(
        Inspection, null=True, default=None, index=True, on_delete=OnDelete.restrict
    )
    method = Varchar(length=16, choices=PaymentMethod)
    status = Varchar(length=16, choices=PaymentStatus, index=True)
    currency = Varchar(length=3)
    amount_minor = BigInt()
    fee_minor = BigInt(default=0)
    provider_reference = Varchar(length=64, null=True, default=None, unique=True)
    failure_reason = Text(null=True, default=None)
    created_at = Timestamptz()
    settled_at = Timestamptz(null=True, default=None)
    # When the reconciling sweep last asked the provider about this PENDING payment.
    checked_at = Timestamptz(null=True, default=None)


class SandboxOperation(Table):
    """The sandbox payment provider's own memory (server/payments/sandbox.py): what it
    answered to each of our references, as a real provider keeps on its side. It makes
    a repeated charge or refund with one reference answer as the first time (no second
    charge or payout) and lets the reconciling sweep ask about a charge whose answer a
    crashed process never recorded. Not domain data: nothing of ours reads it."""

    id = Serial(primary_key=True)
    reference = Varchar(length=64, unique=True)  # ours: pay_12, ref_7
    outcome = Varchar(length=16)  # SUCCEEDED, DECLINED, PENDING; SETTLED, FAILED
    provider_reference = Varchar(length=64)
    failure_reason = Text(null=True, default=None)
    created_at = Timestamptz()


class Refund(Table):
    id = Serial(primary_key=True)
    order = ForeignKey(Order, null=False, index=True, on_delete=OnDelete.restrict)
    payment = ForeignKey(
        Payment, null=True, default=None, on_delete=OnDelete.restrict
    )  # goes back the way it came
    # Set when an inspection fee is refunded; null for the order's goods money.
    inspection = ForeignKey(
        Inspection, null=True, default=None, index=True, on_delete=OnDelete.restrict
    )
    status = Varchar(length=16, choices=RefundStatus, index=True)
    currency = Varchar(length=3)
    amount_minor = BigInt()
    reason = Text(default="")
    attempts = Integer(default=0)
    provider_reference = Varchar(length=64, null=True, default=None, unique=True)
    last_error = Text(null=True, default=None)
    due_at = Timestamptz()  # must be started by then (business days after the decision)
    created_at = Timestamptz()
    settled_at = Timestamptz(null=True, default=None)
    # Set when a dispute's outcome started it (its goods money or an inspection fee).
    dispute = ForeignKey(Dispute, null=True, default=None, index=True, on_delete=OnDelete.restrict)
    # While PENDING or FAILED: when the sweep may try the provider again (None once
    # settled). Pushed out before each attempt, so one attempt runs per back-off period.
    next_attempt_at = Timestamptz(null=True, default=None, index=True)
    # When the sweep flagged it as not settled past `due_at` (once).
    flagged_at = Timestamptz(null=True, default=None)


class LedgerPosting(Table):
    """One leg of a balanced double-entry transaction. Never updated, never deleted (and
    money rows restrict the deletion of their order, rather than cascading).

    `amount_minor` is signed: positive debits, negative credits; the legs of one `txn`
    sum to zero in their currency."""

    id = Serial(primary_key=True)
    txn = Varchar(length=36, index=True)
    kind = Varchar(length=20)
    order = ForeignKey(Order, null=True, default=None, index=True, on_delete=OnDelete.restrict)
    account = Varchar(length=64, index=True)
    currency = Varchar(length=3)
    amount_minor = BigInt()
    created_at = Timestamptz()


class IdempotencyRecord(Table):
    """The first answer to a money mutation, per caller and key."""

    id = Serial(primary_key=True)
    scope = Varchar(length=40)  # "user:12" or "api_key:3"
    key = Varchar(length=200)
    operation = Varchar(length=40)
    request_hash = Varchar(length=64)
    result = Text()  # JSON
    created_at = Timestamptz()


class ProviderEvent(Table):
    """Payment-provider callbacks already processed (their ids are unique)."""

    id = Serial(primary_key=True)
    provider_event_id = Varchar(length=100, unique=True)
    kind = Varchar(length=40)
    received_at = Timestamptz()


class Investigation(Table):
    """An investigation of a supplier, opened by penalty points or an accepted complaint;
    a mediator closes it with an outcome. At most one is OPEN per supplier (a partial
    unique index, migration "One open investigation per supplier")."""

    id = Serial(primary_key=True)
    supplier = ForeignKey(SupplierProfile, null=False, index=True, on_delete=OnDelete.restrict)
    status = Varchar(length=8, choices=InvestigationStatus, index=True)
    opened_by = Varchar(length=16, choices=InvestigationTrigger)
    opened_at = Timestamptz()
    closed_at = Timestamptz(null=True, default=None)
    closed_by = ForeignKey(UserAccount, null=True, default=None)
    outcome = Varchar(length=16, choices=InvestigationOutcome, null=True, default=None)
    reason = Text(null=True, default=None)
    # LIMIT_REDUCED: the limit before and after (limit currency).
    previous_limit_minor = BigInt(null=True, default=None)
    new_limit_minor = BigInt(null=True, default=None)
    limit_currency = Varchar(length=3, null=True, default=None)


class PenaltyPoint(Table):
    """Penalty points given to a supplier (e.g. a dispute decided against it). The total
    is derived. `investigation` is the investigation that consumed them: points count
    towards the threshold only while it is null."""

    id = Serial(primary_key=True)
    supplier = ForeignKey(SupplierProfile, null=False, index=True, on_delete=OnDelete.restrict)
    points = Integer()
    reason = Text()
    dispute_id = BigInt(null=True, default=None)  # the dispute that gave them, if any
    investigation = ForeignKey(
        Investigation, null=True, default=None, index=True, on_delete=OnDelete.restrict
    )
    created_at = Timestamptz()


class Complaint(Table):
    """A buyer's complaint about a supplier it has ordered from; a mediator reviews it."""

    id = Serial(primary_key=True)
    supplier = ForeignKey(SupplierProfile, null=False, index=True, on_delete=OnDelete.restrict)
    buyer = ForeignKey(Company, null=False, index=True)
    filed_by = ForeignKey(UserAccount, null=True, default=None)
    order = ForeignKey(Order, null=True, default=None, on_delete=OnDelete.restrict)
    subject = Varchar(length=200)
    description = Text()
    evidence = Text(default="")
    status = Varchar(length=16, choices=ComplaintStatus, index=True)
    investigation = ForeignKey(
        Investigation, null=True, default=None, index=True, on_delete=OnDelete.restrict
    )
    created_at = Timestamptz()
    reviewed_at = Timestamptz(null=True, default=None)
    reviewed_by = ForeignKey(UserAccount, null=True, default=None)
    review_reason = Text(null=True, default=None)


class ComplaintAttachment(Table):
    """An evidence file of a complaint; stored like inspection report files (on disk,
    named by SHA-256, checked again whenever served)."""

    id = Serial(primary_key=True)
    complaint = ForeignKey(Complaint, null=False, index=True, on_delete=OnDelete.restrict)
    filename = Varchar(length=200)
    content_type = Varchar(length=64)
    size_bytes = BigInt()
    sha256 = Varchar(length=64)
    created_at = Timestamptz()


class SupplierEvent(Table):
    """A supplier's audit trail (penalty points, complaints, investigations, their
    outcomes), written in the same transaction as the change; order events stay per order."""

    id = Serial(primary_key=True)
    supplier = ForeignKey(SupplierProfile, null=False, index=True, on_delete=OnDelete.restrict)
    kind = Varchar(length=40)
    actor_kind = Varchar(length=20)  # USER, or SYSTEM (another domain function, e.g. a dispute)
    actor_user = ForeignKey(UserAccount, null=True, default=None)
    investigation = ForeignKey(Investigation, null=True, default=None)
    complaint = ForeignKey(Complaint, null=True, default=None)
    dispute_id = BigInt(null=True, default=None)
    detail = Text(default="")
    created_at = Timestamptz()


ALL_TABLES: list[type[Table]] = [
    Company,
    UserAccount,
    AccessToken,
    ApiKey,
    LoginThrottle,
    SupplierProfile,
    SupplierCategory,
    InspectorProfile,
    TradeAssuranceApplication,
    Order,
    OrderLine,
    QualityRequirement,
    OrderModification,
    OrderEvent,
    Inspection,
    InspectionAttachment,
    Payment,
    Dispute,  # before Refund, which names the dispute it came from
    Refund,
    SandboxOperation,
    LedgerPosting,
    IdempotencyRecord,
    ProviderEvent,
    Investigation,
    PenaltyPoint,
    Complaint,
    SupplierEvent,
    ComplaintAttachment,
    OrderMessage,
    OrderMessageAttachment,
    DisputeEvidence,
]
