"""Roles: which spans are publishes and which are deliveries, written once for every analysis.

The span kind says so for most instrumentations: PRODUCER publishes, CONSUMER delivers. Some record
their messaging calls as CLIENT spans instead: botocore records every SQS call as one, and Redis
clients traced as a database record PUBLISH as one. For the systems listed here the normalised
operation (collectors/ingest/normalize.py) completes the kind: a CLIENT ``send`` is a publish, and a CLIENT
``receive`` that names a message (a receipt: botocore's SQS ReceiveMessage, after which nothing
traces the processing) is the delivery of that message. A receipt records no processing, so its
outcome is ``received`` unless the span is in error. Other systems' CLIENT spans are neither: in
the conventions a CLIENT ``send`` may be the transport of a batch whose messages have PRODUCER
``create`` spans of their own, and a CLIENT ``receive`` may be followed by CONSUMER ``process``
spans, so reading them too would count those messages twice.
"""

from __future__ import annotations

CLIENT_SEND_SYSTEMS = ("aws_sqs", "redis")
"""Systems whose CLIENT ``send`` spans are the publishes (botocore's SQS SendMessage, a Redis PUBLISH)."""
RECEIPT_SYSTEMS = ("aws_sqs",)
"""Systems whose CLIENT ``receive`` spans are the deliveries (no processing span follows them)."""
RECEIVED = "received"
"""The outcome of a delivery that is a receipt: the span does not say whether the message was processed."""


def _sql_list(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{value}'" for value in values) + ")"


RECEIPT_SYSTEMS_SQL = _sql_list(RECEIPT_SYSTEMS)
_CLIENT_SEND_SYSTEMS_SQL = _sql_list(CLIENT_SEND_SYSTEMS)


def _at(alias: str) -> str:
    return f"{alias}." if alias else ""


def publish(alias: str = "") -> str:
    """SQL: the span (of table alias ``alias``) is a publish."""
    a = _at(alias)
    return (
        f"({a}SpanKind = 'Producer' OR ({a}SpanKind = 'Client' AND {a}MsgOperation = 'send' "
        f"AND {a}MsgSystem IN {_CLIENT_SEND_SYSTEMS_SQL}))"
    )


def receipt(alias: str = "") -> str:
    """SQL: the span is a CLIENT receive that stands for the delivery of the message it names."""
    a = _at(alias)
    return (
        f"({a}SpanKind = 'Client' AND {a}MsgOperation = 'receive' AND {a}MsgSystem IN {RECEIPT_SYSTEMS_SQL} "
        f"AND {a}MsgMessageId IS NOT NULL)"
    )


def delivery(alias: str = "") -> str:
    """SQL: the span is a delivery (a CONSUMER span, or a receipt)."""
    return f"({_at(alias)}SpanKind = 'Consumer' OR {receipt(alias)})"


def redelivered_receipts() -> str:
    """SQL: (TraceId, SpanId) of receipts of a message already received by the same group on the same queue.

    SQS gives every sent message its own MessageId and hands the same one out again only when it was not
    deleted before its visibility timeout ran out (its ApproximateReceiveCount is then above 1): a
    redelivery, never a duplicate (a duplicate send gets a new MessageId). Counted over all receipts, not
    only those in a window, so the first receipt of a message decides even when it is older than the window.
    """
    return f"""
SELECT TraceId, SpanId FROM (
    SELECT TraceId, SpanId, row_number() OVER (
        PARTITION BY COALESCE(MsgConsumerGroup, ServiceName), MsgDestination, MsgMessageId
        ORDER BY Timestamp, SpanId) AS n
    FROM otel_traces WHERE {receipt()}
) WHERE n > 1
"""
