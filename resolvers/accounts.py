"""Accounts and auth: `viewer`, companies, users, API keys, register/login/logout."""

import datetime as dt
from collections.abc import Iterable

import strawberry
from strawberry import relay

from models import accounts
from models.enums import CompanyKind, Role, Scope
from models.errors import DomainError, ErrorCode
from models.suppliers import supplier_id_of_company
from models.tables import ApiKey as ApiKeyRow
from models.tables import Company as CompanyRow
from models.tables import UserAccount
from resolvers.context import Info
from resolvers.conventions import describe_values
from resolvers.errors import UserError, decode_id, failed, row_id
from resolvers.scalars import CountryCode
from resolvers.suppliers import Supplier

strawberry.enum(Role, name="Role", description="What a principal may do.")
describe_values(
    Role,
    {
        Role.BUYER: (
            "A buyer company's user: places, confirms and pays orders, books inspections, "
            "confirms receipt, releases funds, opens disputes, files complaints."
        ),
        Role.SUPPLIER: (
            "A supplier company's user: applies for Trade Assurance, drafts or confirms "
            "orders, ships, answers disputes."
        ),
        Role.INSPECTOR: (
            "An inspection company's user: accepts or declines bookings and submits reports."
        ),
        Role.MEDIATOR: (
            "Platform staff: review Trade Assurance applications and complaints, decide "
            "escalated disputes, run investigations."
        ),
        Role.PARTNER: (
            "A partner system acting for one company through an API key, within the key's scopes."
        ),
    },
)
strawberry.enum(CompanyKind, name="CompanyKind", description="What a company is on the platform.")
describe_values(
    CompanyKind,
    {
        CompanyKind.BUYER: "Buys from suppliers; its users are buyers.",
        CompanyKind.SUPPLIER: "Sells; has a directory entry and may apply for Trade Assurance.",
        CompanyKind.INSPECTOR: "A third-party inspection company that buyers book, with its fee.",
        CompanyKind.PLATFORM: "The operator itself; its users are mediators.",
    },
)
strawberry.enum(
    Scope,
    name="ApiScope",
    description="What a partner API key may do besides reading: READ only reads; ORDERS "
    "manages orders; PAYMENTS moves money.",
)
describe_values(
    Scope,
    {
        Scope.READ: "Read what the company may see; every key can read.",
        Scope.ORDERS: (
            "Change orders: create, confirm, modify, cancel, ship, confirm receipt, send "
            "messages, answer inspection bookings, escalate disputes."
        ),
        Scope.PAYMENTS: (
            "Move money: pay, release funds, book (and pay for) inspections, claim refunds, "
            "open or answer disputes and accept offers."
        ),
    },
)


def _ids(node_ids: Iterable[str]) -> list[int]:
    return [row_id(i) for i in node_ids]


@strawberry.type(description="A buyer, supplier, inspection company, or the platform itself.")
class Company(relay.Node):
    id: relay.NodeID[int]
    legal_name: str = strawberry.field(description="The registered legal name.")
    kind: CompanyKind = strawberry.field(
        description="BUYER, SUPPLIER, INSPECTOR, or PLATFORM (the operator, whose users "
        "are mediators)."
    )
    country: CountryCode = strawberry.field(
        description="Where the company is registered (ISO 3166-1 alpha-2); decides which "
        "payment methods its buyers may use."
    )

    @classmethod
    def of(cls, c: CompanyRow) -> "Company":
        return cls(
            id=c.id,
            legal_name=c.legal_name,
            kind=CompanyKind(c.kind),
            country=CountryCode(c.country),
        )

    @strawberry.field(description="The directory entry, for a supplier company.")
    async def supplier(self, info: Info) -> Supplier | None:
        if self.kind is not CompanyKind.SUPPLIER:
            return None
        supplier_id = await supplier_id_of_company(self.id)
        found = await info.context.suppliers.load(supplier_id) if supplier_id else None
        return Supplier.of(found) if found else None

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["Company | None"]:
        ids = _ids(node_ids)
        found = await accounts.get_companies(ids)
        principal = info.context.principal
        return [
            cls.of(c) if (c := found.get(i)) and accounts.may_see_company(principal, c) else None
            for i in ids
        ]


