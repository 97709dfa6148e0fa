"""One polling loop: wait on a condition, never on the clock (a busy notebook makes every fixed sleep wrong)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float, every: float = 0.2) -> T | None:
    """The first truthy value `condition()` returns within `timeout` seconds, else None. The condition is
    always tried at least once, and once more at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        time.sleep(min(every, remaining))
