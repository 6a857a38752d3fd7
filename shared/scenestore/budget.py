"""Time budgets: a Lambda has a hard timeout, so long work checks how much time is left and stops early.

Functions build a ``Deadline`` from the Lambda context (``get_remaining_time_in_millis``) minus a
safety margin; the CLI uses ``Deadline.never()`` and loops on continuations the same way.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Protocol


class LambdaContextLike(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Deadline:
    """A point on the monotonic clock after which no new unit of work is started."""

    at: float

    @classmethod
    def never(cls) -> Deadline:
        return cls(math.inf)

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    @classmethod
    def from_context(cls, context: Any, *, margin_seconds: float = 10.0) -> Deadline:
        """From a Lambda context, keeping ``margin_seconds`` for the reply; no context: no deadline."""
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        if remaining is None:
            return cls.never()
        return cls.after(max(0.0, remaining() / 1000.0 - margin_seconds))

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def expired(self) -> bool:
        return time.monotonic() >= self.at
