"""Presigned uploads and their completion (contract section 4).

Both ways up, the single PUT here and the multipart upload (``scenestore.multipart``), run the same two halves:

- :func:`prepare_upload` checks everything it can before a byte moves (kind, ids, type, size, filename,
  tenancy) and derives the key; ``presign_upload`` then signs a PUT bound to that key, type and exact size.
  The browser talks to S3/R2 directly.
- :func:`resolve_upload_key` checks a key the client hands back (layout, the caller's own project and
  scene), and :func:`record_upload` trusts nothing the client did in between: it HEADs the object, checks the
  limits again (an object that breaks them is deleted and the slot left alone), swaps the key into its slot
  with compare-and-set (``scenestore.slots``), and only then deletes the slot's previous object, and only if
  no document references it any more.

A presigned PUT signs the headers it names (type, length), but a client may add others the signature does not
cover (``Content-Disposition: attachment; filename="invoice.html"``, ``Content-Encoding: gzip``,
``Cache-Control: public``...), and S3 and R2 then store them and serve them back on every GET. The service
sets none of them, so :func:`record_upload` refuses an object that carries any (:class:`UnsignedHeaders`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scenestore.db import find_references
from scenestore.errors import InvalidFilename, InvalidKey, InvalidRequest, NotFound, TooLarge, UnsupportedType
from scenestore.keys import (
    OUTPUT_KIND,
    LayoutKey,
    build_key,
    is_legacy_key,
    owner_of,
    parse_key,
    sanitize_filename,
    validate_id,
    validate_kind,
)
from scenestore.media_types import check_extension, normalize_content_type
from scenestore.observability import logger
from scenestore.settings import KindLimits
from scenestore.slots import slot_for_kind, slot_value, swap
from scenestore.tenancy import require_project, require_scene, validate_object_key

if TYPE_CHECKING:
    from scenestore.services import Services
    from scenestore.storage import ObjectInfo


class UnsignedHeaders(InvalidRequest):
    """The uploaded object carries response headers or user metadata that the service did not set: 400
    ``invalid_request``, and the object is deleted (or, when a document already points at it, cleaned)."""


@dataclass(frozen=True, slots=True)
class UploadSpec:
    """What the client wants to upload; every field is still unvalidated client input."""

    kind: object
    filename: object
    content_type: object
    size: object
    scene_id: object = None


def _limits(services: Services, kind: str) -> KindLimits:
    limits = services.settings.limits.get(kind)
    if limits is None:
        raise InvalidRequest(f"uploads of kind {kind} are not configured")
    return limits


def check_type_and_size(limits: KindLimits, kind: str, content_type: object, size: object) -> tuple[str, int]:
    """``(content_type, size)`` if this kind allows them, else 400 (not a size), 413 or 415."""
    if not isinstance(content_type, str):
        raise InvalidRequest("content_type must be a string")
    normalized = normalize_content_type(content_type)
    if normalized not in limits.content_types:
        raise UnsupportedType(f"{kind} uploads must be one of {', '.join(limits.content_types)}")
    if isinstance(size, bool) or not isinstance(size, int):
        raise InvalidRequest("size must be an integer number of bytes")
    if size < 1:
        raise InvalidRequest("size must be at least 1 byte")
    if size > limits.max_size:
        raise TooLarge(f"{kind} uploads are limited to {limits.max_size} bytes")
    return normalized, size


@dataclass(frozen=True, slots=True)
class PreparedUpload:
    """An upload that passed every check that can run before a byte moves."""

    key: str
    kind: str
    content_type: str
    size: int
    max_size: int


def prepare_upload(services: Services, user_id: str, project_id: str, spec: UploadSpec) -> PreparedUpload:
    """Body checks, limits and tenancy of ``POST .../uploads`` (and ``.../multipart``), and the key."""
    validate_id(project_id, "project_id")
    kind = validate_kind(spec.kind)
    scene_id: str | None = None
    if kind == OUTPUT_KIND:
        if spec.scene_id is not None:
            raise InvalidRequest("output uploads belong to the project: leave scene_id out")
    else:
        if spec.scene_id is None:
            raise InvalidRequest(f"{kind} uploads need a scene_id")
        scene_id = validate_id(spec.scene_id, "scene_id")
    limits = _limits(services, kind)
    content_type, size = check_type_and_size(limits, kind, spec.content_type, spec.size)
    filename = sanitize_filename(spec.filename)
    check_extension(filename, content_type)

    if scene_id is None:
        require_project(services.db, user_id, project_id)
    else:
        require_scene(services.db, user_id, project_id, scene_id)
    key = build_key(user_id, project_id, kind, filename, scene_id)
    return PreparedUpload(key=key, kind=kind, content_type=content_type, size=size, max_size=limits.max_size)


def presign_upload(services: Services, user_id: str, project_id: str, spec: UploadSpec) -> dict[str, Any]:
    """The 201 body of ``POST /projects/{project_id}/uploads``, shaped for Uppy's ``getUploadParameters``."""
    upload = prepare_upload(services, user_id, project_id, spec)
    presigned = services.store.presign_put(
        upload.key,
        content_type=upload.content_type,
        content_length=upload.size,
        expires_in=services.settings.upload_ttl,
    )
    return {"key": upload.key, **presigned.to_dict(), "max_size": upload.max_size}


