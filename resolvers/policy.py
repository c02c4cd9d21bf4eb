"""Who may call each root field, and on whose objects: the API's authorization contract.

Data, not code. The checks themselves live where the domain acts (`models`: `locked_order`,
`require_scope`, each transition's role test, each type's `visibility`); this table says
what they must add up to, and `tests/test_authorization.py` calls every root field as
every kind of principal, on its own and on foreign objects, against it. A root field
without an entry here fails that test.

Reading an entry:
- `grants`: who may, each a caller kind and its part in the object (`On`). Partner API
  keys act in their company's role; a grant lets them in only if `keys` says so, and a
  key must hold the entry's `scope` (every key may read).
- `steps`: the order in which the API refuses, each with the code it answers. The first
  step a caller fails decides what it is told: a caller with no part in an object is told
  NOT_FOUND, as if it did not exist (global IDs are not secrets; they are not proof of
  anything either).
- Reads refuse by leaving out: `null` for one object, a list without it. Mutations answer
  a payload error with the code; subscriptions a GraphQL error with `extensions.code`.
  Without a token every field but the public ones answers UNAUTHENTICATED.
"""

from __future__ import annotations

import dataclasses
import enum

from models.enums import Scope


class Caller(enum.StrEnum):
    """Who calls: a user of a company of this kind, or a partner key of such a company."""

    ANONYMOUS = "ANONYMOUS"
    BUYER = "BUYER"
    SUPPLIER = "SUPPLIER"
    INSPECTOR = "INSPECTOR"
    MEDIATOR = "MEDIATOR"  # platform staff


class On(enum.StrEnum):
    """Whose objects: the caller's part in the object a call names."""

    ANY = "any object (or none)"
    SELF = "the caller's own account or company"
    KEY_OWNER = "a key of the caller's company"
    ORDER_BUYER = "the order's buyer"
    ORDER_SUPPLIER = "the order's supplier"
    NOT_DRAFTER = "the party of the order that did not draft it"
    NOT_PROPOSER = "the party of the order that did not propose the modification"
    BOOKED_INSPECTOR = "the inspector booked for the inspection"
    ORDERED_FROM = "a buyer with an order with the supplier"
    COMPLAINANT = "the buyer that filed the complaint"
    SUPPLIER_SELF = "the supplier the record is about"
    COMPANY_MEMBER = "the caller's own company"
    ESCALATED = "an order whose dispute has been escalated"


class Keys(enum.Enum):
    NO = "users only"
    YES = "users and the company's partner keys"


@dataclasses.dataclass(frozen=True, slots=True)
class Grant:
    caller: Caller
    on: On = On.ANY
    keys: Keys = Keys.NO


class Step(enum.StrEnum):
    """One check, in the order the API makes them."""

    SCOPE = "a partner key holds the entry's scope"
    SEES = "the caller may see the object (`Policy.object`)"
    CALLER = "the caller's kind (and user or key) has a grant"
    GRANT = "a grant covers the caller and its part in the object"


class Refusal(enum.StrEnum):
    NULL = "null, as if it did not exist"
    FILTERED = "left out of the list"
    PAYLOAD = "a payload error with the step's code"
    ERROR = "a GraphQL error with the step's code"
    NONE = "never refused"


@dataclasses.dataclass(frozen=True, slots=True)
class Policy:
    grants: tuple[Grant, ...]
    refusal: Refusal
    steps: tuple[tuple[Step, str], ...] = ()
    scope: Scope | None = None  # what a partner key needs besides reading
    object: str | None = None  # the `OBJECTS` entry whose visibility the SEES step tests
    anonymous: bool = False  # answered without a token (else UNAUTHENTICATED)
    note: str = ""


# --- who sees what: every read path (`node`, nested fields, lists, streams) ------------

