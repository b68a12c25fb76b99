"""Per-publish CloudEvent attributes the application chooses: ``with eventscope_redis.message(...)``.

A context variable, so that ``redis.publish(channel, payload)`` keeps its signature: every publish
inside the block carries these attributes. Giving ``id`` marks a re-send of one event (an application
retrying a publish it is unsure about): the copies share id and sequence, and collectors count them as
duplicates rather than as new events.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Iterator


@dataclasses.dataclass(frozen=True)
class MessageAttributes:
    type: str | None = None
    subject: str | None = None
    partitionkey: str | None = None
    id: str | None = None
    dataschema: str | None = None


_CURRENT: contextvars.ContextVar[MessageAttributes | None] = contextvars.ContextVar(
    "eventscope_redis_message", default=None
)


@contextlib.contextmanager
def message(
    *,
    type: str | None = None,  # noqa: A002 - the CloudEvents attribute name
    subject: str | None = None,
    partitionkey: str | None = None,
    id: str | None = None,  # noqa: A002 - the CloudEvents attribute name
    dataschema: str | None = None,
) -> Iterator[MessageAttributes]:
    """Attributes for the messages published inside the block (``None`` keeps the default)."""
    chosen = MessageAttributes(type, subject, partitionkey, id, dataschema)
    token = _CURRENT.set(chosen)
    try:
        yield chosen
    finally:
        _CURRENT.reset(token)


def current() -> MessageAttributes | None:
    return _CURRENT.get()
