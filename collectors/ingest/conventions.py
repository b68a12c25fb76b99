"""Attribute names the analyses key on: OpenTelemetry messaging conventions, CloudEvents, and ours.

Standard names come from the semantic conventions package's constants (messaging and CloudEvents
attributes are still incubating there); the few facts they have no name for (a
CloudEvent's sequence and partition key, PUBLISH's receiver count, a delivery's outcome) live in
one documented custom namespace, ``eventscope.*`` (docs/events.md).
"""

from __future__ import annotations

import enum

from opentelemetry.semconv._incubating.attributes import cloudevents_attributes as ce
from opentelemetry.semconv._incubating.attributes import messaging_attributes as semconv

MESSAGING_SYSTEM = semconv.MESSAGING_SYSTEM
MESSAGING_OPERATION_TYPE = semconv.MESSAGING_OPERATION_TYPE
MESSAGING_OPERATION_LEGACY = semconv.MESSAGING_OPERATION
MESSAGING_DESTINATION = semconv.MESSAGING_DESTINATION_NAME
MESSAGING_MESSAGE_ID = semconv.MESSAGING_MESSAGE_ID
MESSAGING_CONSUMER_GROUP = semconv.MESSAGING_CONSUMER_GROUP_NAME
MESSAGING_PARTITION_ID = semconv.MESSAGING_DESTINATION_PARTITION_ID
KAFKA_OFFSET = semconv.MESSAGING_KAFKA_OFFSET

CE_ID = ce.CLOUDEVENTS_EVENT_ID
CE_SOURCE = ce.CLOUDEVENTS_EVENT_SOURCE
CE_TYPE = ce.CLOUDEVENTS_EVENT_TYPE
CE_SUBJECT = ce.CLOUDEVENTS_EVENT_SUBJECT

NAMESPACE = "eventscope."
SEQUENCE = "eventscope.sequence"
PARTITION_KEY = "eventscope.partitionkey"
RECEIVERS = "eventscope.receivers"
OUTCOME = "eventscope.outcome"
ATTEMPTS = "eventscope.attempts"
SCHEMA_VERSION = "eventscope.schema.version"
DEAD_LETTER_REASON = "eventscope.dead_letter.reason"
DEAD_LETTER_QUEUE = "eventscope.dead_letter.queue"
DEDUPE_KEY = "eventscope.dedupe.key"
RETRY_EVENT = "retry"
RETRY_ATTEMPT = "eventscope.attempt"
RETRY_DELAY_MS = "eventscope.retry.delay_ms"


class Outcome(enum.StrEnum):
    """How one delivery ended (``eventscope.outcome``, docs/events.md); a str, so it compares and formats as one."""

    PROCESSED = "processed"
    DUPLICATE_SKIPPED = "duplicate_skipped"
    RETRIED = "retried"
    DEAD_LETTERED = "dead_lettered"
    FAILED = "failed"


OUTCOMES = tuple(outcome.value for outcome in Outcome)