_ORDER_PARTIES = (
    Grant(Caller.BUYER, On.ORDER_BUYER, Keys.YES),
    Grant(Caller.SUPPLIER, On.ORDER_SUPPLIER, Keys.YES),
    Grant(Caller.MEDIATOR),
)
_PUBLIC = tuple(Grant(c, On.ANY, Keys.YES) for c in Caller)
_SIGNED_IN = tuple(Grant(c, On.ANY, Keys.YES) for c in Caller if c is not Caller.ANONYMOUS)
_SUPPLIER_RECORD = (Grant(Caller.SUPPLIER, On.SUPPLIER_SELF, Keys.YES), Grant(Caller.MEDIATOR))
_MEDIATORS = (Grant(Caller.MEDIATOR),)
_KINDS = (Caller.BUYER, Caller.SUPPLIER, Caller.INSPECTOR)  # companies with members

OBJECTS: dict[str, tuple[Grant, ...]] = {
    "Order": _ORDER_PARTIES,
    "Inspection": (*_ORDER_PARTIES, Grant(Caller.INSPECTOR, On.BOOKED_INSPECTOR, Keys.YES)),
    "Dispute": _ORDER_PARTIES,
    "Refund": _ORDER_PARTIES,
    "OrderMessage": _ORDER_PARTIES,
    "Complaint": (Grant(Caller.BUYER, On.COMPLAINANT), Grant(Caller.MEDIATOR)),
    "Investigation": _SUPPLIER_RECORD,
    "TradeAssuranceApplication": _SUPPLIER_RECORD,
    "Supplier": _PUBLIC,  # the directory
    "Company:SUPPLIER": _PUBLIC,  # a supplier company, like its directory entry
    # A buyer's, an inspection company's or the platform's: its members and mediators.
    # (Reached through an object the caller sees, e.g. `Order.buyer`, it is shown too.)
    "Company": (*(Grant(c, On.COMPANY_MEMBER, Keys.YES) for c in _KINDS), Grant(Caller.MEDIATOR)),
    "User": (*(Grant(c, On.COMPANY_MEMBER) for c in _KINDS), Grant(Caller.MEDIATOR)),
}

# Inspections, as the booked inspector's transitions look them up: any inspector is told
# the inspection exists (NOT_BOOKED_INSPECTOR), others as for the inspection itself.
OBJECTS["Inspection+inspectors"] = (*OBJECTS["Inspection"], Grant(Caller.INSPECTOR))

# An order's own children (lines, payments, events, messages, inspections, its dispute)
# are read through the order: whoever sees it sees them, nobody else.


def _read(object_name: str, refusal: Refusal) -> Policy:
    return Policy(OBJECTS[object_name], refusal, object=object_name)


_ORDER = "Order"
_SEES = (Step.SEES, "NOT_FOUND")
_SCOPE = (Step.SCOPE, "SCOPE_MISSING")


def _order_change(
    grants: tuple[Grant, ...], refused: str, scope: Scope, *, scope_first: bool, note: str = ""
) -> Policy:
    """A transition of an order: NOT_FOUND for whoever does not see the order, `refused`
    for a party (or mediator) whose part does not allow it, SCOPE_MISSING for a key."""
    steps = (
        (_SCOPE, _SEES, (Step.GRANT, refused))
        if scope_first
        else (_SEES, (Step.GRANT, refused), _SCOPE)
    )
    return Policy(grants, Refusal.PAYLOAD, steps, scope, _ORDER, note=note)


_BUYER = (Grant(Caller.BUYER, On.ORDER_BUYER, Keys.YES),)
_SUPPLIER = (Grant(Caller.SUPPLIER, On.ORDER_SUPPLIER, Keys.YES),)
_PARTIES = _BUYER + _SUPPLIER
_MEDIATOR_ONLY = Policy(_MEDIATORS, Refusal.PAYLOAD, ((Step.GRANT, "FORBIDDEN"),))
_INSPECTOR = Policy(
    (Grant(Caller.INSPECTOR, On.BOOKED_INSPECTOR, Keys.YES),),
    Refusal.PAYLOAD,
    (_SEES, (Step.GRANT, "NOT_BOOKED_INSPECTOR"), _SCOPE),
    Scope.ORDERS,
    "Inspection+inspectors",
    note="any inspector is told NOT_BOOKED_INSPECTOR (inspectors book no orders, so an "
    "inspection's existence is all it learns)",
)


