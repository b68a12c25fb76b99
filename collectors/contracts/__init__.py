"""Contracts between producers and consumers: a schema registry and each consumer group's declarations, held
against what was observed on the bus and in spans (docs/contracts.md)."""
