"""Configuration is read in one place; bad values fail at start-up naming the setting."""

from __future__ import annotations

import pytest

from collectors import config as collectors_config
from sample_system import config as sample_config


def test_collectors_defaults():
    config = collectors_config.load_config({})
    assert (config.host, config.port) == ("127.0.0.1", 4318)
    assert config.redis_url is None
    assert config.tap_patterns == ("*",)


def test_collectors_ingest_defaults_and_switches():
    config = collectors_config.load_config({})
    assert config.grpc_listen == ("127.0.0.1", 4317)
    assert (config.broker_poll_s, config.retention_age_s, config.retention_max_spans) == (5.0, 0.0, 0)
    env = {"EVENTSCOPE_GRPC_LISTEN": "off", "EVENTSCOPE_RETENTION_AGE_S": "3600", "EVENTSCOPE_BROKER_POLL_S": "0"}
    config = collectors_config.load_config(env, retention_max_spans="1000")
    assert (config.grpc_listen, config.broker_poll_s) == (None, 0.0)
    assert (config.retention_age_s, config.retention_max_spans) == (3600.0, 1000)
    assert collectors_config.load_config({}, grpc_listen="0.0.0.0:14317").grpc_listen == ("0.0.0.0", 14317)
    assert collectors_config.load_config({"EVENTSCOPE_STORE_MEMORY_LIMIT": "2GB"}).store_memory_limit == "2GB"


def test_the_token_and_the_request_deadline():
    config = collectors_config.load_config({})
    assert (config.token, config.request_deadline_s) == (None, 30.0)
    config = collectors_config.load_config({"EVENTSCOPE_TOKEN": " s3cret ", "EVENTSCOPE_REQUEST_DEADLINE_S": "2.5"})
    assert (config.token, config.request_deadline_s) == ("s3cret", 2.5)
    assert "s3cret" not in repr(config)  # never in a log line that prints the config
    assert collectors_config.load_config({"EVENTSCOPE_TOKEN": ""}).token is None


@pytest.mark.parametrize("value, on", [("1", True), ("yes", True), (" TRUE ", True), ("0", False), ("", False)])
def test_redis_cluster_switch(value, on):
    assert collectors_config.load_config({"EVENTSCOPE_REDIS_CLUSTER": value}).redis_cluster is on
    assert sample_config.load_config({"EVENTSCOPE_REDIS_CLUSTER": value}).redis_cluster is on


def test_redis_cluster_flag_and_shard_channels():
    config = collectors_config.load_config({"EVENTSCOPE_TAP_SHARD_CHANNELS": "shop.orders, ,shop.payments"})
    assert (config.redis_cluster, config.tap_shard_channels) == (False, ("shop.orders", "shop.payments"))
    assert collectors_config.load_config({"EVENTSCOPE_REDIS_CLUSTER": "0"}, redis_cluster="1").redis_cluster is True


def test_collectors_flags_win_over_env():
    env = {"EVENTSCOPE_LISTEN": "0.0.0.0:9", "REDIS_URL": "redis://env", "EVENTSCOPE_TAP_PATTERNS": "a.*, b"}
    config = collectors_config.load_config(env, listen="127.0.0.1:1234")
    assert (config.host, config.port, config.redis_url, config.tap_patterns) == (
        "127.0.0.1",
        1234,
        "redis://env",
        ("a.*", "b"),
    )


def test_the_registry_flag_wins_over_env_and_clients_read_it_the_same_way(tmp_path):
    assert collectors_config.load_config({}).registry is None
    env = {"EVENTSCOPE_REGISTRY": "/no/such/registry"}
    assert collectors_config.load_config(env, registry=str(tmp_path)).registry == str(tmp_path)
    assert collectors_config.registry_path(env) == "/no/such/registry"
    assert collectors_config.registry_path(env, "mine") == "mine"
    assert collectors_config.registry_path({}) is None


