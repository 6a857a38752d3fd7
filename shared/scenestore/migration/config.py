"""Migration settings from the environment, declared like every other setting (``scenestore.settings``).

| variable | meaning | default |
| --- | --- | --- |
| ``SCENESTORE_MIGRATION_LEASE_TTL`` | seconds a shard lease lives without a heartbeat | ``45`` |
| ``SCENESTORE_MIGRATION_PAUSE_MS`` | pause after every batch, to throttle a live migration | ``0`` |
| ``SCENESTORE_MIGRATION_WORKERS`` | concurrent S3 copies per process | ``8`` |

A process killed with SIGKILL stops heartbeating, so its leases lapse after at most the TTL and a later
``scenestore migrate`` takes over: 45 s keeps that "about a minute" with room for a slow heartbeat.
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field

from scenestore.clients import S3_CONCURRENCY
from scenestore.settings import Count, EnvSettings, Number

DEFAULT_LEASE_TTL: Final = 45.0
DEFAULT_BATCH_SIZE: Final = 100
MAX_BATCH_SIZE: Final = 1000
#: Seconds kept free before a Lambda's timeout: a batch in flight finishes and its progress is recorded.
LAMBDA_MARGIN: Final = 20.0


class MigrationConfig(EnvSettings):
    """How one migrating process paces itself; ``MigrationConfig()`` is the defaults, ``from_env()`` the env."""

    lease_ttl: Annotated[Number, Field(ge=0.1, le=3600)] = Field(
        DEFAULT_LEASE_TTL, alias="SCENESTORE_MIGRATION_LEASE_TTL"
    )
    """Seconds a shard lease lives without a heartbeat (a dead run's shards are free again after it)."""
    pause_ms: Annotated[Number, Field(ge=0, le=600_000)] = Field(0.0, alias="SCENESTORE_MIGRATION_PAUSE_MS")
    """Milliseconds slept after every batch, to throttle a live migration."""
    workers: Annotated[Count, Field(le=64)] = Field(S3_CONCURRENCY, alias="SCENESTORE_MIGRATION_WORKERS")
    """Concurrent S3 copies per process."""

    @property
    def pause(self) -> float:
        """The pause after every batch, in seconds."""
        return self.pause_ms / 1000.0

    @property
    def heartbeat_interval(self) -> float:
        return max(0.05, self.lease_ttl / 3)
