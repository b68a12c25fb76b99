"""Development tools that tests and benchmarks share: real processes to start, browser settings."""
