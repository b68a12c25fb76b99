"""Redis client names of the sample system: readable, and always acceptable to CLIENT SETNAME."""

from __future__ import annotations

import pytest

from sample_system.bus import client_name, publisher_name, subscriber_name


@pytest.mark.parametrize(
    ("made", "expected"),
    [
        (subscriber_name("order-view"), "sample-order-view"),
        (publisher_name("orders"), "sample-orders-publisher"),
        (client_name("scenario-happy_path"), "sample-scenario-happy_path"),
        (client_name("odd name\twith\nspaces"), "sample-odd-name-with-spaces"),
        (client_name("café"), "sample-caf-"),
    ],
)
def test_client_names_carry_no_character_redis_refuses(made, expected):
    assert made == expected
    assert all("!" <= c <= "~" for c in made)
