"""Delete everything under a prefix: batched, concurrent, time-budgeted, resumable, flat in memory.

Listing and deleting overlap: listers read pages (up to 1000 keys) and hand each to a pool that sends it as
one quiet ``DeleteObjects``. How many of those are in flight is an
:class:`~scenestore.concurrency.AdaptiveLimit`: it starts at ``workers``, grows while the deletion rate grows
(a store tens of milliseconds away needs more requests in flight than a local one), halves on
``SlowDown``/503 (seen by botocore's retry hook, and again when a throttled request fails for good) and never
exceeds ``SCENESTORE_S3_MAX_IN_FLIGHT``. A lister blocks while the limit is reached, so at most ``limit``
pages plus one per lister are listed but not yet deleted and memory does not grow with the prefix. Keys
that S3 reports as failed are retried with backoff, then reported.

The first page is listed alone: a prefix that fits in it (a scene) costs one list and one delete. A larger
prefix is split into ``listers`` key ranges from its own tree (:mod:`scenestore.key_ranges`) and the ranges
are listed side by side, because one listing is a chain of round trips that no number of deletes in flight
shortens. When the deadline passes no new page is started; in-flight pages finish and the report carries a
``continuation``: the position of the first range left unfinished, before which everything is done. What
later ranges deleted is gone and counted; what they failed to delete is listed again by the next call, so
it is reported there, once.
A deadline already expired deletes nothing (``scenestore.cleanup`` wraps its deadline so that each
invocation does at least one unit of work across its phases).

Listing is the critical path (the next page cannot be asked for before the last key of this one is
known), so it is kept cheap on the client: botocore would turn each of the 1000 entries of a page into a
dict with a parsed ``LastModified`` (about 60 ms of CPU a page, most of it date parsing), while a delete
needs only key and size. A ``before-parse`` hook, active only for this module's own calls, reads those two
fields straight from the XML (two regular expressions; an XML parse when the page is not laid out as S3 and R2
write it) and leaves botocore the page's few top-level fields, before botocore's own check for an error in a
200 answer would parse the whole page once more. A ``DeleteObjects`` body is written here too (a join, not
botocore's validation and serialization of 1,000 structures). For the same reason the
``Deleted`` list of a ``DeleteObjects`` answer (sent by servers that ignore ``Quiet``) is dropped before
botocore parses it; only ``Errors`` matter. Any other caller of the same client sees botocore unchanged.
"""

from __future__ import annotations

import html
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote_plus

from scenestore.budget import Deadline
from scenestore.clients import S3_CONCURRENCY
from scenestore.common import MAX_REPORTED_ERRORS, extend_capped
from scenestore.concurrency import AdaptiveLimit, is_throttle, limit_for, observe_throttling
from scenestore.errors import InvalidRequest
from scenestore.key_ranges import KeyRange, candidate_points, choose_points, ranges_from
from scenestore.storage import LIST_PAGE, ObjectInfo, error_code

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MAX_BATCH: Final = 1000
KEY_RETRIES: Final = 3
#: First pause before retrying failed keys (doubles each attempt: 0.2 s, 0.4 s, 0.8 s).
KEY_BACKOFF: Final = 0.2
#: Key ranges listed side by side in a large prefix delete (see ``scenestore.key_ranges``).
LISTERS: Final = 4
#: Tree levels read when the split is planned beside the first page: enough for a project (``scenes/``, then
#: one entry per scene) or a user (``projects/``, then one per project), and little for a prefix that turns
#: out to be small (its one to three light listings are wasted).
EARLY_DEPTH: Final = 2
#: The most ``listers`` a call may ask for (each is a thread and a connection).
MAX_LISTERS: Final = 16

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

    def add_failures(self, other: DeleteReport) -> None:
        """Take ``other``'s failures: its count exactly, its listed errors up to the cap."""
        self.add_errors(other.errors)
        self.failed_count += other.failed_count - len(other.errors)

    def merge(self, other: DeleteReport) -> None:
        """Fold a later run's counts into this one (used when looping on continuations)."""
        self.deleted_count += other.deleted_count
        self.total_bytes += other.total_bytes
        self.add_failures(other)
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
    lean = _scan_entries(body) or _parse_entries(body)
    if lean is None:
        return  # botocore parses it (and reports whatever is wrong with it)
    customized_response_dict[_LEAN_OBJECTS], response_dict["body"] = lean


