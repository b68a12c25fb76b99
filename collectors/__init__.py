"""eventscope collectors: OTLP receiver, Redis bus tap, broker stats, the store and the query API.

One process owns the DuckDB store: it alone writes, and it serves the read-only query API that the
dashboard, the CLI and CI pipelines read through.

Sub-packages by role, in the order data flows through them:

- ``ingest``: OTLP over HTTP and gRPC in, admitted or refused, decoded and normalised into rows.
- ``bus``: what Redis Pub/Sub carries (the tap, CloudEvents parsing) and what Redis says about it.
- ``storage``: the schema declared once, the single writer, retention, and the interface analyses read through.
- ``analyses``: SQL over the store, one module per noun, and the plain-Python reference definitions.
- ``serving``: the HTTP listener, the read-only query API's routes, its JSON answers and its OpenAPI document.

At the top: __main__, backoff, check, collector, config, supervisor.
"""
