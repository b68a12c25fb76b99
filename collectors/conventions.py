"""Attribute names the analyses key on: OpenTelemetry messaging conventions, CloudEvents, and ours.

Standard names come from the semantic conventions; the few facts they have no name for (a
CloudEvent's sequence and partition key, PUBLISH's receiver count, a delivery's outcome) live in
one documented custom namespace, ``eventscope.*`` (docs/events.md).
"""

from __future__ import annotations

MESSAGING_SYSTEM = "messaging.system"
MESSAGING_OPERATION_TYPE = "messaging.operation.type"
MESSAGING_OPERATION_LEGACY = "messaging.operation"
MESSAGING_DESTINATION = "messaging.destination.name"
MESSAGING_MESSAGE_ID = "messaging.message.id"
MESSAGING_CONSUMER_GROUP = "messaging.consumer.group.name"
MESSAGING_PARTITION_ID = "messaging.destination.partition.id"
KAFKA_OFFSET = "messaging.kafka.offset"

CE_ID = "cloudevents.event_id"
CE_SOURCE = "cloudevents.event_source"
CE_TYPE = "cloudevents.event_type"
CE_SUBJECT = "cloudevents.event_subject"

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

OUTCOMES = ("processed", "duplicate_skipped", "retried", "dead_lettered", "failed")