_KEY_RE: Final = re.compile(rb"<Key>([^<]*)</Key>")
_SIZE_RE: Final = re.compile(rb"<Size>(\d+)</Size>")
#: Elements that must never be inside the span of ``Contents`` entries a scan cuts out of a page.
_NOT_ENTRIES: Final = (b"Token>", b"<IsTruncated>", b"<CommonPrefixes>", b"<KeyCount>", b"<Error>", b"<Marker>")


def _scan_entries(body: bytes) -> tuple[list[tuple[str, int]], bytes] | None:
    """The entries of a page as S3 and R2 write it (``Contents`` side by side, no namespace prefix), read by
    two regular expressions: a third of an XML parse's CPU. ``None`` for anything else (the parse reads it)."""
    first, last = body.find(b"<Contents>"), body.rfind(b"</Contents>")
    if first < 0 or last < first:
        return None
    end = last + len(b"</Contents>")
    span = body[first:end]
    keys, sizes = _KEY_RE.findall(span), _SIZE_RE.findall(span)
    if len(keys) != len(sizes) or span.count(b"<Contents>") != len(keys) or any(t in span for t in _NOT_ENTRIES):
        return None
    url_encoded = (
        b"<EncodingType>url</EncodingType>" in body[:first] or b"<EncodingType>url</EncodingType>" in body[end:]
    )
    objects = []
    for raw, size in zip(keys, sizes, strict=True):
        key = raw.decode()
        if "&" in key:
            key = html.unescape(key)
        objects.append((unquote_plus(key) if url_encoded else key, int(size)))
    return objects, body[:first] + body[end:]


def _parse_entries(body: bytes) -> tuple[list[tuple[str, int]], bytes] | None:
    import xml.etree.ElementTree as ET  # on first use: the handlers' import (cold start) stays lean

    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    url_encoded = root.findtext(f"{ns}EncodingType") == "url"
    objects = []
    for entry in root.findall(f"{ns}Contents"):
        key = entry.findtext(f"{ns}Key") or ""
        objects.append((unquote_plus(key) if url_encoded else key, int(entry.findtext(f"{ns}Size") or 0)))
        root.remove(entry)
    return objects, ET.tostring(root)


def _lean_delete_hook(response_dict: dict[str, Any], **_: Any) -> None:
    """Drop the ``Deleted`` entries of a DeleteObjects answer (servers that ignore ``Quiet`` send them)."""
    body = response_dict.get("body")
    if _LEAN.get() and response_dict.get("status_code") == 200 and isinstance(body, bytes):
        response_dict["body"] = _DELETED_RE.sub(b"", body)


@dataclass(slots=True)
class _Body:
    """A ``DeleteObjects`` body written here, and whether the request carried it."""

    xml: bytes
    sent: bool = False


_BODY: ContextVar[_Body | None] = ContextVar("scenestore_delete_body", default=None)


def _delete_objects(client: S3Client, bucket: str, keys: Sequence[str]) -> Any:
    """One quiet ``DeleteObjects`` of ``keys``, its XML body written here.

    botocore would validate and serialize 1,000 ``{"Key": ...}`` structures one by one (about 10 ms of CPU a
    request, more than the listing page the keys came from); the body is a string join. The call names only
    the first key and a ``before-call`` hook puts the whole body in before the checksum and the signature are
    computed. Were the hook not to run, only the first key went out: the rest are sent the ordinary way, so
    every key is always asked for. A wrapper around the client (a test's fault injector) gets every key in the
    call itself, as it expects.
    """
    from botocore.client import BaseClient

    if not isinstance(client, BaseClient):
        return client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True})
    body = _Body(_delete_xml(keys))
    token = _BODY.set(body)
    try:
        response = client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": keys[0]}], "Quiet": True})
    finally:
        _BODY.reset(token)
    if not body.sent and len(keys) > 1:
        rest = client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[1:]], "Quiet": True})
        response = {**response, "Errors": [*response.get("Errors", []), *rest.get("Errors", [])]}
    return response


def _delete_xml(keys: Sequence[str]) -> bytes:
    from xml.sax.saxutils import escape as xml_escape  # on first use: it imports urllib.request

    objects = "".join(f"<Object><Key>{xml_escape(key)}</Key></Object>" for key in keys)
    return f'<Delete xmlns="{_S3_NS}">{objects}<Quiet>true</Quiet></Delete>'.encode()


def _body_hook(params: dict[str, Any], **_: Any) -> None:
    body = _BODY.get()
    if body is not None:
        params["body"] = body.xml
        body.sent = True


_S3_NS: Final = "http://s3.amazonaws.com/doc/2006-03-01/"


