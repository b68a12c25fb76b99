"""The view state in the URL: parsing, writing back, and the API parameters it turns into."""

from __future__ import annotations

import pytest

from dashboard.filters import (
    DEFAULT_WINDOW,
    Filters,
    api_params,
    checked_param,
    checked_query,
    describe,
    from_query,
    to_query,
    with_filter,
)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, Filters()),
        ({"window": "1h"}, Filters(window="1h")),
        ({"window": "forever"}, Filters(window=DEFAULT_WINDOW)),
        ({"paused": "1"}, Filters(paused=True)),
        ({"channel": " shop.orders ", "group": "inventory"}, Filters(channel="shop.orders", group="inventory")),
        (
            {"type": "shop.order.placed", "service": "orders", "other": "x"},
            Filters(type="shop.order.placed", service="orders"),
        ),
    ],
)
def test_filters_come_from_the_url(query, expected):
    assert from_query(query) == expected


def test_a_link_reproduces_the_view():
    filters = Filters(window="all", paused=True, channel="shop.orders", service="payments")
    assert from_query(to_query(filters)) == filters


def test_defaults_stay_out_of_the_url():
    assert to_query(Filters()) == {}


def test_api_parameters_carry_the_window_and_filters():
    params = api_params(Filters(window="5m", channel="shop.orders"), now_ns=1_000_000_000_000)
    assert params == {"channel": "shop.orders", "since_ns": 1_000_000_000_000 - 300_000_000_000}


def test_window_edges_are_rounded_so_quick_reruns_share_a_cache_entry():
    first = api_params(Filters(), now_ns=10_000_000_000_100)
    second = api_params(Filters(), now_ns=10_000_000_000_900)
    assert first == second


def test_everything_sends_no_window():
    assert api_params(Filters(window="all")) == {}


def test_with_filter_sets_and_clears_one_filter():
    filters = with_filter(Filters(), "channel", "shop.orders")
    assert filters.channel == "shop.orders"
    assert with_filter(filters, "channel", "") == Filters()
    with pytest.raises(ValueError, match="unknown filter"):
        with_filter(filters, "colour", "red")


def test_describe_says_what_the_page_shows():
    assert describe(Filters(window="1h", group="inventory")) == "Last hour: group = inventory"


@pytest.mark.parametrize(
    ("key", "raw", "choices", "default", "expected", "rejected"),
    [
        ("min_ms", "250", None, "0", "250", False),
        ("min_ms", "abc", None, "0", "0", True),
        ("min_ms", "nan", None, "0", "0", True),
        ("min_ms", "inf", None, "0", "0", True),
        ("min_ms", "-1", None, "0", "0", True),
        ("min_ms", "1e13", None, "0", "0", True),
        ("error", "true", None, "false", "true", False),
        ("error", "yes please", None, "false", "false", True),
        ("trace", "0af7651916cd43dd8448eb211c80319c", None, "", "0af7651916cd43dd8448eb211c80319c", False),
        ("trace", "0af7651916cd43dd", None, "", "", True),
        ("id", "x" * 512, None, "", "x" * 512, False),
        ("id", "x" * 513, None, "", "", True),
        ("subject", "a\x00b", None, "", "", True),
        ("by", "group", ("channel", "group", "type"), "channel", "group", False),
        ("by", "bogus", ("channel", "group", "type"), "channel", "channel", True),
        ("p", "p100", ("p50", "p95", "p99"), "p95", "p95", True),
        ("p", None, ("p50", "p95", "p99"), "p95", "p95", False),
        ("p", "", ("p50", "p95", "p99"), "p95", "p95", False),
    ],
)
def test_a_page_parameter_is_checked(key, raw, choices, default, expected, rejected):
    value, notice = checked_param(key, raw, default, choices)
    assert value == expected
    assert bool(notice) == rejected
    if rejected:
        assert f"`{key}`" in notice and "is not valid" in notice


@pytest.mark.parametrize(
    "query",
    [{"window": "forever"}, {"paused": "maybe"}, {"channel": "x" * 513}, {"service": "a\nb"}, {"group": "\x1b[0m"}],
)
def test_a_bad_filter_falls_back_to_the_default_with_a_notice(query):
    kept, problems = checked_query(query)
    assert kept == {} and len(problems) == 1
    assert from_query(query) == Filters()


def test_a_notice_quotes_the_bad_value_as_text():
    _, notice = checked_param("by", "![x](http://host/p.png)", "channel", ("channel",))
    assert "![x](" not in notice and "http://" not in notice
