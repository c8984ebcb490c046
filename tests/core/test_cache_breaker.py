"""The circuit breaker's state machine, driven by an explicit clock."""

from __future__ import annotations

import pytest
from taskflow_core.cache_breaker import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_opens_after_threshold_consecutive_failures(clock: Clock) -> None:
    breaker = CircuitBreaker(threshold=3, cooldown=2.0, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert not breaker.is_open
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()


def test_a_success_resets_the_failure_count(clock: Clock) -> None:
    breaker = CircuitBreaker(threshold=3, cooldown=2.0, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


def test_stays_open_for_the_cooldown_then_lets_one_probe_through(clock: Clock) -> None:
    breaker = CircuitBreaker(threshold=1, cooldown=2.0, clock=clock)
    breaker.record_failure()
    clock.now += 1.99
    assert not breaker.allow()
    clock.now += 0.02
    assert breaker.allow()  # the probe
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.is_open
    assert not breaker.allow()  # everyone else keeps away while the probe is out
    assert not breaker.allow()


def test_a_successful_probe_closes(clock: Clock) -> None:
    breaker = CircuitBreaker(threshold=1, cooldown=2.0, clock=clock)
    breaker.record_failure()
    clock.now += 2.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert all(breaker.allow() for _ in range(10))


def test_a_failed_probe_reopens_for_a_full_cooldown(clock: Clock) -> None:
    breaker = CircuitBreaker(threshold=5, cooldown=2.0, clock=clock)
    for _ in range(5):
        breaker.record_failure()
    clock.now += 2.0
    assert breaker.allow()
    breaker.record_failure()  # one failure is enough in half-open state
    assert breaker.state is BreakerState.OPEN
    clock.now += 1.0
    assert not breaker.allow()
    clock.now += 1.0
    assert breaker.allow()


def test_a_released_probe_lets_the_next_request_probe(clock: Clock) -> None:
    breaker = CircuitBreaker(threshold=1, cooldown=1.0, clock=clock)
    breaker.record_failure()
    clock.now += 1.0
    assert breaker.allow()
    breaker.release()  # e.g. the probing request was cancelled
    assert breaker.allow()


def test_reports_every_state_change_once(clock: Clock) -> None:
    changes: list[BreakerState] = []
    breaker = CircuitBreaker(threshold=2, cooldown=1.0, clock=clock, on_change=changes.append)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_failure()
    clock.now += 1.0
    breaker.allow()
    breaker.record_success()
    breaker.record_success()
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


@pytest.mark.parametrize(("threshold", "cooldown"), [(0, 1.0), (1, 0.0)])
def test_rejects_nonsense_parameters(threshold: int, cooldown: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        CircuitBreaker(threshold=threshold, cooldown=cooldown)
