"""Object operations over one bucket: presign, head, copy, list.

The client is always passed in (see ``scenestore.clients``); this module never creates one. Deleting a
prefix lives in ``scenestore.prefix_delete`` because it has its own concurrency and time budget.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from scenestore.errors import InvalidRequest, NotFound, StorageError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: Above this size a single CopyObject is refused by S3/R2; s3transfer switches to UploadPartCopy.
MAX_SINGLE_COPY: Final = 5 * 1024**3
LIST_PAGE: Final = 1000
_MISSING_CODES: Final = frozenset({"404", "NoSuchKey", "NotFound"})


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    content_type: str | None = None
    last_modified: datetime | None = None


@dataclass(frozen=True, slots=True)
class PresignedRequest:
    """A URL plus the headers the client must send with it (they are part of the signature)."""

    method: str
    url: str
    headers: dict[str, str]
    expires_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "url": self.url,
            "headers": self.headers,
            "expires_at": self.expires_at.isoformat().replace("+00:00", "Z"),
        }


def error_code(exc: BaseException) -> str:
    """The S3 error code of a botocore ``ClientError`` (``""`` for anything else)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


def is_missing(exc: BaseException) -> bool:
    return error_code(exc) in _MISSING_CODES


class ObjectStore:
    """One bucket behind one S3 client."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    # -- presigning ---------------------------------------------------------------------------------
    def presign_put(self, key: str, *, content_type: str, content_length: int, expires_in: int) -> PresignedRequest:
        """A PUT URL whose SigV4 signature covers the key, ``Content-Type`` and ``Content-Length``.

        R2 has no POST-policy uploads, so binding type and exact size into the signed headers is how an
        upload is limited: a different type or size no longer matches the signature.
        """
        if content_length < 0:
            raise InvalidRequest("content_length must not be negative")
        url = self.client.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ContentType": content_type,
                "ContentLength": content_length,
            },
            ExpiresIn=expires_in,
            HttpMethod="PUT",
        )
        return PresignedRequest(
            method="PUT",
            url=url,
            headers={"Content-Type": content_type, "Content-Length": str(content_length)},
            expires_at=_expiry(expires_in),
        )

    def presign_get(self, key: str, *, expires_in: int) -> PresignedRequest:
        url = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in, HttpMethod="GET"
        )
        return PresignedRequest(method="GET", url=url, headers={}, expires_at=_expiry(expires_in))

    # -- reading ------------------------------------------------------------------------------------
    def head(self, key: str) -> ObjectInfo | None:
        """Metadata of ``key``, or ``None`` when it does not exist."""
        from botocore.exceptions import ClientError

        try:
            response = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise StorageError(f"HEAD {key} failed: {error_code(exc) or exc}") from exc
        return ObjectInfo(
            key=key,
            size=int(response["ContentLength"]),
            etag=str(response.get("ETag", "")).strip('"'),
            content_type=response.get("ContentType"),
            last_modified=response.get("LastModified"),
        )

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def require(self, key: str) -> ObjectInfo:
        info = self.head(key)
        if info is None:
            raise NotFound("no such object")
        return info

    def iter_pages(
        self, prefix: str, *, start_after: str | None = None, page_size: int = LIST_PAGE
    ) -> Iterator[list[ObjectInfo]]:
        """Pages of objects under ``prefix`` in key order; one page in memory at a time."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": page_size}
        if start_after:
            kwargs["StartAfter"] = start_after
        while True:
            response = self.client.list_objects_v2(**kwargs)
            contents = response.get("Contents", [])
            if contents:
                yield [
                    ObjectInfo(
                        key=item["Key"],
                        size=int(item.get("Size", 0)),
                        etag=str(item.get("ETag", "")).strip('"'),
                        last_modified=item.get("LastModified"),
                    )
                    for item in contents
                ]
            token = response.get("NextContinuationToken")
            if not response.get("IsTruncated") or not token:
                return
            kwargs.pop("StartAfter", None)
            kwargs["ContinuationToken"] = token

    def iter_objects(self, prefix: str, *, start_after: str | None = None) -> Iterator[ObjectInfo]:
        for page in self.iter_pages(prefix, start_after=start_after):
            yield from page

    # -- writing ------------------------------------------------------------------------------------
    def put_bytes(self, key: str, body: bytes, *, content_type: str | None = None) -> ObjectInfo:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": body}
        if content_type:
            kwargs["ContentType"] = content_type
        response = self.client.put_object(**kwargs)
        return ObjectInfo(
            key=key, size=len(body), etag=str(response.get("ETag", "")).strip('"'), content_type=content_type
        )

    def get_bytes(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if is_missing(exc):
                raise NotFound("no such object") from exc
            raise

    def copy(self, source_key: str, target_key: str, *, size: int | None = None) -> None:
        """Server-side copy, no byte passes through this machine.

        Up to 5 GiB it is one ``CopyObject``; above, s3transfer's managed copy splits it into
        ``UploadPartCopy`` parts (``size`` avoids an extra HEAD when the caller already knows it).
        """
        if size is None:
            size = self.require(source_key).size
        source = {"Bucket": self.bucket, "Key": source_key}
        if size <= MAX_SINGLE_COPY:
            self.client.copy_object(Bucket=self.bucket, Key=target_key, CopySource=source)  # type: ignore[arg-type]
            return
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(multipart_threshold=MAX_SINGLE_COPY, multipart_chunksize=512 * 1024**2)
        self.client.copy(source, self.bucket, target_key, Config=config)  # type: ignore[arg-type]

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def ensure_bucket(self, *, cors_origins: tuple[str, ...] = ("*",)) -> None:
        """Create the bucket if missing and set the contract's CORS rule (local stack and tests)."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)
        self.client.put_bucket_cors(Bucket=self.bucket, CORSConfiguration=bucket_cors(cors_origins))  # type: ignore[arg-type]


def bucket_cors(origins: tuple[str, ...]) -> dict[str, Any]:
    """The bucket CORS rule of contract section 4: browsers PUT/GET/HEAD directly, and may read ETag."""
    return {
        "CORSRules": [
            {
                "AllowedOrigins": list(origins),
                "AllowedMethods": ["PUT", "GET", "HEAD"],
                "AllowedHeaders": ["Content-Type", "Content-Length"],
                "ExposeHeaders": ["ETag"],
                "MaxAgeSeconds": 3600,
            }
        ]
    }


def _expiry(expires_in: int) -> datetime:
    return datetime.fromtimestamp(int(time.time()) + expires_in, tz=UTC)