def _install_hooks(client: S3Client) -> None:
    """Idempotent (botocore ignores a second registration with the same ``unique_id``).

    Registered on ``before-parse.*``, which botocore calls before anything registered on
    ``before-parse.s3.*``: its own check for an error inside a 200 answer parses the whole body, so it must
    come after the entries are cut out (an error body is left whole, and still found).
    """
    events = getattr(getattr(client, "meta", None), "events", None)
    if events is None:
        return
    events.register_first("before-parse.*", _lean_hook, unique_id=_HOOK_ID)
    events.register("before-call.s3.DeleteObjects", _body_hook, unique_id=_HOOK_ID + "-body")


def _lean_hook(operation_model: Any = None, **kwargs: Any) -> None:
    name = getattr(operation_model, "name", None)
    if name == "ListObjectsV2":
        _lean_list_hook(**kwargs)
    elif name == "DeleteObjects":
        _lean_delete_hook(**kwargs)


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
            response = _delete_objects(client, bucket, pending)
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


@dataclass(slots=True)
class AbortedUploads:
    """The multipart uploads in progress under a prefix that were aborted (or, in a dry run, would be), and
    those the store refused to abort (one error each, keyed by the upload's object key)."""

    aborted: list[tuple[str, str]] = field(default_factory=list)  # (key, upload id)
    errors: list[dict[str, str]] = field(default_factory=list)


def abort_uploads(client: S3Client, bucket: str, prefix: str, *, dry_run: bool = False) -> AbortedUploads:
    """Abort every multipart upload in progress under ``prefix`` (``ListMultipartUploads`` with ``Prefix``, then
    ``AbortMultipartUpload`` each): a deleted project's or scene's parts stop being billed now, not when the
    bucket's lifecycle rule gets to them, and an upload finishing after the deletion cannot leave an object
    behind. An upload already gone (``NoSuchUpload``: completed or aborted meanwhile) is not an error."""
    from botocore.exceptions import BotoCoreError, ClientError

    check_prefix(prefix)
    outcome = AbortedUploads()
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    while True:
        response = client.list_multipart_uploads(**kwargs)
        for upload in response.get("Uploads", []):
            key, upload_id = str(upload.get("Key", "")), str(upload.get("UploadId", ""))
            if not key.startswith(prefix) or not upload_id:  # a store that ignored Prefix
                continue
            if not dry_run:
                try:
                    client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
                except (ClientError, BotoCoreError) as exc:
                    code = error_code(exc) or type(exc).__name__
                    if code != "NoSuchUpload":
                        outcome.errors.append({"key": key, "code": code, "message": f"upload {upload_id}: {exc}"})
                    continue
            outcome.aborted.append((key, upload_id))
        key_marker, id_marker = response.get("NextKeyMarker"), response.get("NextUploadIdMarker")
        if not response.get("IsTruncated") or not (key_marker or id_marker):
            return outcome
        kwargs.update(KeyMarker=key_marker or "", UploadIdMarker=id_marker or "")


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
        if client is not None:
            observe_throttling(client, limit)
        return limit
    if ceiling is None:
        from scenestore.settings import get_settings

        ceiling = get_settings().s3_max_in_flight
    return limit_for(client, initial=S3_CONCURRENCY, ceiling=ceiling)


