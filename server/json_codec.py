"""JSON for GraphQL answers: orjson where its bytes are the standard library's, else the
standard library.

Answers stay byte-identical to `json.dumps(data, separators=(",", ":"))` (Strawberry's
own encoding, which clients and the benchmarks' byte comparison have seen all along).
orjson writes the same bytes for everything a GraphQL result holds, except: non-ASCII
text (raw UTF-8, where the standard library escapes it), DEL (escaped there), floats
under 1e-4 (`0.00001` and `1.5e-7` for `1e-05` and `1.5e-07`), integers past 64 bits and
non-string keys (orjson refuses them). An answer with any of those, or merely with the
text `e-` or `0.0000` (the cheap test for such floats), is encoded again by the standard
library: it pays twice, the rest much less (a 100-order list: about 320 µs against 820;
docs/performance.md).
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(data: Any) -> bytes:
    try:
        encoded = orjson.dumps(data)
    except TypeError:  # an integer past 64 bits, a non-string key
        return _standard(data)
    if encoded.isascii() and not (b"\x7f" in encoded or b"e-" in encoded or b"0.0000" in encoded):
        return encoded
    return _standard(data)


def _standard(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def loads(body: bytes) -> Any:
    """A request body, or ValueError. orjson is the stricter parser (no NaN, no lone
    surrogates, integers within 64 bits), so what it refuses is left to Strawberry's
    view, which parses with the standard library and answers as it always has."""
    return orjson.loads(body)
