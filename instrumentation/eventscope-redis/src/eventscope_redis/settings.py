"""What ``instrument()`` was told, read once: channels to trace, who this instance is, how to parent.

The service name (the default consumer group, and part of the default source) is looked up on first
use, not at ``instrument()`` time, because applications often set their tracer provider afterwards.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import os
import threading
from collections.abc import Callable, Iterable

from opentelemetry import trace
from opentelemetry.semconv.attributes.service_attributes import SERVICE_NAME

SERVICE_NAME_ENV = "OTEL_SERVICE_NAME"
UNKNOWN_SERVICE = "unknown_service"
_CACHE_MAX = 4096


def service_name(provider: trace.TracerProvider | None) -> str:
    """``service.name`` of the provider's resource, else OTEL_SERVICE_NAME, else ``unknown_service``."""
    provider = provider or trace.get_tracer_provider()
    resource = getattr(provider, "resource", None)
    name = getattr(resource, "attributes", {}).get(SERVICE_NAME) if resource is not None else None
    if isinstance(name, str) and name and not name.startswith(UNKNOWN_SERVICE):
        return name
    return os.environ.get(SERVICE_NAME_ENV) or (name if isinstance(name, str) and name else UNKNOWN_SERVICE)


class ChannelFilter:
    """Which channels are traced: those matching an ``include`` glob (all when none), and no ``exclude`` glob."""

    def __init__(self, include: Iterable[str] = (), exclude: Iterable[str] = ()):
        self.include = tuple(include)
        self.exclude = tuple(exclude)
        self._seen: dict[str, bool] = {}

    def __call__(self, channel: str) -> bool:
        traced = self._seen.get(channel)
        if traced is None:
            traced = self._decide(channel)
            if len(self._seen) >= _CACHE_MAX:
                self._seen.clear()
            self._seen[channel] = traced
        return traced

    def _decide(self, channel: str) -> bool:
        if self.include and not any(fnmatch.fnmatchcase(channel, p) for p in self.include):
            return False
        return not any(fnmatch.fnmatchcase(channel, p) for p in self.exclude)


@dataclasses.dataclass
class Settings:
    """Everything the producer and consumer wrappers need; built by ``RedisPubSubInstrumentor.instrument``."""

    tracer: trace.Tracer
    provider: trace.TracerProvider | None = None
    traced: ChannelFilter = dataclasses.field(default_factory=ChannelFilter)
    group: str | None = None
    source_uri: str | None = None
    parent: bool = True
    mixed_fleet: bool = False
    event_type: Callable[[str], str] | None = None
    instance: str = dataclasses.field(default_factory=lambda: os.urandom(4).hex())
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    @functools.cached_property
    def service(self) -> str:
        return service_name(self.provider)

    @property
    def consumer_group(self) -> str:
        return self.group or self.service

    @functools.cached_property
    def source(self) -> str:
        """The producing instance as a URI reference: ``/{service}/{instance}`` unless given."""
        return self.source_uri or f"/{self.service}/{self.instance}"

    def type_of(self, channel: str) -> str:
        return self.event_type(channel) if self.event_type is not None else channel
