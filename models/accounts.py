"""Companies, users, login tokens and partner API keys.

Passwords: argon2id (memory-hard) via argon2-cffi. Tokens and API keys are 256-bit random
secrets; a fast SHA-256 is the right hash for those (nothing to brute-force), and lets a
request find its row by an indexed equality lookup.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
import secrets
import time
from collections.abc import Collection, Sequence
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from models import clock, config, login_throttle, sql
from models.db import for_update, is_unique_violation, write_transaction
from models.enums import ROLE_OF_KIND, CompanyKind, Role, Scope
from models.errors import DomainError, ErrorCode
from models.geography import validate_country
from models.tables import (
    AccessToken,
    ApiKey,
    Company,
    InspectorProfile,
    SupplierProfile,
    UserAccount,
)

TOKEN_PREFIX = "tat_"  # noqa: S105 - a label, not a secret
API_KEY_PREFIX = "tak_"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so a miss costs as much as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class AuthError(Exception):
    """A presented credential is not valid (unknown, expired or revoked)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclasses.dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user (through a login token) or a partner (through an API key)."""

    role: Role
    company_id: int
    company_kind: CompanyKind
    user_id: int | None = None
    api_key_id: int | None = None
    token_id: int | None = None
    scopes: frozenset[Scope] = frozenset(Scope)

    @property
    def is_partner(self) -> bool:
        return self.api_key_id is not None

    @property
    def acting_role(self) -> Role:
        """The role a partner key acts in: its company's."""
        return ROLE_OF_KIND[self.company_kind] if self.is_partner else self.role


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _validate_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL.match(email) or len(email) > 254:
        raise DomainError(ErrorCode.INVALID_INPUT, f"'{email}' is not an e-mail address", "email")
    return email


def _validate_password(password: str) -> None:
    minimum = config.current().min_password_length
    if len(password) < minimum:
        raise DomainError(
            ErrorCode.WEAK_PASSWORD, f"password must have at least {minimum} characters", "password"
        )


def _require_text(value: str, field: str, max_length: int = 200) -> str:
    value = value.strip()
    if not value:
        raise DomainError(ErrorCode.INVALID_INPUT, f"{field} must not be empty", field)
    if len(value) > max_length:
        raise DomainError(ErrorCode.INVALID_INPUT, f"{field} is longer than {max_length}", field)
    return value


async def create_company(
    legal_name: str, kind: CompanyKind, country: str, *, year_joined: int | None = None
) -> Company:
    """Insert a company (and, for a supplier, its empty directory profile). Call inside a
    write transaction."""
    now = clock.now()
    company = Company(
        legal_name=_require_text(legal_name, "companyName"),
        kind=kind.value,
        country=validate_country(country),
        created_at=now,
    )
    await company.save()
    if kind is CompanyKind.INSPECTOR:  # bookable at once, at the default fee
        await InspectorProfile(
            company=company.id,
            fee_minor=config.current().inspection_fee_minor,
            fee_currency=config.current().limit_currency,
            updated_at=now,
        ).save()
    if kind is CompanyKind.SUPPLIER:
        from models.suppliers import search_document

        await SupplierProfile(
            company=company.id,
            country=company.country,
            year_joined=year_joined or now.year,
            search_text=search_document(company.legal_name, [], []),
            updated_at=now,
        ).save()
    return company


async def _insert_user(
    company: Company, email: str, password: str, full_name: str, role: Role
) -> UserAccount:
    email = _validate_email(email)
    _validate_password(password)
    if await UserAccount.exists().where(UserAccount.email == email):
        raise DomainError(ErrorCode.EMAIL_TAKEN, f"{email} is already registered", "email")
    user = UserAccount(
        company=company.id,
        email=email,
        password_hash=_hasher.hash(password),
        full_name=_require_text(full_name, "fullName"),
        role=role.value,
        active=True,
        created_at=clock.now(),
    )
    try:
        await user.save()
    except Exception as e:
        if not is_unique_violation(e):
            raise
        # The same e-mail signed up at the same moment (PostgreSQL; SQLite's write lock
        # orders the two, and the check above refuses the second).
        raise DomainError(ErrorCode.EMAIL_TAKEN, f"{email} is already registered", "email") from e
    return user


async def register(
    *,
    company_name: str,
    kind: CompanyKind,
    country: str,
    email: str,
    password: str,
    full_name: str,
) -> tuple[UserAccount, str, dt.datetime]:
    """Self-service sign-up of a buyer or supplier company and its first user; logs them in."""
    if kind not in (CompanyKind.BUYER, CompanyKind.SUPPLIER):
        raise DomainError(
            ErrorCode.INVALID_INPUT, "only buyer and supplier companies can register", "kind"
        )
    async with write_transaction():
        company = await create_company(company_name, kind, country)
        user = await _insert_user(company, email, password, full_name, ROLE_OF_KIND[kind])
        token, expires = await _issue_token(user)
    return user, token, expires


