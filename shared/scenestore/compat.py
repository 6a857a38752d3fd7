"""A drop-in ``R2Storage`` for the Auto Shorts backend, built on the shared layer.

The backend already calls ``R2Storage`` (``app/services/storage.py``): ``get_file_path``, async
``upload_file``, ``upload_file_content``, ``delete_project_files``, ``delete_scene_files``,
``delete_directory``, ``download_file``, ``delete_file``, ``get_file_url``. This class keeps those names,
argument orders and return shapes (``(ok, url_or_message)`` tuples, the deletion dict) so callers keep
working after one import change, and drops the seed's bugs (contract section 8):

- ``get_file_path(user, project, file_type="output", filename=...)`` builds the ``output/`` key instead of
  silently dropping ``file_type``; ids are validated (``InvalidId``, never rewritten); filenames are
  sanitized as the contract says; an argument combination that cannot be honoured is an error, never a
  shorter path (a prefix returned where a key was meant is how a whole scene gets deleted);
- ``delete_directory`` refuses ``""`` (the whole bucket) and prefixes without a trailing ``/`` (``p1`` would
  match ``p10``) with ``InvalidRequest``; it deletes with batched, concurrent ``DeleteObjects`` and reports
  exact counts;
- nothing is downloaded to shared temporary paths; blocking boto3 calls run in ``asyncio.to_thread`` so
  the backend's event loop is never blocked.

Configuration comes from the ``SCENESTORE_*`` environment (contract section 3) through
``scenestore.services``; tests and special callers inject ``services`` or a ``client`` and ``bucket``.
"""

from __future__ import annotations

import asyncio
import io
import mimetypes
import os
from typing import TYPE_CHECKING, Any, BinaryIO

from scenestore.errors import InvalidKey, InvalidRequest, ScenestoreError
from scenestore.keys import (
    OUTPUT_KIND,
    SCENE_KINDS,
    output_key,
    output_prefix,
    project_prefix,
    scene_key,
    scene_prefix,
    validate_kind,
)
from scenestore.observability import logger
from scenestore.prefix_delete import check_prefix, delete_prefix
from scenestore.storage import ObjectStore, error_code, is_missing

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from scenestore.services import Services

DEFAULT_CONTENT_TYPE = "application/octet-stream"