@pytest.mark.parametrize(
    "env,name",
    [
        ({"EVENTSCOPE_LISTEN": "nope"}, "EVENTSCOPE_LISTEN"),
        ({"EVENTSCOPE_LISTEN": "h:99999"}, "EVENTSCOPE_LISTEN"),
        ({"EVENTSCOPE_MAX_BODY_BYTES": "-1"}, "EVENTSCOPE_MAX_BODY_BYTES"),
        ({"EVENTSCOPE_WRITE_QUEUE_LIMIT": "x"}, "EVENTSCOPE_WRITE_QUEUE_LIMIT"),
        ({"EVENTSCOPE_GRPC_LISTEN": "4317"}, "EVENTSCOPE_GRPC_LISTEN"),
        ({"EVENTSCOPE_MAX_IN_FLIGHT": "0"}, "EVENTSCOPE_MAX_IN_FLIGHT"),
        ({"EVENTSCOPE_MAX_IN_FLIGHT_BYTES": "lots"}, "EVENTSCOPE_MAX_IN_FLIGHT_BYTES"),
        ({"EVENTSCOPE_BROKER_POLL_S": "-1"}, "EVENTSCOPE_BROKER_POLL_S"),
        ({"EVENTSCOPE_BROKER_POLL_S": "nan"}, "EVENTSCOPE_BROKER_POLL_S"),
        ({"EVENTSCOPE_RETENTION_AGE_S": "a week"}, "EVENTSCOPE_RETENTION_AGE_S"),
        ({"EVENTSCOPE_RETENTION_MAX_SPANS": "1e6"}, "EVENTSCOPE_RETENTION_MAX_SPANS"),
        ({"EVENTSCOPE_RETENTION_INTERVAL_S": "0"}, "EVENTSCOPE_RETENTION_INTERVAL_S"),
        ({"EVENTSCOPE_STORE_MEMORY_LIMIT": "512'; DROP"}, "EVENTSCOPE_STORE_MEMORY_LIMIT"),
        ({"EVENTSCOPE_REQUEST_DEADLINE_S": "0"}, "EVENTSCOPE_REQUEST_DEADLINE_S"),
        ({"EVENTSCOPE_TOKEN": "two words"}, "EVENTSCOPE_TOKEN"),
        ({"EVENTSCOPE_TOKEN": "caf\u00e9"}, "EVENTSCOPE_TOKEN"),
        ({"EVENTSCOPE_REGISTRY": "/no/such/registry"}, "EVENTSCOPE_REGISTRY"),
        ({"EVENTSCOPE_REDIS_CLUSTER": "cluster"}, "EVENTSCOPE_REDIS_CLUSTER"),
        ({"EVENTSCOPE_REDIS_CLUSTER": "2"}, "EVENTSCOPE_REDIS_CLUSTER"),
    ],
)
def test_collectors_bad_values_name_the_setting(env, name):
    with pytest.raises(collectors_config.ConfigError, match=name):
        collectors_config.load_config(env)


def test_sample_defaults_and_flags():
    config = sample_config.load_config({"SAMPLE_RATE": "7.5"}, seed=3)
    assert (config.rate, config.seed, config.tracing, config.consumer_parent) == (7.5, 3, True, "producer")
    assert sample_config.load_config({"SAMPLE_TRACING": "off"}).tracing is False


@pytest.mark.parametrize(
    "env,name",
    [
        ({"SAMPLE_RATE": "fast"}, "SAMPLE_RATE"),
        ({"SAMPLE_RATE": "-2"}, "SAMPLE_RATE"),
        ({"SAMPLE_TRACING": "maybe"}, "SAMPLE_TRACING"),
        ({"SAMPLE_CONSUMER_PARENT": "x"}, "SAMPLE_CONSUMER_PARENT"),
        ({"EVENTSCOPE_REDIS_CLUSTER": "maybe"}, "EVENTSCOPE_REDIS_CLUSTER"),
    ],
)
def test_sample_bad_values_name_the_setting(env, name):
    with pytest.raises(sample_config.ConfigError, match=name):
        sample_config.load_config(env)
