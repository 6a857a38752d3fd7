"""A minimal Lambda context: what Powertools and our time-budgeted functions read from it."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field


@dataclass
class FakeLambdaContext:
    """``remaining_ms`` counts down in real time from construction, like the real context."""

    remaining_ms: int = 900_000
    function_name: str = "scenestore-test"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:scenestore-test"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        elapsed = int((time.monotonic() - self._started) * 1000)
        return max(0, self.remaining_ms - elapsed)
