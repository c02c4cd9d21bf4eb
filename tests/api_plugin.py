"""Fixtures for the end-to-end tests; load with `pytest_plugins = ("tests.api_plugin",)`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api import Api, Server, make_app, serving


@pytest.fixture
def api() -> Api:
    """The gateway app with the environment's settings, driven through gql."""
    return Api(make_app())


@pytest.fixture(scope="module")
def live_server(database: None) -> Iterator[Server]:
    """A real uvicorn gateway on the test database, for the whole module."""
    with serving() as server:
        yield server
