"""Analyses: SQL over the store, one module per noun, and the plain-Python reference definitions."""
