"""Retry policy: exponential backoff with jitter, for handler attempts inside one delivery."""

from __future__ import annotations

import dataclasses
import random

DEFAULT_MAX_ATTEMPTS = 4
DEFAULT_BASE_MS = 20.0
DEFAULT_FACTOR = 2.0
DEFAULT_MAX_MS = 2000.0
DEFAULT_JITTER = 0.5  # up to half of each delay is random, so retrying consumers do not march in step


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """After failed attempt n, sleep base_ms * factor**(n-1) (capped at max_ms), minus up to ``jitter`` of it."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    base_ms: float = DEFAULT_BASE_MS
    factor: float = DEFAULT_FACTOR
    max_ms: float = DEFAULT_MAX_MS
    jitter: float = DEFAULT_JITTER

    def ceiling_ms(self, attempt: int) -> float:
        """The delay after failed attempt ``attempt`` (1-based) before jitter."""
        return min(self.max_ms, self.base_ms * self.factor ** (attempt - 1))

    def delay_ms(self, attempt: int, rng: random.Random) -> float:
        """The jittered delay after failed attempt ``attempt``: within [ceiling * (1 - jitter), ceiling]."""
        return self.ceiling_ms(attempt) * (1.0 - self.jitter * rng.random())
