"""Broker stats (to come): PUBSUB CHANNELS / NUMSUB / NUMPAT, INFO and CLIENT LIST, polled and kept
as a time series, so each subscriber's output buffer can be watched against its
``client-output-buffer-limit pubsub`` (the slow-subscriber danger)."""
