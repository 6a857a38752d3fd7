"""Delete everything under a prefix: batched, concurrent, time-budgeted, resumable, flat in memory.

Listing and deleting overlap: the calling thread lists one page (up to 1000 keys) at a time and hands it
to a pool that sends it as one quiet ``DeleteObjects``; at most ``2 * workers`` pages are in flight, so
memory does not grow with the prefix. Keys that S3 reports as failed are retried with backoff, then
reported. When the deadline passes no new page is started; in-flight pages finish and the report carries
a ``continuation`` (the last key handled) from which the next call resumes without relisting what is done.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from scenestore.budget import Deadline
from scenestore.clients import S3_CONCURRENCY
from scenestore.errors import InvalidRequest
from scenestore.storage import LIST_PAGE, ObjectInfo, ObjectStore, error_code

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MAX_BATCH: Final = 1000
#: Reported errors are capped so a prefix of a million failing keys cannot exhaust memory; counts are exact.
MAX_REPORTED_ERRORS: Final = 100
KEY_RETRIES: Final = 3

ProgressCallback = Callable[[int, int], None]


@dataclass(slots=True)
class DeleteReport:
    """The report of contract sections 5 and 7: counts are exact, ``errors`` holds the first 100."""

    deleted_count: int = 0
    failed_count: int = 0
    total_bytes: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    complete: bool = True
    continuation: str | None = None

    def add_errors(self, errors: Sequence[dict[str, str]]) -> None:
        self.failed_count += len(errors)
        room = MAX_REPORTED_ERRORS - len(self.errors)
        if room > 0:
            self.errors.extend(errors[:room])

    def merge(self, other: DeleteReport) -> None:
        """Fold a later run's counts into this one (used when looping on continuations)."""
        self.deleted_count += other.deleted_count
        self.total_bytes += other.total_bytes
        self.add_errors(other.errors)
        self.failed_count += other.failed_count - len(other.errors)
        self.complete = other.complete
        self.continuation = other.continuation

    def to_dict(self) -> dict[str, Any]:
        return {
            "deleted_count": self.deleted_count,
            "failed_count": self.failed_count,
            "total_bytes": self.total_bytes,
            "errors": list(self.errors),
            "complete": self.complete,
            "continuation": self.continuation,
        }


@dataclass(slots=True)
class _BatchResult:
    deleted: int = 0
    deleted_bytes: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)


def check_prefix(prefix: str, *, allow_root: bool = False) -> str:
    """A deletion prefix must end in ``/`` (so ``p1/`` never matches ``p10/``); ``""`` only if allowed."""
    if prefix == "":
        if not allow_root:
            raise InvalidRequest("refusing to delete with an empty prefix (that is the whole bucket)")
        return prefix
    if not prefix.endswith("/"):
        raise InvalidRequest(f"a deletion prefix must end with '/': {prefix!r}")
    return prefix


def delete_keys(
    client: S3Client,
    bucket: str,
    objects: Sequence[ObjectInfo],
    *,
    retries: int = KEY_RETRIES,
    backoff: float = 0.2,
) -> _BatchResult:
    """Delete up to 1000 known objects with one quiet ``DeleteObjects``; retry failed keys, then report them."""
    from botocore.exceptions import BotoCoreError, ClientError

    if len(objects) > MAX_BATCH:
        raise InvalidRequest(f"DeleteObjects takes at most {MAX_BATCH} keys")
    sizes = {obj.key: obj.size for obj in objects}
    pending = list(sizes)
    result = _BatchResult()
    failures: dict[str, dict[str, str]] = {}
    for attempt in range(retries + 1):
        if not pending:
            break
        if attempt:
            time.sleep(backoff * (2 ** (attempt - 1)))
        try:
            response = client.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": k} for k in pending], "Quiet": True}
            )
        except (ClientError, BotoCoreError) as exc:
            code = error_code(exc) or type(exc).__name__
            failures = {k: {"key": k, "code": code, "message": str(exc)} for k in pending}
            continue
        failed_now = {
            e["Key"]: {"key": e["Key"], "code": e.get("Code", "Unknown"), "message": e.get("Message", "")}
            for e in response.get("Errors", [])
            if "Key" in e
        }
        for key in pending:
            if key not in failed_now:
                result.deleted += 1
                result.deleted_bytes += sizes[key]
        failures = failed_now
        pending = [k for k in pending if k in failed_now]
    result.errors = [failures[k] for k in pending]
    return result


def delete_prefix(
    client: S3Client,
    bucket: str,
    prefix: str,
    *,
    deadline: Deadline | None = None,
    start_after: str | None = None,
    workers: int = S3_CONCURRENCY,
    dry_run: bool = False,
    allow_root: bool = False,
    on_progress: ProgressCallback | None = None,
) -> DeleteReport:
    """Delete every object under ``prefix``; stop at ``deadline`` with a continuation (see module doc)."""
    check_prefix(prefix, allow_root=allow_root)
    deadline = deadline or Deadline.never()
    store = ObjectStore(client, bucket)
    report = DeleteReport()
    last_key = start_after
    pages = store.iter_pages(prefix, start_after=start_after, page_size=LIST_PAGE)

    if dry_run:
        for page in pages:
            report.deleted_count += len(page)
            report.total_bytes += sum(o.size for o in page)
            if on_progress:
                on_progress(len(page), sum(o.size for o in page))
        return report

    in_flight: deque[Future[_BatchResult]] = deque()

    def collect(future: Future[_BatchResult]) -> None:
        batch = future.result()
        report.deleted_count += batch.deleted
        report.total_bytes += batch.deleted_bytes
        report.add_errors(batch.errors)
        if on_progress:
            on_progress(batch.deleted, batch.deleted_bytes)

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="delete") as pool:
        try:
            while True:
                if deadline.expired():
                    report.complete = False
                    break
                page = next(pages, None)
                if page is None:
                    break
                in_flight.append(pool.submit(delete_keys, client, bucket, page))
                last_key = page[-1].key
                while len(in_flight) >= 2 * workers or (in_flight and in_flight[0].done()):
                    collect(in_flight.popleft())
        finally:
            while in_flight:
                collect(in_flight.popleft())
    if not report.complete:
        report.continuation = last_key or ""
    return report
