"""The shop built the other way: the same services and business steps, calling each other over HTTP.

Kept beside the event-driven shop so that the two can run at once under the same load and faults and
be measured side by side (the ``sync_vs_events`` scenario). Each service's business logic is the
event-driven shop's own (sample_system.services); only the wiring differs.
"""
