"""``RedisPubSubInstrumentor``: the contrib-style entry point that patches redis-py's Pub/Sub paths.

Patched, and restored by ``uninstrument()``:
- ``PubSubCommands.publish`` / ``spublish`` (every client: sync, asyncio, cluster, pipelines);
- the pipelines' ``execute`` and ``reset`` (a publish in a pipeline is sent when the pipeline runs);
- ``PubSub.handle_message`` (sync and asyncio: every path a message takes, ``get_message``,
  ``listen``, ``run_in_thread``, ``run`` and handler callbacks, goes through it), ``get_message``,
  ``listen`` and ``close``/``reset`` so that a returned message's span ends when the application
  comes back for the next one.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Collection, Iterable

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from eventscope_redis.consumer import Consumer
from eventscope_redis.package import _instruments
from eventscope_redis.producer import Producer
from eventscope_redis.settings import ChannelFilter, Settings
from eventscope_redis.version import __version__

PENDING = "_eventscope_pending"  # the attribute of a pipeline that holds its queued publishes' spans
PUBLISHES = (("publish", "publish"), ("spublish", "spublish"))
PIPELINES = (
    ("redis.client", "Pipeline"),
    ("redis.asyncio.client", "Pipeline"),
    ("redis.cluster", "ClusterPipeline"),
    ("redis.asyncio.cluster", "ClusterPipeline"),
)
SYNC_PUBSUB = ("redis.client", "PubSub", ("close", "reset"))
ASYNC_PUBSUB = ("redis.asyncio.client", "PubSub", ("aclose", "close", "reset"))


def _pipeline_classes() -> tuple[type, ...]:
    found = []
    for module, name in PIPELINES:
        cls = getattr(importlib.import_module(module), name, None)
        if cls is not None:
            found.append(cls)
    return tuple(found)


def _encoded(instance: object, value: object) -> bytes | None:
    """``value`` as redis-py will send it, or None when redis-py would refuse it (let it say why)."""
    if type(value) is bytes:  # the common case, sent as it is
        return value
    try:
        encoded = instance.get_encoder().encode(value)
    except Exception:
        return None
    return bytes(encoded) if isinstance(encoded, bytes | bytearray | memoryview) else None


def _channel_text(channel: object) -> str:
    if type(channel) is str:
        return channel
    if isinstance(channel, bytes | bytearray | memoryview):
        return bytes(channel).decode("utf-8", errors="replace")
    return str(channel)


class RedisPubSubInstrumentor(BaseInstrumentor):
    """Traces redis-py Pub/Sub as messaging: PRODUCER ``send {channel}``, CONSUMER ``process {channel}``.

    ``instrument()`` options (all optional): ``tracer_provider``; ``include`` / ``exclude``: channel
    globs (fnmatch); ``consumer_group``: the logical consumer (default: the service name);
    ``parent``: consumer spans are children of the producer's (default True; a link is always made);
    ``source``: the CloudEvents source of this instance (default ``/{service}/{random id}``);
    ``event_type``: channel -> CloudEvents type (default: the channel); ``mixed_fleet``: keep JSON
    object payloads readable by uninstrumented subscribers (default False).
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs) -> None:
        provider = kwargs.get("tracer_provider")
        settings = Settings(
            tracer=trace.get_tracer(__name__, __version__, tracer_provider=provider),
            provider=provider,
            traced=ChannelFilter(kwargs.get("include") or (), kwargs.get("exclude") or ()),
            group=kwargs.get("consumer_group"),
            source_uri=kwargs.get("source"),
            parent=kwargs.get("parent", True),
            mixed_fleet=bool(kwargs.get("mixed_fleet", False)),
            event_type=kwargs.get("event_type"),
        )
        self.settings = settings
        producer, consumer = Producer(settings), Consumer(settings)
        pipelines = _pipeline_classes()
        for method, operation in PUBLISHES:
            wrap_function_wrapper(
                "redis.commands.core", f"PubSubCommands.{method}", _publish(producer, operation, pipelines)
            )
        for module, name in PIPELINES:
            if hasattr(importlib.import_module(module), name):
                is_async = module.startswith("redis.asyncio")
                wrap_function_wrapper(module, f"{name}.execute", _execute(producer, is_async))
                wrap_function_wrapper(module, f"{name}.reset", _reset(producer))
        _wrap_pubsub(SYNC_PUBSUB, consumer, is_async=False)
        _wrap_pubsub(ASYNC_PUBSUB, consumer, is_async=True)

    def instrument_client(self, client, **options) -> Settings:
        """Trace one sync ``redis.Redis`` client (and the PubSubs it makes) with settings of its own.

        Takes the options of ``instrument()`` and ``producer_steps``, ``arrival_steps``, ``delivery_steps``
        (see eventscope_redis.steps); returns the client's settings. For a process that runs several
        services, each with its own tracer provider, source and consumer group.
        """
        from eventscope_redis.client import instrument_client  # it builds on this module's wrappers

        return instrument_client(client, **options)

    def uninstrument_client(self, client) -> None:
        """Give ``client`` its plain methods back."""
        from eventscope_redis.client import uninstrument_client

        uninstrument_client(client)

    def _uninstrument(self, **kwargs) -> None:
        core = importlib.import_module("redis.commands.core")
        for method, _ in PUBLISHES:
            unwrap(core.PubSubCommands, method)
        for module, name in PIPELINES:
            cls = getattr(importlib.import_module(module), name, None)
            if cls is not None:
                unwrap(cls, "execute")
                unwrap(cls, "reset")
        for module, name, closers in (SYNC_PUBSUB, ASYNC_PUBSUB):
            cls = getattr(importlib.import_module(module), name)
            for method in ("handle_message", "get_message", "listen", *closers):
                unwrap(cls, method)


