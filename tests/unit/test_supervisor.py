"""The supervisor restarts a part that stopped, with backoff, and says so while it is down."""

from __future__ import annotations

import threading

from collectors.backoff import Backoff
from collectors.supervisor import RESTARTING, RUNNING, STOPPED, Supervisor
from tests.processes import wait_until


def test_backoff_doubles_up_to_its_most_and_resets():
    backoff = Backoff(0.1, 0.5)
    assert [backoff.next() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    backoff.reset()
    assert backoff.next() == 0.1


def test_a_part_that_raises_is_restarted_and_reported_meanwhile():
    stop = threading.Event()
    runs: list[int] = []
    may_fail_again = threading.Event()

    def part(stop: threading.Event) -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise RecursionError("maximum recursion depth exceeded")
        if len(runs) == 2:
            may_fail_again.wait()
            raise ValueError("a second time")
        stop.wait()

    supervisor = Supervisor(stop)
    state = supervisor.start("bus tap", part)
    wait_until(lambda: len(runs) == 2, what="the first restart")
    assert (state.state, state.restarts, supervisor.problems()) == (RUNNING, 1, [])
    may_fail_again.set()
    wait_until(lambda: len(runs) == 3, what="the second restart")
    assert state.restarts == 2 and state.last_error == "ValueError: a second time"
    stop.set()
    supervisor.join(5)
    assert state.state == STOPPED


def test_problems_name_a_part_waiting_to_restart():
    stop = threading.Event()

    def part(stop: threading.Event) -> None:
        raise RuntimeError("boom")

    supervisor = Supervisor(stop)
    state = supervisor.start("broker stats", part)
    wait_until(lambda: state.state == RESTARTING and state.restarts >= 2, what="restarts")
    assert supervisor.problems() == ["broker stats stopped (RuntimeError: boom); restarting"]
    stop.set()
    supervisor.join(5)
    assert supervisor.problems() == []


def test_a_part_that_returns_before_stop_is_restarted_too():
    stop = threading.Event()
    runs: list[int] = []

    def part(stop: threading.Event) -> None:
        runs.append(1)
        if len(runs) > 1:
            stop.wait()

    supervisor = Supervisor(stop)
    state = supervisor.start("poller", part)
    wait_until(lambda: len(runs) == 2, what="the restart")
    assert (state.restarts, state.last_error) == (1, "returned before the collectors stopped")
    stop.set()
    supervisor.join(5)
