"""/metrics: the Prometheus text exposition of this process's registry.

The GraphQL families (operations, errors by code) are defined in resolvers/observability.py;
this module adds what only the server knows: open subscriptions, the scheduler's deadline
sweeps and the last ledger check. Each gateway process has its own numbers (run one
process per port, or scrape each worker through its own port).
"""

from __future__ import annotations

import dataclasses
import hmac
import time
from collections.abc import Awaitable, Callable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from models.live import Hub
from models.sweep import SweepReport

# No `_created` series beside every counter and histogram: they double a scrape's size
# and Prometheus's text format has no use for them.
disable_created_metrics()  # type: ignore[no-untyped-call]  # the library's, unannotated

OPEN_SUBSCRIPTIONS = Gauge(
    "ta_open_subscriptions", "Live subscriptions this process is serving (the hub's subscribers)."
)
SWEEPS = Counter(
    "ta_deadline_sweeps_total", "Deadline sweeps run by the scheduler, by outcome.", ["outcome"]
)
SWEEP_ITEMS = Counter(
    "ta_deadline_sweep_items_total",
    "What the scheduler's sweeps did, by kind (order_<new status>, order_skipped, "
    "order_failed, application_flagged, dispute_escalated, refund_retried, refund_settled, "
    "refund_flagged, payment_reconciled).",
    ["kind"],
)


def watch_hub(hub: Hub) -> None:
    """Read the open-subscription gauge from this hub at each scrape (nothing per event)."""
    OPEN_SUBSCRIPTIONS.set_function(lambda: hub.subscriber_count)


def count_sweep(report: SweepReport | None) -> None:
    """One sweep done (None: it failed) and what it processed."""
    SWEEPS.labels("failed" if report is None else "ok").inc()
    if report is None:
        return
    items = {f"order_{status.lower()}": n for status, n in report.enforced.items()}
    items.update(
        order_skipped=report.skipped,
        order_failed=len(report.failed),
        application_flagged=len(report.applications_flagged),
        dispute_escalated=len(report.disputes_escalated),
        refund_retried=len(report.refunds_retried),
        refund_settled=len(report.refunds_settled),
        refund_flagged=len(report.refunds_flagged),
        payment_reconciled=len(report.payments_reconciled),
    )
    for kind, n in items.items():
        if n:
            SWEEP_ITEMS.labels(kind).inc(n)


@dataclasses.dataclass
class _LedgerCheck:
    violations: int
    at: float  # Unix time


class LedgerCheckCollector(Collector):
    """The last ledger check's verdict. Nothing is exposed before the first check, so
    an alert on `ta_ledger_check_ok == 0` never fires on a process that has not looked."""

    def __init__(self) -> None:
        self.last: _LedgerCheck | None = None

    def record(self, violations: int) -> None:
        self.last = _LedgerCheck(violations, time.time())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        last = self.last
        if last is None:
            return
        yield GaugeMetricFamily(
            "ta_ledger_check_ok",
            "1 when the last ledger check found the books sound, 0 when it found violations.",
            value=0 if last.violations else 1,
        )
        yield GaugeMetricFamily(
            "ta_ledger_check_violations", "Violations found by the last ledger check.",
            value=last.violations,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "ta_ledger_check_timestamp_seconds", "When the last ledger check ended (Unix time).",
            value=last.at,
        )  # fmt: skip


LEDGER_CHECK = LedgerCheckCollector()
REGISTRY.register(LEDGER_CHECK)


def endpoint(token: str | None) -> Callable[[Request], Awaitable[Response]]:
    """The /metrics handler; with a token, a scrape without `Authorization: Bearer <token>`
    gets 401 (compared in constant time)."""
    expected = f"Bearer {token}".encode() if token else None

    async def metrics(request: Request) -> Response:
        if expected is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return PlainTextResponse(
                    "metrics need the scrape token\n", 401, {"www-authenticate": "Bearer"}
                )
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return metrics
