"""Shared fixtures: one real redis-server per test session, a fresh collectors process per test."""

from __future__ import annotations

import pytest

from tests.processes import Collectors, RedisServer


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture
def collectors(redis_server):
    process = Collectors(redis_server.url)
    yield process
    process.stop()
    assert "Traceback" not in process.log(), process.log()
