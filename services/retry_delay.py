"""How long a provisioning request waits before its next attempt (PROVISIONING_BACKOFF_*).

Pure arithmetic, kept apart from dispatch so that the cap, the doubling and the peer's
``Retry-After`` are tested directly: a backoff grown too long waits out an outage for hours
longer than needed, one grown uncapped fails nothing but never comes back.
"""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_ceiling(attempts: int, first: float, cap: float) -> float:
    """The longest wait after ``attempts`` attempts: ``first``, doubling with each further one, at most ``cap``."""
    return min(cap, first * 2.0 ** max(attempts - 1, 0))


def retry_delay(
    attempts: int,
    *,
    first: float,
    cap: float,
    retry_after: float | None = None,
    draw: Callable[[float, float], float] = random.uniform,
) -> float:
    """Seconds before the next attempt: drawn between half the ceiling and the ceiling (jitter, so that
    requests failed together do not come back together), and never sooner than the peer's ``Retry-After``."""
    ceiling = backoff_ceiling(attempts, first, cap)
    return max(draw(ceiling / 2, ceiling), retry_after or 0.0)
