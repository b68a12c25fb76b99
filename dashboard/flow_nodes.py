"""Flow graph node ids (``kind:name``, as /api/v1/flow writes them), read in this one place."""

from __future__ import annotations


def node_name(node_id: str) -> tuple[str, str]:
    """``("service", "inventory")`` from ``"service:inventory"``."""
    kind, _, name = node_id.partition(":")
    return kind, name