@dataclass(frozen=True, slots=True)
class UploadTarget:
    """A key the client handed back, checked: in the layout, under the caller's project, its document found."""

    key: str
    layout: LayoutKey
    doc_id: Any
    """The stored ``_id`` of the scene (scene kinds) or of the project (output) whose slot the key goes into."""


def resolve_upload_key(services: Services, user_id: str, project_id: str, requested_key: object) -> UploadTarget:
    """400 for a key outside the layout, 404 for another user's (or a missing) project or scene."""
    validate_id(project_id, "project_id")
    key = validate_object_key(requested_key)
    try:
        layout = parse_key(key)
    except InvalidKey:
        raise InvalidRequest("key is not an upload key returned by POST /projects/{project_id}/uploads") from None
    if layout.user_id != user_id or layout.project_id != project_id:
        raise NotFound("file not found")
    if layout.scene_id is None:
        doc_id = require_project(services.db, user_id, project_id)["_id"]
    else:
        doc_id = require_scene(services.db, user_id, project_id, layout.scene_id)["_id"]
    return UploadTarget(key=key, layout=layout, doc_id=doc_id)


def complete_upload(services: Services, user_id: str, project_id: str, requested_key: object) -> dict[str, Any]:
    """The 200 body of ``POST /projects/{project_id}/uploads/complete`` (see the module doc)."""
    return record_upload(services, user_id, resolve_upload_key(services, user_id, project_id, requested_key))


def record_upload(services: Services, user_id: str, target: UploadTarget) -> dict[str, Any]:
    """Limits re-checked on the real object, slot recorded, previous object deleted when unreferenced: the
    end of every upload, single PUT or multipart, and the body ``uploads/complete`` answers with."""
    key, layout = target.key, target.layout
    info = services.store.head(key)
    if info is None:
        raise NotFound("nothing was uploaded to this key")
    limits = _limits(services, layout.kind)
    try:
        content_type, size = check_type_and_size(limits, layout.kind, info.content_type or "", info.size)
        try:
            check_extension(layout.filename, content_type)
        except InvalidFilename as exc:
            raise UnsupportedType(f"the uploaded object's type contradicts its key: {exc.message}") from None
    except (UnsupportedType, TooLarge, InvalidRequest):
        # 415 for a type, 413 for a size over the limit, 400 for an empty object: the same as at presign.
        _discard_rejected(services, key)
        raise
    refuse_unsigned_headers(services, info, content_type)

    slot = slot_for_kind(layout.kind, target.doc_id)
    result = swap(services.db, slot, slot_value(layout.kind, key, content_type, size))
    previous = result.previous_key
    deleted_previous = previous is not None and delete_if_unreferenced(services, user_id, previous)
    logger.info(
        "upload completed",
        extra={
            "user_id": user_id,
            "project_id": layout.project_id,
            "slot": slot.name,
            "replaced": previous is not None,
            "deleted_previous": deleted_previous,
        },
    )
    return {
        "key": key,
        "slot": slot.name,
        "size": size,
        "content_type": content_type,
        "replaced": previous is not None,
        "deleted_previous": deleted_previous,
    }


def refuse_unsigned_headers(services: Services, info: ObjectInfo, content_type: str) -> None:
    """:class:`UnsignedHeaders` when the object carries any header the store would serve that the service did not
    set (``info.served_headers``), after removing it: deleted when no document references it; when one does (the
    same key uploaded again over an object already recorded), rewritten in place with only its type, so that
    document never points at a missing object nor at one served with the client's headers."""
    if not info.served_headers:
        return
    names = ", ".join(sorted(info.served_headers))
    if find_references(services.db, [info.key]):
        services.store.replace_headers(info.key, content_type=content_type)
        outcome = "they were removed from it"
    else:
        services.store.delete(info.key)
        outcome = "it was deleted"
    logger.warning("upload refused: unsigned headers", extra={"key": info.key, "headers": names})
    raise UnsignedHeaders(
        f"the uploaded object carries headers its upload URL did not sign ({names}) and {outcome}: "
        "upload it again sending only the headers that came with the upload URL"
    )


def _discard_rejected(services: Services, key: str) -> None:
    """Delete an object that broke the limits, unless a document already points at it (then it stays)."""
    if not find_references(services.db, [key]):
        services.store.delete(key)


def delete_if_unreferenced(services: Services, user_id: str, key: str) -> bool:
    """Delete a replaced object once no document references it; never touch another tenant's prefix."""
    if not is_legacy_key(key):
        owner = owner_of(key)
        if owner is None or owner[0] != user_id:
            return False
    if find_references(services.db, [key]):
        return False
    services.store.delete(key)
    return True
