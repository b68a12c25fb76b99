"""Shared fixtures: real servers started once per session (redis-server, RabbitMQ, moto), a fresh collectors
process per test."""

from __future__ import annotations

import pytest

from tests import client_apps
from tests.processes import Collectors, MotoServer, RabbitMQ, RedisServer


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


@pytest.fixture(scope="session")
def rabbitmq():
    server = RabbitMQ()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_server():
    server = MotoServer(str(client_apps.python_env("moto")))
    yield server
    server.stop()
