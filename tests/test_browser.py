"""The gateway's pages in a real browser: headless Chromium (Debian's package, installed by
.ci/run) driven by Playwright against a real uvicorn process on the test database.

Screenshots go to $TA_TEST_ARTIFACTS (default: a temporary directory, printed)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import parse, validate
from playwright.async_api import Browser, Page, async_playwright, expect

from models import payments
from models.enums import PaymentMethod
from models.money import Money
from resolvers.schema import build_schema
from server import web
from server.demo import DEMO_PASSWORD, LOGINS, seed_demo
from server.payments.sandbox import CARD_SUCCEEDS
from tests import factories
from tests.api import Api, Server, bearer, cli_env, gid, start_server, wait_ready

pytest_plugins = ("tests.api_plugin",)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (`apt-get install chromium`; .ci/run does)"
)
SHIP = """mutation($id: ID!, $at: DateTime!) { shipOrder(input: {orderId: $id,
  carrier: "Maersk", trackingNumber: "MAEU1234567", shippedAt: $at, method: SEA}) {
  order { status } errors { code } } }"""
RECEIPT = """mutation($id: ID!) { confirmReceipt(input: {orderId: $id}) {
  order { status } errors { code } } }"""
RELEASE = """mutation($id: ID!) { releaseFunds(input: {orderId: $id, idempotencyKey: "r-1"}) {
  released { amount currency } order { status } errors { code } } }"""
ORDER = """query($id: ID!) { order(id: $id) {
  status money { held { amount currency } released { amount currency } } events { kind } } }"""


@pytest.fixture(scope="module")
def artifacts() -> Path:
    where = Path(os.environ.get("TA_TEST_ARTIFACTS") or tempfile.mkdtemp(prefix="ta-browser-"))
    where.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser test screenshots: {where}")
    return where


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    assert CHROMIUM is not None
    async with async_playwright() as p:
        # The system's Chromium, not a Playwright download (`playwright install` is never run).
        launched = await p.chromium.launch(executable_path=CHROMIUM)
        try:
            yield launched
        finally:
            await launched.close()


def _server_env() -> dict[str, str]:
    # A quick reader: on SQLite another process's commits are seen only by its poll.
    return cli_env(TA_LIVE_POLL_SECONDS="0.1", TA_GRAPHIQL="true")


@pytest.fixture
def server(database: None) -> Iterator[Server]:
    """One gateway per test: every test empties the tables, which a running reader would
    not expect."""
    running = start_server(_server_env())
    try:
        assert wait_ready(running), running.stop()
        yield running
    finally:
        running.stop()


async def _post(
    server: Server, query: str, variables: dict[str, Any], token: str | None = None
) -> Any:
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as client:
        response = await client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=bearer(token)
        )
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body["data"]


def test_every_example_tab_is_a_valid_operation() -> None:
    schema = build_schema()._schema
    tabs = web.default_tabs()
    assert len(tabs) >= 8
    for tab in tabs:
        assert validate(schema, parse(tab["query"])) == [], tab["query"]
        json.loads(tab["variables"])


def test_the_vendored_files_are_the_pinned_releases() -> None:
    import base64
    import hashlib

    for name, sri in web.VENDOR_SRI.items():
        digest = hashlib.sha384((web.STATIC_DIR / "vendor" / name).read_bytes()).digest()
        assert sri == "sha384-" + base64.b64encode(digest).decode(), name
        assert sri in web.graphiql_html(), name


@needs_chromium
async def test_graphiql_runs_a_supplier_search_with_the_token_from_the_headers_tab(
    server: Server, browser: Browser, artifacts: Path
) -> None:
    await seed_demo()
    _, email, _ = LOGINS[0]  # the demo buyer
    login = await _post(
        server,
        "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { token } }",
        {"e": email, "p": DEMO_PASSWORD},
    )
    token = login["login"]["token"]
    expected = await _post(
        server,
        web.EXAMPLES[1][0],
        dict(web.EXAMPLES[1][1]),  # the search tab's own variables
        token,
    )
    first = expected["suppliers"]["edges"][0]["node"]["legalName"]
    company = expected["viewer"]["company"]["legalName"]

    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    started = time.monotonic()
    await page.goto(f"{server.base}/graphql")
    await page.get_by_role("tab", name="SearchSuppliers").click()
    await page.get_by_role("button", name="Headers", exact=True).click()
    editor = page.locator("section.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror")
    await editor.click()
    await page.keyboard.press("Control+A")
    # insert_text skips CodeMirror's bracket auto-closing, which typing would trigger.
    await page.keyboard.insert_text(json.dumps({"Authorization": f"Bearer {token}"}))
    await page.locator(".graphiql-execute-button").click()
    result = page.locator("section.result-window")
    await expect(result).to_contain_text(first, timeout=10_000)
    await expect(result).to_contain_text(company)  # the viewer: the token was sent
    await expect(result).to_contain_text('"totalCount"')
    await page.screenshot(path=artifacts / "graphiql-supplier-search.png")
    print(f"graphiql: {time.monotonic() - started:.1f}s")


@needs_chromium
async def test_graphiql_tabs_send_the_token_of_the_last_login_but_not_a_tab_only_one(
    server: Server, browser: Browser
) -> None:
    await seed_demo()
    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    await page.goto(f"{server.base}/graphql")
    result = page.locator("section.result-window")
    # The supplier's tab keeps its own (here a bad) token to itself ...
    await _open_tab(page, "ConfirmOrder")
    await page.get_by_role("button", name="Headers", exact=True).click()
    editor = page.locator("section.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror")
    await editor.click()
    await page.keyboard.press("Control+A")
    await page.keyboard.insert_text(
        json.dumps({"Authorization": "Bearer tat_not-a-token", "X-Tab-Only": "1"})
    )
    await page.locator(".graphiql-execute-button").click()
    await page.get_by_role("menuitem", name="ConfirmOrder").click()
    await expect(result).to_contain_text("TOKEN_INVALID", timeout=10_000)
    # ... LogIn, with no header of its own, makes its token the others' ...
    await _open_tab(page, "LogIn")
    await page.locator(".graphiql-execute-button").click()
    await expect(result).to_contain_text('"token"', timeout=10_000)
    # ... and the search, with no header of its own, runs as the buyer who logged in.
    await _open_tab(page, "SearchSuppliers")
    await page.locator(".graphiql-execute-button").click()
    await expect(result).to_contain_text("Acme Imports LLC", timeout=10_000)


async def _open_tab(page: Page, name: str) -> None:
    await page.get_by_role("tab", name=name, exact=True).click()
    # GraphiQL takes the operation's name from the editor a moment after a tab opens; run
    # at once, it sends the last tab's (as no person clicks that fast).
    await page.wait_for_timeout(500)


async def _paid_order() -> tuple[factories.Actor, factories.Actor, int]:
    """Paid in this process, with the sandbox provider the `api` fixture's app installed."""
    b, s, order = await factories.confirmed_order()
    paid = await payments.pay_order(
        b.principal, order.id, Money(3_000_00, "USD"), PaymentMethod.CARD,
        idempotency_key="pay", source=CARD_SUCCEEDS,
    )  # fmt: skip
    assert paid.error is None
    return b, s, order.id


