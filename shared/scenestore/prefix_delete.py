"""Delete everything under a prefix: batched, concurrent, time-budgeted, resumable, flat in memory.

Listing and deleting overlap: the calling thread lists one page (up to 1000 keys) at a time and hands it
to a pool that sends it as one quiet ``DeleteObjects``. How many of those are in flight is an
:class:`~scenestore.concurrency.AdaptiveLimit`: it starts at ``workers``, grows while the deletion rate grows
(a store tens of milliseconds away needs more requests in flight than a local one), halves on
``SlowDown``/503 (seen by botocore's retry hook, and again when a throttled request fails for good) and never
exceeds ``SCENESTORE_S3_MAX_IN_FLIGHT``. The listing thread blocks while the limit is reached, so at most
``limit`` pages are listed but not yet deleted and memory does not grow with the prefix. Keys that S3
reports as failed are retried with backoff, then reported. When the deadline passes no new page is
started; in-flight pages finish and the report carries a ``continuation`` (the last key handled) from which
the next call resumes without relisting what is done.
A deadline already expired deletes nothing (``scenestore.cleanup`` wraps its deadline so that each
invocation does at least one unit of work across its phases).

Listing is the critical path (the next page cannot be asked for before the last key of this one is
known), so it is kept cheap on the client: botocore would turn each of the 1000 entries of a page into a
dict with a parsed ``LastModified`` (about 60 ms of CPU a page, most of it date parsing), while a delete
needs only key and size. A ``before-parse`` hook, active only for this module's own calls, reads those two
fields straight from the XML and leaves botocore the page's few top-level fields. For the same reason the
``Deleted`` list of a ``DeleteObjects`` answer (sent by servers that ignore ``Quiet``) is dropped before
botocore parses it; only ``Errors`` matter. Any other caller of the same client sees botocore unchanged.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote_plus

from scenestore.budget import Deadline
from scenestore.clients import S3_CONCURRENCY
from scenestore.common import MAX_REPORTED_ERRORS, extend_capped
from scenestore.concurrency import AdaptiveLimit, is_throttle, observe_throttling
from scenestore.errors import InvalidRequest
from scenestore.storage import LIST_PAGE, ObjectInfo, error_code

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MAX_BATCH: Final = 1000
KEY_RETRIES: Final = 3
#: First pause before retrying failed keys (doubles each attempt: 0.2 s, 0.4 s, 0.8 s).
KEY_BACKOFF: Final = 0.2

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
        # Capped so a prefix of a million failing keys cannot exhaust memory; the counts stay exact.
        extend_capped(self.errors, errors, cap=MAX_REPORTED_ERRORS)

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
    if not isinstance(prefix, str):
        raise InvalidRequest("a deletion prefix must be a string")
    if prefix == "":
        if not allow_root:
            raise InvalidRequest("refusing to delete with an empty prefix (that is the whole bucket)")
        return prefix
    if not prefix.endswith("/"):
        raise InvalidRequest(f"a deletion prefix must end with '/': {prefix!r}")
    return prefix


# -- lean response parsing (see module doc) ----------------------------------------------------------
_LEAN: ContextVar[bool] = ContextVar("scenestore_lean_s3_parse", default=False)
_LEAN_OBJECTS: Final = "ScenestoreObjects"
_HOOK_ID: Final = "scenestore-prefix-delete-lean-parse"
_DELETED_RE: Final = re.compile(rb"<Deleted>.*?</Deleted>", re.DOTALL)


def _lean_list_hook(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    """Take ``(key, size)`` of every entry out of a ListObjectsV2 page; botocore parses the rest."""
    body = response_dict.get("body")
    if not _LEAN.get() or response_dict.get("status_code") != 200 or not isinstance(body, bytes):
        return
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return  # botocore parses it (and reports whatever is wrong with it)
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    url_encoded = root.findtext(f"{ns}EncodingType") == "url"
    entries = root.findall(f"{ns}Contents")
    objects = []
    for entry in entries:
        key = entry.findtext(f"{ns}Key") or ""
        objects.append((unquote_plus(key) if url_encoded else key, int(entry.findtext(f"{ns}Size") or 0)))
        root.remove(entry)
    customized_response_dict[_LEAN_OBJECTS] = objects
    response_dict["body"] = ET.tostring(root)


def _lean_delete_hook(response_dict: dict[str, Any], **_: Any) -> None:
    """Drop the ``Deleted`` entries of a DeleteObjects answer (servers that ignore ``Quiet`` send them)."""
    body = response_dict.get("body")
    if _LEAN.get() and response_dict.get("status_code") == 200 and isinstance(body, bytes):
        response_dict["body"] = _DELETED_RE.sub(b"", body)


def _install_hooks(client: S3Client) -> None:
    """Idempotent (botocore ignores a second registration with the same ``unique_id``)."""
    events = getattr(getattr(client, "meta", None), "events", None)
    if events is None:
        return
    events.register("before-parse.s3.ListObjectsV2", _lean_list_hook, unique_id=_HOOK_ID + "-list")
    events.register("before-parse.s3.DeleteObjects", _lean_delete_hook, unique_id=_HOOK_ID + "-delete")


def iter_key_pages(
    client: S3Client, bucket: str, prefix: str, *, start_after: str | None = None, page_size: int = LIST_PAGE
) -> Iterator[list[ObjectInfo]]:
    """Pages of ``ObjectInfo(key, size)`` under ``prefix`` in key order (no etag/date: not needed to delete)."""
    _install_hooks(client)
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": page_size, "EncodingType": "url"}
    if start_after:
        kwargs["StartAfter"] = start_after
    while True:
        token = _LEAN.set(True)
        try:
            response = client.list_objects_v2(**kwargs)
        finally:
            _LEAN.reset(token)
        lean: list[tuple[str, int]] | None = response.get(_LEAN_OBJECTS)  # type: ignore[assignment]
        if lean is not None:
            page = [ObjectInfo(key, size, "") for key, size in lean]
        else:  # the hook did not run (a client without events): botocore's own parse
            decode = unquote_plus if response.get("EncodingType") == "url" else str
            page = [
                ObjectInfo(decode(item["Key"]), int(item.get("Size", 0)), "") for item in response.get("Contents", [])
            ]
        if page:
            yield page
        next_token = response.get("NextContinuationToken")
        if not response.get("IsTruncated") or not next_token:
            return
        kwargs.pop("StartAfter", None)
        kwargs["ContinuationToken"] = next_token


# -- deleting ----------------------------------------------------------------------------------------
def delete_keys(
    client: S3Client,
    bucket: str,
    objects: Sequence[ObjectInfo],
    *,
    retries: int = KEY_RETRIES,
    backoff: float = KEY_BACKOFF,
    on_throttle: Callable[[], None] | None = None,
) -> _BatchResult:
    """Delete up to 1000 known objects with one quiet ``DeleteObjects``; retry failed keys, then report them.

    A request that fails as a whole (throttling after botocore's own retries, a dropped connection) is
    retried like a per-key failure; what still fails after ``retries`` is reported key by key. A whole
    request refused as throttled (``SlowDown``, 503) calls ``on_throttle`` before it is retried.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    if len(objects) > MAX_BATCH:
        raise InvalidRequest(f"DeleteObjects takes at most {MAX_BATCH} keys")
    _install_hooks(client)
    sizes = {obj.key: obj.size for obj in objects}
    pending = list(sizes)
    result = _BatchResult()
    failures: dict[str, dict[str, str]] = {}
    for attempt in range(retries + 1):
        if not pending:
            break
        if attempt:
            time.sleep(backoff * (2 ** (attempt - 1)))
        token = _LEAN.set(True)
        try:
            response = client.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": k} for k in pending], "Quiet": True}
            )
        except (ClientError, BotoCoreError) as exc:
            code = error_code(exc) or type(exc).__name__
            if on_throttle is not None and isinstance(exc, ClientError) and _is_throttle_error(exc):
                on_throttle()
            failures = {k: {"key": k, "code": code, "message": str(exc)} for k in pending}
            continue
        finally:
            _LEAN.reset(token)
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


