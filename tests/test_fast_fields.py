"""Thin resolvers (resolvers/fast_fields.py) answer byte for byte as Strawberry's own
wrappers do: the same operations against an app built with them and one built without,
on the same database, fields with arguments (IDs, input objects, enums, defaults) and
their refusals included."""

from __future__ import annotations

from typing import Any

import pytest

import resolvers.schema
from tests import factories
from tests.api import Api, bearer, gid, make_app

pytest_plugins = ("tests.api_plugin",)

ORDER = "query($id: ID!) { order(id: $id) { id status total { amount currency } } }"
FILTERED = '{ orders(filter: {statuses: [CONFIRMED]}, after: "x") { edges { cursor } } }'
CANCEL = """mutation($input: CancelOrderInput!) {
  cancelOrder(input: $input) { order { id } errors { code field message } } }"""


async def test_thin_resolvers_answer_as_strawberrys_own(monkeypatch: pytest.MonkeyPatch) -> None:
    thin = Api(make_app())
    monkeypatch.setattr(resolvers.schema, "thin_resolvers", lambda *_: 0)
    plain = Api(make_app())
    b, s, order = await factories.confirmed_order()
    operations: list[tuple[dict[str, Any], str | None]] = [
        ({"query": ORDER, "variables": {"id": gid("Order", order.id)}}, b.token),
        ({"query": ORDER, "variables": {"id": "not a global id"}}, b.token),
        ({"query": ORDER, "variables": {"id": gid("Company", order.id)}}, b.token),
        ({"query": ORDER, "variables": {"id": gid("Order", order.id)}}, None),
        ({"query": "{ orders(first: 2) { edges { node { id status } } } }"}, s.token),
        ({"query": "{ orders(first: 1000) { edges { cursor } } }"}, s.token),
        ({"query": FILTERED}, b.token),
        ({"query": '{ suppliers(filter: {text: "led"}, first: 3) { totalCount } }'}, None),
        (
            {
                "query": CANCEL,
                "variables": {"input": {"orderId": gid("Order", 999_999), "reason": "r"}},
            },
            b.token,
        ),
        ({"query": CANCEL, "variables": {"input": {"orderId": "x", "reason": "r"}}}, b.token),
    ]
    for body, token in operations:
        answers = [
            await app.http("POST", json=body, headers=bearer(token)) for app in (thin, plain)
        ]
        assert answers[0].status_code == answers[1].status_code, body
        assert answers[0].content == answers[1].content, body
