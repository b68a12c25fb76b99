"""The pairing of every delivery on ClickHouse: ``paired_deliveries`` as a view of its definition.

On DuckDB the writer keeps the pairing as a table and updates just the rows that new spans change
(collectors/storage/pairing.py). On ClickHouse it is a view of the same definition (collectors/analyses/deliveries.py
``PAIRING``, translated by collectors/storage/clickhouse/dialect.py): exact whatever wrote the spans (any number of
collectors processes, or an OpenTelemetry Collector's exporter), and with nothing to keep up to date or rebuild.
A materialised view would not be exact: it sees one inserted block at a time, while a delivery's pairing depends
on spans of other blocks (a producer that arrives after its consumer). Its cost is paid per answer instead, as
ClickHouse scans and joins the spans again for each query that reads it.
"""

from __future__ import annotations

from collectors.analyses.deliveries import PAIRING
from collectors.analyses.observations import PAIRED
from collectors.storage.clickhouse.dialect import translate
from collectors.storage.clickhouse.reader import SETTINGS, ArrowClient

_VIEW_SETTINGS = ", ".join(f"{name} = {value}" for name, value in SETTINGS.items() if not name.startswith("output_"))


def definition() -> str:
    """The ClickHouse statement that creates (or replaces) the view."""
    select, _ = translate(PAIRING)
    return f"CREATE OR REPLACE VIEW {PAIRED} AS {select} SETTINGS {_VIEW_SETTINGS}"


def create_paired_deliveries(client: ArrowClient) -> None:
    """Create the ``paired_deliveries`` view over ``otel_traces`` and ``span_links`` (the tables must exist)."""
    client.query_arrow(definition(), {})
