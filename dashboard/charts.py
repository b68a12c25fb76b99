"""Plotly chart builders (to come): plain functions from DataFrames to figures, units on every axis,
one colour per service and channel across pages."""
