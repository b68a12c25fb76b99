"""The state the writer keeps, on ClickHouse: the pairing of every delivery and the causal flows, as views.

On DuckDB the writer keeps the pairing (and the flows) as tables and updates just the rows that new spans change
(collectors/storage/pairing.py, flows.py). On ClickHouse each is a view of the same definition
(collectors/analyses/deliveries.py ``PAIRING``, latency.py ``FLOWS`` and ``END_TO_END``, translated by
collectors/storage/clickhouse/dialect.py): exact whatever wrote the spans (any number of
collectors processes, or an OpenTelemetry Collector's exporter), and with nothing to keep up to date or rebuild.
A materialised view would not be exact: it sees one inserted block at a time, while a delivery's pairing depends
on spans of other blocks (a producer that arrives after its consumer). Its cost is paid per answer instead, as
ClickHouse scans and joins the spans again for each query that reads it.
"""

from __future__ import annotations

from collectors.analyses.deliveries import PAIRING
from collectors.analyses.latency import END_TO_END, FLOW_ENDS, FLOWS, TRACE_FLOWS
from collectors.analyses.observations import PAIRED
from collectors.storage.clickhouse.dialect import translate
from collectors.storage.clickhouse.reader import SETTINGS, ArrowClient

_VIEW_SETTINGS = ", ".join(f"{name} = {value}" for name, value in SETTINGS.items() if not name.startswith("output_"))
VIEWS = {PAIRED: PAIRING, TRACE_FLOWS: FLOWS, FLOW_ENDS: END_TO_END}
"""Every table the writer keeps on DuckDB (collectors/storage/pairing.py, flows.py), by its definition: on ClickHouse
each is a view of the same definition."""


def definition(name: str = PAIRED) -> str:
    """The ClickHouse statement that creates (or replaces) one view of kept state."""
    select, _ = translate(VIEWS[name])
    return f"CREATE OR REPLACE VIEW {name} AS {select} SETTINGS {_VIEW_SETTINGS}"


def create_paired_deliveries(client: ArrowClient) -> None:
    """Create the views of kept state (``paired_deliveries``, the flows) over ``otel_traces`` and ``span_links``
    (the tables must exist)."""
    for name in VIEWS:
        client.query_arrow(definition(name), {})
