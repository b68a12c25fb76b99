"""eventscope-redis: OpenTelemetry instrumentation for redis-py Pub/Sub.

    from eventscope_redis import RedisPubSubInstrumentor
    RedisPubSubInstrumentor().instrument()

Every published message travels as a CloudEvents 1.0 event (id, source, type, a sequence number per
stream, trace context) inside a PRODUCER span; every delivery is processed inside a CONSUMER span linked
to it. The application on both sides sees exactly the payload it published. See README.md.
"""

from __future__ import annotations

from eventscope_redis.client import peek
from eventscope_redis.instrumentor import RedisPubSubInstrumentor
from eventscope_redis.message import message
from eventscope_redis.steps import Incoming, Outgoing, delivery
from eventscope_redis.version import __version__

__all__ = ["Incoming", "Outgoing", "RedisPubSubInstrumentor", "__version__", "delivery", "message", "peek"]
