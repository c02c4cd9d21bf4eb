"""`trade-assurance`: serve, migrate, seed-demo, create-user, create-api-key,
sandbox-callback, ledger-check, run-deadlines."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import sys
from collections.abc import Sequence

from models import clock, config, db
from models.enums import Role, Scope
from models.errors import DomainError
from server.settings import Settings


def _serve(args: argparse.Namespace) -> int:
    import logging.config

    import uvicorn

    from server.logs import log_config
    from server.ws_protocol import WebSocketProtocol

    settings = Settings.from_env()
    log_level = os.environ.get("TA_LOG_LEVEL", "info")
    logging_config = log_config(settings.log_format, log_level)  # JSON lines by default
    logging.config.dictConfig(logging_config)
    host = args.host or settings.host
    port = args.port or settings.port
    if args.demo:
        if (refused := _no_demo_in_production(settings)) is not None:
            return refused
        from server.demo import print_logins, seed_demo

        asyncio.run(_migrate_then(seed_demo))
        print_logins()
    # Check (or apply) migrations here too, so a refusal is one clear line, not a
    # traceback from inside uvicorn's lifespan.
    from server.app import PendingMigrationsError, prepare_database

    try:
        asyncio.run(prepare_database(settings))
    except PendingMigrationsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    if settings.graphiql:
        print(f"GraphiQL: http://{host}:{port}/graphql", flush=True)
    else:
        print(f"GraphQL endpoint: http://{host}:{port}/graphql (GraphiQL off)", flush=True)
    uvicorn.run(
        "server.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=args.workers,
        log_level=log_level,
        log_config=logging_config,  # each worker applies it
        access_log=False,  # server/logs.py writes the access log, with the request id
        ws=WebSocketProtocol,  # websockets-sansio, lighter per connection
    )
    return 0


async def _migrate_then(then: object = None) -> None:
    applied = await db.apply_migrations()
    print(f"migrations applied: {len(applied)}" if applied else "database is up to date")
    if callable(then):
        await then()


def _migrate(_: argparse.Namespace) -> int:
    asyncio.run(_migrate_then())
    return 0


def _no_demo_in_production(settings: Settings) -> int | None:
    """The demo's logins, a mediator's included, share a published password."""
    if settings.development:
        return None
    print("error: no demo data under TA_ENV=production (its logins' password is public)",
          file=sys.stderr)  # fmt: skip
    return 2


def _seed_demo(_: argparse.Namespace) -> int:
    if (refused := _no_demo_in_production(Settings.from_env())) is not None:
        return refused
    from server.demo import print_logins, seed_demo

    asyncio.run(_migrate_then(seed_demo))
    print_logins()
    return 0


def _create_user(args: argparse.Namespace) -> int:
    from models.accounts import create_user

    user = asyncio.run(
        create_user(
            email=args.email,
            password=args.password or os.environ.get("TA_NEW_USER_PASSWORD", ""),
            full_name=args.full_name,
            role=Role(args.role),
            company_id=args.company_id,
            company_name=args.company_name,
            country=args.country,
        )
    )
    print(f"created {user.role} user {user.email} (id {user.id}, company {user.company})")
    return 0


def _create_api_key(args: argparse.Namespace) -> int:
    from models.accounts import create_api_key

    expires = clock.now() + dt.timedelta(days=args.expires_days) if args.expires_days else None
    key, secret = asyncio.run(
        create_api_key(
            company_id=args.company_id,
            name=args.name,
            scopes=args.scopes,
            expires_at=expires,
        )
    )
    print(f"API key {key.prefix}… for company {key.company}, scopes {key.scopes}")
    print("The key is shown only this once:")
    print(secret)
    return 0


def _sandbox_callback(args: argparse.Namespace) -> int:
    """Play the sandbox provider: send one signed callback, print it and the answer."""
    import json

    try:
        import httpx
    except ImportError:
        print("error: sandbox-callback needs httpx (pip install httpx)", file=sys.stderr)
        return 1

    from server.payments.sandbox import build_event, deliver

    logging.getLogger("httpx").setLevel(logging.WARNING)  # we print the exchange ourselves
    refund = args.reference.startswith("ref_")
    kind = "refund" if refund else "payment"
    status = {"succeeded": "settled" if refund else "succeeded", "failed": "failed"}
    reason = args.reason or ("sandbox_failure" if args.outcome == "failed" else None)
    event = build_event(
        f"{kind}.{status[args.outcome]}", args.reference, args.provider_reference, reason
    )
    secret = Settings.from_env().payment_webhook_secret
    print(f"POST {args.url.rstrip('/')}/webhooks/payments")
    print(json.dumps(event, indent=2))
    try:
        response = asyncio.run(deliver(args.url, secret, event))
    except httpx.HTTPError as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(f"-> HTTP {response.status_code} {response.text}")
    return 0 if response.is_success else 1


def _ledger_check(_: argparse.Namespace) -> int:
    from server.ledger_check import run

    return run()


def _clock_override(raw: str | None) -> dt.datetime | None:
    """`--now` / TA_CLOCK_NOW: sweep as if it were this time (tests, rehearsals). Refused
    in production, where only the real clock may decide that a deadline has passed."""
    if not raw:
        return None
    if Settings.from_env().environment == "production":
        raise SystemExit("error: --now / TA_CLOCK_NOW is refused with TA_ENV=production")
    when = dt.datetime.fromisoformat(raw)
    if when.tzinfo is None:
        raise SystemExit("error: --now / TA_CLOCK_NOW needs a time zone, e.g. +00:00")
    return when.astimezone(dt.UTC)


async def _sweep_once(batch: int | None) -> list[str]:
    from models import sweep

    await db.open_pool(1, 2)
    try:
        report = await sweep.run_sweep(max_orders=batch)
    finally:
        await db.close_pool()
    return report.lines()


def _run_deadlines(args: argparse.Namespace) -> int:
    """One deadline sweep: enforce every due deadline, print what was done."""
    pending = asyncio.run(db.pending_migrations())
    if pending:
        print(f"error: {len(pending)} pending migration(s); run `trade-assurance migrate`")
        return 3
    from server.payments import install as install_payments

    install_payments(Settings.from_env())  # the sweep pays out refunds that are due
    now = _clock_override(args.now or os.environ.get("TA_CLOCK_NOW"))
    if now is not None:
        clock.set_clock(clock.FrozenClock(now))
        print(f"clock set to {now.isoformat()}", flush=True)
    for line in asyncio.run(_sweep_once(args.max_orders)):
        print(line, flush=True)
    return 0


def _scopes(value: str) -> list[Scope]:
    """`READ,ORDERS` as scopes; an unknown name is a usage error, not a traceback."""
    try:
        return [Scope(s.strip().upper()) for s in value.split(",") if s.strip()]
    except ValueError:
        known = ",".join(s.value for s in Scope)
        raise argparse.ArgumentTypeError(f"{value!r}: scopes are a subset of {known}") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="trade-assurance", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway (applies pending migrations)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, default=1, help="gateway processes")
    serve.add_argument("--demo", action="store_true", help="seed demo data first")
    serve.set_defaults(run=_serve)

    sub.add_parser("migrate", help="apply pending migrations").set_defaults(run=_migrate)
    sub.add_parser("seed-demo", help="create demo data (idempotent)").set_defaults(run=_seed_demo)

    user = sub.add_parser("create-user", help="create a user of any role (staff accounts)")
    user.add_argument("--email", required=True)
    user.add_argument("--password", help="or set TA_NEW_USER_PASSWORD")
    user.add_argument("--full-name", required=True)
    roles = [r.value for r in Role if r is not Role.PARTNER]
    user.add_argument("--role", required=True, choices=roles)
    user.add_argument("--company-id", type=int, help="join this company")
    user.add_argument("--company-name", help="or create a company with this name")
    user.add_argument("--country", default="US")
    user.set_defaults(run=_create_user)

    key = sub.add_parser("create-api-key", help="create a partner API key (printed once)")
    key.add_argument("--company-id", type=int, required=True)
    key.add_argument("--name", required=True)
    key.add_argument(
        "--scopes", type=_scopes, default="READ", help="comma-separated: READ,ORDERS,PAYMENTS"
    )
    key.add_argument("--expires-days", type=int)
    key.set_defaults(run=_create_api_key)

    callback = sub.add_parser(
        "sandbox-callback",
        help="send a signed sandbox provider callback (completes a pending T/T payment)",
    )
    callback.add_argument("--reference", required=True, help="pay_12 (payment) or ref_7 (refund)")
    callback.add_argument("--outcome", required=True, choices=["succeeded", "failed"])
    callback.add_argument("--url", default="http://127.0.0.1:8000", help="the gateway")
    callback.add_argument("--provider-reference", help="the provider's sbx_… reference")
    callback.add_argument("--reason", help="failure reason (default sandbox_failure)")
    callback.set_defaults(run=_sandbox_callback)

    check = sub.add_parser("ledger-check", help="verify the ledger's invariants (1 if broken)")
    check.set_defaults(run=_ledger_check)

    deadlines = sub.add_parser(
        "run-deadlines", help="one deadline sweep: enforce every due deadline, print it"
    )
    deadlines.add_argument(
        "--now", help="sweep as if at this ISO 8601 time (also TA_CLOCK_NOW; not in production)"
    )
    deadlines.add_argument("--max-orders", type=int, help="stop after this many due orders")
    deadlines.set_defaults(run=_run_deadlines)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    config.configure(Settings.from_env().domain)
    try:
        return int(args.run(args))
    except DomainError as e:
        print(f"error: {e.code.value}: {e.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
