"""The dashboard reads the sample shop's ``--json`` listings as JSON, whole, and nothing else (the Scenarios page
test, tests/integration/test_dashboard_scenario_table.py, reads the real command line's)."""

from __future__ import annotations

import pytest

from dashboard import sample_cli


@pytest.mark.parametrize(
    ("stdout", "items"),
    [
        ('[{"name": "a"}, {"name": "b"}]', [{"name": "a"}, {"name": "b"}]),
        ('[{"name": "a"}, 3, "x", null, []]', [{"name": "a"}]),
        ("[]\n", []),
    ],
)
def test_a_json_listing_gives_its_objects(stdout, items):
    assert sample_cli.parse_listing(stdout) == items


@pytest.mark.parametrize(
    "stdout",
    [
        "",
        "starting up [1]\n[]",  # a progress line before the listing is not a listing
        '[{"name": "a"}] trailing words',
        '{"name": "a"}',
        "[{",
        "\x00\xff",
        "null",
        '"[]"',
    ],
)
def test_anything_else_is_not_a_listing(stdout):
    assert sample_cli.parse_listing(stdout) is None
