"""Headless Chromium settings shared by the browser tests and the page-render benchmark."""

from __future__ import annotations

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
"""Debian's chromium, no sandbox (containers), and nothing that talks to the network on its own."""
