"""Whether this dashboard may change the system it watches: start scenarios and redrive dead letters.

A scenario injects faults into the Redis it runs against (the slow-consumer one lowers its output-buffer
limit with CONFIG SET) and a redrive publishes events again. That is what a class wants from the demo's
own private redis-server, and nothing anyone wants done to a Redis they only asked to observe. So these
controls are off unless ``EVENTSCOPE_CONTROLS=1``: ``./run demo`` sets it when it started its own Redis,
and it is the explicit opt-in for any other Redis.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

ENV_CONTROLS = "EVENTSCOPE_CONTROLS"
ON_VALUES = ("1", "true", "yes", "on")
HOW_TO_ENABLE = (
    "They change the Redis the sample system uses (faults, `CONFIG SET`, republished events), so they are "
    "off unless that Redis is the demo's own: `./run demo` without `REDIS_URL` starts a private redis-server "
    "and turns them on. To allow them against another Redis, start the dashboard with `EVENTSCOPE_CONTROLS=1`."
)


class ControlsDisabled(PermissionError):
    """A scenario or redrive was asked for while the controls are off."""


def allowed(environ: Mapping[str, str] = os.environ) -> bool:
    """True when EVENTSCOPE_CONTROLS turns the scenario and redrive controls on."""
    return environ.get(ENV_CONTROLS, "").strip().lower() in ON_VALUES


def require(environ: Mapping[str, str] = os.environ) -> None:
    """Raise ControlsDisabled unless the controls are on: the last check before anything is changed."""
    if not allowed(environ):
        raise ControlsDisabled(f"{ENV_CONTROLS} is not set to 1: scenarios and redrives are off")
