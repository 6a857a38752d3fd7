"""Resumable multipart uploads for large videos and outputs (contract section 4, "Multipart uploads").

The checks are the single PUT's: :func:`scenestore.uploads.prepare_upload` (body, limits, tenancy, key) at
create, :func:`scenestore.uploads.resolve_upload_key` on every later call, and the very end of
``uploads/complete`` (:func:`scenestore.uploads.record_upload`) once the parts are assembled.

What the single PUT gets from one signature (this key, this type, exactly this size) is kept part by part:

- the type is fixed when the upload is created (``CreateMultipartUpload`` carries ``Content-Type``);
- each part's URL signs its exact ``Content-Length`` (``part_size`` for every part but the last), and only
  part numbers ``1..part_count`` are signed, so the parts can never add up to more than the declared size;
- complete takes exactly the parts ``1..part_count``, so the object is exactly the declared size.

For that, sign-part must know the upload's size, which neither S3 nor R2 returns for an upload in progress,
and every route must know whose upload an id is. So create records the upload in the service's own
collection ``scenestore_multipart_uploads`` (``_id`` = the bucket's upload id): its key, owner, size, part
plan and state. Another user's upload, or an upload id given with another key, is 404 like a missing one.
The record outlives the upload by a day (a TTL index on ``expire_at``) so that a repeated complete still
answers like ``uploads/complete`` does for an object already there, and a repeated abort still answers 204.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from scenestore.errors import InvalidRequest, NotFound
from scenestore.observability import logger
from scenestore.settings import MIN_MULTIPART_PART_SIZE, MiB
from scenestore.uploads import UploadSpec, UploadTarget, prepare_upload, record_upload, resolve_upload_key

if TYPE_CHECKING:
    from pymongo.collection import Collection
    from pymongo.database import Database

    from scenestore.services import Services

COLLECTION: Final = "scenestore_multipart_uploads"
#: S3 and R2: every part but the last at least 5 MiB, at most 10,000 parts.
MIN_PART_SIZE: Final = MIN_MULTIPART_PART_SIZE
MAX_PARTS: Final = 10_000
#: Bucket upload ids are opaque text (R2's run to a few hundred characters); anything longer is not one.
MAX_UPLOAD_ID_LENGTH: Final = 1024
#: How long a record outlives the lifecycle rule's abort, so late repeats still find it.
RECORD_GRACE: Final = timedelta(days=1)

OPEN: Final = "open"
COMPLETED: Final = "completed"
ABORTED: Final = "aborted"

_PART_NUMBER: Final = re.compile(r"[1-9][0-9]{0,4}")
#: A part's ETag as S3, R2 and browsers hand it over: a hex digest (MD5 is 32 digits), bare or in double quotes.
#: Anything else (a control character, XML, a space) would go into the XML sent to the store unchecked.
PART_ETAG: Final = re.compile(r'"[0-9A-Fa-f]{16,128}"|[0-9A-Fa-f]{16,128}')
_NOT_FOUND: Final = "upload not found"


@dataclass(frozen=True, slots=True)
class PartPlan:
    """How an upload of ``size`` bytes is cut: ``part_count`` parts, all ``part_size`` bytes but the last."""

    size: int
    part_size: int
    part_count: int

    def length_of(self, part_number: int) -> int:
        """The exact byte length part ``part_number`` (1-based) must have."""
        if not 1 <= part_number <= self.part_count:
            raise InvalidRequest(f"part_number must be between 1 and {self.part_count} for this upload")
        if part_number < self.part_count:
            return self.part_size
        return self.size - (self.part_count - 1) * self.part_size


def plan_parts(size: int, preferred_part_size: int) -> PartPlan:
    """``part_size`` = the preferred size, raised so that 10,000 parts suffice, rounded up to a whole MiB, at
    least 5 MiB; ``part_count`` = ``ceil(size / part_size)``."""
    if size < 1:
        raise InvalidRequest("size must be at least 1 byte")
    part_size = max(preferred_part_size, MIN_PART_SIZE, -(-size // MAX_PARTS))
    part_size = -(-part_size // MiB) * MiB
    return PartPlan(size=size, part_size=part_size, part_count=-(-size // part_size))


def parse_part_number(raw: str) -> int:
    """A path segment as a part number 1..10,000 (plain decimal: no sign, space, ``_`` or leading zero)."""
    if not _PART_NUMBER.fullmatch(raw) or int(raw) > MAX_PARTS:
        raise InvalidRequest(f"part_number must be an integer from 1 to {MAX_PARTS}")
    return int(raw)


def validate_upload_id(upload_id: str) -> str:
    if not upload_id or len(upload_id) > MAX_UPLOAD_ID_LENGTH:
        raise InvalidRequest(f"upload_id must be 1-{MAX_UPLOAD_ID_LENGTH} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") for ch in upload_id):
        raise InvalidRequest("upload_id contains control or invisible characters")
    return upload_id


# -- records ------------------------------------------------------------------------------------------
def records(db: Database[dict[str, Any]]) -> Collection[dict[str, Any]]:
    return db[COLLECTION]


def ensure_indexes(db: Database[dict[str, Any]]) -> list[str]:
    """The TTL index that drops a record a day after the lifecycle rule would have aborted its upload."""
    name = records(db).create_index("expire_at", expireAfterSeconds=0)
    return [f"{COLLECTION}.{name}"]


def _now() -> datetime:
    return datetime.now(tz=UTC).replace(microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class OpenedUpload:
    """An upload the caller may act on: the checked key and the stored record."""

    target: UploadTarget
    record: dict[str, Any]

    @property
    def upload_id(self) -> str:
        return str(self.record["_id"])

    @property
    def state(self) -> str:
        return str(self.record["state"])

    @property
    def plan(self) -> PartPlan:
        return PartPlan(
            size=int(self.record["size"]),
            part_size=int(self.record["part_size"]),
            part_count=int(self.record["part_count"]),
        )


def open_upload(services: Services, user_id: str, project_id: str, upload_id: str, key: object) -> OpenedUpload:
    """The caller's upload ``upload_id`` of ``key``; 404 for a missing one, another user's, or another key's."""
    target = resolve_upload_key(services, user_id, project_id, key)
    record = records(services.db).find_one({"_id": validate_upload_id(upload_id)})
    if (
        record is None
        or record.get("key") != target.key
        or record.get("user_id") != user_id
        or record.get("project_id") != project_id
    ):
        raise NotFound(_NOT_FOUND)
    return OpenedUpload(target=target, record=record)


