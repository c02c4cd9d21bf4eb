"""Piccolo tables. Money columns are BigInt minor units beside a currency code."""

from __future__ import annotations

from piccolo.columns import (
    BigInt,
    Boolean,
    DoublePrecision,
    ForeignKey,
    Integer,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table

from models.enums import (
    ApplicationStatus,
    CompanyKind,
    Role,
    TradeAssuranceStatus,
    Verification,
)


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


ALL_TABLES: list[type[Table]] = [
    Company,
    UserAccount,
    AccessToken,
    ApiKey,
    SupplierProfile,
    SupplierCategory,
    TradeAssuranceApplication,
]