QUERIES: dict[str, Policy] = {
    "viewer": Policy(_PUBLIC, Refusal.NONE, anonymous=True, note="null without a token"),
    "suppliers": Policy(_PUBLIC, Refusal.NONE, anonymous=True),
    "supplier": Policy(_PUBLIC, Refusal.NONE, anonymous=True),
    "tradeAssuranceApplications": _read("TradeAssuranceApplication", Refusal.FILTERED),
    "order": _read(_ORDER, Refusal.NULL),
    "orders": _read(_ORDER, Refusal.FILTERED),
    "paymentQuote": Policy(_SIGNED_IN, Refusal.NONE),
    "refunds": _read("Refund", Refusal.FILTERED),
    "inspectors": Policy(_SIGNED_IN, Refusal.NONE),
    "inspection": _read("Inspection", Refusal.NULL),
    "inspections": _read("Inspection", Refusal.FILTERED),
    "complaints": _read("Complaint", Refusal.FILTERED),
    "investigations": _read("Investigation", Refusal.FILTERED),
    "dispute": _read("Dispute", Refusal.NULL),
    "disputes": _read("Dispute", Refusal.FILTERED),
    "node": Policy(
        _SIGNED_IN,
        Refusal.NULL,
        anonymous=True,
        note="each type's `OBJECTS` entry; null without a token, except public types",
    ),
}

_USERS = tuple(Grant(c, On.SELF) for c in Caller if c is not Caller.ANONYMOUS)

