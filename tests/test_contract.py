"""`schema.graphql` is the public contract: the code must print exactly it."""

from __future__ import annotations

import difflib
from pathlib import Path

from graphql import build_schema as parse_sdl
from graphql import find_breaking_changes, find_dangerous_changes

from resolvers.schema import build_schema

CONTRACT = Path(__file__).resolve().parent.parent / "schema.graphql"


def contract_differences(contract_sdl: str, code_sdl: str) -> list[str]:
    """Breaking and dangerous changes from the contract to the code, as readable lines."""
    old, new = parse_sdl(contract_sdl), parse_sdl(code_sdl)
    lines = [f"BREAKING {c.type.name}: {c.description}" for c in find_breaking_changes(old, new)]
    lines += [f"DANGEROUS {c.type.name}: {c.description}" for c in find_dangerous_changes(old, new)]
    return lines


def test_code_prints_exactly_the_contract() -> None:
    printed = build_schema().as_str() + "\n"
    contract = CONTRACT.read_text()
    if printed == contract:
        return
    report = contract_differences(contract, printed) or ["(no breaking or dangerous changes)"]
    diff = difflib.unified_diff(
        contract.splitlines(), printed.splitlines(), "schema.graphql", "code", lineterm="", n=1
    )
    raise AssertionError(
        "The Strawberry schema does not print schema.graphql.\n"
        + "\n".join(report)
        + "\n\n"
        + "\n".join(list(diff)[:200])
    )


def test_differences_are_reported_for_a_breaking_change() -> None:
    contract = CONTRACT.read_text()
    broken = contract.replace('  """The registered legal name."""\n  legalName: String!\n', "", 1)
    assert broken != contract
    assert any(
        line.startswith("BREAKING FIELD_REMOVED") for line in contract_differences(contract, broken)
    )


def test_contract_keeps_the_api_conventions() -> None:
    sdl = CONTRACT.read_text()
    assert "scalar Decimal" in sdl and "type Money {" in sdl
    assert "scalar DateTime" in sdl
    assert "interface Node {" in sdl
    assert "type UserError {" in sdl and "enum ErrorCode {" in sdl
