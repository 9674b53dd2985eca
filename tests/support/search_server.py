"""The local Elasticsearch-speaking server (noida-db, fincdp.search_server) as pytest fixtures.

    def test_x(search_server):      # a fresh server per test: its own data dir and free port
        SearchIndex(url=search_server.url)

Start-up takes well under a second, so every test gets an empty server and no cleanup between tests
is needed. A machine without the noida-db package fails here (never skips), with how to install it.
"""
from __future__ import annotations

from typing import Iterator

import pytest

from fincdp.search_server import LocalSearchServer, SearchServerError


@pytest.fixture
def search_server(tmp_path) -> Iterator[LocalSearchServer]:
    server = LocalSearchServer(tmp_path / "search")
    try:
        server.start()
    except SearchServerError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()