def _require_open(upload: OpenedUpload) -> None:
    if upload.state != OPEN:
        raise NotFound(_NOT_FOUND)


# -- the five routes ----------------------------------------------------------------------------------
def create_multipart(services: Services, user_id: str, project_id: str, spec: UploadSpec) -> dict[str, Any]:
    """The 201 body of ``POST /projects/{project_id}/multipart``."""
    upload = prepare_upload(services, user_id, project_id, spec)
    plan = plan_parts(upload.size, services.settings.multipart_part_size)
    upload_id = services.store.create_multipart(upload.key, content_type=upload.content_type)
    created = _now()
    expires = created + timedelta(days=services.settings.multipart_abort_days)
    record = {
        "_id": upload_id,
        "key": upload.key,
        "user_id": user_id,
        "project_id": project_id,
        "content_type": upload.content_type,
        "size": plan.size,
        "part_size": plan.part_size,
        "part_count": plan.part_count,
        "state": OPEN,
        "created_at": created,
        "expire_at": expires + RECORD_GRACE,
    }
    try:
        records(services.db).insert_one(record)
    except BaseException:
        # Without its record nobody can use the upload: free it now rather than leave it to the lifecycle rule.
        services.store.abort_multipart(upload.key, upload_id)
        raise
    logger.info(
        "multipart upload created",
        extra={"user_id": user_id, "project_id": project_id, "parts": plan.part_count, "size": plan.size},
    )
    return {
        "key": upload.key,
        "upload_id": upload_id,
        "part_size": plan.part_size,
        "part_count": plan.part_count,
        "expires_at": _iso(expires),
    }


def sign_part(
    services: Services, user_id: str, project_id: str, upload_id: str, key: object, part_number: str
) -> dict[str, Any]:
    """The 200 body of ``GET .../multipart/{upload_id}/parts/{part_number}``: a presigned ``UploadPart`` PUT
    whose signature covers the part's exact length."""
    number = parse_part_number(part_number)
    upload = open_upload(services, user_id, project_id, upload_id, key)
    _require_open(upload)
    presigned = services.store.presign_upload_part(
        upload.target.key,
        upload_id=upload.upload_id,
        part_number=number,
        content_length=upload.plan.length_of(number),
        expires_in=services.settings.upload_ttl,
    )
    body = presigned.to_dict()
    return {"url": body["url"], "headers": body["headers"], "expires_at": body["expires_at"]}


