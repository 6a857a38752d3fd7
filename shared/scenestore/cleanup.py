"""Delete a project's or a scene's storage: its prefix plus the legacy objects only it referenced.

What goes (contract section 5):

- every object under the prefix (``users/{u}/projects/{p}/`` or ``.../scenes/{s}/``, always ending in ``/``);
- the *legacy* keys (outside ``users/``) referenced by the deleted documents, unless a document that is not
  being deleted still references them. For a project, its remaining scene documents count as deleted with it
  (their legacy keys are the project's). Legacy keys come from the change event's pre-image and from the
  documents that still exist; each is checked for other references (``$in`` batches, one field at a time)
  and for existence (HEAD) right before it is deleted, so counts are exact and a redelivery reports 0.
- nothing else: layout keys of other prefixes are never touched, even when a deleted document named them.

When the deleted document is already gone and the event had no pre-image (the app's ``SceneDeleted`` /
``ProjectDeleted`` after the fact, a direct invocation), its own legacy keys cannot be known. The prefix is
still deleted (it is determined by the ids alone) and the result carries a ``legacy_refs_unknown`` warning;
deleting "unreferenced legacy objects" instead would also take objects that were never this document's
(see docs/delete.md). A scene whose project is gone has no known owner: its pre-image's legacy keys are
handled and its prefix is left to the project's own deletion, with a ``project_gone`` warning.

Order and resumption: the legacy phase runs first (it is small and its inputs may exist only in this
event), then the prefix phase, which starts by aborting the multipart uploads in progress under the prefix
(``aborted_uploads``). Both stop at the deadline and return ``complete: false`` with an opaque
``continuation`` (base64url JSON of phase and the last key handled, bound to the target) from which the
next invocation resumes without redoing work. Every invocation does at least one unit of work (a legacy
batch or a prefix page) even when its time is already up, so a loop of re-invocations always finishes.

Keys left undeleted: the continuation also carries the failures so far (their exact count and the first of
them), so no round forgets what an earlier one could not delete. When the walk is over and any key was left,
the answer is still ``complete: false``, with a *recheck* continuation: the next invocation tries every key
left again, from the start (the listed keys when all are listed, else the whole deletion once more), and then
either answers ``complete: true`` (everything went on the second try) or raises :class:`DeletionIncomplete`
naming the keys still there, each once, with their exact count. Because the recheck invocation's input says
"from the start", running it again (``aws stepfunctions redrive-execution`` re-runs the failed step with the
input it had) deletes whatever is left once the cause is fixed; a new execution with the original event does
the whole deletion again.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from aws_lambda_powertools.metrics import MetricUnit

from scenestore.budget import Deadline
from scenestore.common import MAX_REPORTED_ERRORS
from scenestore.concurrency import AdaptiveLimit, is_throttle
from scenestore.db import (
    IN_BATCH,
    PROJECTS,
    REFERENCE_FIELDS,
    SCENES,
    chunks,
    document_keys,
    id_filter,
    project_owner,
)
from scenestore.errors import InvalidId, InvalidRequest, StorageError
from scenestore.events import PROJECT, SCENE, DeletionRequest, InvalidEvent, Target, parse_deletion_event
from scenestore.keys import is_legacy_key, project_prefix, scene_prefix, validate_id
from scenestore.observability import logger, metrics
from scenestore.prefix_delete import (
    MAX_BATCH,
    DeleteReport,
    ProgressCallback,
    abort_uploads,
    adaptive_limit,
    delete_keys,
    delete_prefix,
)
from scenestore.services import Services, get_services
from scenestore.storage import ObjectInfo
from scenestore.unreferenced import delete_unreferenced

if TYPE_CHECKING:
    from pymongo.database import Database

#: Time kept back from the Lambda's remaining time: in-flight pages finish and the reply is sent.
DELETE_MARGIN_SECONDS: Final = 10.0
LEGACY_BATCH: Final = IN_BATCH
CONTINUATION_VERSION: Final = 2
#: The failures a continuation carries (and a ``DeletionIncomplete`` names) are the first ``MAX_REPORTED_ERRORS``
#: of them, and at most this many bytes of JSON: with keys of up to 1024 bytes, 100 of them would make the
#: deletion loop's state too large for Step Functions (256 KiB) and the error's cause too long (32,768
#: characters). The count is always exact.
CARRIED_ERROR_BYTES: Final = 16 * 1024
#: A carried failure's message is cut to this many characters (S3's messages are short; the key and code matter).
CARRIED_MESSAGE_CHARS: Final = 200
#: The warning of a recheck invocation (see the module doc); ``merge_results`` takes its failures as the final ones.
RECHECKED: Final = "rechecked"

T = TypeVar("T")
Phase = Literal["legacy", "prefix", "recheck"]
RECHECK: Final = "recheck"
DocRef = tuple[str, str]  # (collection, str(_id))

_progress: ContextVar[ProgressCallback | None] = ContextVar("scenestore_cleanup_progress", default=None)


@contextmanager
def progress_listener(callback: ProgressCallback | None) -> Iterator[None]:
    """Report ``(objects, bytes)`` deleted to ``callback`` for cleanups run inside (the CLI's progress bar).

    A context variable, because the CLI runs the very Lambda handler, whose signature has no room for it.
    """
    token = _progress.set(callback)
    try:
        yield
    finally:
        _progress.reset(token)


# -- continuation ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Failures:
    """Keys left undeleted so far: the exact ``count`` and the first of them (each key once, see
    ``CARRIED_ERROR_BYTES``), as ``{"key", "code", "message"}``."""

    count: int = 0
    errors: tuple[dict[str, str], ...] = ()

    def plus(self, count: int, errors: Sequence[dict[str, str]]) -> Failures:
        """These failures and ``count`` more, of which ``errors`` are listed; a key listed already counts once."""
        listed = {e["key"] for e in self.errors}
        fresh: list[dict[str, str]] = []
        for error in errors:
            if error.get("key") in listed:
                count -= 1
                continue
            listed.add(error.get("key", ""))
            fresh.append(
                {
                    "key": str(error.get("key", "")),
                    "code": str(error.get("code", "")),
                    "message": str(error.get("message", ""))[:CARRIED_MESSAGE_CHARS],
                }
            )
        return Failures(self.count + max(0, count), capped_errors([*self.errors, *fresh]))

    @property
    def complete_list(self) -> bool:
        """Whether every failed key is listed (then a recheck can try exactly those keys)."""
        return self.count <= len(self.errors)


def capped_errors(
    errors: Sequence[dict[str, str]], *, max_bytes: int = CARRIED_ERROR_BYTES
) -> tuple[dict[str, str], ...]:
    """The first ``MAX_REPORTED_ERRORS`` of ``errors`` that fit in ``max_bytes`` of JSON."""
    kept: list[dict[str, str]] = []
    used = 2
    for error in errors[:MAX_REPORTED_ERRORS]:
        used += len(json.dumps(error, separators=(",", ":"))) + 1
        if used > max_bytes:
            break
        kept.append(error)
    return tuple(kept)


@dataclass(frozen=True, slots=True)
class Continuation:
    """Where the next invocation resumes: the phase and the last key handled in it (``None``: its start), and
    the failures of the invocations before it."""

    phase: Phase
    after: str | None
    target: str
    failures: Failures = field(default_factory=Failures)

    def encode(self) -> str:
        data: dict[str, Any] = {"v": CONTINUATION_VERSION, "t": self.target, "p": self.phase, "a": self.after}
        if self.failures.count:
            data["f"] = self.failures.count
            data["e"] = [[e["key"], e["code"], e["message"]] for e in self.failures.errors]
        raw = json.dumps(data, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, target: str) -> Continuation:
        """Refuse a token that is malformed or belongs to another target (it would skip that target's keys).

        Version 1 tokens (no failures carried, from a deployment before this one) are still accepted."""
        bad = InvalidRequest("continuation is not one this function returned")
        try:
            data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise bad from None
        if not isinstance(data, dict) or data.get("v") not in (1, CONTINUATION_VERSION):
            raise bad
        phase, after = data.get("p"), data.get("a")
        if phase not in ("legacy", "prefix", RECHECK) or not (after is None or isinstance(after, str)):
            raise bad
        count, listed = data.get("f", 0), data.get("e", [])
        if not isinstance(count, int) or count < 0 or not isinstance(listed, list):
            raise bad
        if not all(isinstance(e, list) and len(e) == 3 and all(isinstance(x, str) for x in e) for e in listed):
            raise bad
        if data.get("t") != target:
            raise InvalidRequest(f"continuation belongs to {data.get('t')!r}, not to {target!r}")
        errors = tuple({"key": k, "code": c, "message": m} for k, c, m in listed)
        return cls(phase=phase, after=after, target=target, failures=Failures(count, errors))


def target_tag(request: DeletionRequest) -> str:
    return f"{request.target}:{request.project_id}:{request.scene_id or ''}"


# -- result ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class CleanupResult:
    """The contract's result plus ``prefix`` and ``warnings`` (what could not be determined, and why)."""

    target: str
    user_id: str | None
    project_id: str
    scene_id: str | None
    prefix: str | None
    report: DeleteReport = field(default_factory=DeleteReport)
    warnings: list[dict[str, str]] = field(default_factory=list)
    aborted_uploads: int = 0

    def warn(self, code: str, message: str) -> None:
        self.warnings.append({"code": code, "message": message})

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"user_id": self.user_id, "project_id": self.project_id}
        if self.target == SCENE:
            result["scene_id"] = self.scene_id
        result.update(self.report.to_dict())
        # The first errors, within a size a state machine's state can carry (the count is exact).
        result["errors"] = list(capped_errors(self.report.errors, max_bytes=RESULT_ERROR_BYTES))
        result["aborted_uploads"] = self.aborted_uploads
        result["prefix"] = self.prefix
        result["warnings"] = list(self.warnings)
        return result


#: The errors of one invocation's result are kept within this many bytes of JSON (see ``CARRIED_ERROR_BYTES``).
RESULT_ERROR_BYTES: Final = 24 * 1024


class DeletionIncomplete(StorageError):
    """Keys are left after every round and a recheck: the deletion ends failed, naming them.

    Raised by the invocation that ends the deletion, so that Lambda reports it with ``errorType``
    ``DeletionIncomplete`` and the state machine's deleting step is the one that failed (a redrive runs it
    again). The message is JSON: ``{"message", "user_id", "project_id", "scene_id"?, "prefix", "failed_count",
    "errors"}`` with the first keys (``CARRIED_ERROR_BYTES``) and their exact count; ``result`` is the
    invocation's own result (its counts, and those failures), for callers that run the handler in-process.
    """

    code = "deletion_incomplete"

    def __init__(self, result: CleanupResult, failures: Failures, note: str) -> None:
        self.result = result.to_dict()
        self.result["failed_count"] = failures.count
        self.result["errors"] = list(failures.errors)
        self.failed_count = failures.count
        self.errors = list(failures.errors)
        what = f"project {result.project_id}"
        if result.scene_id:
            what = f"scene {result.scene_id} of {what}"
        listed = len(failures.errors)
        detail: dict[str, Any] = {
            "message": f"{failures.count} object(s) of {what} could not be deleted"
            + (f" (the first {listed} listed)" if listed < failures.count else "")
            + f"; {note}",
            "user_id": result.user_id,
            "project_id": result.project_id,
        }
        if result.target == SCENE:
            detail["scene_id"] = result.scene_id
        detail.update(prefix=result.prefix, failed_count=failures.count, errors=list(failures.errors))
        super().__init__(json.dumps(detail, separators=(",", ":")))


def merge_results(total: dict[str, Any] | None, part: dict[str, Any]) -> dict[str, Any]:
    """Fold one invocation's result dict into the running total of a loop on continuations.

    A recheck invocation (its warnings say ``rechecked``) tried again every key left before it: its failures
    are the deletion's, those of the earlier rounds are not added to them."""
    if total is None:
        merged = dict(part)
        merged["errors"] = list(part.get("errors", []))
        merged["warnings"] = list(part.get("warnings", []))
        merged["aborted_uploads"] = part.get("aborted_uploads", 0)
        merged["invocations"] = 1
        return merged
    if any(w.get("code") == RECHECKED for w in part.get("warnings", [])):
        total = {**total, "failed_count": 0, "errors": []}
    report = DeleteReport(
        deleted_count=total["deleted_count"],
        failed_count=total["failed_count"],
        total_bytes=total["total_bytes"],
        errors=list(total["errors"]),
    )
    report.merge(
        DeleteReport(
            deleted_count=part["deleted_count"],
            failed_count=part["failed_count"],
            total_bytes=part["total_bytes"],
            errors=list(part["errors"]),
            complete=part["complete"],
            continuation=part["continuation"],
        )
    )
    merged = {**total, **part, **report.to_dict()}
    merged["aborted_uploads"] = total.get("aborted_uploads", 0) + part.get("aborted_uploads", 0)
    merged["user_id"] = total.get("user_id") or part.get("user_id")
    merged["prefix"] = total.get("prefix") or part.get("prefix")
    merged["warnings"] = total["warnings"] + [w for w in part.get("warnings", []) if w not in total["warnings"]]
    merged["invocations"] = total["invocations"] + 1
    return merged


# -- the use case ----------------------------------------------------------------------------------


def run_cleanup(request: DeletionRequest, deadline: Deadline, *, services: Services | None = None) -> CleanupResult:
    """What a delete handler calls: the cleanup, plus its log line and EMF metrics."""
    started = time.monotonic()
    logger.append_keys(user_id=request.user_id, project_id=request.project_id, scene_id=request.scene_id)
    result = delete_target(request, services=services, deadline=deadline, on_progress=_progress.get())
    elapsed_ms = (time.monotonic() - started) * 1000
    report = result.report
    metrics.add_metric(name="ObjectsDeleted", unit=MetricUnit.Count, value=report.deleted_count)
    metrics.add_metric(name="BytesDeleted", unit=MetricUnit.Bytes, value=report.total_bytes)
    metrics.add_metric(name="DeleteFailures", unit=MetricUnit.Count, value=report.failed_count)
    metrics.add_metric(name="DeleteDuration", unit=MetricUnit.Milliseconds, value=elapsed_ms)
    logger.append_keys(user_id=result.user_id)
    logger.info(
        "deletion complete" if report.complete else "deletion paused at its time budget",
        extra={
            "target": request.target,
            "source": request.source,
            "prefix": result.prefix,
            "deleted_count": report.deleted_count,
            "failed_count": report.failed_count,
            "total_bytes": report.total_bytes,
            "duration_ms": round(elapsed_ms, 1),
            "warnings": [w["code"] for w in result.warnings],
        },
    )
    return result


def delete_target(
    request: DeletionRequest,
    *,
    services: Services | None = None,
    deadline: Deadline | None = None,
    workers: int | None = None,
    legacy_batch: int = LEGACY_BATCH,
    on_progress: ProgressCallback | None = None,
    dry_run: bool = False,
) -> CleanupResult:
    """Delete what ``request`` names (module doc); resume from ``request.continuation`` if given.

    ``dry_run`` (``scenestore delete-* --dry-run``) runs the same selection, reference checks and HEADs and counts
    what would go in ``deleted_count``/``total_bytes`` (and the uploads that would be aborted), deleting nothing.

    Every S3 request of the invocation (HEADs, legacy and prefix deletes) takes a slot of one adaptive in-flight
    limit (``scenestore.prefix_delete.adaptive_limit``; ``workers`` fixes it instead). Raises
    :class:`DeletionIncomplete` from a recheck invocation that leaves keys behind.
    """
    services = services or get_services()
    db = services.db
    if request.database is not None and request.database != services.settings.mongodb_db:
        raise InvalidEvent(
            f"the change event is for database {request.database!r} but SCENESTORE_MONGODB_DB is "
            f"{services.settings.mongodb_db!r}; reference checks would look in the wrong place"
        )
    tag = target_tag(request)
    resume = Continuation.decode(request.continuation, tag) if request.continuation else None
    walk = _Walk(
        services=services,
        request=request,
        limit=adaptive_limit(workers, client=services.s3),
        budget=_AtLeastOneUnit((deadline or Deadline.never()).at),
        legacy_batch=legacy_batch,
        on_progress=on_progress,
        dry_run=dry_run,
    )
    owner = _Owner.resolve(request, db)
    result = CleanupResult(
        target=request.target,
        user_id=owner.user_id,
        project_id=request.project_id,
        scene_id=request.scene_id,
        prefix=owner.prefix(request),
    )
    result.warnings.extend(owner.warnings)
    if resume is not None and resume.phase == RECHECK:
        _recheck(walk, owner, result, resume.failures)
        return result
    stopped = walk.run(owner, result, resume)
    failures = (resume.failures if resume else Failures()).plus(result.report.failed_count, result.report.errors)
    if stopped is not None:
        result.report.complete = False
        result.report.continuation = Continuation(stopped[0], stopped[1], tag, failures).encode()
    elif failures.count and not dry_run:
        # The walk is over but keys were left (in this round or an earlier one): one more invocation tries them
        # all again and gives the verdict (module doc).
        result.report.complete = False
        result.report.continuation = Continuation(RECHECK, None, tag, failures).encode()
    return result


@dataclass(slots=True)
class _Walk:
    """One invocation's deletion: its collaborators, and the walk over the legacy phase then the prefix."""

    services: Services
    request: DeletionRequest
    limit: AdaptiveLimit
    budget: _AtLeastOneUnit
    legacy_batch: int
    on_progress: ProgressCallback | None
    dry_run: bool

    def run(self, owner: _Owner, result: CleanupResult, resume: Continuation | None) -> tuple[Phase, str | None] | None:
        """Delete from ``resume`` on (``None``: from the start) until done or out of time; returns where the next
        invocation resumes (phase, last key handled), ``None`` when the walk is over."""
        services, budget = self.services, self.budget
        after = resume.after if resume else None
        if resume and resume.phase == "prefix" and after and result.prefix and not after.startswith(result.prefix):
            raise InvalidRequest("continuation does not lie under this target's prefix")
        if resume is None or resume.phase == "legacy":
            owned = _deleted_documents(self.request, services.db, owner, result, dry_run=self.dry_run)
            stopped_at = self.legacy(owned, after=after, report=result.report)
            if stopped_at is not None:
                return ("legacy", stopped_at or None)
            after = None
            if result.prefix is not None and budget.used and budget.expired():
                # The legacy phase spent this invocation's budget: the prefix starts in the next one.
                return ("prefix", None)
        if result.prefix is None:
            return None
        if after is None:  # the prefix phase starts: no upload may finish under the prefix once it is deleted
            self.abort_uploads(result)
        prefix_report = delete_prefix(
            services.s3,
            services.settings.bucket,
            result.prefix,
            deadline=budget,  # an unused free first check gives the prefix phase its one guaranteed page
            start_after=after,
            limit=self.limit,
            # A project's prefix is usually more than a page: its key ranges are planned beside the first page.
            split_early=self.request.target == "project",
            on_progress=self.on_progress,
            dry_run=self.dry_run,
        )
        result.report.merge(prefix_report)
        result.report.continuation = None
        if not prefix_report.complete:
            return ("prefix", prefix_report.continuation or None)
        return None

    def legacy(self, owned: _Owned, *, after: str | None, report: DeleteReport) -> str | None:
        return _delete_legacy(
            self.services,
            owned,
            after=after,
            deadline=self.budget,
            report=report,
            batch_size=self.legacy_batch,
            limit=self.limit,
            on_progress=self.on_progress,
            dry_run=self.dry_run,
        )

    def abort_uploads(self, result: CleanupResult) -> None:
        """Abort the multipart uploads in progress under the prefix; count them; a refusal is a failure."""
        assert result.prefix is not None
        services = self.services
        with self.limit.slot():
            outcome = abort_uploads(services.s3, services.settings.bucket, result.prefix, dry_run=self.dry_run)
        result.aborted_uploads += len(outcome.aborted)
        result.report.add_errors(outcome.errors)
        if outcome.aborted and not self.dry_run:
            from scenestore.multipart import ABORTED, OPEN, records

            ids = [upload_id for _, upload_id in outcome.aborted]
            records(services.db).update_many({"_id": {"$in": ids}, "state": OPEN}, {"$set": {"state": ABORTED}})
            logger.info("multipart uploads aborted", extra={"prefix": result.prefix, "aborted": len(ids)})


def _recheck(walk: _Walk, owner: _Owner, result: CleanupResult, earlier: Failures) -> None:
    """The invocation after a walk that left keys: try every one of them again, from the start (module doc).

    With every failed key listed, exactly those are tried (a legacy key still only if nothing else references
    it); otherwise the whole deletion runs once more within this invocation's time. Keys still left raise
    :class:`DeletionIncomplete`; the result otherwise says ``complete`` and carries the ``rechecked`` warning.
    """
    report = result.report
    if earlier.complete_list:
        # At most MAX_REPORTED_ERRORS keys: tried all at once, whatever time is left.
        walk = replace(walk, budget=_AtLeastOneUnit(math.inf))
        if result.prefix is not None:
            walk.abort_uploads(result)
        keys = {e["key"] for e in earlier.errors}
        owned = _deleted_documents(walk.request, walk.services.db, owner, result, dry_run=False)
        walk.legacy(_Owned(owned.documents, [k for k in owned.legacy_keys if k in keys]), after=None, report=report)
        prefix = result.prefix
        _delete_listed(walk, sorted(k for k in keys if prefix is not None and k.startswith(prefix)), report)
        stopped = None
    else:
        stopped = walk.run(owner, result, None)
    left = Failures().plus(report.failed_count, report.errors)
    tried = earlier.count
    if stopped is not None:
        # More keys were left than one invocation could go through again: name the earlier rounds' failures (their
        # count is exact; this recheck may have deleted some). A redrive starts this recheck over, going further.
        raise DeletionIncomplete(
            result,
            earlier,
            f"a recheck deleted {report.deleted_count} of them but could not finish within one invocation; "
            "fix the cause, then redrive the execution (or start a new one with the same input)",
        )
    result.warn(RECHECKED, f"{tried} key(s) left by the earlier rounds were tried again: {left.count} left")
    if left.count:
        raise DeletionIncomplete(
            result, left, "they were tried again after the last round; fix the cause, then redrive the execution"
        )


def _delete_listed(walk: _Walk, keys: list[str], report: DeleteReport) -> None:
    """Delete the ``keys`` under the target's prefix that still exist (HEAD first, so counts are exact)."""
    services = walk.services
    found, head_errors = _existing(services, keys, walk.limit)
    report.add_errors(head_errors)
    for start in range(0, len(found), MAX_BATCH):
        chunk = found[start : start + MAX_BATCH]
        batch = _in_slot(walk.limit, partial(delete_keys, services.s3, services.settings.bucket, chunk))
        report.deleted_count += batch.deleted
        report.total_bytes += batch.deleted_bytes
        report.add_errors(batch.errors)
        if walk.on_progress is not None:
            walk.on_progress(batch.deleted, batch.deleted_bytes)


@dataclass(frozen=True, slots=True)
class _AtLeastOneUnit(Deadline):
    """A deadline whose first check always passes: each invocation handles at least one legacy batch or one
    prefix page, however late it starts, so a loop on continuations always ends."""

    _checked: list[bool] = field(default_factory=list)

    @property
    def used(self) -> bool:
        """Whether a unit of work was started under this deadline (its free first check was taken)."""
        return bool(self._checked)

    def expired(self) -> bool:
        if not self._checked:
            self._checked.append(True)
            return False
        return Deadline.expired(self)


# -- who owns the target, and which documents go with it -------------------------------------------


@dataclass(slots=True)
class _Owner:
    """The target's user and whether its project document (if any) agrees with the request."""

    user_id: str | None
    project_doc: dict[str, Any] | None
    owner_agrees: bool
    warnings: list[dict[str, str]]

    @classmethod
    def resolve(cls, request: DeletionRequest, db: Database[dict[str, Any]]) -> _Owner:
        project = db[PROJECTS].find_one(id_filter(request.project_id), {"user_id": 1, **_fields(PROJECTS)})
        warnings: list[dict[str, str]] = []
        user_id = request.user_id
        if user_id is None:  # an Atlas scene event: the owner is the project's
            if project is None:
                warnings.append(
                    {
                        "code": "project_gone",
                        "message": f"project {request.project_id!r} no longer exists, so the scene's user is "
                        "unknown: its prefix is left to the project's own deletion; its legacy keys were handled",
                    }
                )
                return cls(None, None, True, warnings)
            try:
                user_id = validate_id(project_owner(project), "user_id")
            except InvalidId as exc:
                raise InvalidEvent(f"project {request.project_id!r} has an invalid user_id: {exc.message}") from None
        agrees = project is None or project_owner(project) == user_id
        if not agrees:
            warnings.append(
                {
                    "code": "owner_mismatch",
                    "message": f"project {request.project_id!r} exists and belongs to another user: only the "
                    "prefix was deleted, none of that project's legacy keys",
                }
            )
        return cls(user_id, project, agrees, warnings)

    def prefix(self, request: DeletionRequest) -> str | None:
        if self.user_id is None:
            return None
        if request.target == SCENE:
            assert request.scene_id is not None
            return scene_prefix(self.user_id, request.project_id, request.scene_id)
        return project_prefix(self.user_id, request.project_id)


@dataclass(slots=True)
class _Owned:
    """The deleted documents (by collection and id) and the legacy keys they referenced, sorted."""

    documents: set[DocRef]
    legacy_keys: list[str]


def _deleted_documents(
    request: DeletionRequest,
    db: Database[dict[str, Any]],
    owner: _Owner,
    result: CleanupResult,
    *,
    dry_run: bool = False,
) -> _Owned:
    refs: list[str] = list(request.pre_image_refs or ())
    documents: set[DocRef] = set()
    gone_without_pre_image = request.pre_image_refs is None
    if request.target == PROJECT:
        documents.add((PROJECTS, request.project_id))
        if owner.project_doc is not None:
            gone_without_pre_image = False
            if owner.owner_agrees:
                refs.extend(document_keys(owner.project_doc, PROJECTS))
                if not dry_run:
                    result.warn(
                        "document_exists",
                        f"project {request.project_id!r} still exists; its storage was deleted as requested",
                    )
        if owner.owner_agrees:
            cursor = db[SCENES].find({"project_id": request.project_id}, _fields(SCENES))
            for doc in cursor:
                documents.add((SCENES, str(doc["_id"])))
                refs.extend(document_keys(doc, SCENES))
        what = "the project's legacy output key, if it had one,"
    else:
        assert request.scene_id is not None
        documents.add((SCENES, request.scene_id))
        scene = db[SCENES].find_one(id_filter(request.scene_id), {"project_id": 1, **_fields(SCENES)})
        if scene is not None:
            gone_without_pre_image = False
            if str(scene.get("project_id")) != request.project_id:
                result.warn(
                    "scene_elsewhere",
                    f"scene {request.scene_id!r} exists in project {scene.get('project_id')!r}: its legacy keys "
                    "were kept; only the requested prefix was deleted",
                )
            elif owner.owner_agrees:
                refs.extend(document_keys(scene, SCENES))
                if not dry_run:
                    result.warn(
                        "document_exists",
                        f"scene {request.scene_id!r} still exists; its storage was deleted as requested",
                    )
        what = "the scene's legacy media and audio keys"
    if not owner.owner_agrees:
        refs = []
    if gone_without_pre_image:
        result.warn(
            "legacy_refs_unknown",
            f"the deleted document is gone and the event carried no pre-image, so {what} could not be "
            "determined and were not deleted (the prefix was); run `scenestore verify` to find leftovers",
        )
    legacy = sorted({key for key in refs if key and is_legacy_key(key)})
    return _Owned(documents=documents, legacy_keys=legacy)


def _fields(collection: str) -> dict[str, int]:
    return dict.fromkeys(REFERENCE_FIELDS[collection], 1)


# -- legacy phase ----------------------------------------------------------------------------------


def _delete_legacy(
    services: Services,
    owned: _Owned,
    *,
    after: str | None,
    deadline: Deadline,
    report: DeleteReport,
    batch_size: int,
    limit: AdaptiveLimit,
    on_progress: ProgressCallback | None,
    dry_run: bool = False,
) -> str | None:
    """Delete (or with ``dry_run`` count) the owned legacy keys after ``after``; return the last key handled if
    the deadline stopped it."""
    pending = [key for key in owned.legacy_keys if after is None or key > after]
    last = after or ""
    for batch in chunks(pending, max(1, batch_size)):
        if deadline.expired():
            return last

        def existing(keys: list[str]) -> list[ObjectInfo]:
            found, head_errors = _existing(services, keys, limit)
            report.add_errors(head_errors)
            return found

        outcome = delete_unreferenced(
            services.db,
            services.s3,
            services.settings.bucket,
            batch,
            disregard=lambda ref: (ref[0], str(ref[1])) in owned.documents,
            select=existing,
            on_progress=on_progress,
            dry_run=dry_run,
            send=partial(_in_slot, limit),
        )
        if outcome.kept:
            logger.info("legacy objects kept: other documents still reference them", extra={"kept": outcome.kept})
        report.deleted_count += len(outcome.deleted)
        report.total_bytes += outcome.deleted_bytes
        report.add_errors(outcome.errors)
        last = batch[-1]
    return None


def _existing(
    services: Services, keys: Sequence[str], limit: AdaptiveLimit
) -> tuple[list[ObjectInfo], list[dict[str, str]]]:
    """HEAD each key, as many at once as ``limit`` allows: only objects that exist are deleted and counted."""
    if not keys:
        return [], []
    store = services.store

    def head(key: str) -> ObjectInfo | dict[str, str] | None:
        with limit.slot():
            try:
                return store.head(key)
            except StorageError as exc:
                if _is_throttle(exc.__cause__):
                    limit.throttled()
                return {"key": key, "code": "head_failed", "message": exc.message}

    found: list[ObjectInfo] = []
    errors: list[dict[str, str]] = []
    with ThreadPoolExecutor(max_workers=max(1, min(limit.ceiling, len(keys))), thread_name_prefix="head") as pool:
        for outcome in pool.map(head, keys):
            if isinstance(outcome, ObjectInfo):
                found.append(outcome)
            elif outcome is not None:
                errors.append(outcome)
    return found, errors


def _in_slot(limit: AdaptiveLimit, request: Callable[[], T]) -> T:
    """Send ``request`` in a slot of ``limit`` (the legacy phase's ``DeleteObjects``)."""
    with limit.slot():
        return request()


def _is_throttle(exc: BaseException | None) -> bool:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return is_throttle(status, response.get("Error", {}).get("Code"))


def handle_deletion_event(event: object, context: Any, *, expect: Target) -> dict[str, Any]:
    """The whole body of both delete handlers: parse any accepted shape, run within the context's time.

    A refused event is counted (``DeleteEventsRefused``, worth an alarm) before its error propagates, so it
    reaches the dead-letter queue and deletes nothing.
    """
    try:
        request = parse_deletion_event(event, expect=expect)
    except InvalidRequest:
        metrics.add_metric(name="DeleteEventsRefused", unit=MetricUnit.Count, value=1)
        raise
    deadline = Deadline.from_context(context, margin_seconds=DELETE_MARGIN_SECONDS)
    return run_cleanup(request, deadline).to_dict()
