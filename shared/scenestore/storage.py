"""Object operations over one bucket: presign, head, copy, list, multipart uploads, bucket set-up.

The client is always passed in (see ``scenestore.clients``); this module never creates one. Deleting a
prefix lives in ``scenestore.prefix_delete`` because it has its own concurrency and time budget.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from scenestore.errors import InvalidRequest, NotFound, StorageError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

#: Above this size a single CopyObject is refused by S3/R2; s3transfer switches to UploadPartCopy.
MAX_SINGLE_COPY: Final = 5 * 1024**3
LIST_PAGE: Final = 1000
_MISSING_CODES: Final = frozenset({"404", "NoSuchKey", "NotFound"})
#: The multipart upload id is unknown (never created, aborted, completed, or aborted by the lifecycle rule).
_NO_SUCH_UPLOAD: Final = "NoSuchUpload"
#: CompleteMultipartUpload refusals that the client caused (a part missing, a wrong ETag, a part too small).
_BAD_COMPLETION_CODES: Final = frozenset({"InvalidPart", "InvalidPartOrder", "EntityTooSmall", "MalformedXML"})
#: The ID of the one lifecycle rule this project owns in a bucket; other rules are left as they are.
ABORT_MULTIPART_RULE_ID: Final = "scenestore-abort-incomplete-multipart"
#: What every presigned GET asks the store to answer with (``response-cache-control``): a browser may keep the
#: media, a shared cache (a CDN, a proxy) never, whatever ``Cache-Control`` the object was stored with.
DOWNLOAD_CACHE_CONTROL: Final = "private"
#: HeadObject fields -> the response header each one makes the store send back on every GET. A client can store
#: them by adding the header to an upload (a presigned PUT signs only what it names), and the service sets none.
SERVED_HEADER_FIELDS: Final = {
    "CacheControl": "Cache-Control",
    "ContentDisposition": "Content-Disposition",
    "ContentEncoding": "Content-Encoding",
    "ContentLanguage": "Content-Language",
    "Expires": "Expires",
    "ExpiresString": "Expires",  # botocore's field when the stored value is not a date it can parse
}


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    content_type: str | None = None
    last_modified: datetime | None = None
    served_headers: Mapping[str, str] = field(default_factory=dict)
    """Headers the store will answer GETs with besides type and length (HEAD only): ``Cache-Control``,
    ``Content-Disposition``, ``Content-Encoding``, ``Content-Language``, ``Expires`` and ``x-amz-meta-*``."""


def served_headers(response: Mapping[str, Any]) -> dict[str, str]:
    """The :data:`SERVED_HEADER_FIELDS` and user metadata (``x-amz-meta-<name>``) a HeadObject response carries."""
    found = {name: str(response[name_in]) for name_in, name in SERVED_HEADER_FIELDS.items() if response.get(name_in)}
    for name, value in (response.get("Metadata") or {}).items():
        found[f"x-amz-meta-{name}"] = str(value)
    return found


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


@dataclass(frozen=True, slots=True)
class PartInfo:
    """One part a multipart upload already holds, in the shape S3's ``ListParts`` (and Uppy) use."""

    part_number: int
    size: int
    etag: str

    def to_dict(self) -> dict[str, Any]:
        return {"PartNumber": self.part_number, "Size": self.size, "ETag": self.etag}


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
        return self._presign(
            "put_object",
            "PUT",
            key,
            {"ContentType": content_type, "ContentLength": content_length},
            {"Content-Type": content_type, "Content-Length": str(content_length)},
            expires_in,
        )

    def presign_upload_part(
        self, key: str, *, upload_id: str, part_number: int, content_length: int, expires_in: int
    ) -> PresignedRequest:
        """An ``UploadPart`` PUT URL for one part, its exact length signed like :meth:`presign_put`'s.

        The part's type needs no signing: the object's ``Content-Type`` was fixed when the upload was created.
        """
        params = {"UploadId": upload_id, "PartNumber": part_number, "ContentLength": content_length}
        return self._presign("upload_part", "PUT", key, params, {"Content-Length": str(content_length)}, expires_in)

    def presign_get(self, key: str, *, expires_in: int) -> PresignedRequest:
        """A GET URL whose answer says ``Cache-Control: private`` (:data:`DOWNLOAD_CACHE_CONTROL`), signed in."""
        params = {"ResponseCacheControl": DOWNLOAD_CACHE_CONTROL}
        return self._presign("get_object", "GET", key, params, {}, expires_in)

    def _presign(
        self, operation: str, method: str, key: str, params: dict[str, Any], headers: dict[str, str], expires_in: int
    ) -> PresignedRequest:
        """Sign ``operation`` on ``key`` in this bucket; ``headers`` are the ones ``params`` bind into the
        signature, handed to the client with the URL: sent any other way, the request no longer matches it."""
        url = self.client.generate_presigned_url(
            operation,
            Params={"Bucket": self.bucket, "Key": key, **params},
            ExpiresIn=expires_in,
            HttpMethod=method,
        )
        return PresignedRequest(method=method, url=url, headers=headers, expires_at=_expiry(expires_in))

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
            served_headers=served_headers(response),
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

    def replace_headers(self, key: str, *, content_type: str) -> None:
        """Copy ``key`` onto itself keeping its bytes and only ``content_type``: every other stored header and all
        user metadata are dropped (``MetadataDirective: REPLACE``; above 5 GiB s3transfer's part copy, which
        carries over only what it is given)."""
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(multipart_threshold=MAX_SINGLE_COPY, multipart_chunksize=512 * 1024**2)
        self.client.copy(
            {"Bucket": self.bucket, "Key": key},  # type: ignore[arg-type]
            self.bucket,
            key,
            ExtraArgs={"ContentType": content_type, "MetadataDirective": "REPLACE"},
            Config=config,
        )

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    # -- multipart uploads --------------------------------------------------------------------------
    # A missing upload id is ``NotFound`` (the API's 404); a completion S3 refuses because of the client's
    # parts is ``InvalidRequest`` (400); anything else is a ``StorageError`` naming the S3 code.
    def create_multipart(self, key: str, *, content_type: str) -> str:
        """Start a multipart upload of ``key`` with its ``Content-Type``; returns the upload id."""
        response = self.client.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType=content_type)
        return str(response["UploadId"])

    def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        """Every part the upload holds so far, in part-number order (all pages: up to 10,000 parts)."""
        from botocore.exceptions import ClientError

        parts: list[PartInfo] = []
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "UploadId": upload_id}
        while True:
            try:
                response = self.client.list_parts(**kwargs)
            except ClientError as exc:
                raise _multipart_error(exc, "ListParts", key) from exc
            parts.extend(
                PartInfo(part_number=int(p["PartNumber"]), size=int(p["Size"]), etag=str(p["ETag"]))
                for p in response.get("Parts", [])
            )
            marker = response.get("NextPartNumberMarker")
            if not response.get("IsTruncated") or not marker:
                return parts
            kwargs["PartNumberMarker"] = marker

    def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        """Assemble the object from ``(part_number, etag)`` pairs, which must be in ascending order."""
        from botocore.exceptions import ClientError

        listed: list[CompletedPartTypeDef] = [{"PartNumber": number, "ETag": etag} for number, etag in parts]
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": listed}
            )
        except ClientError as exc:
            raise _multipart_error(exc, "CompleteMultipartUpload", key) from exc

    def abort_multipart(self, key: str, upload_id: str) -> bool:
        """Abort the upload and free its parts; ``False`` when it was already gone (abort is idempotent)."""
        from botocore.exceptions import ClientError

        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if error_code(exc) == _NO_SUCH_UPLOAD:
                return False
            raise _multipart_error(exc, "AbortMultipartUpload", key) from exc
        return True

    def multipart_upload_ids(self, key: str) -> list[str]:
        """The ids of the uploads in progress for exactly ``key`` (tests and operators: what is left behind)."""
        response = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=key)
        return [str(u["UploadId"]) for u in response.get("Uploads", []) if u.get("Key") == key]

    # -- bucket set-up ------------------------------------------------------------------------------
    def ensure_bucket(self, *, cors_origins: tuple[str, ...] = ("*",), multipart_abort_days: int | None = None) -> None:
        """Create the bucket if missing and set the contract's CORS rule (local stack and tests), and, given
        ``multipart_abort_days``, the lifecycle rule that aborts incomplete multipart uploads."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket, **create_bucket_location(self.client.meta.region_name))
        self.client.put_bucket_cors(Bucket=self.bucket, CORSConfiguration=bucket_cors(cors_origins))  # type: ignore[arg-type]
        if multipart_abort_days is not None:
            self.ensure_abort_multipart_rule(multipart_abort_days)

    def ensure_abort_multipart_rule(self, days: int) -> None:
        """Set our lifecycle rule (:func:`abort_multipart_rule`), keeping every other rule the bucket has:
        ``PutBucketLifecycleConfiguration`` replaces the whole configuration, so the rest is read first."""
        from botocore.exceptions import ClientError

        try:
            rules = self.client.get_bucket_lifecycle_configuration(Bucket=self.bucket).get("Rules", [])
        except ClientError as exc:
            if error_code(exc) != "NoSuchLifecycleConfiguration":
                raise StorageError(f"reading the lifecycle rules of {self.bucket} failed: {error_code(exc)}") from exc
            rules = []
        kept = [rule for rule in rules if rule.get("ID") != ABORT_MULTIPART_RULE_ID]
        configuration = {"Rules": [*kept, abort_multipart_rule(days)]}
        self.client.put_bucket_lifecycle_configuration(
            Bucket=self.bucket,
            LifecycleConfiguration=configuration,  # type: ignore[arg-type]
        )

    def abort_multipart_days(self) -> int | None:
        """The days after which our lifecycle rule aborts incomplete uploads, or ``None`` without the rule."""
        from botocore.exceptions import ClientError

        try:
            rules = self.client.get_bucket_lifecycle_configuration(Bucket=self.bucket).get("Rules", [])
        except ClientError as exc:
            if error_code(exc) == "NoSuchLifecycleConfiguration":
                return None
            raise
        for rule in rules:
            if rule.get("ID") == ABORT_MULTIPART_RULE_ID and rule.get("Status") == "Enabled":
                return int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        return None


def abort_multipart_rule(days: int) -> dict[str, Any]:
    """The lifecycle rule of contract section 4: abort multipart uploads still incomplete ``days`` after they
    began, bucket-wide (S3 and R2 both accept ``AbortIncompleteMultipartUpload`` with an empty prefix)."""
    if days < 1:
        raise InvalidRequest("multipart uploads can be aborted after 1 day at the earliest")
    return {
        "ID": ABORT_MULTIPART_RULE_ID,
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": days},
    }


def _multipart_error(exc: BaseException, operation: str, key: str) -> Exception:
    code = error_code(exc)
    if code == _NO_SUCH_UPLOAD:
        return NotFound("upload not found")
    if code in _BAD_COMPLETION_CODES:
        return InvalidRequest(f"the bucket refused the parts: {code}")
    return StorageError(f"{operation} {key} failed: {code or exc}")


#: Regions whose CreateBucket takes no location constraint: S3's default region, and R2's ``auto``.
_NO_LOCATION_CONSTRAINT: Final = frozenset({"us-east-1", "auto", ""})


def create_bucket_location(region: str | None) -> dict[str, Any]:
    """CreateBucket's ``CreateBucketConfiguration`` for ``region``: S3 refuses a bucket created without one
    anywhere but us-east-1 (``IllegalLocationConstraintException``), and refuses ``us-east-1`` named in it."""
    if (region or "") in _NO_LOCATION_CONSTRAINT:
        return {}
    return {"CreateBucketConfiguration": {"LocationConstraint": region}}


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
