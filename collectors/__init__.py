"""eventscope collectors: OTLP receiver, Redis bus tap, broker stats, the store and the query API.

One process owns the DuckDB store: it alone writes, and it serves the read-only query API that the
dashboard, the CLI and CI pipelines read through.
"""