def _is_throttle_error(exc: Any) -> bool:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return is_throttle(status, error_code(exc))


def adaptive_limit(workers: int | None = None, *, ceiling: int | None = None, client: Any = None) -> AdaptiveLimit:
    """The in-flight limit of one job.

    ``workers=None``: adaptive, from ``S3_CONCURRENCY`` up to ``ceiling`` (default
    ``SCENESTORE_S3_MAX_IN_FLIGHT``), and never past ``client``'s connection pool (more requests than
    connections would open and throw away connections). A number: at most that many (a caller that sized its
    own pool, a test); it still halves on throttling and grows back, never above ``workers``. With ``client``,
    the limit hears of every throttled answer that client receives (``observe_throttling``).
    """
    if workers is not None:
        workers = max(1, workers)
        limit = AdaptiveLimit(initial=workers, ceiling=workers)
    else:
        if ceiling is None:
            from scenestore.settings import get_settings

            ceiling = get_settings().s3_max_in_flight
        pool = getattr(getattr(getattr(client, "meta", None), "config", None), "max_pool_connections", None)
        if isinstance(pool, int):
            ceiling = min(ceiling, pool)
        ceiling = max(1, ceiling)
        limit = AdaptiveLimit(initial=min(S3_CONCURRENCY, ceiling), ceiling=ceiling)
    if client is not None:
        observe_throttling(client, limit)
    return limit


