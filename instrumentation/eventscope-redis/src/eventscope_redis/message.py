"""Per-publish CloudEvent attributes the application chooses: ``with eventscope_redis.message(...)``.

A context variable, so that ``redis.publish(channel, payload)`` keeps its signature: every publish
inside the block carries these attributes. Giving ``id`` marks a re-send of one event (an application
retrying a publish it is unsure about): the copies share id and sequence, and collectors count them as
duplicates rather than as new events.
"""

from __future__ import annotations

import contextvars
import dataclasses
from contextlib import AbstractContextManager


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


class _Chosen:
    """The ``with`` block of ``message(...)``: a class, cheaper per publish than a generator-based one."""

    __slots__ = ("chosen", "token")

    def __init__(self, chosen: MessageAttributes):
        self.chosen = chosen
        self.token: contextvars.Token | None = None

    def __enter__(self) -> MessageAttributes:
        self.token = _CURRENT.set(self.chosen)
        return self.chosen

    def __exit__(self, *exc_info: object) -> None:
        _CURRENT.reset(self.token)


def message(
    *,
    type: str | None = None,  # noqa: A002 - the CloudEvents attribute name
    subject: str | None = None,
    partitionkey: str | None = None,
    id: str | None = None,  # noqa: A002 - the CloudEvents attribute name
    dataschema: str | None = None,
) -> AbstractContextManager[MessageAttributes]:
    """Attributes for the messages published inside the block (``None`` keeps the default)."""
    return _Chosen(MessageAttributes(type, subject, partitionkey, id, dataschema))


def current() -> MessageAttributes | None:
    return _CURRENT.get()
