"""Migration settings from the environment, validated once (a bad value names its variable).

| variable | meaning | default |
| --- | --- | --- |
| ``SCENESTORE_MIGRATION_LEASE_TTL`` | seconds a shard lease lives without a heartbeat | ``45`` |
| ``SCENESTORE_MIGRATION_PAUSE_MS`` | pause after every batch, to throttle a live migration | ``0`` |
| ``SCENESTORE_MIGRATION_WORKERS`` | concurrent S3 copies per process | ``8`` |

A process killed with SIGKILL stops heartbeating, so its leases lapse after at most the TTL and a later
``scenestore migrate`` takes over: 45 s keeps that "about a minute" with room for a slow heartbeat.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from scenestore.clients import S3_CONCURRENCY
from scenestore.errors import ConfigError

DEFAULT_LEASE_TTL: Final = 45.0
DEFAULT_BATCH_SIZE: Final = 100
MAX_BATCH_SIZE: Final = 1000
#: Seconds kept free before a Lambda's timeout: a batch in flight finishes and its progress is recorded.
LAMBDA_MARGIN: Final = 20.0


@dataclass(frozen=True, slots=True)
class MigrationConfig:
    lease_ttl: float = DEFAULT_LEASE_TTL
    pause: float = 0.0
    workers: int = S3_CONCURRENCY

    @property
    def heartbeat_interval(self) -> float:
        return max(0.05, self.lease_ttl / 3)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MigrationConfig:
        env = os.environ if environ is None else environ
        return cls(
            lease_ttl=_number(env, "SCENESTORE_MIGRATION_LEASE_TTL", DEFAULT_LEASE_TTL, low=0.1, high=3600),
            pause=_number(env, "SCENESTORE_MIGRATION_PAUSE_MS", 0.0, low=0, high=600_000) / 1000.0,
            workers=int(_number(env, "SCENESTORE_MIGRATION_WORKERS", S3_CONCURRENCY, low=1, high=64)),
        )


def _number(env: Mapping[str, str], name: str, default: float, *, low: float, high: float) -> float:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low:g} and {high:g}, got {raw!r}")
    return value
