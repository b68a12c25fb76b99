"""The Instrumentation health page's pure parts: what the telemetry lacks, what it cannot show, and the
requests the collectors refused."""

from __future__ import annotations

import pandas as pd


def missing_attributes_frame(health: dict) -> pd.DataFrame:
    """Spans missing attributes the analyses need."""
    rows = [{**m, "missing": ", ".join(m["missing"])} for m in health.get("missing_attributes", [])]
    return pd.DataFrame(rows, columns=["service", "span_name", "kind", "missing", "count"])


def unlinked_frame(health: dict) -> pd.DataFrame:
    """Consumer spans without a link to their producer."""
    return pd.DataFrame(health.get("unlinked_consumers", []), columns=["service", "span_name", "count"])


def blind_spots_frame(health: dict) -> pd.DataFrame:
    """What the telemetry cannot show, where, and how to see it (Instrumentation health)."""
    columns = ["what", "count", "cannot see", "how to see it", "where"]
    titles = {
        "unenveloped": "messages without an envelope (no id, no sequence)",
        "consumer_without_id": "consumer spans without a message id",
        "producer_without_destination": "producer spans without a destination",
        "no_sequence": "deliveries of messages without a sequence",
        "first_message_only": "SQS calls that name only the first message of a batch",
        "pubsub_as_db_call": "Redis PUBLISH traced as a database call",
    }
    rows = [
        {"what": titles.get(b["kind"], b["kind"]), "count": b["count"], "cannot see": ", ".join(b["cannot_see"]),
         "how to see it": b["how"], "where": ", ".join(b["where"])}
        for b in health.get("blind_spots") or []
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


REFUSALS = {
    "unauthorized": (
        "no or a wrong bearer token (401)",
        "Give the sender the collectors' token: OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer%20<token>.",
    ),
    "not_found": (
        "no such endpoint (404)",
        "Point the exporter at the collectors' base URL (OTEL_EXPORTER_OTLP_ENDPOINT=http://host:4318); "
        "traces go to /v1/traces, logs to /v1/logs, metrics to /v1/metrics.",
    ),
    "method_not_allowed": ("another method than POST for OTLP or GET for the API (405)", "Export with POST."),
    "bad_http": (
        "not valid HTTP/1.1, e.g. two different Content-Length headers (400)",
        "Fix the sender, or the proxy between it and the collectors.",
    ),
    "undecodable": (
        "not a valid OTLP request: protobuf, JSON or gzip (400)",
        "Send OTLP protobuf (application/x-protobuf) or OTLP JSON (application/json), plain or gzip.",
    ),
    "body_too_large": (
        "the body, or its decompressed form, exceeds the body limit (413)",
        "Export smaller batches (OTEL_BSP_MAX_EXPORT_BATCH_SIZE) or raise EVENTSCOPE_MAX_BODY_BYTES.",
    ),
    "unsupported_media": (
        "another content type or content encoding (415)",
        "Use Content-Type application/x-protobuf or application/json, and gzip or no Content-Encoding.",
    ),
    "timeout": (
        "the body did not arrive whole within the request deadline (408)",
        "Check the network between sender and collectors, or raise EVENTSCOPE_REQUEST_DEADLINE_S.",
    ),
    "incomplete_body": (
        "the sender left before sending the whole body",
        "The sender gave up mid-request: its export timeout (OTEL_EXPORTER_OTLP_TIMEOUT) may be too short.",
    ),
    "too_many_in_flight": (
        "more exports in flight than the limits allow (429)",
        "The sender retries after Retry-After; send fewer, larger batches or raise EVENTSCOPE_MAX_IN_FLIGHT.",
    ),
    "store_unavailable": (
        "the write queue is full, or the commit failed or took too long (503)",
        "The sender retries after Retry-After; the collectors' log says why the store is behind.",
    ),
}
"""What each refusal reason of /health means (docs/ingest.md, *Refused requests are never silent*) and what to do."""


def refusals_frame(health: dict) -> pd.DataFrame:
    """OTLP requests the collectors refused, per reason, the most frequent first, with what to do about each."""
    counts = (health.get("ingest") or {}).get("refused_by_reason") or {}
    rows = [
        {
            "reason": reason,
            "requests": count,
            "meaning": REFUSALS.get(reason, ("", ""))[0],
            "what to do": REFUSALS.get(reason, ("", "See docs/ingest.md and the collectors' log."))[1],
        }
        for reason, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        if count
    ]
    return pd.DataFrame(rows, columns=["reason", "requests", "meaning", "what to do"])