async def create_user(
    *,
    email: str,
    password: str,
    full_name: str,
    role: Role,
    company_id: int | None = None,
    company_name: str | None = None,
    country: str = "US",
) -> UserAccount:
    """Staff path (CLI): a user of any role, in an existing company or a new one."""
    if role is Role.PARTNER:
        raise DomainError(ErrorCode.INVALID_INPUT, "partners use API keys, not users", "role")
    kind = next(k for k, r in ROLE_OF_KIND.items() if r is role)
    async with write_transaction():
        if company_id is not None:
            company = await Company.objects().get(Company.id == company_id)
            if company is None:
                raise DomainError(ErrorCode.NOT_FOUND, f"no company {company_id}", "company")
            if company.kind != kind.value:
                raise DomainError(
                    ErrorCode.INVALID_INPUT,
                    f"a {role.value} must belong to a {kind.value} company",
                    "role",
                )
        else:
            name = company_name or (
                "Trade Assurance Platform" if kind is CompanyKind.PLATFORM else ""
            )
            company = await create_company(name, kind, country)
        return await _insert_user(company, email, password, full_name, role)


async def _issue_token(user: UserAccount) -> tuple[str, dt.datetime]:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = clock.now()
    expires = now + dt.timedelta(hours=config.current().token_ttl_hours)
    await AccessToken(
        user=user.id, token_hash=_digest(token), created_at=now, expires_at=expires
    ).save()
    return token, expires


async def login(
    email: str, password: str, address: str | None = None
) -> tuple[UserAccount, str, dt.datetime]:
    """Check the password and issue a bearer token; returns (user, token, expiry).
    Failures count against the account and the client `address` (models.login_throttle)."""
    email = email.strip().lower()
    if len(email) > 254:  # no account has one; and it would not fit the throttle's key
        raise DomainError(ErrorCode.INVALID_CREDENTIALS, "wrong e-mail or password")
    throttled = login_throttle.keys(email, address)
    await login_throttle.refuse_if_waiting(throttled)
    user = await UserAccount.objects().get(UserAccount.email == email)
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        user = None
    if user is None:
        await login_throttle.count_failure(throttled)
        raise DomainError(ErrorCode.INVALID_CREDENTIALS, "wrong e-mail or password")
    await login_throttle.clear(throttled[0][0])
    if not user.active:
        raise DomainError(ErrorCode.ACCOUNT_DISABLED, "this account is disabled")
    async with write_transaction():
        if _hasher.check_needs_rehash(user.password_hash):
            await UserAccount.update({UserAccount.password_hash: _hasher.hash(password)}).where(
                UserAccount.id == user.id
            )
        token, expires = await _issue_token(user)
    return user, token, expires


def _check_live(expires_at: dt.datetime | None, revoked_at: dt.datetime | None, what: str) -> None:
    if revoked_at is not None:
        raise AuthError(f"{what}_REVOKED", f"this {what.lower().replace('_', ' ')} was revoked")
    if expires_at is not None and expires_at.tzinfo is None:
        raise DomainError(
            ErrorCode.INVALID_INPUT, "expiresAt needs a time zone (e.g. ...Z)", "expiresAt"
        )
    if expires_at is not None and expires_at <= clock.now():
        raise AuthError(f"{what}_EXPIRED", f"this {what.lower().replace('_', ' ')} has expired")


# Every request runs this; written out, it costs a fraction of the ORM's three-table join.
_SESSION_SQL = """
SELECT t.id, t.expires_at, t.revoked_at, u.id AS user_id, u.role, u.active,
       c.id AS company_id, c.kind
FROM access_token t
JOIN user_account u ON u.id = t."user"
JOIN company c ON c.id = u.company
WHERE t.token_hash = {}
"""


# Valid credentials recently looked up, by digest: every request authenticates, and most
# come from a few live sessions. Failed look-ups are never cached. Expiry is still checked
# on every use; a logout here forgets them all, one elsewhere holds for the cache's time.
_sessions: dict[str, tuple[Principal, dt.datetime | None, str, float]] = {}
_SESSIONS_MAX = 10_000
cache_clock = time.monotonic  # the cache's own clock (tests move it, not the domain clock)


def forget_sessions() -> None:
    """Drop every cached look-up (after a credential changed in this process)."""
    _sessions.clear()


