"""The scripts in examples/ against a real gateway with the demo data: each runs as its
own process, as a reader of the README would run it, and must exit 0 and say what it did."""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator

import pytest
from strawberry.relay import from_base64

from models import feed
from models.tables import OrderEvent
from server.demo import seed_demo
from tests.api import ROOT, Server, serving

EXAMPLES = ROOT / "examples"


@pytest.fixture
async def demo_data(database: None) -> AsyncIterator[None]:
    await seed_demo()
    yield


@pytest.fixture
def demo_server(demo_data: None) -> Iterator[Server]:
    """One gateway per test (every test empties the tables, which a running reader would
    not expect); it polls often, for on SQLite only the poll sees the examples' commits."""
    with serving(TA_LIVE_POLL_SECONDS="0.05") as server:
        yield server


def command(server: Server, script: str, *args: str) -> list[str]:
    return [sys.executable, str(EXAMPLES / script), *args, "--url", server.base]


def run(server: Server, script: str, *args: str) -> str:
    """What the example printed; it must have succeeded."""
    done = subprocess.run(  # noqa: S603 - our own example scripts
        command(server, script, *args), capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


class Follower:
    """follow_order.py in the background; its lines are read as they come."""

    def __init__(self, server: Server, *args: str) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own example script
            command(server, "follow_order.py", *args),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def events(self, n: int) -> list[str]:
        """The next n event lines (waits for them, 30 s at most)."""
        got: list[str] = []
        while len(got) < n:
            try:
                line = self.lines.get(timeout=30)
            except queue.Empty:
                self.process.kill()
                raise AssertionError(f"only {got} after 30 s") from None
            if " cursor " in line:
                got.append(line)
        return got

    def finish(self) -> list[str]:
        """The lines after the last event; the process must have ended well."""
        assert self.process.wait(30) == 0
        return [self.lines.get_nowait() for _ in range(self.lines.qsize())]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def cursor(event_line: str) -> str:
    return event_line.rsplit(" cursor ", 1)[1]


def test_search_suppliers_pages_through_trade_assurance_suppliers(demo_server: Server) -> None:
    out = run(demo_server, "search_suppliers.py", "--text", "led", "--country", "DE")
    assert "logged in as buyer.us@demo.trade-assurance.test" in out
    total = re.search(r"^(\d+) Trade Assurance suppliers match 'led' in DE$", out, re.M)
    assert total and 3 < int(total[1]) <= 6, out  # two pages of 3 show them all
    assert "page 1:" in out and "page 2:" in out and "no more pages" in out, out
    assert "Rhine Light Works GmbH (DE, rating 4.8" in out
    names = re.findall(r"^  (.+) \(DE, rating", out, re.M)
    assert len(names) == len(set(names)) == int(total[1]), out  # none on both pages


async def test_an_order_from_placing_to_release_followed_live(demo_server: Server) -> None:
    placed = run(demo_server, "buyer_order.py", "place")
    order = re.search(r"ship_order\.py --order (\S+)$", placed, re.M)
    assert order, placed
    order_id = order[1]
    assert f"placed order {order_id}: PENDING_CONFIRMATION, total 3000.00 USD" in placed
    assert "the supplier confirmed it: AWAITING_INITIAL_PAYMENT" in placed
    assert re.search(r"paid the initial payment \S+: 900\.00 USD .* order AWAITING_BALANCE", placed)
    assert re.search(r"paid the balance payment \S+: 2100\.00 USD .* order PAID", placed)
    assert "escrow holds 3000.00 USD" in placed

    # Follow from the order's first event: those so far are sent first, and once they are
    # printed the subscription is live, so what follows is delivered as it happens.
    so_far = await OrderEvent.count().where(OrderEvent.order == int(from_base64(order_id)[1]))
    count = so_far + 3  # shipped, received, released
    follower = Follower(demo_server, "--order", order_id, "--after", feed.START.cursor(),
                        "--count", str(count))  # fmt: skip
    try:
        history = follower.events(so_far)
        assert "PENDING_CONFIRMATION" in history[0] and "-> PAID " in history[-1], history
        shipped = run(demo_server, "ship_order.py", "--order", order_id)
        assert f"shipped order {order_id}: SHIPPED, Maersk MAEU1234567 by SEA" in shipped
        assert "(on time)" in shipped
        released = run(demo_server, "buyer_order.py", "release", "--order", order_id)
        assert "confirmed receipt: RECEIVED" in released
        assert "released 3000.00 USD to the supplier; order RECEIVED" in released
        live = follower.events(3)
        assert [line.split()[1] for line in live] == [
            "SHIPPED:", "RECEIPT_CONFIRMED:", "FUNDS_RELEASED:"
        ], live  # fmt: skip
        assert "PAID -> SHIPPED" in live[0] and "escrow holds 0.00 USD" in live[2]
        assert follower.finish() == [f"saw {count} events; resume with --after {cursor(live[2])}"]
    finally:
        follower.stop()

    # Resuming from a printed cursor replays exactly what came after it.
    resumed = run(demo_server, "follow_order.py", "--order", order_id,
                  "--after", cursor(live[0]), "--count", "2")  # fmt: skip
    assert resumed.count(" cursor ") == 2
    assert "RECEIPT_CONFIRMED: SHIPPED -> RECEIVED" in resumed
    assert "FUNDS_RELEASED: RECEIVED -> RECEIVED" in resumed


def test_an_example_exits_non_zero_on_errors_in_a_payload(demo_server: Server) -> None:
    placed = run(demo_server, "buyer_order.py", "place")
    order_id = placed.rsplit("--order ", 1)[1].strip()
    run(demo_server, "ship_order.py", "--order", order_id)
    again = subprocess.run(  # noqa: S603 - our own example script
        command(demo_server, "ship_order.py", "--order", order_id),
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert again.returncode == 1
    assert "error: shipOrder: ALREADY_SHIPPED" in again.stderr
    declined = subprocess.run(  # noqa: S603 - our own example script
        command(demo_server, "buyer_order.py", "place", "--card", "4000000000000002"),
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert declined.returncode == 1, declined.stdout
    assert "error: payOrder: PAYMENT_DECLINED" in declined.stderr
