"""Faults (to come): named, documented, switchable, each injection recorded as ground truth.

duplicate publish, reorder, drop before the broker, consumer crash and restart, slow consumer,
poison message, transient handler errors, producer clock skew, and a client subscribed by both
SUBSCRIBE and PSUBSCRIBE to one channel. Ground truth goes to a JSON-lines file no detector reads.
"""