def _bind_publish(channel, message, *args, **kwargs):
    return channel, message


def _publish(producer: Producer, operation: str, pipelines: tuple[type, ...]) -> Callable:
    queues: dict[type, bool] = {}  # isinstance against redis-py's pipeline classes costs µs on every publish

    def queued(instance: object) -> bool:
        kind = type(instance)
        if kind not in queues:
            queues[kind] = isinstance(instance, pipelines)
        return queues[kind]

    def wrapper(wrapped, instance, args, kwargs):
        if len(args) == 2 and not kwargs:  # publish(channel, message), as nearly every call is made
            channel, message = args
        else:
            try:
                channel, message = _bind_publish(*args, **kwargs)
            except TypeError:
                return wrapped(*args, **kwargs)
        name = _channel_text(channel)
        payload = _encoded(instance, message)
        if payload is None or not producer.traces(name):
            return wrapped(*args, **kwargs)
        span, wire_message = producer.begin(name, payload, operation)
        args, kwargs = _with_message(args, kwargs, wire_message)
        if queued(instance):
            return _queue(producer, instance, span, wrapped, args, kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            producer.finish(span, error=exc)
            raise
        if type(result) is not int and inspect.isawaitable(result):  # redis.asyncio
            return _finish_later(producer, span, result)
        producer.finish(span, receivers=result)
        return result

    return wrapper


def _with_message(args: tuple, kwargs: dict, message: bytes) -> tuple[tuple, dict]:
    if len(args) >= 2:
        return (args[0], message, *args[2:]), kwargs
    return args, {**kwargs, "message": message}


async def _finish_later(producer: Producer, span, awaitable):
    try:
        result = await awaitable
    except BaseException as exc:
        producer.finish(span, error=exc)
        raise
    producer.finish(span, receivers=result)
    return result


def _queue(producer: Producer, pipeline, span, wrapped, args, kwargs):
    """A publish queued in a pipeline: its span ends when the pipeline runs, with PUBLISH's answer."""
    index = len(getattr(pipeline, "command_stack", None) or ())
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        producer.finish(span, error=exc)
        raise
    pipeline.__dict__.setdefault(PENDING, []).append((span, index if hasattr(pipeline, "command_stack") else None))
    return result


def _finish_pending(producer: Producer, pending: list, results: object, error: BaseException | None) -> None:
    for span, index in pending:
        receivers = None
        if error is None and isinstance(results, list) and index is not None and index < len(results):
            receivers = results[index]
        producer.finish(span, receivers=receivers, error=error)


def _execute(producer: Producer, is_async: bool) -> Callable:
    def wrapper(wrapped, instance, args, kwargs):
        pending = instance.__dict__.pop(PENDING, None)
        if not pending:
            return wrapped(*args, **kwargs)
        try:
            results = wrapped(*args, **kwargs)
        except BaseException as exc:
            _finish_pending(producer, pending, None, exc)
            raise
        _finish_pending(producer, pending, results, None)
        return results

    async def async_wrapper(wrapped, instance, args, kwargs):
        pending = instance.__dict__.pop(PENDING, None)
        if not pending:
            return await wrapped(*args, **kwargs)
        try:
            results = await wrapped(*args, **kwargs)
        except BaseException as exc:
            _finish_pending(producer, pending, None, exc)
            raise
        _finish_pending(producer, pending, results, None)
        return results

    return async_wrapper if is_async else wrapper


def _reset(producer: Producer) -> Callable:
    """A pipeline reset before it ran discards its publishes: their spans end without receivers."""

    def wrapper(wrapped, instance, args, kwargs):
        pending = instance.__dict__.pop(PENDING, None)
        if pending:
            _finish_pending(producer, pending, None, None)
        return wrapped(*args, **kwargs)

    return wrapper


def _wrap_pubsub(where: tuple[str, str, Iterable[str]], consumer: Consumer, is_async: bool) -> None:
    module, name, closers = where
    if is_async:
        wrap_function_wrapper(module, f"{name}.handle_message", _async_handle(consumer))
        wrap_function_wrapper(module, f"{name}.get_message", _async_get(consumer))
        wrap_function_wrapper(module, f"{name}.listen", _async_listen(consumer))
    else:
        wrap_function_wrapper(module, f"{name}.handle_message", _handle(consumer))
        wrap_function_wrapper(module, f"{name}.get_message", _get(consumer))
        wrap_function_wrapper(module, f"{name}.listen", _listen(consumer))
    for method in closers:
        if hasattr(getattr(importlib.import_module(module), name), method):
            wrap_function_wrapper(module, f"{name}.{method}", _close(consumer))


def _with_response(args: tuple, kwargs: dict, response: object) -> tuple[tuple, dict]:
    """handle_message's arguments with ``response`` (the application's payload in place) instead."""
    if args:
        return (response, *args[1:]), kwargs
    return args, {**kwargs, "response": response}


def _handle(consumer: Consumer) -> Callable:
    def wrapper(wrapped, instance, args, kwargs):
        consumer.finish_open(instance)
        arrived = args[0] if args else kwargs.get("response")
        response, delivery = consumer.receive(arrived)
        if response is not arrived:
            args, kwargs = _with_response(args, kwargs, response)
        if delivery is None:
            return wrapped(*args, **kwargs)
        try:
            message = wrapped(*args, **kwargs)
        except BaseException as exc:
            delivery.end(error=exc)
            raise
        _settle(consumer, instance, delivery, message)
        return message

    return wrapper


def _async_handle(consumer: Consumer) -> Callable:
    async def wrapper(wrapped, instance, args, kwargs):
        consumer.finish_open(instance)
        arrived = args[0] if args else kwargs.get("response")
        response, delivery = consumer.receive(arrived)
        if response is not arrived:
            args, kwargs = _with_response(args, kwargs, response)
        if delivery is None:
            return await wrapped(*args, **kwargs)
        try:
            message = await wrapped(*args, **kwargs)
        except BaseException as exc:
            delivery.end(error=exc)
            raise
        _settle(consumer, instance, delivery, message)
        return message

    return wrapper


def _settle(consumer: Consumer, pubsub, delivery, message) -> None:
    """A handler ran (None came back): the delivery is done. Else the application processes it next."""
    if message is None:
        delivery.end()
    else:
        consumer.keep_open(pubsub, delivery)


def _get(consumer: Consumer) -> Callable:
    def wrapper(wrapped, instance, args, kwargs):
        consumer.finish_open(instance)
        return wrapped(*args, **kwargs)

    return wrapper


def _async_get(consumer: Consumer) -> Callable:
    async def wrapper(wrapped, instance, args, kwargs):
        consumer.finish_open(instance)
        return await wrapped(*args, **kwargs)

    return wrapper


def _listen(consumer: Consumer) -> Callable:
    def wrapper(wrapped, instance, args, kwargs):
        try:
            for message in wrapped(*args, **kwargs):
                yield message
                consumer.finish_open(instance)
        finally:
            consumer.finish_open(instance)

    return wrapper


def _async_listen(consumer: Consumer) -> Callable:
    async def wrapper(wrapped, instance, args, kwargs):
        try:
            async for message in wrapped(*args, **kwargs):
                yield message
                consumer.finish_open(instance)
        finally:
            consumer.finish_open(instance)

    return wrapper


def _close(consumer: Consumer) -> Callable:
    def wrapper(wrapped, instance, args, kwargs):
        consumer.finish_open(instance)
        return wrapped(*args, **kwargs)

    return wrapper
