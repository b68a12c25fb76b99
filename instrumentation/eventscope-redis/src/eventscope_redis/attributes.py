"""Span attributes: the messaging and CloudEvents conventions' names, and ours under ``eventscope.*``.

Standard names come from the semantic-conventions package, never as literals; the ``eventscope.*``
names are the ones docs/events.md of eventscope lists for facts the conventions have no name for.
"""

from __future__ import annotations

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
_SCHEMA_VERSION = re.compile(r"[:/]v?(\d+)$")
_CLOUDEVENT = (
    ("id", cloudevents.CLOUDEVENTS_EVENT_ID),
    ("source", cloudevents.CLOUDEVENTS_EVENT_SOURCE),
    ("type", cloudevents.CLOUDEVENTS_EVENT_TYPE),
    ("subject", cloudevents.CLOUDEVENTS_EVENT_SUBJECT),
    ("specversion", cloudevents.CLOUDEVENTS_EVENT_SPEC_VERSION),
)


def schema_version(dataschema: object) -> int | None:
    """The integer version at the end of a ``dataschema`` URI (``...:2``, ``.../v2``), or None."""
    if not isinstance(dataschema, str):
        return None
    match = _SCHEMA_VERSION.search(dataschema)
    return int(match.group(1)) if match else None


def event(channel: str, attributes: dict | None, body_size: int) -> dict:
    """What producer and consumer spans share: destination, message and CloudEvent facts."""
    result: dict = {
        messaging.MESSAGING_SYSTEM: SYSTEM,
        messaging.MESSAGING_DESTINATION_NAME: channel,
        messaging.MESSAGING_MESSAGE_BODY_SIZE: body_size,
    }
    if not attributes:
        return result
    if isinstance(attributes.get("id"), str):
        result[messaging.MESSAGING_MESSAGE_ID] = attributes["id"]
    for key, name in _CLOUDEVENT:
        if isinstance(attributes.get(key), str):
            result[name] = attributes[key]
    sequence = attributes.get("sequence")
    if isinstance(sequence, str) and sequence.isdigit():
        result[SEQUENCE] = int(sequence)
    if isinstance(attributes.get("partitionkey"), str):
        result[PARTITION_KEY] = attributes["partitionkey"]
    version = schema_version(attributes.get("dataschema"))
    if version is not None:
        result[SCHEMA_VERSION] = version
    return result


def producer(channel: str, operation: str, attributes: dict, body_size: int) -> dict:
    result = event(channel, attributes, body_size)
    result[messaging.MESSAGING_OPERATION_TYPE] = messaging.MessagingOperationTypeValues.SEND.value
    result[messaging.MESSAGING_OPERATION_NAME] = operation
    return result


def consumer(channel: str, group: str, attributes: dict | None, body_size: int, pattern: str | None) -> dict:
    result = event(channel, attributes, body_size)
    result[messaging.MESSAGING_OPERATION_TYPE] = messaging.MessagingOperationTypeValues.PROCESS.value
    result[messaging.MESSAGING_OPERATION_NAME] = "process"
    result[messaging.MESSAGING_CONSUMER_GROUP_NAME] = group
    result[ATTEMPTS] = 1  # Pub/Sub does not redeliver: one attempt per delivery
    result[OUTCOME] = PROCESSED  # until a handler raises: one attribute fewer to set per delivery
    if pattern is not None:
        result[messaging.MESSAGING_DESTINATION_TEMPLATE] = pattern
    return result
