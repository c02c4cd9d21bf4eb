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