@strawberry.type(description="A person who logs in. Visible to colleagues and mediators.")
class User(relay.Node):
    id: relay.NodeID[int]
    email: str = strawberry.field(
        description="The login e-mail address, unique across the platform."
    )
    full_name: str = strawberry.field(description="The person's name as registered.")
    role: Role = strawberry.field(
        description="The role the user acts in, from the company's kind (a platform user "
        "is a MEDIATOR)."
    )
    created_at: dt.datetime = strawberry.field(description="When the user registered.")
    company_id: strawberry.Private[int]

    @classmethod
    def of(cls, u: UserAccount) -> "User":
        return cls(
            id=u.id,
            email=u.email,
            full_name=u.full_name,
            role=Role(u.role),
            created_at=u.created_at,
            company_id=u.company,
        )

    @strawberry.field(description="The company the user belongs to and acts for.")
    async def company(self) -> Company:
        return Company.of((await accounts.get_companies([self.company_id]))[self.company_id])

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["User | None"]:
        ids = _ids(node_ids)
        found = await accounts.get_users(ids)
        principal = info.context.principal
        return [
            cls.of(u) if (u := found.get(i)) and accounts.may_see_user(principal, u) else None
            for i in ids
        ]


@strawberry.type(description="A partner API key. The secret itself is shown only once.")
class ApiKey:
    id: relay.GlobalID
    name: str = strawberry.field(
        description="Your label for the key, e.g. the partner system that uses it."
    )
    prefix: str = strawberry.field(description="First characters of the key, to recognise it.")
    scopes: list[Scope] = strawberry.field(
        description="What the key may do: READ (read only), ORDERS (manage orders), "
        "PAYMENTS (move money)."
    )
    created_at: dt.datetime = strawberry.field(description="When the key was created.")
    expires_at: dt.datetime | None = strawberry.field(
        description="After this the key is refused; null: it never expires."
    )
    revoked_at: dt.datetime | None = strawberry.field(
        description="When it was revoked (refused from then on); null while usable."
    )

    @classmethod
    def of(cls, k: ApiKeyRow) -> "ApiKey":
        return cls(
            id=relay.GlobalID("ApiKey", str(k.id)),
            name=k.name,
            prefix=k.prefix,
            scopes=[Scope(s) for s in k.scopes.split(",") if s],
            created_at=k.created_at,
            expires_at=k.expires_at,
            revoked_at=k.revoked_at,
        )


@strawberry.type(description="Who is calling: a logged-in user or a partner API key.")
class Viewer:
    role: Role = strawberry.field(
        description="The caller's own role: PARTNER for an API key, otherwise the user's role."
    )
    acting_role: Role = strawberry.field(
        description="The role the caller acts in (a partner acts as its company)."
    )
    scopes: list[Scope] = strawberry.field(
        description="What the caller may do: a user has every scope; a partner key only "
        "the scopes it was created with."
    )
    is_partner: bool = strawberry.field(
        description="True when the caller authenticated with a partner API key, not a "
        "user's login token."
    )
    user_id: strawberry.Private[int | None]
    company_id: strawberry.Private[int]

    @strawberry.field(description="The user, unless the caller is a partner key.")
    async def user(self) -> User | None:
        if self.user_id is None:
            return None
        return User.of((await accounts.get_users([self.user_id]))[self.user_id])

    @strawberry.field(description="The company the caller acts for.")
    async def company(self) -> Company:
        return Company.of((await accounts.get_companies([self.company_id]))[self.company_id])

    @strawberry.field(description="The company's partner API keys (users only).")
    async def api_keys(self, info: Info) -> list[ApiKey]:
        principal = info.context.require_principal()
        if principal.user_id is None:
            return []
        return [ApiKey.of(k) for k in await accounts.list_api_keys(principal)]


def viewer_of(principal: accounts.Principal) -> Viewer:
    return Viewer(
        role=principal.role,
        acting_role=principal.acting_role,
        scopes=sorted(principal.scopes, key=list(Scope).index),
        is_partner=principal.is_partner,
        user_id=principal.user_id,
        company_id=principal.company_id,
    )


def _utc(value: dt.datetime | None, field: str) -> dt.datetime | None:
    """Times are UTC on the wire; one without an offset is ambiguous, so it is refused."""
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise DomainError(
            ErrorCode.INVALID_INPUT, f"{field} needs a UTC offset, e.g. 2030-01-01T00:00:00Z", field
        )
    return value.astimezone(dt.UTC)


@strawberry.type
class AccountQueries:
    @strawberry.field(description="The caller; null when not authenticated.")
    def viewer(self, info: Info) -> Viewer | None:
        principal = info.context.principal
        return viewer_of(principal) if principal else None


@strawberry.input
class RegisterInput:
    company_name: str = strawberry.field(description="Legal name of the company.")
    kind: CompanyKind = strawberry.field(description="BUYER or SUPPLIER.")
    country: CountryCode = strawberry.field(
        description="Where the company is registered (ISO 3166-1 alpha-2, e.g. `US`)."
    )
    full_name: str = strawberry.field(description="The first user's name.")
    email: str = strawberry.field(
        description="The first user's login e-mail; must not be registered yet (EMAIL_TAKEN)."
    )
    password: str = strawberry.field(description="At least 10 characters.")