def list_parts(services: Services, user_id: str, project_id: str, upload_id: str, key: object) -> dict[str, Any]:
    """The 200 body of ``GET .../multipart/{upload_id}``: the parts the bucket holds (a resume sends the rest)."""
    upload = open_upload(services, user_id, project_id, upload_id, key)
    _require_open(upload)
    parts = services.store.list_parts(upload.target.key, upload.upload_id)
    return {"parts": [part.to_dict() for part in parts]}


def complete_multipart(
    services: Services,
    user_id: str,
    project_id: str,
    upload_id: str,
    key: object,
    parts: Sequence[tuple[int, str]],
) -> dict[str, Any]:
    """The 200 body of ``POST .../multipart/{upload_id}/complete``: assemble, then exactly ``uploads/complete``.

    Idempotent like it: a repeat after success (or a concurrent duplicate that finds the upload already
    assembled) skips the assembly and answers what ``uploads/complete`` answers for the object there.
    """
    upload = open_upload(services, user_id, project_id, upload_id, key)
    if upload.state == ABORTED:
        raise NotFound(_NOT_FOUND)
    if upload.state == OPEN:
        ordered = check_parts(parts, upload.plan)
        try:
            services.store.complete_multipart(upload.target.key, upload.upload_id, ordered)
        except NotFound:
            if not _assembled_meanwhile(services, upload):
                raise
        records(services.db).update_one(
            {"_id": upload.upload_id, "state": OPEN}, {"$set": {"state": COMPLETED, "completed_at": _now()}}
        )
    return record_upload(services, user_id, upload.target)


def abort_multipart(services: Services, user_id: str, project_id: str, upload_id: str, key: object) -> None:
    """``DELETE .../multipart/{upload_id}``: the parts are gone. Repeating it is fine; a completed upload is 404
    (its object is an upload like any other now, not something abort may delete)."""
    upload = open_upload(services, user_id, project_id, upload_id, key)
    if upload.state == COMPLETED:
        raise NotFound(_NOT_FOUND)
    if upload.state == OPEN:
        services.store.abort_multipart(upload.target.key, upload.upload_id)
        records(services.db).update_one(
            {"_id": upload.upload_id, "state": OPEN}, {"$set": {"state": ABORTED, "aborted_at": _now()}}
        )
        logger.info("multipart upload aborted", extra={"user_id": user_id, "project_id": project_id})


def check_parts(parts: Sequence[tuple[int, str]], plan: PartPlan) -> list[tuple[int, str]]:
    """Exactly the parts ``1..part_count``, each once, in ascending order (sorted here: S3 requires it), each
    with an ETag of :data:`PART_ETAG`'s shape: checked before any call to the store, so a malformed one is a
    quick 400, never the store's error after its retries.

    Every part's length is signed, so all of them together are exactly the declared size; a completion that
    leaves a part out would store a different (shorter, spliced) file than the one declared.
    """
    numbers = [number for number, _etag in parts]
    for number, etag in parts:
        if not PART_ETAG.fullmatch(etag):
            raise InvalidRequest(f"the ETag of part {number} is not a hex digest (bare or in double quotes)")
    if len(set(numbers)) != len(numbers):
        raise InvalidRequest("parts lists a PartNumber more than once")
    if sorted(numbers) != list(range(1, plan.part_count + 1)):
        raise InvalidRequest(f"parts must list each PartNumber from 1 to {plan.part_count} exactly once")
    return sorted(parts)


def _assembled_meanwhile(services: Services, upload: OpenedUpload) -> bool:
    """The bucket no longer knows the upload: did a concurrent or crashed earlier complete assemble it?

    Yes when our record says so, or when an object now sits at the key written since the upload began (an
    abort, ours or the lifecycle rule's, leaves no object behind, or only one older than the upload).
    """
    current = records(services.db).find_one({"_id": upload.upload_id}, {"state": 1})
    if current is not None and current.get("state") == COMPLETED:
        return True
    info = services.store.head(upload.target.key)
    created = upload.record.get("created_at")
    if info is None or info.last_modified is None or not isinstance(created, datetime):
        return False
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return info.last_modified >= created - timedelta(seconds=1)