async def _within_2s(page: Page, mutation: Any, status: str) -> float:
    """Send the mutation and wait for the page to show `status`: 2 s in all, from the send."""
    started = time.monotonic()
    (payload,) = (await mutation).values()
    assert payload["errors"] == [], payload
    left = 2000 - (time.monotonic() - started) * 1000
    await expect(page.locator("#status")).to_have_text(status, timeout=max(left, 1))
    return time.monotonic() - started


@needs_chromium
async def test_the_live_order_page_follows_the_order_and_survives_a_restart(
    server: Server, browser: Browser, artifacts: Path, api: Api
) -> None:
    b, s, order_id = await _paid_order()
    oid = gid("Order", order_id)
    page = await browser.new_page(viewport={"width": 1100, "height": 1000})
    await page.goto(f"{server.base}/orders/{order_id}/live")
    await page.fill("#token", b.token)
    await page.click("button[type=submit]")
    await expect(page.locator("#status")).to_have_text("PAID", timeout=10_000)
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    await expect(page.locator("#money-held")).to_have_text("3000.00 USD")
    await page.evaluate("window.__notReloaded = true")  # gone if the page reloads

    shipped = await _within_2s(
        page,
        _post(server, SHIP, {"id": oid, "at": dt.datetime.now(dt.UTC).isoformat()}, s.token),
        "SHIPPED",
    )
    received = await _within_2s(page, _post(server, RECEIPT, {"id": oid}, b.token), "RECEIVED")
    print(f"live page: shipped shown after {shipped:.2f}s, received after {received:.2f}s")
    timeline = page.locator("#timeline li")
    events_before = await timeline.count()

    # The gateway goes away; the page says so. While it is down the buyer releases the
    # money (through the app in this process, on the same database).
    port = server.port
    server.stop()
    await expect(page.locator("#connection")).to_have_attribute("data-state", "lost")
    await expect(page.locator("#connection")).to_contain_text("reconnecting")
    released = await api.data(RELEASE, {"id": oid}, b.token)
    assert released["releaseFunds"]["errors"] == [], released
    restarted = start_server(_server_env(), port=port)
    try:
        assert wait_ready(restarted), restarted.stop()
        now = await _post(restarted, ORDER, {"id": oid}, b.token)
        money = now["order"]["money"]
        await expect(page.locator("#money-released")).to_have_text(
            f"{money['released']['amount']} {money['released']['currency']}", timeout=15_000
        )
        assert money["released"]["amount"] == "3000.00"
        await expect(page.locator("#money-held")).to_have_text(
            f"{money['held']['amount']} {money['held']['currency']}"
        )
        await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        await expect(timeline).to_have_count(len(now["order"]["events"]))
        assert len(now["order"]["events"]) > events_before
        await expect(timeline.last).to_have_attribute(
            "data-kind", now["order"]["events"][-1]["kind"]
        )
        assert await page.evaluate("window.__notReloaded") is True
        await page.screenshot(path=artifacts / "live-order.png", full_page=True)
    finally:
        server.process = restarted.process  # the fixture stops whichever runs now
