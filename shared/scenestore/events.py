"""Deletion events: the three input shapes of contract section 5, parsed into one ``DeletionRequest``.

Shapes (told apart by their keys, then validated with Pydantic models through Powertools' parser):

- the app's EventBridge events: ``{"detail-type": "ProjectDeleted" | "SceneDeleted", "detail": {...}}``;
- MongoDB Atlas Trigger change events forwarded to EventBridge (``source``
  ``aws.partner/mongodb.com/stitch.trigger/<id>``): only ``delete`` operations; ``documentKey._id`` may be
  extended JSON (``{"$oid": ...}``) or a plain string; ``fullDocumentBeforeChange`` (the pre-image) is how a
  deleted project's ``user_id``, a deleted scene's ``project_id`` and their storage keys are known;
- a direct invocation ``{"user_id", "project_id", "scene_id"?, "continuation"?}`` (CLI, re-invocations).

Any shape may carry a top-level ``continuation`` (a re-invocation is the same event plus the continuation of
the previous result). Anything that does not parse raises ``InvalidEvent`` before a single object is touched:
a delete function never guesses, because a wrong guess deletes someone's data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from scenestore.common import validation_problems
from scenestore.db import PROJECTS, SCENES, document_keys, project_owner
from scenestore.errors import InvalidId, InvalidRequest
from scenestore.keys import validate_id

Target = Literal["project", "scene"]
Source = Literal["eventbridge", "atlas", "direct"]

PROJECT: Final = "project"
SCENE: Final = "scene"
APP_DETAIL_TYPES: Final[dict[str, Target]] = {"ProjectDeleted": PROJECT, "SceneDeleted": SCENE}
ATLAS_SOURCE_PREFIX: Final = "aws.partner/mongodb.com/stitch.trigger/"
ATLAS_DETAIL_TYPE_PREFIX: Final = "MongoDB Database Trigger for "
COLLECTION_TARGETS: Final[dict[str, Target]] = {PROJECTS: PROJECT, SCENES: SCENE}
#: A continuation carries the failures so far (``scenestore.cleanup.CARRIED_ERROR_BYTES``), base64url-encoded.
MAX_CONTINUATION_LENGTH: Final = 32 * 1024
_ID_FIELDS: Final = frozenset({"user_id", "project_id", "scene_id", "_id"})


class InvalidEvent(InvalidRequest):
    """The event is not one a delete function accepts; nothing was deleted."""

    code = "invalid_event"


@dataclass(frozen=True, slots=True)
class DeletionRequest:
    """What to delete, whatever shape the event had.

    ``user_id`` is ``None`` only for an Atlas scene event: a scene document has no ``user_id``, so the
    owner is read from the scene's project document at cleanup time. ``pre_image_refs`` holds the storage
    keys of the deleted document when the event carried its pre-image (``None``: no pre-image).
    """

    target: Target
    project_id: str
    user_id: str | None = None
    scene_id: str | None = None
    continuation: str | None = None
    pre_image_refs: tuple[str, ...] | None = None
    database: str | None = None
    source: Source = "direct"


# -- field types ------------------------------------------------------------------------------------


def _checked_id(value: str) -> str:
    try:
        return validate_id(value)
    except InvalidId as exc:
        raise ValueError(exc.message) from None


def _plain_object_id(value: Any) -> Any:
    """``{"$oid": "..."}`` (extended JSON, Atlas's "Enable Extended JSON") or a plain string id."""
    if isinstance(value, Mapping):
        if set(value) == {"$oid"} and isinstance(value["$oid"], str):
            return value["$oid"]
        raise ValueError("_id must be an ObjectId ({'$oid': ...}) or a string")
    return value


Id = Annotated[str, AfterValidator(_checked_id)]
DocumentId = Annotated[str, BeforeValidator(_plain_object_id), AfterValidator(_checked_id)]
Continuation = Annotated[str, Field(min_length=1, max_length=MAX_CONTINUATION_LENGTH)]


# -- the three shapes ------------------------------------------------------------------------------


class DirectDeletion(BaseModel):
    """Extra keys are refused: a misspelt ``sceneId`` must never turn a scene deletion into a project one."""

    model_config = ConfigDict(extra="forbid")

    user_id: Id
    project_id: Id
    scene_id: Id | None = None
    continuation: Continuation | None = None


class AppDeletionDetail(BaseModel):
    model_config = ConfigDict(extra="ignore")

    user_id: Id
    project_id: Id
    scene_id: Id | None = None


class AppDeletionEvent(BaseModel):
    """The app's own event; only ``detail-type`` and ``detail`` are required (the envelope may be trimmed)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    detail_type: Literal["ProjectDeleted", "SceneDeleted"] = Field(alias="detail-type")
    source: str | None = None
    detail: AppDeletionDetail
    continuation: Continuation | None = None

    @model_validator(mode="after")
    def _scene_id_matches_type(self) -> AppDeletionEvent:
        if self.detail_type == "SceneDeleted" and self.detail.scene_id is None:
            raise ValueError("a SceneDeleted event needs detail.scene_id")
        if self.detail_type == "ProjectDeleted" and self.detail.scene_id is not None:
            raise ValueError("a ProjectDeleted event must not carry detail.scene_id (is it a SceneDeleted event?)")
        return self


class AtlasNamespace(BaseModel):
    db: str
    coll: str


class AtlasDocumentKey(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: DocumentId = Field(alias="_id")


class AtlasChangeDetail(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    operation_type: str = Field(alias="operationType")
    ns: AtlasNamespace
    document_key: AtlasDocumentKey = Field(alias="documentKey")
    full_document_before_change: dict[str, Any] | None = Field(default=None, alias="fullDocumentBeforeChange")


class AtlasTriggerEvent(EventBridgeModel):
    """An Atlas Database Trigger event as the MongoDB partner event source puts it on EventBridge."""

    detail: AtlasChangeDetail  # type: ignore[assignment]
    continuation: Continuation | None = None


# -- entry point -----------------------------------------------------------------------------------


def classify(event: object) -> Source:
    """Which of the three shapes ``event`` claims to be, from its keys alone."""
    if not isinstance(event, Mapping):
        raise InvalidEvent(f"a deletion event must be a JSON object, not {type(event).__name__}")
    if "detail-type" in event or "detail" in event:
        source, detail_type = event.get("source"), event.get("detail-type")
        if (isinstance(source, str) and source.startswith(ATLAS_SOURCE_PREFIX)) or (
            isinstance(detail_type, str) and detail_type.startswith(ATLAS_DETAIL_TYPE_PREFIX)
        ):
            return "atlas"
        if detail_type in APP_DETAIL_TYPES:
            return "eventbridge"
        raise InvalidEvent(
            f"unknown EventBridge event (detail-type {detail_type!r}, source {source!r}): expected "
            "ProjectDeleted, SceneDeleted or an Atlas trigger event"
        )
    if "user_id" in event or "project_id" in event:
        return "direct"
    raise InvalidEvent(
        "unknown event shape: expected an EventBridge ProjectDeleted/SceneDeleted event, an Atlas trigger "
        "change event, or {user_id, project_id, scene_id?, continuation?}"
    )


def parse_deletion_event(event: object, *, expect: Target) -> DeletionRequest:
    """Parse any accepted shape into a request for ``expect`` (``project`` or ``scene``), or raise ``InvalidEvent``.

    A function receiving the other target's event refuses it: a scene event reaching delete-project must not
    delete the whole project.
    """
    shape = classify(event)
    assert isinstance(event, Mapping)
    if shape == "direct":
        direct = _parse(event, DirectDeletion)
        request = DeletionRequest(
            target=SCENE if direct.scene_id is not None else PROJECT,
            user_id=direct.user_id,
            project_id=direct.project_id,
            scene_id=direct.scene_id,
            continuation=direct.continuation,
        )
    elif shape == "eventbridge":
        app = _parse(event, AppDeletionEvent)
        request = DeletionRequest(
            target=APP_DETAIL_TYPES[app.detail_type],
            user_id=app.detail.user_id,
            project_id=app.detail.project_id,
            scene_id=app.detail.scene_id,
            continuation=app.continuation,
            source="eventbridge",
        )
    else:
        request = _from_atlas(_parse(event, AtlasTriggerEvent))
    if request.target != expect:
        raise InvalidEvent(
            f"delete-{expect} received a {request.target} deletion ({shape} event); route it to delete-{request.target}"
        )
    return request


def _from_atlas(event: AtlasTriggerEvent) -> DeletionRequest:
    detail = event.detail
    if detail.operation_type != "delete":
        raise InvalidEvent(
            f"Atlas change event is an {detail.operation_type!r}, not a delete; "
            "the trigger should send only DELETE operations"
        )
    target = COLLECTION_TARGETS.get(detail.ns.coll)
    if target is None:
        raise InvalidEvent(f"Atlas change event for collection {detail.ns.coll!r}: only projects and scenes")
    doc_id = detail.document_key.id
    pre = detail.full_document_before_change
    if not pre:
        missing = "its user_id" if target == PROJECT else "its project_id (and so its user_id)"
        raise InvalidEvent(
            f"Atlas delete event for {detail.ns.coll} {doc_id!r} has no fullDocumentBeforeChange: the document is "
            f"gone, so {missing} cannot be looked up and nothing was deleted. Turn on document pre-images for the "
            f"collection and the trigger (docs/deploy.md), or run `scenestore delete-{target}` with the ids",
            code="pre_image_missing",
        )
    pre_id = pre.get("_id")
    if pre_id is not None and str(_plain_object_id(pre_id)) != doc_id:
        raise InvalidEvent(f"Atlas pre-image _id {pre_id!r} does not match documentKey._id {doc_id!r}")
    refs = tuple(document_keys(pre, detail.ns.coll))
    common: dict[str, Any] = {
        "continuation": event.continuation,
        "pre_image_refs": refs,
        "database": detail.ns.db,
        "source": "atlas",
    }
    if target == PROJECT:
        user_id = _event_id(project_owner(pre), "fullDocumentBeforeChange.user_id")
        return DeletionRequest(target=PROJECT, project_id=doc_id, user_id=user_id, **common)
    project_id = _event_id(pre.get("project_id"), "fullDocumentBeforeChange.project_id")
    return DeletionRequest(target=SCENE, project_id=project_id, scene_id=doc_id, **common)


def _event_id(value: object, where: str) -> str:
    try:
        return validate_id(value, where)
    except InvalidId as exc:
        raise InvalidEvent(exc.message, code="invalid_id") from None


def _parse(event: Mapping[str, Any], model: type[Any]) -> Any:
    try:
        return parse(event=dict(event), model=model)
    except ValidationError as exc:
        errors = exc.errors()
        id_problem = any(str(part) in _ID_FIELDS for error in errors for part in error.get("loc", ()))
        raise InvalidEvent(
            f"invalid {model.__name__} event: {validation_problems(errors, root='event')}",
            code="invalid_id" if id_problem else None,
        ) from None