def delete_prefix(
    client: S3Client,
    bucket: str,
    prefix: str,
    *,
    deadline: Deadline | None = None,
    start_after: str | None = None,
    workers: int | None = None,
    limit: AdaptiveLimit | None = None,
    listers: int = LISTERS,
    split_early: bool = False,
    dry_run: bool = False,
    allow_root: bool = False,
    on_progress: ProgressCallback | None = None,
    retry_backoff: float = KEY_BACKOFF,
    page_size: int = LIST_PAGE,
) -> DeleteReport:
    """Delete every object under ``prefix``; stop at ``deadline`` with a continuation (see module doc).

    ``limit`` (default: :func:`adaptive_limit` of ``workers``: adaptive unless a number is given) bounds the
    ``DeleteObjects`` in flight; pass one to share it with other work on the same store, or to read its ``peak``
    and ``throttle_events`` afterwards. ``listers`` is how many key ranges are listed side by side once the
    prefix proves larger than one page (``1``: one listing, in key order). ``split_early`` reads the prefix's
    tree while its first page is listed instead of after it, for callers whose prefixes are usually large
    (a project, a user, an operator's ``clear-bucket``): the ranges start a round trip and a page sooner, and
    a prefix that turns out small has paid one to three light listings for nothing.
    """
    check_prefix(prefix, allow_root=allow_root)
    if not 1 <= page_size <= MAX_BATCH:
        raise InvalidRequest(f"page_size must be 1-{MAX_BATCH}")
    if not 1 <= listers <= MAX_LISTERS:
        raise InvalidRequest(f"listers must be 1-{MAX_LISTERS}")
    deadline = deadline or Deadline.never()

    if dry_run:
        report = DeleteReport()
        for listed in iter_key_pages(client, bucket, prefix, start_after=start_after, page_size=page_size):
            size = sum(o.size for o in listed)
            report.deleted_count += len(listed)
            report.total_bytes += size
            if on_progress:
                on_progress(len(listed), size)
        return report

    limit = limit or adaptive_limit(workers, client=client)
    observe_throttling(client, limit)
    job = _DeleteJob(client, bucket, limit, retry_backoff)
    first = _Lister(
        0, KeyRange(start_after), iter_key_pages(client, bucket, prefix, start_after=start_after, page_size=page_size)
    )
    # Threads are started on demand, so a pool sized for the ceiling costs only what the limit uses.
    with (
        ThreadPoolExecutor(max_workers=limit.ceiling, thread_name_prefix="delete") as pool,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="tree") as tree,
    ):
        early = (
            tree.submit(
                candidate_points, client, bucket, prefix, after=start_after, parts=listers, max_depth=EARLY_DEPTH
            )
            if split_early and listers > 1 and deadline.remaining() > 0  # not expired(): that is the first page's check
            else None
        )
        job.pool = pool
        job.listers.append(first)
        try:
            # The first page decides: a prefix that fits in it needs no split (a scene: one list, one delete).
            if deadline.expired():
                first.finish(complete=False)
            elif (page := first.next_page()) is None:
                first.finish(complete=True)
            else:
                job.submit(first, page)
                plan = None
                if len(page) == page_size and listers > 1:

                    def plan() -> list[_Lister]:
                        """Split what is left (read beside the first range's listing, which goes on meanwhile)."""
                        candidates = (
                            early.result()
                            if early is not None
                            else candidate_points(client, bucket, prefix, after=page[-1].key, parts=listers)
                        )
                        points = first.close_at(candidates, listers)
                        return [
                            _Lister(
                                i, r, iter_key_pages(client, bucket, prefix, start_after=r.after, page_size=page_size)
                            )
                            for i, r in enumerate(ranges_from(points[0], points[1:]) if points else [], start=1)
                        ]

                job.run(deadline, on_progress, plan)
        finally:
            job.drain(on_progress)
    return job.report(start_after)


@dataclass(slots=True)
class _Lister:
    """One key range's listing and what of it is claimed: ``position`` is the last key handed to a delete.

    Until the split points are known, the first range is open-ended and its listing goes on; ``close_at``
    then ends it at the first point past what it has claimed, under the same lock as claiming a page, so no
    key is claimed by two ranges.
    """

    index: int
    key_range: KeyRange
    pages: Iterator[list[ObjectInfo]]
    position: str | None = None
    complete: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def finish(self, *, complete: bool) -> None:
        with self.lock:
            self.complete = complete

    def next_page(self) -> list[ObjectInfo] | None:
        """Claim the next page inside the range; past the range's end the listing stops (one page read past it)."""
        page = next(self.pages, None)
        if page is None:
            return None
        with self.lock:
            upto = self.key_range.upto
            if upto is not None and page[-1].key > upto:
                self.pages = iter(())
                page = [o for o in page if o.key <= upto]
                if not page:
                    return None
            self.position = page[-1].key
            return page

    def close_at(self, candidates: list[str], parts: int) -> list[str]:
        """End this (open) range so that it and the ranges after it share what is left past its position
        (it went on listing while the candidates were read); returns the split points from its end on."""
        with self.lock:
            if self.complete:  # it listed to the prefix's end already: nothing is left for other ranges
                return []
            left = [point for point in candidates if self.position is None or point > self.position]
            points = choose_points(left, parts)
            if points:
                self.key_range = KeyRange(self.key_range.after, points[0])
            return points


