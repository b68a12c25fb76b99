"""Steps: an application's own code around the library's publish and delivery, in the order it chooses.

A step is a function ``step(item, proceed)``: it may change the item, call ``proceed(item)`` once, several
times or not at all, and returns what ``proceed`` returned (or what stands in for it). A list of steps
becomes one chain, the first step outermost.

- Producer steps see an ``Outgoing`` after its sequence number was taken and before its PRODUCER span
  starts and its wire form is built: a step that does not proceed leaves a sequence number unused (a
  gap), one that proceeds twice sends the same event twice, one that keeps ``proceed`` sends it later.
- Arrival steps see an ``Incoming`` before its CONSUMER span starts: one that does not proceed discards
  the message (no span, nothing handed to the application).
- Delivery steps run inside the CONSUMER span, around the handler callback the application subscribed
  with: guards, validation, retries. ``delivery()`` gives the current ``Incoming`` to the handler itself.
"""

from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.context import Context

from eventscope_redis.attributes import schema_version

Item = TypeVar("Item")


@dataclasses.dataclass(slots=True, eq=False)
class Outgoing:
    """One publish, numbered, before its span and wire form exist.

    ``attributes`` are the CloudEvent's (``specversion``, ``id``, ``source``, ``type``, ``time``,
    ``sequence``, and ``partitionkey`` / ``subject`` / ``dataschema`` when given); ``payload`` is what
    the application published, as redis-py encodes it. ``clock_skew_ns`` moves the span and the
    event's ``time`` (a producer whose clock runs ahead); ``context`` is the context it was published in.
    """

    channel: str
    attributes: dict[str, str]
    payload: bytes
    context: Context | None = None
    clock_skew_ns: int = 0
    transport: Callable[[bytes], Any] | None = dataclasses.field(default=None, repr=False)
    operation: str = "publish"

    @property
    def stream(self) -> tuple[str, str | None, str | None]:
        """(channel, source, partition key): the unit of ordering its sequence number belongs to."""
        return self.channel, self.attributes.get("source"), self.attributes.get("partitionkey")


@dataclasses.dataclass(slots=True, eq=False)
class Incoming:
    """One delivery to a consumer group: the application's payload and the CloudEvent it came in.

    ``attributes`` is None for a message that is not a CloudEvent. ``wire`` is the message exactly as
    it arrived (what to keep in a dead-letter queue). ``span`` is the CONSUMER span (invalid before it
    starts). ``state`` is free for the application's steps to share what they learned about it.
    """

    channel: str
    pattern: str | None
    group: str
    attributes: dict | None
    payload: bytes | str
    wire: bytes | str
    span: trace.Span = trace.INVALID_SPAN
    state: dict = dataclasses.field(default_factory=dict)
    hand_over: Callable[[], Any] | None = dataclasses.field(default=None, repr=False)

    def _text(self, name: str) -> str | None:
        value = self.attributes.get(name) if self.attributes else None
        return value if isinstance(value, str) else None

    @property
    def id(self) -> str | None:
        return self._text("id")

    @property
    def type(self) -> str | None:
        return self._text("type")

    @property
    def source(self) -> str | None:
        return self._text("source")

    @property
    def subject(self) -> str | None:
        return self._text("subject")

    @property
    def time(self) -> str | None:
        return self._text("time")

    @property
    def dataschema(self) -> str | None:
        return self._text("dataschema")

    @property
    def partitionkey(self) -> str | None:
        return self._text("partitionkey")

    @property
    def sequence(self) -> int | None:
        """The ``sequence`` extension as an integer (None when absent or not a decimal string)."""
        value = self._text("sequence")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def schema_version(self) -> int | None:
        """The version at the end of ``dataschema`` (``...:2``, ``.../v2``), or None."""
        return schema_version(self.dataschema)


Step = Callable[[Item, Callable[[Item], Any]], Any]

_CURRENT: contextvars.ContextVar[Incoming | None] = contextvars.ContextVar("eventscope_redis_delivery", default=None)


def chain(steps: Sequence[Step], last: Callable[[Item], Any]) -> Callable[[Item], Any]:
    """One callable running ``steps`` in order (the first outermost) around ``last``."""
    run = last
    for step in reversed(steps):
        run = _link(step, run)
    return run


def _link(step: Step, proceed: Callable[[Item], Any]) -> Callable[[Item], Any]:
    return lambda item: step(item, proceed)


def delivery() -> Incoming | None:
    """The delivery being handled now (inside a handler or a step of an instrumented client), else None."""
    return _CURRENT.get()


def current_as(incoming: Incoming) -> contextvars.Token:
    return _CURRENT.set(incoming)


def restore(token: contextvars.Token) -> None:
    _CURRENT.reset(token)
