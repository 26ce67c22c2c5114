"""The wait before a provisioning request's next attempt: first delay, doubling, cap, jitter, Retry-After."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.retry_delay import backoff_ceiling, retry_delay

# The defaults: PROVISIONING_BACKOFF_SECONDS=2, PROVISIONING_BACKOFF_MAX_SECONDS=3600.
FIRST, CAP = 2.0, 3600.0


def longest(low: float, high: float) -> float:
    return high


def shortest(low: float, high: float) -> float:
    return low


@pytest.mark.parametrize(
    ("attempts", "ceiling"),
    [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 32.0), (11, 2048.0)],
)
def test_the_first_retry_waits_the_first_delay_and_each_further_one_twice_as_long(
    attempts: int, ceiling: float
) -> None:
    assert backoff_ceiling(attempts, FIRST, CAP) == ceiling
    assert retry_delay(attempts, first=FIRST, cap=CAP, draw=longest) == ceiling


@pytest.mark.parametrize("attempts", [12, 13, 20, 100])
def test_no_wait_is_longer_than_the_cap(attempts: int) -> None:
    # 2 x 2^11 = 4096 s would be the 12th wait: an hour is the longest.
    assert backoff_ceiling(attempts, FIRST, CAP) == CAP
    assert retry_delay(attempts, first=FIRST, cap=CAP, draw=longest) == CAP


def test_a_cap_below_the_first_delay_wins_at_once() -> None:
    assert retry_delay(1, first=10.0, cap=3.0, draw=longest) == 3.0


def test_no_attempt_yet_counts_as_the_first() -> None:
    assert backoff_ceiling(0, FIRST, CAP) == FIRST


def test_the_wait_is_drawn_between_half_the_ceiling_and_the_ceiling() -> None:
    asked: list[tuple[float, float]] = []

    def recorded(low: float, high: float) -> float:
        asked.append((low, high))
        return low

    assert retry_delay(3, first=FIRST, cap=CAP, draw=recorded) == 4.0
    assert asked == [(4.0, 8.0)]
    assert retry_delay(30, first=FIRST, cap=CAP, draw=shortest) == CAP / 2


def test_a_retry_after_longer_than_the_backoff_is_waited_out() -> None:
    assert retry_delay(1, first=FIRST, cap=CAP, retry_after=120.0, draw=longest) == 120.0


def test_a_retry_after_beyond_the_cap_is_still_waited_out() -> None:
    # The cap bounds Holdfast's own backoff; the API's word on when to come back is kept.
    assert retry_delay(20, first=FIRST, cap=CAP, retry_after=7200.0, draw=longest) == 7200.0


def test_a_retry_after_shorter_than_the_backoff_does_not_shorten_it() -> None:
    assert retry_delay(4, first=FIRST, cap=CAP, retry_after=1.0, draw=shortest) == 8.0
    assert retry_delay(4, first=FIRST, cap=CAP, retry_after=0.0, draw=shortest) == 8.0


def test_without_a_retry_after_the_backoff_alone_decides() -> None:
    assert retry_delay(2, first=FIRST, cap=CAP, retry_after=None, draw=shortest) == 2.0


@given(
    attempts=st.integers(0, 40),
    first=st.floats(0.01, 600),
    cap=st.floats(0.01, 86_400),
    retry_after=st.one_of(st.none(), st.floats(0, 86_400)),
)
def test_with_real_jitter_the_wait_stays_within_its_bounds(
    attempts: int, first: float, cap: float, retry_after: float | None
) -> None:
    ceiling = min(cap, first * 2 ** max(attempts - 1, 0))
    delay = retry_delay(attempts, first=first, cap=cap, retry_after=retry_after)
    backoff_part = ceiling / 2 <= delay <= ceiling
    assert backoff_part or delay == retry_after
    assert delay >= (retry_after or 0.0)
    assert delay <= max(cap, retry_after or 0.0)