async def authenticate(secret: str, *, cached: bool = True) -> Principal:
    """Turn a presented bearer token or API key into a Principal, or raise AuthError.
    `cached=False` always reads the database (a long-lived stream starting)."""
    digest = _digest(secret)
    ttl = config.current().session_cache_seconds
    hit = _sessions.get(digest) if cached else None
    if hit is not None and cache_clock() - hit[3] < ttl:
        principal, expires_at, what, _ = hit
        _check_live(expires_at, None, what)
        return principal
    principal, expires_at, what = await _look_up(secret, digest)
    if ttl > 0:
        if len(_sessions) >= _SESSIONS_MAX:
            _sessions.clear()  # simpler than LRU bookkeeping; refills within a second
        _sessions[digest] = (principal, expires_at, what, cache_clock())
    return principal


async def _look_up(secret: str, digest: str) -> tuple[Principal, dt.datetime | None, str]:
    if secret.startswith(API_KEY_PREFIX):
        rows = await ApiKey.select(
            ApiKey.id,
            ApiKey.company,
            ApiKey.scopes,
            ApiKey.expires_at,
            ApiKey.revoked_at,
            ApiKey.company.kind.as_alias("kind"),
        ).where(ApiKey.key_hash == digest)
        if not rows:
            raise AuthError("API_KEY_INVALID", "unknown API key")
        key = rows[0]
        _check_live(key["expires_at"], key["revoked_at"], "API_KEY")
        principal = Principal(
            role=Role.PARTNER,
            company_id=key["company"],
            company_kind=CompanyKind(key["kind"]),
            api_key_id=key["id"],
            scopes=frozenset(Scope(s) for s in key["scopes"].split(",") if s),
        )
        return principal, key["expires_at"], "API_KEY"
    rows = await sql.read(_SESSION_SQL, digest)
    if not rows:
        raise AuthError("TOKEN_INVALID", "unknown bearer token")
    row = rows[0]
    _check_live(row["expires_at"], row["revoked_at"], "TOKEN")
    if not row["active"]:
        raise AuthError("ACCOUNT_DISABLED", "this account is disabled")
    principal = Principal(
        role=Role(row["role"]),
        company_id=row["company_id"],
        company_kind=CompanyKind(row["kind"]),
        user_id=row["user_id"],
        token_id=row["id"],
    )
    return principal, row["expires_at"], "TOKEN"


_RECHECK_CHUNK = 500  # ids per statement


async def recheck(principals: Collection[Principal]) -> dict[Principal, AuthError]:
    """Which of these principals' credentials have since been revoked, have expired, or
    belong to a user now disabled or given another role: long-lived streams call this
    before each delivery, for all their recipients in a few statements."""
    failed: dict[Principal, AuthError] = {}
    keys = {p.api_key_id: p for p in principals if p.api_key_id is not None}
    tokens = {p.token_id: p for p in principals if p.api_key_id is None and p.token_id}
    for chunk in _chunks(list(keys)):
        rows = await sql.fetch(
            f"SELECT id, expires_at, revoked_at FROM api_key WHERE id IN ({_marks(chunk)})",  # noqa: S608
            *chunk,
        )
        found = {int(r["id"]): r for r in rows}
        for key_id in chunk:
            _collect(failed, keys[key_id], found.get(key_id), "API_KEY")
    for chunk in _chunks(list(tokens)):
        rows = await sql.fetch(
            "SELECT t.id, t.expires_at, t.revoked_at, u.active, u.role FROM access_token t"  # noqa: S608
            f' JOIN user_account u ON u.id = t."user" WHERE t.id IN ({_marks(chunk)})',
            *chunk,
        )
        found = {int(r["id"]): r for r in rows}
        for token_id in chunk:
            _collect(failed, tokens[token_id], found.get(token_id), "TOKEN")
    return failed


def _chunks(ids: list[Any]) -> list[list[Any]]:
    return [ids[i : i + _RECHECK_CHUNK] for i in range(0, len(ids), _RECHECK_CHUNK)]


def _marks(ids: list[Any]) -> str:
    return ", ".join("{}" for _ in ids)


def _collect(
    failed: dict[Principal, AuthError],
    principal: Principal,
    row: dict[str, Any] | None,
    what: str,
) -> None:
    try:
        if row is None:
            raise AuthError(f"{what}_INVALID", f"unknown {what.lower().replace('_', ' ')}")
        _check_live(row["expires_at"], row["revoked_at"], what)
        if what == "TOKEN" and not row["active"]:
            raise AuthError("ACCOUNT_DISABLED", "this account is disabled")
        if what == "TOKEN" and row["role"] != principal.role.value:
            raise AuthError("ROLE_CHANGED", "this account's role has changed; log in again")
    except AuthError as e:
        failed[principal] = e


