"""Span attributes: the messaging and CloudEvents conventions' names, and ours under ``eventscope.*``.

Standard names come from the semantic-conventions package, never as literals; the ``eventscope.*``
names are the ones docs/events.md of eventscope lists for facts the conventions have no name for.
"""

from __future__ import annotations

import functools
import re

from opentelemetry.semconv._incubating.attributes import cloudevents_attributes as cloudevents
from opentelemetry.semconv._incubating.attributes import messaging_attributes as messaging

SYSTEM = "redis"  # a custom value: the conventions list no Redis messaging system
SEQUENCE = "eventscope.sequence"
PARTITION_KEY = "eventscope.partitionkey"
RECEIVERS = "eventscope.receivers"
OUTCOME = "eventscope.outcome"
ATTEMPTS = "eventscope.attempts"
SCHEMA_VERSION = "eventscope.schema.version"
PROCESSED = "processed"
FAILED = "failed"
_CACHE_MAX = 4096  # channels whose shared attributes are kept ready
_SCHEMA_VERSION = re.compile(r"[:/]v?([0-9]{1,18})$")  # ASCII digits that fit an int64 attribute
_SEQUENCE_DIGITS = 19  # at most; an int64 attribute holds up to 2**63 - 1
_INT64_MAX = 2**63 - 1


def schema_version(dataschema: object) -> int | None:
    """The integer version at the end of a ``dataschema`` URI (``...:2``, ``.../v2``), or None."""
    if type(dataschema) is str:
        return _version_of(dataschema)
    return _version_of(str(dataschema)) if isinstance(dataschema, str) else None


@functools.lru_cache(maxsize=_CACHE_MAX)
def _version_of(dataschema: str) -> int | None:
    """A system has few schemas: each URI's version is read once."""
    match = _SCHEMA_VERSION.search(dataschema)
    return int(match.group(1)) if match else None


def _sequence(value: object) -> int | None:
    """A ``sequence`` that is a decimal integer string fitting an int64 attribute, else None."""
    if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) > _SEQUENCE_DIGITS:
        return None
    number = int(value)
    return number if number <= _INT64_MAX else None


def event(channel: str, attributes: dict | None, body_size: int) -> dict:
    """What producer and consumer spans share: destination, message and CloudEvent facts."""
    result: dict = {messaging.MESSAGING_SYSTEM: SYSTEM, messaging.MESSAGING_DESTINATION_NAME: channel}
    _add_event(result, attributes, body_size)
    return result


def _add_event(result: dict, attributes: dict | None, body_size: int) -> None:
    """The message's own facts, written one by one (a loop over the names costs more than the writes)."""
    result[messaging.MESSAGING_MESSAGE_BODY_SIZE] = body_size
    if not attributes:
        return
    get = attributes.get
    value = get("id")
    if isinstance(value, str):
        result[messaging.MESSAGING_MESSAGE_ID] = result[cloudevents.CLOUDEVENTS_EVENT_ID] = value
    value = get("source")
    if isinstance(value, str):
        result[cloudevents.CLOUDEVENTS_EVENT_SOURCE] = value
    value = get("type")
    if isinstance(value, str):
        result[cloudevents.CLOUDEVENTS_EVENT_TYPE] = value
    value = get("subject")
    if isinstance(value, str):
        result[cloudevents.CLOUDEVENTS_EVENT_SUBJECT] = value
    value = get("specversion")
    if isinstance(value, str):
        result[cloudevents.CLOUDEVENTS_EVENT_SPEC_VERSION] = value
    value = get("partitionkey")
    if isinstance(value, str):
        result[PARTITION_KEY] = value
    sequence = _sequence(get("sequence"))
    if sequence is not None:
        result[SEQUENCE] = sequence
    dataschema = get("dataschema")
    if dataschema is not None:
        version = schema_version(dataschema)
        if version is not None:
            result[SCHEMA_VERSION] = version


@functools.lru_cache(maxsize=_CACHE_MAX)
def _producer_base(channel: str, operation: str) -> dict:
    """The attributes every message sent on ``channel`` shares, built once per channel (never mutated)."""
    return {
        messaging.MESSAGING_SYSTEM: SYSTEM,
        messaging.MESSAGING_DESTINATION_NAME: channel,
        messaging.MESSAGING_OPERATION_TYPE: messaging.MessagingOperationTypeValues.SEND.value,
        messaging.MESSAGING_OPERATION_NAME: operation,
    }


@functools.lru_cache(maxsize=_CACHE_MAX)
def _consumer_base(channel: str, group: str, pattern: str | None) -> dict:
    """The attributes every delivery on ``channel`` to ``group`` starts with, built once (never mutated)."""
    result = {
        messaging.MESSAGING_SYSTEM: SYSTEM,
        messaging.MESSAGING_DESTINATION_NAME: channel,
        messaging.MESSAGING_OPERATION_TYPE: messaging.MessagingOperationTypeValues.PROCESS.value,
        messaging.MESSAGING_OPERATION_NAME: "process",
        messaging.MESSAGING_CONSUMER_GROUP_NAME: group,
        ATTEMPTS: 1,  # Pub/Sub does not redeliver: one attempt per delivery
        OUTCOME: PROCESSED,  # until a handler raises: one attribute fewer to set per delivery
    }
    if pattern is not None:
        result[messaging.MESSAGING_DESTINATION_TEMPLATE] = pattern
    return result


def producer(channel: str, operation: str, attributes: dict, body_size: int) -> dict:
    result = _producer_base(channel, operation).copy()
    _add_event(result, attributes, body_size)
    return result


def consumer(channel: str, group: str, attributes: dict | None, body_size: int, pattern: str | None) -> dict:
    result = _consumer_base(channel, group, pattern).copy()
    _add_event(result, attributes, body_size)
    return result