MUTATIONS: dict[str, Policy] = {
    "register": Policy(_PUBLIC, Refusal.NONE, anonymous=True),
    "login": Policy(_PUBLIC, Refusal.NONE, anonymous=True),
    "logout": Policy(_USERS, Refusal.PAYLOAD, ((Step.GRANT, "FORBIDDEN"),)),
    "createApiKey": Policy(
        (Grant(Caller.BUYER, On.SELF), Grant(Caller.SUPPLIER, On.SELF)),
        Refusal.PAYLOAD,
        ((Step.GRANT, "FORBIDDEN"),),
    ),
    "revokeApiKey": Policy(
        (
            *(Grant(c, On.KEY_OWNER) for c in (Caller.BUYER, Caller.SUPPLIER, Caller.INSPECTOR)),
            Grant(Caller.MEDIATOR),
        ),
        Refusal.PAYLOAD,
        ((Step.CALLER, "FORBIDDEN"), (Step.GRANT, "NOT_FOUND")),
    ),
    "updateSupplierProfile": Policy(
        (Grant(Caller.SUPPLIER, On.SELF),), Refusal.PAYLOAD, ((Step.GRANT, "FORBIDDEN"),)
    ),
    "setSupplierStanding": _MEDIATOR_ONLY,
    "applyForTradeAssurance": Policy(
        (Grant(Caller.SUPPLIER, On.SELF),), Refusal.PAYLOAD, ((Step.GRANT, "FORBIDDEN"),)
    ),
    "reviewTradeAssuranceApplication": _MEDIATOR_ONLY,
    "createOrder": Policy(
        (Grant(Caller.BUYER, On.ANY, Keys.YES), Grant(Caller.SUPPLIER, On.ANY, Keys.YES)),
        Refusal.PAYLOAD,
        (_SCOPE, (Step.GRANT, "FORBIDDEN")),
        Scope.ORDERS,
        note="a buyer places an order with any supplier; a supplier drafts one for any buyer",
    ),
    "confirmOrder": _order_change(
        (
            Grant(Caller.BUYER, On.NOT_DRAFTER, Keys.YES),
            Grant(Caller.SUPPLIER, On.NOT_DRAFTER, Keys.YES),
        ),
        "NOT_YOUR_TURN",
        Scope.ORDERS,
        scope_first=True,
    ),
    "proposeOrderModification": _order_change(
        _PARTIES, "FORBIDDEN", Scope.ORDERS, scope_first=True
    ),
    "acceptOrderModification": _order_change(
        (
            Grant(Caller.BUYER, On.NOT_PROPOSER, Keys.YES),
            Grant(Caller.SUPPLIER, On.NOT_PROPOSER, Keys.YES),
        ),
        "NOT_YOUR_TURN",
        Scope.ORDERS,
        scope_first=True,
    ),
    "shipOrder": _order_change(_SUPPLIER, "FORBIDDEN", Scope.ORDERS, scope_first=True),
    "confirmReceipt": _order_change(_BUYER, "FORBIDDEN", Scope.ORDERS, scope_first=True),
    "cancelOrder": _order_change(_PARTIES, "FORBIDDEN", Scope.ORDERS, scope_first=True),
    "payOrder": _order_change(_BUYER, "FORBIDDEN", Scope.PAYMENTS, scope_first=False),
    "releaseFunds": _order_change(_BUYER, "FORBIDDEN", Scope.PAYMENTS, scope_first=False),
    "claimLateShipmentRefund": _order_change(
        _BUYER, "FORBIDDEN", Scope.PAYMENTS, scope_first=False
    ),
    "bookInspection": _order_change(_BUYER, "NOT_ORDER_BUYER", Scope.PAYMENTS, scope_first=False),
    "acceptInspection": _INSPECTOR,
    "declineInspection": _INSPECTOR,
    "submitInspectionReport": _INSPECTOR,
    "claimInspectionRefund": _order_change(
        _BUYER, "NOT_ORDER_BUYER", Scope.PAYMENTS, scope_first=False
    ),
    "fileComplaint": Policy(
        (Grant(Caller.BUYER, On.ORDERED_FROM),),
        Refusal.PAYLOAD,
        ((Step.CALLER, "NOT_A_BUYER"), (Step.GRANT, "NO_ORDER_WITH_SUPPLIER")),
    ),
    "reviewComplaint": _MEDIATOR_ONLY,
    "closeInvestigation": _MEDIATOR_ONLY,
    "openDispute": _order_change(_BUYER, "NOT_DISPUTE_BUYER", Scope.PAYMENTS, scope_first=False),
    "respondToDispute": dataclasses.replace(
        _order_change(_SUPPLIER, "NOT_DISPUTE_SUPPLIER", Scope.PAYMENTS, scope_first=False),
        object="Dispute",
    ),
    "acceptDisputeOffer": dataclasses.replace(
        _order_change(_BUYER, "NOT_DISPUTE_BUYER", Scope.PAYMENTS, scope_first=False),
        object="Dispute",
    ),
    "escalateDispute": dataclasses.replace(
        _order_change(_BUYER, "NOT_DISPUTE_BUYER", Scope.ORDERS, scope_first=True),
        object="Dispute",
    ),
    "resolveDispute": Policy(_MEDIATORS, Refusal.PAYLOAD, ((Step.GRANT, "NOT_A_MEDIATOR"),)),
    "sendOrderMessage": Policy(
        (*_PARTIES, Grant(Caller.MEDIATOR, On.ESCALATED)),
        Refusal.PAYLOAD,
        (_SEES, _SCOPE, (Step.GRANT, "DISPUTE_NOT_ESCALATED")),
        Scope.ORDERS,
        _ORDER,
        note="a mediator joins the conversation once a dispute on the order is escalated",
    ),
}

SUBSCRIPTIONS: dict[str, Policy] = {
    "orderStatusChanged": Policy(OBJECTS[_ORDER], Refusal.ERROR, (_SEES,), object=_ORDER),
    "orderEvents": Policy(
        _SIGNED_IN, Refusal.FILTERED, object=_ORDER, note="events of the orders the caller sees"
    ),
    "orderMessages": Policy(OBJECTS[_ORDER], Refusal.ERROR, (_SEES,), object=_ORDER),
}

ROOTS: dict[str, dict[str, Policy]] = {
    "Query": QUERIES,
    "Mutation": MUTATIONS,
    "Subscription": SUBSCRIPTIONS,
}
