"""Integration fixtures: one real Redis Cluster (3 primaries, 1 replica each) for the whole session."""

from __future__ import annotations

import pytest

from devtools.processes import RedisCluster


@pytest.fixture(scope="session")
def redis_cluster():
    cluster = RedisCluster(primaries=3, replicas=1)
    yield cluster
    cluster.stop()
