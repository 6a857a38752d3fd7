"""An S3 client confined to one prefix of one bucket: how the ``s3_peer`` suite runs against a bucket it does not own
(a dev R2 bucket) and leaves every other object as it was.

Every key the code under test names (``users/u/projects/p1/...``, a legacy ``media/a.jpg``, a listing's prefix, a
copy source, a ``DeleteObjects`` batch, a presigned URL's key) is sent as ``<prefix><key>``, and every key in an
answer comes back without it, so the service's code runs unchanged and sees a bucket that holds only what the test
put there. Bucket-level writes (create, delete, CORS, lifecycle, policy...) and other buckets are refused outright:
the suite never changes the bucket's rules. Botocore hooks do it: ``before-parameter-build`` first (so presigned
URLs are covered too), ``before-call`` last (a request body written by hand), ``after-call``; and a guard before
signing refuses, loudly, any request that would still reach outside the prefix.
"""

from __future__ import annotations

import html
import re
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape as xml_escape

from scenestore import prefix_delete

#: Request parameters holding a key or a key prefix.
_KEY_PARAMS: Final = ("Key", "Prefix", "StartAfter", "KeyMarker", "Marker")
#: Listings that, without a ``Prefix``, would list the whole bucket.
_LISTINGS: Final = frozenset({"ListObjectsV2", "ListObjects", "ListMultipartUploads", "ListObjectVersions"})
#: Calls without a key that are allowed: the listings (confined by their prefix), batch deletes (by their keys),
#: and reading the bucket's rules. Anything else without a key would act on the whole bucket.
_ALLOWED_WITHOUT_KEY: Final = _LISTINGS | {
    "DeleteObjects",
    "HeadBucket",
    "GetBucketCors",
    "GetBucketLifecycleConfiguration",
    "GetBucketLocation",
}
#: Answer fields holding a key or a prefix.
_KEY_FIELDS: Final = ("Key", "Prefix", "StartAfter", "KeyMarker", "NextKeyMarker", "Marker", "NextMarker")
_KEY_LISTS: Final = ("Contents", "Uploads", "Deleted", "Errors", "CommonPrefixes", "Versions", "DeleteMarkers")


class ConfinementError(RuntimeError):
    """The code under test asked for something outside the confined prefix (a test bug, never ignored)."""


def confine(client: Any, bucket: str, prefix: str) -> Any:
    """Confine ``client`` (in place) to ``prefix`` (ending in ``/``) of ``bucket``; returns it."""
    if not prefix.endswith("/") or prefix == "/":
        raise ValueError(f"a confining prefix must end in '/': {prefix!r}")

    def before(params: dict[str, Any], model: Any, **_: Any) -> None:
        operation = model.name
        if "Bucket" in params and params["Bucket"] != bucket:
            raise ConfinementError(f"{operation} on bucket {params['Bucket']!r}: confined to {bucket!r}")
        if "Key" not in params and operation not in _ALLOWED_WITHOUT_KEY:
            raise ConfinementError(f"{operation}: a bucket-level call, refused while confined to {prefix!r}")
        for name in _KEY_PARAMS:
            if isinstance(params.get(name), str):
                params[name] = prefix + params[name]
        if operation in _LISTINGS and "Prefix" not in params:
            params["Prefix"] = prefix
        source = params.get("CopySource")
        if isinstance(source, dict):
            _require_bucket(source.get("Bucket"), bucket, operation)
            params["CopySource"] = {**source, "Key": prefix + source["Key"]}
        elif isinstance(source, str):
            source_bucket, _, key = source.lstrip("/").partition("/")
            _require_bucket(source_bucket, bucket, operation)
            params["CopySource"] = f"{source_bucket}/{prefix}{key}"
        delete = params.get("Delete")
        if isinstance(delete, dict):
            params["Delete"] = {**delete, "Objects": [{**o, "Key": prefix + o["Key"]} for o in delete["Objects"]]}

    def after(parsed: dict[str, Any], **_: Any) -> None:
        _strip(parsed, prefix)
        for entries in (parsed.get(name) for name in _KEY_LISTS):
            for entry in entries or []:
                _strip(entry, prefix)
        lean = parsed.get(prefix_delete._LEAN_OBJECTS)  # prefix_delete's own parse of a listing: (key, size)
        if isinstance(lean, list):
            parsed[prefix_delete._LEAN_OBJECTS] = [(_cut(key, prefix), size) for key, size in lean]

    def body_keys(params: dict[str, Any], model: Any, **_: Any) -> None:
        """A ``DeleteObjects`` body written by hand (``prefix_delete`` writes its own XML in a ``before-call`` hook,
        from keys it read unprefixed) gets the prefix too: registered last, it runs after any such hook."""
        body = params.get("body")
        if model.name == "DeleteObjects" and isinstance(body, bytes | str):
            text = body.decode() if isinstance(body, bytes) else body
            text = _KEY_ELEMENT.sub(lambda m: m[0] if m[1].startswith(escaped) else f"<Key>{escaped}{m[1]}</Key>", text)
            params["body"] = text.encode() if isinstance(body, bytes) else text

    def guard(request: Any, operation_name: str, **_: Any) -> None:
        """The last look before a request is signed: a key outside the prefix is a test bug, never sent."""
        url = urlsplit(request.url)
        path = unquote(url.path)
        listed = parse_qs(url.query).get("prefix", [""])[0]
        bucket_level = path.rstrip("/") == f"/{bucket}" and (
            operation_name not in _LISTINGS or listed.startswith(prefix)
        )
        under = path.startswith(f"/{bucket}/{prefix}") or bucket_level
        keys = _KEY_ELEMENT.findall(_text(request.body)) if operation_name == "DeleteObjects" else []
        if not under or any(not html.unescape(key).startswith(prefix) for key in keys):
            raise ConfinementError(f"{operation_name} {path} would reach outside {prefix!r}: not sent")

    escaped = xml_escape(prefix)
    events = client.meta.events
    events.register_first("before-parameter-build.s3", before, unique_id=f"confine-before-{prefix}")
    events.register_last("before-call.s3", body_keys, unique_id=f"confine-body-{prefix}")
    events.register_last("before-sign.s3", guard, unique_id=f"confine-guard-{prefix}")
    events.register("after-call.s3", after, unique_id=f"confine-after-{prefix}")
    return client


_KEY_ELEMENT: Final = re.compile(r"<Key>([^<]*)</Key>")


def _text(body: object) -> str:
    if isinstance(body, bytes):
        return body.decode("utf-8", "replace")
    return body if isinstance(body, str) else ""


def _require_bucket(given: object, bucket: str, operation: str) -> None:
    if given != bucket:
        raise ConfinementError(f"{operation} copies from bucket {given!r}: confined to {bucket!r}")


def _strip(fields: dict[str, Any], prefix: str) -> None:
    for name in _KEY_FIELDS:
        if isinstance(fields.get(name), str):
            fields[name] = _cut(fields[name], prefix)


def _cut(key: str, prefix: str) -> str:
    return key[len(prefix) :] if key.startswith(prefix) else key