def delete_prefix(
    client: S3Client,
    bucket: str,
    prefix: str,
    *,
    deadline: Deadline | None = None,
    start_after: str | None = None,
    workers: int | None = None,
    limit: AdaptiveLimit | None = None,
    dry_run: bool = False,
    allow_root: bool = False,
    on_progress: ProgressCallback | None = None,
    retry_backoff: float = KEY_BACKOFF,
    page_size: int = LIST_PAGE,
) -> DeleteReport:
    """Delete every object under ``prefix``; stop at ``deadline`` with a continuation (see module doc).

    ``limit`` (default: :func:`adaptive_limit` of ``workers``: adaptive unless a number is given) bounds the
    ``DeleteObjects`` in flight; pass one to share it with other work on the same store, or to read its ``peak``
    and ``throttle_events`` afterwards.
    """
    check_prefix(prefix, allow_root=allow_root)
    if not 1 <= page_size <= MAX_BATCH:
        raise InvalidRequest(f"page_size must be 1-{MAX_BATCH}")
    deadline = deadline or Deadline.never()
    report = DeleteReport()
    last_key = start_after
    pages = iter_key_pages(client, bucket, prefix, start_after=start_after, page_size=page_size)

    if dry_run:
        for listed in pages:
            size = sum(o.size for o in listed)
            report.deleted_count += len(listed)
            report.total_bytes += size
            if on_progress:
                on_progress(len(listed), size)
        return report

    limit = limit or adaptive_limit(workers, client=client)
    observe_throttling(client, limit)
    in_flight: set[Future[_BatchResult]] = set()

    def delete_page(page: list[ObjectInfo]) -> _BatchResult:
        try:
            return delete_keys(client, bucket, page, backoff=retry_backoff, on_throttle=limit.throttled)
        finally:
            limit.release()

    def collect(futures: set[Future[_BatchResult]]) -> None:
        for future in futures:
            in_flight.discard(future)
            batch = future.result()
            report.deleted_count += batch.deleted
            report.total_bytes += batch.deleted_bytes
            report.add_errors(batch.errors)
            if on_progress:
                on_progress(batch.deleted, batch.deleted_bytes)

    # Threads are started on demand, so a pool sized for the ceiling costs only what the limit uses.
    with ThreadPoolExecutor(max_workers=limit.ceiling, thread_name_prefix="delete") as pool:
        try:
            while True:
                if deadline.expired():
                    report.complete = False
                    break
                page = next(pages, None)
                if page is None:
                    break
                limit.acquire()  # blocks while ``limit`` pages are being deleted: memory stays flat
                try:
                    in_flight.add(pool.submit(delete_page, page))
                except BaseException:
                    limit.release()
                    raise
                last_key = page[-1].key
                collect({f for f in in_flight if f.done()})
        finally:
            while in_flight:
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                collect(done)
    if not report.complete:
        report.continuation = last_key or ""
    return report
