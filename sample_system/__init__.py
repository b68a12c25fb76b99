"""The sample system: a small shop on Redis Pub/Sub, instrumented with OpenTelemetry.

It is the system under observation in demos and teaching sessions and the ground on which the
detectors are proven. It imports nothing from the collectors or the dashboard: both sides agree
only through public standards (CloudEvents, W3C Trace Context, OTLP, the messaging conventions).
"""
