"""The checks of ``scenestore preflight``, one module per concern: ``config`` (what a deployed presign function
would refuse), ``s3`` (the bucket: access, checksums, presigned signatures, multipart, CORS, lifecycle, clock) and
``mongo`` (indexes, document pre-images, a scratch write).

Every check ends as one :class:`Check`: ✓ ``ok``, ✗ ``fail`` with the command that fixes it, ⚠ ``warn`` (something
the check could not tell, or an emulator's behaviour), or ``skipped`` when an earlier failure made it pointless.
A :class:`Run` holds what the checks share: the clients, the settings, the scratch names that cleanup removes, and
the callback that shows each check as it ends.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from pymongo.database import Database
    from scenestore.settings import Settings
    from scenestore.storage import ObjectStore

Status = Literal["ok", "fail", "warn", "skipped"]
SYMBOLS: Final[dict[str, str]] = {"ok": "✓", "fail": "✗", "warn": "⚠", "skipped": "-"}
#: Where preflight writes in the bucket: a fresh ``<random>/`` under it each run, removed at the end.
S3_PREFIX: Final = "scenestore-preflight/"
#: The scratch collection's name starts with this (the service's collections are ``scenestore_``-prefixed).
COLLECTION_PREFIX: Final = "scenestore_preflight_"


@dataclass(frozen=True)
class Check:
    id: str
    status: Status
    message: str
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "message": self.message, "fix": self.fix}

    def render(self) -> str:
        line = f"{SYMBOLS[self.status]} {self.message}"
        return f"{line}\n    fix: {self.fix}" if self.fix else line


@dataclass
class Run:
    """One preflight run: its inputs, the names it writes under, and the checks so far."""

    settings: Settings
    s3: S3Client
    store: ObjectStore
    db: Database[dict[str, Any]]
    origins: tuple[str, ...]
    on_check: Callable[[Check], None] = lambda _check: None
    token: str = field(default_factory=lambda: secrets.token_hex(8))
    checks: list[Check] = field(default_factory=list)
    s3_written: bool = False
    """Set before the first write to the bucket: cleanup need not reach a store that was never written to."""
    scratch_written: bool = False
    """Set before the scratch collection's first write (same reason)."""

    @property
    def prefix(self) -> str:
        return f"{S3_PREFIX}{self.token}/"

    @property
    def collection(self) -> str:
        return f"{COLLECTION_PREFIX}{self.token}"

    def add(self, check_id: str, status: Status, message: str, fix: str | None = None) -> Check:
        check = Check(check_id, status, message, fix if status == "fail" else None)
        self.checks.append(check)
        self.on_check(check)
        return check

    def ok(self, check_id: str, message: str) -> Check:
        return self.add(check_id, "ok", message)

    def fail(self, check_id: str, message: str, fix: str) -> Check:
        return self.add(check_id, "fail", message, fix)

    def warn(self, check_id: str, message: str) -> Check:
        return self.add(check_id, "warn", message)

    def skip(self, check_ids: list[str], reason: str) -> None:
        for check_id in check_ids:
            self.add(check_id, "skipped", f"{check_id}: not run, {reason}")

    @property
    def failed(self) -> bool:
        return any(check.status == "fail" for check in self.checks)

    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys(SYMBOLS, 0)
        for check in self.checks:
            counts[check.status] += 1
        return counts
