"""What each `ErrorCode` means, for the documentation pane: when it is returned and what
the caller can do. `ErrorCode` itself lives in models/errors.py, which knows nothing of
GraphQL; resolvers/errors.py exposes it and applies these descriptions."""

from models.errors import ErrorCode

ERROR_CODES: dict[ErrorCode, str] = {
    ErrorCode.INVALID_INPUT: (
        "An input value is malformed, empty or too long (e.g. not an e-mail address, a time "
        "without a UTC offset); `field` names it."
    ),
    ErrorCode.INVALID_COUNTRY: "Not an ISO 3166-1 alpha-2 country code (e.g. `US`).",
    ErrorCode.INVALID_CURRENCY: (
        "Not an ISO 4217 currency code, or not the currency the order or limit is kept in."
    ),
    ErrorCode.INVALID_AMOUNT: (
        "An amount that is malformed, too large, finer than the currency's minor unit, or "
        "not positive where it must be."
    ),
    ErrorCode.EMAIL_TAKEN: "The e-mail address is already registered; log in instead.",
    ErrorCode.WEAK_PASSWORD: "The password is too short (at least 10 characters by default).",
    ErrorCode.INVALID_CREDENTIALS: "Wrong e-mail or password.",
    ErrorCode.ACCOUNT_DISABLED: "The user's account is disabled; it cannot log in.",
    ErrorCode.TOO_MANY_ATTEMPTS: (
        "Too many failed log-ins for this account (5) or from this address (20): wait the "
        "seconds the message gives (30 s, doubling with each further failure, at most an "
        "hour); the password is not checked meanwhile."
    ),
    ErrorCode.FORBIDDEN: (
        "The caller's role may not do this (e.g. a partner key managing the account, a "
        "non-mediator changing a supplier's standing)."
    ),
    ErrorCode.SCOPE_MISSING: (
        "The partner API key lacks the scope this needs (ORDERS or PAYMENTS)."
    ),
    ErrorCode.NOT_FOUND: (
        "No such object, or not one the caller may see; also a global ID of the wrong type."
    ),
    ErrorCode.NOT_GOLD_SUPPLIER: "Only Gold Suppliers may apply for Trade Assurance.",
    ErrorCode.NOT_VERIFIED: (
        "The supplier must pass verification (VERIFIED or ASSESSED) before applying."
    ),
    ErrorCode.TRADE_ASSURANCE_ALREADY_ACTIVE: (
        "The supplier already has active Trade Assurance; there is nothing to apply for."
    ),
    ErrorCode.TRADE_ASSURANCE_SUSPENDED: (
        "Trade Assurance is suspended after an investigation: no new orders, out of Trade "
        "Assurance search, and no new application."
    ),
    ErrorCode.APPLICATION_ALREADY_PENDING: (
        "An application is already under review; wait for the decision."
    ),
    ErrorCode.APPLICATION_ALREADY_DECIDED: "The application was already approved or rejected.",
    ErrorCode.LIMIT_REQUIRED: (
        "A limit is needed: an approval grants one, LIMIT_REDUCED names the new one."
    ),
    ErrorCode.REASON_REQUIRED: (
        "A reason is needed (rejecting, declining a booking, closing an investigation, "
        "giving penalty points)."
    ),
    ErrorCode.ALREADY_REVOKED: "The API key is already revoked.",
    ErrorCode.SUPPLIER_NOT_PROTECTED: (
        "The supplier has no active Trade Assurance: it takes no orders, and it has no "
        "limit to reduce."
    ),
    ErrorCode.INVALID_TRANSITION: (
        "The object's status does not allow this step (e.g. a dispute on an unpaid order, "
        "accepting a declined inspection)."
    ),
    ErrorCode.NOT_YOUR_TURN: (
        "The other party acts here: the party that did not draft an order or propose a "
        "change confirms it."
    ),
    ErrorCode.DEADLINE_IN_PAST: "The shipping deadline must be in the future.",
    ErrorCode.PAYMENT_METHOD_NOT_AVAILABLE: (
        "The payment method is not offered in the buyer's country (e-Checking and Pay "
        "Later: US; Boleto: Brazil)."
    ),
    ErrorCode.AMOUNT_NOT_DUE: (
        "The amount is not what is due now: the initial payment, the balance, or the "
        "whole rest; the message says which."
    ),
    ErrorCode.PAYMENT_IN_PROGRESS: (
        "A payment for this order is still pending (e.g. a T/T); wait for its outcome."
    ),
    ErrorCode.PAYMENT_DECLINED: (
        "The payment provider declined the payment; nothing was taken. The same idempotency "
        "key replays this answer: retry with a new key (or another method)."
    ),
    ErrorCode.PAYMENT_PROVIDER_UNAVAILABLE: (
        "The payment provider could not be reached; nothing was taken. Retry later with a "
        "new idempotency key (the same key replays this answer)."
    ),
    ErrorCode.ORDER_HAS_PAYMENTS: (
        "Money has been paid or is on its way, so the order can no longer be cancelled."
    ),
    ErrorCode.INSUFFICIENT_HELD_FUNDS: (
        "Escrow does not hold that much (or anything) for this order or inspection fee."
    ),
    ErrorCode.IDEMPOTENCY_KEY_REUSED: (
        "The idempotency key was used for a different request; use a new key."
    ),
    ErrorCode.MODIFICATION_NOT_PENDING: (
        "The proposed modification was already accepted or superseded."
    ),
    ErrorCode.UNKNOWN_REFERENCE: (
        "A payment provider callback names a payment or refund reference that does not exist."
    ),
    ErrorCode.INVALID_CURSOR: "The `after` cursor was not handed out by this feed.",
    ErrorCode.BALANCE_NOT_PAID: "The goods ship once the whole order is paid into escrow.",
    ErrorCode.ALREADY_SHIPPED: (
        "The shipment is already recorded, or the goods shipped and a dispute is the way "
        "to claim now."
    ),
    ErrorCode.NOT_SHIPPED: "The order has not been shipped, so receipt cannot be confirmed.",
    ErrorCode.SHIPPING_DEADLINE_NOT_PASSED: (
        "A late-shipment refund needs the shipping deadline to have passed."
    ),
    ErrorCode.SHIPPED_ON_TIME: (
        "The order shipped by its shipping deadline; there is no late-shipment claim."
    ),
    ErrorCode.NOT_ORDER_BUYER: (
        "Only the order's buyer does this (book an inspection, claim a refund)."
    ),
    ErrorCode.NOT_AN_INSPECTOR: "The company booked is not an inspection company.",
    ErrorCode.INSPECTION_DATE_IN_PAST: "The inspection date is in the past.",
    ErrorCode.INSPECTION_DATE_NOT_BEFORE_DEADLINE: (
        "The inspection must take place before the order's shipping deadline."
    ),
    ErrorCode.NOT_BOOKED_INSPECTOR: (
        "Only the inspector booked for this inspection may accept, decline or report."
    ),
    ErrorCode.INSPECTION_NOT_ACCEPTED: (
        "A report follows an accepted booking; this inspection is in another status."
    ),
    ErrorCode.REPORT_ALREADY_SUBMITTED: "The inspection already has its report.",
    ErrorCode.NO_FAILED_INSPECTION: "A refund before shipment needs a failed inspection report.",
    ErrorCode.FILE_TOO_LARGE: "An uploaded file is larger than the limit (5 MB by default).",
    ErrorCode.FILE_TYPE_NOT_ALLOWED: (
        "An uploaded file is not a PDF, JPEG or PNG (judged by its bytes, not its name)."
    ),
    ErrorCode.FILE_CHECKSUM_MISMATCH: (
        "An uploaded file's SHA-256 is not the one sent: it was changed or damaged on the way."
    ),
    ErrorCode.ATTACHMENT_CORRUPTED: (
        "A stored file no longer matches its checksum, so it is not served."
    ),
    ErrorCode.NOT_A_BUYER: "Only a buyer's users file complaints.",
    ErrorCode.NO_ORDER_WITH_SUPPLIER: (
        "A buyer complains only about a supplier it has ordered from."
    ),
    ErrorCode.COMPLAINT_ALREADY_REVIEWED: "The complaint was already accepted or rejected.",
    ErrorCode.INVESTIGATION_ALREADY_CLOSED: "The investigation is already closed.",
    ErrorCode.LIMIT_NOT_LOWER: "A reduced limit must be lower than the current limit.",
    ErrorCode.DISPUTE_BEFORE_PAYMENT: (
        "Nothing has been paid into escrow for this order, so there is nothing to dispute."
    ),
    ErrorCode.OUTSIDE_CLAIM_WINDOW: (
        "The claim window after receipt (30 days by default) has ended."
    ),
    ErrorCode.NO_GROUNDS_FOR_DISPUTE: (
        "A dispute is opened after a missed shipping deadline, after a failed inspection, "
        "or within the claim window after receipt."
    ),
    ErrorCode.DISPUTE_ALREADY_OPEN: "The order already has an open dispute.",
    ErrorCode.REFUND_ABOVE_COVERED: (
        "The refund asked for is more than was paid and is covered (less what earlier disputes"
        " on the order refunded), or than escrow still holds."
    ),
    ErrorCode.NOT_DISPUTE_SUPPLIER: "Only the order's supplier answers the dispute.",
    ErrorCode.NOT_DISPUTE_BUYER: (
        "Only the order's buyer opens a dispute, accepts an offer or escalates."
    ),
    ErrorCode.DISPUTE_RESPONSE_LATE: (
        "The supplier's time to answer (3 days by default) has passed."
    ),
    ErrorCode.DISPUTE_ALREADY_ANSWERED: "The supplier has already answered this dispute.",
    ErrorCode.DISPUTE_NOT_OPEN: "The dispute is escalated or resolved, so this step is over.",
    ErrorCode.NO_DISPUTE_OFFER: "The supplier has made no offer to accept.",
    ErrorCode.ESCALATION_TOO_EARLY: (
        "The buyer may escalate only from `escalationAllowedAt` (after the supplier's days "
        "to answer)."
    ),
    ErrorCode.NOT_A_MEDIATOR: "Only a mediator decides disputes.",
    ErrorCode.DISPUTE_NOT_ESCALATED: (
        "Only an escalated dispute is decided by a mediator, and a mediator joins the "
        "order's conversation only then."
    ),
    ErrorCode.MESSAGE_EMPTY: "A message needs some text.",
    ErrorCode.MESSAGE_TOO_LONG: "The message is longer than 4,000 characters.",
    ErrorCode.MESSAGE_NOT_IN_ORDER: (
        "Evidence may cite only messages of this order's conversation."
    ),
}
