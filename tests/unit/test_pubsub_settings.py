"""eventscope-redis configuration: which channels are traced, who the service is, and what the library imports."""

from __future__ import annotations

import subprocess
import sys

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from eventscope_redis import attributes
from eventscope_redis.settings import ChannelFilter, Settings, service_name


@pytest.mark.parametrize(
    "include, exclude, channel, traced",
    [
        ((), (), "orders.placed", True),
        (("orders.*",), (), "orders.placed", True),
        (("orders.*",), (), "payments.done", False),
        ((), ("audit.*",), "audit.log", False),
        ((), ("audit.*",), "orders.placed", True),
        (("*",), ("*.internal",), "orders.internal", False),
        (("orders.[ab]",), (), "orders.a", True),
        (("orders.[ab]",), (), "orders.c", False),
        (("Orders.*",), (), "orders.placed", False),
    ],
)
def test_channel_filter(include, exclude, channel, traced):
    assert ChannelFilter(include, exclude)(channel) is traced


def test_channel_filter_remembers_a_bounded_number_of_channels():
    traced = ChannelFilter(("a.*",))
    for number in range(10_000):
        traced(f"a.{number}")
    assert len(traced._seen) <= 4096


@pytest.mark.parametrize(
    "resource, env, expected",
    [
        ({"service.name": "billing"}, {}, "billing"),
        ({"service.name": "billing"}, {"OTEL_SERVICE_NAME": "other"}, "billing"),
        ({}, {"OTEL_SERVICE_NAME": "from-env"}, "from-env"),
        ({}, {}, "unknown_service"),
    ],
)
def test_service_name_comes_from_the_provider_then_the_environment(monkeypatch, resource, env, expected):
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    provider = TracerProvider(resource=Resource.create(resource)) if resource else trace.NoOpTracerProvider()
    assert service_name(provider) == expected


def test_source_and_group_default_to_the_service_and_an_instance_id():
    provider = TracerProvider(resource=Resource.create({"service.name": "billing"}))
    settings = Settings(tracer=provider.get_tracer("t"), provider=provider)
    assert settings.consumer_group == "billing"
    assert settings.source == f"/billing/{settings.instance}"
    chosen = Settings(tracer=provider.get_tracer("t"), provider=provider, group="audit", source_uri="/x/1")
    assert (chosen.consumer_group, chosen.source) == ("audit", "/x/1")


@pytest.mark.parametrize(
    "dataschema, version",
    [
        ("urn:shop:order.placed:2", 2),
        ("https://schemas/x/v3", 3),
        ("https://schemas/x", None),
        (None, None),
        (7, None),
        ("urn:x:\u0663", None),  # a digit, but not a decimal ASCII one
        ("urn:x:" + "9" * 19, None),  # too big for an integer attribute
        ("urn:x:" + "1" * 5000, None),  # longer than Python converts to int
    ],
)
def test_schema_version_is_read_from_the_end_of_dataschema(dataschema, version):
    assert attributes.schema_version(dataschema) == version


@pytest.mark.parametrize(
    "sequence, expected",
    [
        ("7", 7),
        (str(2**63 - 1), 2**63 - 1),
        (str(2**63), None),
        ("1" * 5000, None),
        ("\u00b2", None),
        ("\u0663", None),
        ("-1", None),
        ("", None),
        (7, None),
        (None, None),
    ],
)
def test_a_sequence_becomes_an_integer_attribute_only_when_it_is_a_decimal_string_that_fits(sequence, expected):
    for made in (
        attributes.producer("c", "publish", {"sequence": sequence}, 1),
        attributes.consumer("c", "g", {"sequence": sequence}, 1, None),
    ):
        assert made.get(attributes.SEQUENCE) == expected


def test_the_library_imports_nothing_of_this_repository():
    code = (
        "import sys, eventscope_redis, eventscope_redis.instrumentor; "
        "ours = {'collectors', 'sample_system', 'dashboard', 'tests', 'bench'}; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ours); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert result.returncode == 0, result.stdout + result.stderr
