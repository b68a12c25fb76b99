"""Serving: the HTTP listener, the read-only query API's routes, its JSON answers and its OpenAPI document."""
