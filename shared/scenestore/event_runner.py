"""The local event runner (delete issue): change stream on project/scene deletes -> delete functions.

Until that issue lands this is a no-op so ``serve`` can start it unconditionally.
"""

from __future__ import annotations

from typing import Any


class EventRunner:
    def __init__(self, services: Any) -> None:
        self.services = services

    def start(self) -> EventRunner:
        return self

    def stop(self) -> None:
        return None