class _DeleteJob:
    """The deletes of one ``delete_prefix`` call, fed by one or more listers, folded per key range.

    Per range, because a run cut short by its deadline resumes from the first unfinished range's position:
    what later ranges deleted is gone and stays counted, but what they failed to delete will be listed and
    tried again by the next run, so it is not reported by this one (each key is reported once). Results come
    back through one queue, so progress callbacks run in the calling thread only.
    """

    def __init__(self, client: S3Client, bucket: str, limit: AdaptiveLimit, backoff: float) -> None:
        self.client = client
        self.bucket = bucket
        self.limit = limit
        self.backoff = backoff
        self.pool: ThreadPoolExecutor | None = None
        self.results: queue.SimpleQueue[tuple[int, object]] = queue.SimpleQueue()
        self.submitted = 0
        self.collected = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.deleted = 0
        self.deleted_bytes = 0
        self.failures: dict[int, DeleteReport] = {}
        #: every range's lister, in key order (the first one, then those the plan adds)
        self.listers: list[_Lister] = []

    def submit(self, lister: _Lister, page: list[ObjectInfo]) -> None:
        """Hand one page to the pool; blocks while ``limit`` pages are being deleted (memory stays flat)."""
        assert self.pool is not None
        self.limit.acquire()
        with self.lock:
            self.submitted += 1
        try:
            self.pool.submit(self._delete, lister.index, page)
        except BaseException:
            with self.lock:
                self.submitted -= 1
            self.limit.release()
            raise

    def _delete(self, index: int, page: list[ObjectInfo]) -> None:
        try:
            outcome: object = delete_keys(
                self.client, self.bucket, page, backoff=self.backoff, on_throttle=self.limit.throttled
            )
        except BaseException as exc:  # handed to the calling thread, which raises it
            outcome = exc
        finally:
            self.limit.release()
        self.results.put((index, outcome))

    def run(
        self,
        deadline: Deadline,
        on_progress: ProgressCallback | None,
        plan: Callable[[], list[_Lister]] | None = None,
    ) -> None:
        """List every range side by side until each is done or the deadline passes; fold results meanwhile.

        ``plan`` runs beside the first range's listing and returns the listers of the ranges after it.
        """
        tasks: list[Future[None]] = []
        running = [0]

        def list_range(lister: _Lister) -> None:
            try:
                while not (self.stop.is_set() or deadline.expired()):
                    page = lister.next_page()
                    if page is None:
                        lister.finish(complete=True)
                        return
                    self.submit(lister, page)
                lister.finish(complete=False)
            except BaseException:
                self.stop.set()
                raise
            finally:
                self.results.put((lister.index, _LISTED))

        def start(pool: ThreadPoolExecutor, task: Callable[[], None]) -> None:
            with self.lock:
                running[0] += 1
                tasks.append(pool.submit(task))

        def split(pool: ThreadPoolExecutor) -> None:
            try:
                assert plan is not None
                later = plan()
                self.listers.extend(later)
                for lister in later:
                    start(pool, partial(list_range, lister))
            except BaseException:
                self.stop.set()
                raise
            finally:
                self.results.put((-1, _LISTED))

        with ThreadPoolExecutor(max_workers=MAX_LISTERS + 1, thread_name_prefix="list") as list_pool:
            start(list_pool, partial(list_range, self.listers[0]))
            if plan is not None:
                start(list_pool, partial(split, list_pool))
            try:
                while True:
                    with self.lock:
                        if running[0] == 0:
                            break
                    index, outcome = self.results.get()
                    if outcome is _LISTED:
                        with self.lock:
                            running[0] -= 1
                    else:
                        self._fold(index, outcome, on_progress)
            finally:
                self.stop.set()  # only matters when leaving early: the listers are done otherwise
            for task in list(tasks):
                task.result()

    def drain(self, on_progress: ProgressCallback | None) -> None:
        """Wait for every delete handed to the pool, whatever happened to the listers; then raise the first error."""
        error: BaseException | None = None
        while self.collected < self.submitted:
            index, outcome = self.results.get()
            if outcome is _LISTED:
                continue
            try:
                self._fold(index, outcome, on_progress)
            except BaseException as exc:
                error = error or exc
        if error is not None:
            raise error

    def _fold(self, index: int, outcome: object, on_progress: ProgressCallback | None) -> None:
        self.collected += 1
        if isinstance(outcome, BaseException):
            self.stop.set()
            raise outcome
        assert isinstance(outcome, _BatchResult)
        self.deleted += outcome.deleted
        self.deleted_bytes += outcome.deleted_bytes
        self.failures.setdefault(index, DeleteReport()).add_errors(outcome.errors)
        if on_progress:
            on_progress(outcome.deleted, outcome.deleted_bytes)

    def report(self, start_after: str | None) -> DeleteReport:
        """Counts of every range; failures and the continuation up to the first range left unfinished."""
        report = DeleteReport(deleted_count=self.deleted, total_bytes=self.deleted_bytes)
        for lister in self.listers:
            if lister.index in self.failures:
                report.add_failures(self.failures[lister.index])
            if not lister.complete:
                report.complete = False
                report.continuation = lister.position or lister.key_range.after or start_after or ""
                break
        return report


#: A lister's last word on the results queue: it hands no more pages to the pool.
_LISTED: Final = object()
