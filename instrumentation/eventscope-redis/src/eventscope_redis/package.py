"""What this instrumentation instruments, as ``BaseInstrumentor.instrumentation_dependencies`` reports it."""

from __future__ import annotations

_instruments = ("redis >= 5.0",)
