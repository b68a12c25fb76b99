"""The slow-consumer definition (docs/analyses.md) on hand-made buckets: behind its peers, bucket after bucket."""

from __future__ import annotations

from collectors.analyses.slow_consumers import episodes

S = 1_000_000_000


def buckets(group: str, medians: list[float], start: int = 0) -> list[tuple]:
    return [(group, (start + i) * S, 10, ms, ms * 2, ["shop.orders"]) for i, ms in enumerate(medians)]


def test_a_group_far_behind_its_peers_for_two_buckets_is_one_episode():
    rows = buckets("view", [5, 300, 900, 1500, 20]) + buckets("inventory", [4, 5, 6, 5, 4])
    rows += buckets("payments", [3, 4, 40, 4, 3])
    [found] = episodes(rows, S)
    assert (found["group"], found["start_ns"], found["end_ns"], found["buckets"]) == ("view", S, 4 * S, 3)
    assert (found["first_p50_ms"], found["peak_p50_ms"], found["deliveries"]) == (300, 1500, 30)
    assert found["peers_p50_ms"] == 4.5 and found["max_ms"] == 3000


def test_everyone_slow_together_is_load_not_a_slow_consumer():
    rows = buckets("view", [400, 900, 1200]) + buckets("inventory", [380, 850, 1100]) + buckets("pay", [300] * 3)
    assert episodes(rows, S) == []


def test_a_group_far_behind_peers_that_lag_too_is_not_singled_out():
    rows = buckets("view", [2000, 3000, 4000]) + buckets("inventory", [250, 300, 400]) + buckets("pay", [260] * 3)
    assert episodes(rows, S) == []  # 8x its peers, but they are behind as well: the cause is shared
    assert len(episodes(rows, S, min_ms=500)) == 1


def test_one_slow_bucket_is_a_hiccup_and_a_broken_run_starts_again():
    rows = buckets("view", [900, 5, 900, 5]) + buckets("inventory", [4] * 4)
    assert episodes(rows, S) == []
    rows = buckets("view", [900, 900, 5, 900, 900]) + buckets("inventory", [4] * 5)
    assert [(e["start_ns"], e["end_ns"]) for e in episodes(rows, S)] == [(0, 2 * S), (3 * S, 5 * S)]


def test_below_the_floor_is_not_slow_however_large_the_ratio():
    rows = buckets("view", [150, 190, 199]) + buckets("inventory", [1, 1, 1])
    assert episodes(rows, S) == []
    assert len(episodes(rows, S, min_ms=100)) == 1


def test_a_group_alone_is_judged_by_the_floor_and_a_missing_bucket_ends_a_run():
    assert len(episodes(buckets("solo", [250, 260]), S)) == 1
    rows = buckets("view", [900]) + buckets("view", [900], start=2) + buckets("inventory", [4, 4, 4])
    assert episodes(rows, S) == []


def test_clock_skew_at_the_peers_does_not_make_a_group_slow():
    rows = buckets("view", [3, 3, 3]) + buckets("inventory", [-800, -800, -800]) + buckets("pay", [-790] * 3)
    assert episodes(rows, S) == []
    assert episodes(buckets("view", [250, 250]) + buckets("inventory", [-800, -800]), S)[0]["peers_p50_ms"] == 0
