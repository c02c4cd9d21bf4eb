"""server.json_codec: orjson's speed, the standard library's bytes (answers must not
change by a byte)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server import json_codec

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()  # past 64 bits too
    | st.floats(allow_nan=False, allow_infinity=False)  # GraphQL has no others
    | st.text()  # control characters, DEL, non-ASCII, surrogate-free
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


def _standard(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


@settings(max_examples=1000)
@given(_values)
def test_answers_are_the_standard_librarys_bytes(value: Any) -> None:
    assert json_codec.dumps(value) == _standard(value)


@pytest.mark.parametrize(
    "value",
    [
        1e-05, 1.5e-07, 0.0001, 1e16, 1e300, 5e-324, -0.0, 4.7,  # where notations part
        "a\x7fb", "Müller GmbH", "深圳", "\x00\x1f\"\\/", 2**64, -(2**63) - 1,
        {"data": {"supplier": {"rating": 4.25, "legalName": "Rhine Sales"}}},
    ],
)  # fmt: skip
def test_the_cases_orjson_writes_otherwise(value: Any) -> None:
    assert json_codec.dumps(value) == _standard(value)
    assert json_codec.dumps({1: value}) == _standard({1: value})  # a non-string key


def test_bodies_orjson_refuses_are_left_to_the_standard_parser() -> None:
    assert json_codec.loads(b'{"query": "{ me { id } }", "variables": null}') == {
        "query": "{ me { id } }",
        "variables": None,
    }
    for body in (b'{"n": NaN}', b'{"s": "\\ud800"}', b"[1,]", b"\xff"):
        with pytest.raises(ValueError):
            json_codec.loads(body)
