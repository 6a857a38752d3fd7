"""A Lambda context for tests: the local runner's context, sized by ``remaining_ms`` like a real invocation."""

from __future__ import annotations

from dataclasses import dataclass

from scenestore_cli.local.event_runner import LocalLambdaContext


@dataclass
class FakeLambdaContext(LocalLambdaContext):
    """``remaining_ms`` counts down in real time from construction, like the real context."""

    remaining_ms: int = 900_000
    function_name: str = "scenestore-test"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:scenestore-test"

    def __post_init__(self) -> None:
        self.timeout_seconds = self.remaining_ms / 1000