@strawberry.type
class AuthPayload:
    token: str | None = strawberry.field(
        default=None, description="Bearer token: send as `Authorization: Bearer <token>`."
    )
    expires_at: dt.datetime | None = strawberry.field(
        default=None,
        description="When the token stops working (24 hours after login by default); log "
        "in again then.",
    )
    viewer: Viewer | None = strawberry.field(
        default=None, description="Who the token authenticates: the user, their role and company."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class LoginInput:
    email: str = strawberry.field(description="The e-mail address the user registered with.")
    password: str = strawberry.field(
        description="The user's password; a wrong e-mail or password gives INVALID_CREDENTIALS."
    )


@strawberry.input
class LogoutInput:
    all_sessions: bool = strawberry.field(
        default=False, description="Revoke every token of this user, not only this one."
    )


@strawberry.type
class LogoutPayload:
    revoked_tokens: int = strawberry.field(
        default=0,
        description="How many login tokens were revoked (1, or every session's with "
        "`allSessions`).",
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class CreateApiKeyInput:
    name: str = strawberry.field(
        description="A label to recognise the key by, e.g. the partner system that uses it."
    )
    scopes: list[Scope] = strawberry.field(
        description="At least one: READ to read, ORDERS to manage orders, PAYMENTS to move money."
    )
    expires_at: dt.datetime | None = strawberry.field(
        default=None,
        description="When the key stops working, with a UTC offset; null: it never expires.",
    )


@strawberry.type
class CreateApiKeyPayload:
    api_key: ApiKey | None = strawberry.field(
        default=None, description="The new key's record (without the secret)."
    )
    secret: str | None = strawberry.field(
        default=None, description="The key itself. Shown once; only its hash is stored."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class RevokeApiKeyInput:
    api_key_id: relay.GlobalID


@strawberry.type
class RevokeApiKeyPayload:
    api_key: ApiKey | None = strawberry.field(
        default=None, description="The key, now with `revokedAt` set."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class AccountMutations:
    @strawberry.mutation(description="Sign up a buyer or supplier company and its first user.")
    async def register(self, input: RegisterInput) -> AuthPayload:
        try:
            _, token, expires = await accounts.register(
                company_name=input.company_name,
                kind=input.kind,
                country=input.country,
                email=input.email,
                password=input.password,
                full_name=input.full_name,
            )
            principal = await accounts.authenticate(token)
        except DomainError as e:
            return failed(AuthPayload, e)
        return AuthPayload(token=token, expires_at=expires, viewer=viewer_of(principal))

    @strawberry.mutation(description="Exchange e-mail and password for a bearer token.")
    async def login(self, info: Info, input: LoginInput) -> AuthPayload:
        client = info.context.request.client if info.context.request else None
        try:
            _, token, expires = await accounts.login(
                input.email, input.password, client.host if client else None
            )
        except DomainError as e:
            return failed(AuthPayload, e)
        principal = await accounts.authenticate(token)
        return AuthPayload(token=token, expires_at=expires, viewer=viewer_of(principal))

    @strawberry.mutation(description="Revoke the bearer token used for this request.")
    async def logout(self, info: Info, input: LogoutInput) -> LogoutPayload:
        principal = info.context.require_principal()
        try:
            count = await accounts.logout(principal, all_sessions=input.all_sessions)
        except DomainError as e:
            return failed(LogoutPayload, e)
        return LogoutPayload(revoked_tokens=count)

    @strawberry.mutation(description="Create a partner API key for the caller's company.")
    async def create_api_key(self, info: Info, input: CreateApiKeyInput) -> CreateApiKeyPayload:
        principal = info.context.require_principal()
        try:
            key, secret = await accounts.create_api_key_for(
                principal, input.name, list(input.scopes), _utc(input.expires_at, "expiresAt")
            )
        except DomainError as e:
            return failed(CreateApiKeyPayload, e)
        return CreateApiKeyPayload(api_key=ApiKey.of(key), secret=secret)

    @strawberry.mutation(description="Revoke a partner API key at once.")
    async def revoke_api_key(self, info: Info, input: RevokeApiKeyInput) -> RevokeApiKeyPayload:
        principal = info.context.require_principal()
        try:
            key = await accounts.revoke_api_key(
                principal, decode_id(input.api_key_id, "ApiKey", "apiKeyId")
            )
        except DomainError as e:
            return failed(RevokeApiKeyPayload, e)
        return RevokeApiKeyPayload(api_key=ApiKey.of(key))
