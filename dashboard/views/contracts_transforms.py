"""The Contracts page's pure parts: the findings, the kinds found, and who sends or receives what as declared."""

from __future__ import annotations

import pandas as pd

KIND_LABELS = {
    "registry": "Registry file unusable",
    "declaration": "Declared schema missing",
    "unknown_type": "Unknown type",
    "unknown_version": "Unknown version",
    "schema_violation": "Schema violation",
    "not_accepted": "Not accepted",
    "undeclared_consumer": "Undeclared consumer",
    "unconsumed": "Nobody consumes",
}
"""The collectors' finding kinds (docs/contracts.md), as the page names them; an unknown kind shows as is."""
FINDING_COLUMNS = ["finding", "detail", "type", "version", "who", "channels", "count", "example event"]
NO_PRODUCER = "(no producer span)"
EXCHANGE_COLUMNS = ["who", "role", "channel", "type", "version", "count", "contract"]


def _label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind)


def findings_frame(answer: dict) -> pd.DataFrame:
    """One row per finding, in the collectors' order (by kind, then type)."""
    rows = [
        {
            "finding": _label(f.get("kind", "")),
            "detail": f.get("detail"),
            "type": f.get("type"),
            "version": f.get("version"),
            "who": ", ".join(f.get("who") or []),
            "channels": ", ".join(f.get("channels") or []),
            "count": f.get("count"),
            "example event": f.get("example_event_id"),
        }
        for f in answer.get("findings", [])
    ]
    return pd.DataFrame(rows, columns=FINDING_COLUMNS).astype({"version": "Int64", "count": "Int64"})


def kinds_found(answer: dict) -> list[tuple[str, int]]:
    """(label, count) of every kind with at least one finding."""
    return [(_label(kind), n) for kind, n in answer.get("counts", {}).items() if n]


def _verdict(accepts: dict | None, group: str | None, event_type: str | None, version: int | None) -> str:
    if accepts is None:
        return "no registry"
    declared = accepts.get(group or "")
    if declared is None:
        return "undeclared group"
    versions = declared.get(event_type or "")
    if versions is None:
        return "type not declared"
    return "accepted" if version is None or version in versions else f"accepts only {', '.join(map(str, versions))}"


def _senders(publications: list[dict]) -> list[dict]:
    """One row per (channel, type, version) sent, naming every producer seen; events whose producer span is
    not (or not yet) stored count under the same row, so a recent burst does not split it."""
    rows: dict[tuple, dict] = {}
    for p in publications:
        key = (p.get("channel"), p.get("type"), p.get("version"))
        row = rows.setdefault(key, {"producers": set(), "count": 0})
        row["count"] += p.get("count") or 0
        if p.get("producer"):
            row["producers"].add(p["producer"])
    return [
        {"who": ", ".join(sorted(row["producers"])) or NO_PRODUCER, "role": "sends", "channel": channel,
         "type": event_type, "version": version, "count": row["count"], "contract": ""}
        for (channel, event_type, version), row in rows.items()
    ]  # fmt: skip


def exchanges_frame(observed: dict, registry: dict | None) -> pd.DataFrame:
    """Every (channel, type, version) sent and every group receiving it, with what the group's contract says."""
    accepts = registry.get("accepts", {}) if registry else None
    rows = _senders(observed.get("publications", []))
    rows += [
        {"who": d.get("group"), "role": "receives", "channel": d.get("channel"), "type": d.get("type"),
         "version": d.get("version"), "count": d.get("count"),
         "contract": _verdict(accepts, d.get("group"), d.get("type"), d.get("version"))}
        for d in observed.get("deliveries", [])
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=EXCHANGE_COLUMNS).astype({"version": "Int64", "count": "Int64"})
    order = frame.assign(receiving=frame["role"] != "sends")  # each type's senders above its receivers
    order = order.sort_values(["channel", "type", "version", "receiving", "who"], na_position="first")
    return order[EXCHANGE_COLUMNS].reset_index(drop=True)
