"""Bus: what Redis Pub/Sub carries (the tap, CloudEvents parsing) and what Redis says about it."""
