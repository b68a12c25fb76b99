"""Ingest: OTLP over HTTP and gRPC in, admitted or refused, decoded and normalised into rows."""