class R2Storage:
    """Cloudflare R2 (or any S3) storage for Auto Shorts, with the backend's existing method names."""

    def __init__(
        self,
        services: Services | None = None,
        *,
        client: S3Client | None = None,
        bucket: str | None = None,
        url_expiration: int | None = None,
    ) -> None:
        """Everything is optional: by default the process's services (from the environment) are used,
        resolved on first use so that constructing the object at import time connects to nothing."""
        self._services = services
        self._client = client
        self._bucket = bucket
        self._url_expiration = url_expiration

    # -- collaborators --------------------------------------------------------------------------------
    def _resolved_services(self) -> Services:
        if self._services is None:
            from scenestore.services import get_services

            self._services = get_services()
        return self._services

    @property
    def s3(self) -> S3Client:
        """The boto3 client (the backend's attribute name)."""
        return self._client if self._client is not None else self._resolved_services().s3

    @property
    def bucket_name(self) -> str:
        return self._bucket if self._bucket is not None else self._resolved_services().settings.bucket

    @property
    def store(self) -> ObjectStore:
        return ObjectStore(self.s3, self.bucket_name)

    @property
    def url_expiration(self) -> int:
        if self._url_expiration is not None:
            return self._url_expiration
        return self._resolved_services().settings.download_ttl

    def get_s3_client(self) -> S3Client:
        return self.s3

    # -- keys -----------------------------------------------------------------------------------------
    def get_file_path(
        self,
        user_id: str,
        project_id: str,
        scene_id: str | None = None,
        file_type: str | None = None,
        filename: str | None = None,
    ) -> str:
        """A key of the layout, or (without ``filename``) the prefix that contains such keys, ending in ``/``.

        ====================  ==========  ========  ==================================================
        scene_id              file_type   filename  result
        ====================  ==========  ========  ==================================================
        -                     -           -         ``users/u/projects/p/``
        -                     output      -/name    ``users/u/projects/p/output/`` / ``.../output/name``
        s                     -           -         ``users/u/projects/p/scenes/s/``
        s                     image|...   -/name    ``.../scenes/s/image/`` / ``.../scenes/s/image/name``
        ====================  ==========  ========  ==================================================

        Anything else (a filename without ``file_type``, a scene kind without scene, ``output`` with a
        scene, an unknown kind) raises ``InvalidKey``; bad ids raise ``InvalidId``; a filename that is
        empty once sanitized raises ``InvalidFilename``.
        """
        if file_type is None:
            if filename is not None:
                raise InvalidKey("a filename needs a file_type (image, video, audio or output)")
            return (
                project_prefix(user_id, project_id) if scene_id is None else scene_prefix(user_id, project_id, scene_id)
            )
        kind = validate_kind(file_type)
        if scene_id is None:
            if kind != OUTPUT_KIND:
                raise InvalidKey(f"file_type {kind!r} needs a scene_id; only 'output' belongs to the project")
            return output_prefix(user_id, project_id) if filename is None else output_key(user_id, project_id, filename)
        if kind not in SCENE_KINDS:
            raise InvalidKey("output files belong to the project, not to a scene")
        if filename is None:
            return f"{scene_prefix(user_id, project_id, scene_id)}{kind}/"
        return scene_key(user_id, project_id, scene_id, kind, filename)

    def _target_key(
        self,
        name: str | None,
        object_name: str | None,
        user_id: str | None,
        project_id: str | None,
        scene_id: str | None,
        file_type: str | None,
    ) -> str:
        """The seed's rule: with user and project the key is structured, else ``object_name`` is the key."""
        if user_id and project_id:
            if not name:
                raise InvalidRequest("a filename (or object_name) is needed for a structured upload")
            return self.get_file_path(user_id, project_id, scene_id, file_type, name)
        if not object_name or object_name.endswith("/") or object_name.startswith("/"):
            raise InvalidRequest("object_name must be a key (not empty, not a prefix, no leading '/')")
        return object_name

    # -- uploads --------------------------------------------------------------------------------------
    async def upload_file(
        self,
        file_path: str,
        object_name: str | None = None,
        user_id: str | None = None,
        project_id: str | None = None,
        scene_id: str | None = None,
        file_type: str | None = None,
    ) -> tuple[bool, str]:
        """Upload a local file; ``(True, presigned GET URL)`` or ``(False, reason)``."""
        if not os.path.isfile(file_path):
            return False, f"File {file_path} does not exist"
        try:
            name = os.path.basename(file_path) if object_name is None else object_name
            key = self._target_key(
                name, object_name or os.path.basename(file_path), user_id, project_id, scene_id, file_type
            )
        except ScenestoreError as exc:
            logger.warning("upload refused", extra={"user_id": user_id, "project_id": project_id, "error": exc.code})
            return False, f"{exc.code}: {exc.message}"
        content_type = _guess_type(key)

        def upload() -> str:
            # s3transfer: multipart above its threshold, streamed from disk, never read whole into memory.
            self.s3.upload_file(file_path, self.bucket_name, key, ExtraArgs={"ContentType": content_type})
            return self.store.presign_get(key, expires_in=self.url_expiration).url

        return await self._attempt("upload_file", key, upload, user_id=user_id, project_id=project_id)

    async def upload_file_content(
        self,
        file_content: bytes | bytearray | memoryview | BinaryIO,
        object_name: str | None = None,
        user_id: str | None = None,
        project_id: str | None = None,
        scene_id: str | None = None,
        file_type: str | None = None,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> tuple[bool, str]:
        """Upload bytes (or a binary file object); ``(True, presigned GET URL)`` or ``(False, reason)``.

        With ``user_id`` and ``project_id`` the key is structured and ``filename`` (else ``object_name``, as
        in the seed) names the file; without them ``object_name`` is the key itself.
        """
        try:
            key = self._target_key(filename or object_name, object_name, user_id, project_id, scene_id, file_type)
        except ScenestoreError as exc:
            logger.warning("upload refused", extra={"user_id": user_id, "project_id": project_id, "error": exc.code})
            return False, f"{exc.code}: {exc.message}"
        resolved_type = content_type or _guess_type(key)

        def upload() -> str:
            if isinstance(file_content, bytes | bytearray | memoryview):
                body: BinaryIO = io.BytesIO(bytes(file_content))
            else:
                body = file_content
            self.s3.upload_fileobj(body, self.bucket_name, key, ExtraArgs={"ContentType": resolved_type})
            return self.store.presign_get(key, expires_in=self.url_expiration).url

        return await self._attempt("upload_file_content", key, upload, user_id=user_id, project_id=project_id)

    # -- reads ----------------------------------------------------------------------------------------
    async def download_file(self, object_name: str, file_path: str) -> tuple[bool, str]:
        """Download to ``file_path`` (the caller chooses a private path; nothing shared like ``/tmp/<name>``)."""

        def download() -> str:
            self.s3.download_file(self.bucket_name, object_name, file_path)
            return f"File downloaded to {file_path}"

        return await self._attempt("download_file", object_name, download)

    async def get_file_url(self, object_name: str, expiration: int | None = None) -> str | None:
        """A presigned GET URL (``SCENESTORE_DOWNLOAD_TTL`` seconds unless ``expiration`` is given)."""
        expires_in = self.url_expiration if expiration is None else expiration
        try:
            return self.store.presign_get(object_name, expires_in=expires_in).url
        except Exception:
            logger.exception("presigning failed", extra={"key": object_name})
            return None

    async def check_files_exist(self, prefix: str) -> bool:
        """Whether any object lies under ``prefix``."""
        response = await asyncio.to_thread(self.s3.list_objects_v2, Bucket=self.bucket_name, Prefix=prefix, MaxKeys=1)
        return bool(response.get("KeyCount") or response.get("Contents"))

    # -- deletes --------------------------------------------------------------------------------------
    async def delete_file(self, object_name: str) -> tuple[bool, str]:
        """Delete one object (deleting a missing object succeeds, as in S3)."""

        def delete() -> str:
            self.s3.delete_object(Bucket=self.bucket_name, Key=object_name)
            return f"Deleted {object_name}"

        return await self._attempt("delete_file", object_name, delete)

    async def delete_directory(self, prefix: str) -> dict[str, Any]:
        """Delete every object under ``prefix``: ``{deleted_count, failed_count, total_bytes, errors, ...}``.

        Refuses ``""`` and a prefix without trailing ``/`` (``InvalidRequest``): the seed's bucket-clearing
        script called this with ``""``; use ``scenestore clear-bucket --confirm BUCKET`` for that.
        """
        check_prefix(prefix)
        report = await asyncio.to_thread(delete_prefix, self.s3, self.bucket_name, prefix)
        result = report.to_dict()
        result["prefix"] = prefix
        result["success"] = report.failed_count == 0 and report.complete
        log = logger.warning if report.failed_count else logger.info
        log(
            "prefix deleted",
            extra={"prefix": prefix, "deleted": report.deleted_count, "failed": report.failed_count},
        )
        return result

    async def delete_project_files(self, user_id: str, project_id: str) -> dict[str, Any]:
        """Everything under ``users/{user}/projects/{project}/`` (legacy keys: the delete-project function)."""
        return await self.delete_directory(self.get_file_path(user_id, project_id))

    async def delete_scene_files(self, user_id: str, project_id: str, scene_id: str) -> dict[str, Any]:
        """Everything under ``users/{user}/projects/{project}/scenes/{scene}/``."""
        return await self.delete_directory(self.get_file_path(user_id, project_id, scene_id))

    # -- helpers --------------------------------------------------------------------------------------
    async def _attempt(self, action: str, key: str, work: Any, **log_keys: Any) -> tuple[bool, str]:
        """Run blocking ``work`` in a thread; S3 failures become ``(False, reason)`` as the backend expects."""
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            result: str = await asyncio.to_thread(work)
        except ClientError as exc:
            reason = "not found" if is_missing(exc) else (error_code(exc) or "error")
            logger.warning(f"{action} failed", extra={"key": key, "error": reason, **log_keys})
            return False, f"R2 error: {reason}: {exc}"
        except (BotoCoreError, S3UploadFailedError, OSError) as exc:
            logger.warning(f"{action} failed", extra={"key": key, "error": type(exc).__name__, **log_keys})
            return False, f"{type(exc).__name__}: {exc}"
        logger.info(f"{action} ok", extra={"key": key, **log_keys})
        return True, result


def _guess_type(key: str) -> str:
    guessed, _ = mimetypes.guess_type(key)
    return guessed or DEFAULT_CONTENT_TYPE