async def logout(principal: Principal, *, all_sessions: bool = False) -> int:
    """Revoke the caller's token (or every live token of the user); returns how many."""
    if principal.user_id is None or principal.token_id is None:
        raise DomainError(ErrorCode.FORBIDDEN, "only a logged-in user can log out")
    target = (
        AccessToken.user == principal.user_id
        if all_sessions
        else AccessToken.id == principal.token_id
    )
    async with write_transaction():
        revoked = (
            await AccessToken.update({AccessToken.revoked_at: clock.now()})
            .where(target & AccessToken.revoked_at.is_null())
            .returning(AccessToken.id)
        )
    forget_sessions()  # after commit: a look-up meanwhile could re-cache the live token
    return len(revoked)


def _parse_scopes(scopes: list[Scope]) -> list[Scope]:
    if not scopes:
        raise DomainError(ErrorCode.INVALID_INPUT, "an API key needs at least one scope", "scopes")
    return sorted(set(scopes), key=lambda s: list(Scope).index(s))


async def create_api_key(
    *,
    company_id: int,
    name: str,
    scopes: list[Scope],
    created_by: int | None = None,
    expires_at: dt.datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new partner key; the secret is returned once and only its hash is stored."""
    ordered = _parse_scopes(scopes)
    if expires_at is not None and expires_at.tzinfo is None:
        raise DomainError(
            ErrorCode.INVALID_INPUT, "expiresAt needs a time zone (e.g. ...Z)", "expiresAt"
        )
    if expires_at is not None and expires_at <= clock.now():
        raise DomainError(ErrorCode.INVALID_INPUT, "expiry must be in the future", "expiresAt")
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    async with write_transaction():
        if not await Company.exists().where(Company.id == company_id):
            raise DomainError(ErrorCode.NOT_FOUND, f"no company {company_id}", "company")
        key = ApiKey(
            company=company_id,
            created_by=created_by,
            name=_require_text(name, "name", 100),
            prefix=secret[:12],
            key_hash=_digest(secret),
            scopes=",".join(s.value for s in ordered),
            created_at=clock.now(),
            expires_at=expires_at,
        )
        await key.save()
    return key, secret


def require_user(principal: Principal) -> int:
    """Company administration is for the company's people, not for partner keys."""
    if principal.user_id is None:
        raise DomainError(ErrorCode.FORBIDDEN, "partner API keys cannot manage the account")
    return principal.user_id


async def create_api_key_for(
    principal: Principal, name: str, scopes: list[Scope], expires_at: dt.datetime | None
) -> tuple[ApiKey, str]:
    user_id = require_user(principal)
    if principal.role not in (Role.BUYER, Role.SUPPLIER):
        raise DomainError(ErrorCode.FORBIDDEN, "only buyer and supplier companies have partners")
    return await create_api_key(
        company_id=principal.company_id,
        name=name,
        scopes=scopes,
        created_by=user_id,
        expires_at=expires_at,
    )


async def revoke_api_key(principal: Principal, key_id: int) -> ApiKey:
    require_user(principal)
    async with write_transaction():
        found = await for_update(ApiKey.objects().where(ApiKey.id == key_id))
        key: ApiKey | None = found[0] if found else None
        if key is None or (
            key.company != principal.company_id and principal.role is not Role.MEDIATOR
        ):
            raise DomainError(ErrorCode.NOT_FOUND, "no such API key", "apiKeyId")
        if key.revoked_at is not None:
            raise DomainError(
                ErrorCode.ALREADY_REVOKED, "this API key is already revoked", "apiKeyId"
            )
        key.revoked_at = clock.now()
        await key.save([ApiKey.revoked_at])
    forget_sessions()  # after commit: a look-up meanwhile could re-cache the live key
    return key


async def get_companies(ids: Sequence[int]) -> dict[int, Company]:
    rows = await sql.select(Company, sql.among("id", len(ids)), *ids) if ids else []
    return {c.id: c for c in rows}


async def get_users(ids: Sequence[int]) -> dict[int, UserAccount]:
    rows = await UserAccount.objects().where(UserAccount.id.is_in(list(ids))) if ids else []
    return {u.id: u for u in rows}


async def list_api_keys(principal: Principal) -> list[ApiKey]:
    require_user(principal)
    return list(
        await ApiKey.objects().where(ApiKey.company == principal.company_id).order_by(ApiKey.id)
    )


def may_see_company(principal: Principal | None, company: Company) -> bool:
    """Supplier companies are public (the directory); others only to members and staff."""
    if company.kind == CompanyKind.SUPPLIER.value:
        return True
    if principal is None:
        return False
    return principal.role is Role.MEDIATOR or principal.company_id == company.id


def may_see_user(principal: Principal | None, user: UserAccount) -> bool:
    if principal is None:
        return False
    return principal.role is Role.MEDIATOR or (
        principal.company_id == user.company and not principal.is_partner
    )
