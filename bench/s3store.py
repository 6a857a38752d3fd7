"""A benchmark-only S3 store: in memory, a set delay per port, and well under a millisecond of CPU a request.

    .venv/bin/python bench/s3store.py --listen 4599:0 --listen 4600:25    # one store, two distances

BENCHMARK ONLY. It checks no signature, keeps everything in memory, knows one account and no versioning, ACLs,
tagging or encryption. moto stays the functional test server and LocalStack the signature checker; this store
exists so that a benchmark measures its contenders and not its server. moto costs about 130 ms of CPU for a
1,000-key listing page and 50 ms for a ``DeleteObjects`` (its XML serializer), so on a 2-core machine it, not
the client, set every figure. Here a listing page is a ``bisect`` into a sorted key list and a join of XML
fragments precomputed when each object was stored; a request is parsed off the socket by an
``asyncio.Protocol`` (HTTP/1.1, keep-alive, ``Expect: 100-continue``, chunked and ``aws-chunked`` bodies) and
answered from a ``call_later`` timer after its port's delay: no thread per request, no framework. It runs
at a raised priority where it may (``nice -10`` as root), so a busy machine delays its answers less.

What it speaks (path-style, enough for boto3, s5cmd and ``aws s3``): ListBuckets, Create/Head/DeleteBucket,
GetBucketLocation, ListObjectsV2 (prefix, delimiter, start-after, continuation, max-keys, encoding-type=url)
and ListObjects, Put/Get (``Range``)/Head/DeleteObject, CopyObject, DeleteObjects, CreateMultipartUpload,
UploadPart, UploadPartCopy, CompleteMultipartUpload, AbortMultipartUpload, ListParts, ListMultipartUploads.

Each request is counted by operation (``GET /_bench/counts``); ``scenestore.request_cost`` sorts them into
R2's Class A, Class B and free. Other ``/_bench/`` routes, never counted: ``seed`` (store keys without HTTP
per object), ``snapshot`` / ``restore`` (a bucket's objects saved and put back in milliseconds, so a million
objects are seeded once per benchmark, not once per run), ``reset`` (zero the counts).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import contextlib
import gc
import hashlib
import json
import os
import re
import socket
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote
from xml.sax.saxutils import escape

from tools import ChildStore, listener_arg

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
XML_HEAD = b'<?xml version="1.0" encoding="UTF-8"?>\n'
REGION = "us-east-1"
CHUNK = 1000  # keys per sorted chunk of a bucket's index
REASONS = {200: "OK", 204: "No Content", 206: "Partial Content", 304: "Not Modified", 400: "Bad Request",
           404: "Not Found", 409: "Conflict", 412: "Precondition Failed", 416: "Range Not Satisfiable",
           500: "Internal Server Error", 501: "Not Implemented"}  # fmt: skip


# -- the data ------------------------------------------------------------------------------------------------
class Obj:
    """One stored object; its ``<Contents>`` fragments are built once, when it is stored."""

    __slots__ = ("body", "content_type", "etag", "fragment", "fragment_url", "http_date", "iso_date", "key", "meta")

    def __init__(self, key: str, body: bytes, etag: str, dates: tuple[str, str], content_type: str, meta: Any):
        self.key, self.body, self.etag, self.content_type, self.meta = key, body, etag, content_type, meta
        self.iso_date, self.http_date = dates
        tail = (
            f"</Key><LastModified>{self.iso_date}</LastModified><ETag>&quot;{etag}&quot;</ETag>"
            f"<Size>{len(body)}</Size><StorageClass>STANDARD</StorageClass></Contents>"
        )
        self.fragment = f"<Contents><Key>{escape(key)}{tail}".encode()
        encoded = quote(key, safe="/")
        self.fragment_url = self.fragment if encoded == key else f"<Contents><Key>{encoded}{tail}".encode()


class SortedKeys:
    """A bucket's keys in order: chunks of at most ``2 * CHUNK`` sorted keys and each chunk's first key.

    Insert and remove cost a bisect and a short list shift, listing from a key costs one bisect (a plain sorted
    list of a million keys would shift eight megabytes per insert or delete).
    """

    def __init__(self, keys: Iterable[str] = ()) -> None:
        ordered = sorted(keys)
        self.chunks: list[list[str]] = [ordered[i : i + CHUNK] for i in range(0, len(ordered), CHUNK)]
        self.firsts: list[str] = [c[0] for c in self.chunks]

    def copy(self) -> SortedKeys:
        clone = SortedKeys()
        clone.chunks = [list(c) for c in self.chunks]
        clone.firsts = list(self.firsts)
        return clone

    def add(self, key: str) -> None:
        if not self.chunks:
            self.chunks, self.firsts = [[key]], [key]
            return
        i = max(0, bisect.bisect_right(self.firsts, key) - 1)
        chunk = self.chunks[i]
        bisect.insort(chunk, key)
        self.firsts[i] = chunk[0]
        if len(chunk) > 2 * CHUNK:
            self.chunks[i : i + 1] = [chunk[:CHUNK], chunk[CHUNK:]]
            self.firsts[i : i + 1] = [chunk[0], chunk[CHUNK]]

    def remove(self, key: str) -> None:
        i = bisect.bisect_right(self.firsts, key) - 1
        if i < 0:
            return
        chunk = self.chunks[i]
        j = bisect.bisect_left(chunk, key)
        if j < len(chunk) and chunk[j] == key:
            del chunk[j]
            if chunk:
                self.firsts[i] = chunk[0]
            else:
                del self.chunks[i], self.firsts[i]

    def remove_many(self, keys: Iterable[str]) -> None:
        """Remove ``keys`` (absent ones are ignored): a chunk losing many is filtered once, not shifted per key."""
        ordered = sorted(keys)  # usually sorted already (a listing page): then this is one pass
        by_chunk: dict[int, list[str]] = {}
        firsts, pos = self.firsts, 0
        while pos < len(ordered):
            i = bisect.bisect_right(firsts, ordered[pos]) - 1
            end = bisect.bisect_left(ordered, firsts[i + 1], pos) if i + 1 < len(firsts) else len(ordered)
            by_chunk[i] = ordered[pos:end]
            pos = end
        for i in sorted(by_chunk, reverse=True):
            if i < 0:
                continue
            chunk, gone = self.chunks[i], by_chunk[i]
            if len(gone) > 16:
                drop = set(gone)
                chunk[:] = [k for k in chunk if k not in drop]
            else:
                for key in gone:
                    j = bisect.bisect_left(chunk, key)
                    if j < len(chunk) and chunk[j] == key:
                        del chunk[j]
            if chunk:
                firsts[i] = chunk[0]
            else:
                del self.chunks[i], firsts[i]

    def locate(self, key: str) -> tuple[int, int]:
        """(chunk, position) of the first key ``> key``."""
        i = max(0, bisect.bisect_right(self.firsts, key) - 1)
        if i >= len(self.chunks):
            return i, 0
        return i, bisect.bisect_right(self.chunks[i], key)

    def scan(self, start: str, prefix: str, delimiter: str, max_keys: int) -> tuple[list[str], list[str], bool, bool]:
        """One listing page past ``start``: (keys, common prefixes, truncated, the last item is a common prefix).

        Without a delimiter a page is sliced out of the chunks whole (the keys between two keys that share the
        prefix share it too); with one, each subtree found is skipped with a bisect.
        """
        chunks = self.chunks
        i, j = self.locate(start)
        keys: list[str] = []
        commons: list[str] = []
        count, plen, last_common = 0, len(prefix), False
        while i < len(chunks):
            chunk = chunks[i]
            n = len(chunk)
            relocated = False
            while j < n:
                key = chunk[j]
                if not key.startswith(prefix):
                    if key > prefix:
                        return keys, commons, False, last_common
                    j += 1
                    continue
                if count == max_keys:
                    return keys, commons, True, last_common
                if delimiter:
                    cut = key.find(delimiter, plen)
                    if cut >= 0:
                        common = key[: cut + len(delimiter)]
                        commons.append(common)
                        count, last_common = count + 1, True
                        past = _past(common)
                        if chunk[-1] > past:
                            j = bisect.bisect_right(chunk, past, j)
                        else:
                            i, j = self.locate(past)
                            relocated = True
                            break
                        continue
                    keys.append(key)
                    count, last_common, j = count + 1, False, j + 1
                    continue
                block = chunk[j : j + max_keys - count]
                if not block[-1].startswith(prefix):
                    block = [k for k in block if k.startswith(prefix)]
                keys += block
                count, last_common, j = count + len(block), False, j + len(block)
                if len(block) < n - j + len(block) and j < n and not chunk[j].startswith(prefix):
                    return keys, commons, False, last_common
            if not relocated:
                i, j = i + 1, 0
        return keys, commons, False, last_common


class Bucket:
    def __init__(self, name: str) -> None:
        self.name = name
        self.objects: dict[str, Obj] = {}
        self.index = SortedKeys()
        self.uploads: dict[str, dict[str, Any]] = {}
        self.config: dict[str, bytes] = {}

    def put(self, obj: Obj) -> None:
        if obj.key not in self.objects:
            self.index.add(obj.key)
        self.objects[obj.key] = obj

    def delete(self, key: str) -> None:
        if self.objects.pop(key, None) is not None:
            self.index.remove(key)

    def delete_many(self, keys: Sequence[str]) -> None:
        pop = self.objects.pop
        self.index.remove_many([k for k in keys if pop(k, None) is not None])


class Dates:
    """LastModified in both forms, formatted at most once a second."""

    def __init__(self) -> None:
        self.second = -1
        self.value = ("", "")

    def now(self) -> tuple[str, str]:
        second = int(time.time())
        if second != self.second:
            self.second = second
            iso = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(second))
            self.value = (iso, formatdate(second, usegmt=True))
        return self.value


class S3Error(Exception):
    def __init__(self, status: int, code: str, message: str = "", **extra: str) -> None:
        super().__init__(message or code)
        self.status, self.code, self.message, self.extra = status, code, message or code, extra


Response = tuple[int, list[tuple[str, str]], bytes]


# -- the S3 operations ---------------------------------------------------------------------------------------
class Store:
    def __init__(self) -> None:
        self.buckets: dict[str, Bucket] = {}
        self.snapshots: dict[tuple[str, str], tuple[dict[str, Obj], SortedKeys]] = {}
        self.counts: Counter[str] = Counter()
        self.dates = Dates()
        self.bodies: dict[tuple[int, str], tuple[bytes, str]] = {}

    # requests: (method, path, query, headers, body) -> response; the operation is counted
    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        path, _, raw_query = target.partition("?")
        if path.startswith("/_bench/"):
            return self.bench(path[len("/_bench/") :], body)
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        bucket_name, _, key = unquote(path[1:]).partition("/")
        op = "Unknown"
        try:
            op, response = self.dispatch(method, bucket_name, key, query, headers, body)
        except S3Error as exc:
            op = getattr(exc, "op", op)
            response = self.error(exc, method)
        self.counts[op] += 1
        return response

    def dispatch(
        self, method: str, name: str, key: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> tuple[str, Response]:
        if not name:
            return "ListBuckets", self.list_buckets()
        if not key:
            for sub, (get_op, put_op, missing) in _BUCKET_CONFIG.items():
                if sub in query:
                    return self.bucket_config(method, self.bucket(name), sub, get_op, put_op, missing, body)
            routes = {
                ("GET", "location"): ("GetBucketLocation", self.get_location),
                ("GET", "uploads"): ("ListMultipartUploads", self.list_uploads),
                ("POST", "delete"): ("DeleteObjects", self.delete_objects),
            }
            for (verb, flag), (op, fn) in routes.items():
                if method == verb and flag in query:
                    return op, self.guard(op, lambda fn=fn: fn(self.bucket(name), query, body))  # type: ignore[misc]
            if method == "GET":
                op = "ListObjectsV2" if query.get("list-type") == "2" else "ListObjects"
                return op, self.guard(op, lambda: self.list_objects(self.bucket(name), query, op == "ListObjectsV2"))
            if method == "HEAD":
                return "HeadBucket", self.guard("HeadBucket", lambda: self.head_bucket(name))
            if method == "PUT":
                return "CreateBucket", self.create_bucket(name)
            if method == "DELETE":
                return "DeleteBucket", self.guard("DeleteBucket", lambda: self.delete_bucket(name))
            raise S3Error(501, "NotImplemented", f"{method} on a bucket")
        if method == "PUT":
            copy_source = headers.get("x-amz-copy-source")
            if "uploadId" in query:
                op = "UploadPartCopy" if copy_source else "UploadPart"
                return op, self.guard(op, lambda: self.upload_part(self.bucket(name), key, query, headers, body))
            if copy_source:
                return "CopyObject", self.guard("CopyObject", lambda: self.copy_object(name, key, headers))
            return "PutObject", self.guard("PutObject", lambda: self.put_object(self.bucket(name), key, headers, body))
        if method in ("GET", "HEAD"):
            if "uploadId" in query:
                return "ListParts", self.guard("ListParts", lambda: self.list_parts(self.bucket(name), key, query))
            op = "GetObject" if method == "GET" else "HeadObject"
            return op, self.guard(op, lambda: self.get_object(self.bucket(name), key, headers, method == "HEAD"))
        if method == "DELETE":
            if "uploadId" in query:
                op = "AbortMultipartUpload"
                return op, self.guard(op, lambda: self.abort_upload(self.bucket(name), query["uploadId"]))
            return "DeleteObject", self.guard("DeleteObject", lambda: self.delete_object(self.bucket(name), key))
        if method == "POST":
            if "uploads" in query:
                op = "CreateMultipartUpload"
                return op, self.guard(op, lambda: self.create_upload(self.bucket(name), key, headers))
            if "uploadId" in query:
                op = "CompleteMultipartUpload"
                return op, self.guard(op, lambda: self.complete_upload(self.bucket(name), key, query, body))
        raise S3Error(501, "NotImplemented", f"{method} on an object")

    def bucket_config(
        self, method: str, bucket: Bucket, sub: str, get_op: str, put_op: str, missing: str, body: bytes
    ) -> tuple[str, Response]:
        """CORS and lifecycle rules: kept as sent, given back as kept (nothing here acts on them)."""
        if method == "PUT":
            bucket.config[sub] = body
            return put_op, (200, [], b"")
        if method == "DELETE":
            bucket.config.pop(sub, None)
            return put_op.replace("Put", "Delete"), (204, [], b"")
        if sub not in bucket.config:
            error = S3Error(404, missing, f"The {sub} configuration does not exist", BucketName=bucket.name)
            error.op = get_op  # type: ignore[attr-defined]
            raise error
        return get_op, (200, [("Content-Type", "application/xml")], bucket.config[sub])

    @staticmethod
    def guard(op: str, call: Any) -> Response:
        """Run ``call``; an S3Error leaving it is labelled with the operation (it is still a counted request)."""
        try:
            return call()  # type: ignore[no-any-return]
        except S3Error as exc:
            exc.op = op  # type: ignore[attr-defined]
            raise

    def bucket(self, name: str) -> Bucket:
        found = self.buckets.get(name)
        if found is None:
            raise S3Error(404, "NoSuchBucket", "The specified bucket does not exist", BucketName=name)
        return found

    @staticmethod
    def xml(root: str, inner: str | bytes) -> Response:
        if isinstance(inner, str):
            inner = inner.encode()
        body = XML_HEAD + f'<{root} xmlns="{NS}">'.encode() + inner + f"</{root}>".encode()
        return 200, [("Content-Type", "application/xml")], body

    @staticmethod
    def error(exc: S3Error, method: str) -> Response:
        extra = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in exc.extra.items())
        body = (
            f"{XML_HEAD.decode()}<Error><Code>{exc.code}</Code><Message>{escape(exc.message)}</Message>{extra}"
            f"<RequestId>bench</RequestId></Error>"
        ).encode()
        return exc.status, [("Content-Type", "application/xml")], b"" if method == "HEAD" else body

    # buckets
    def list_buckets(self) -> Response:
        iso = self.dates.now()[0]
        inner = "".join(
            f"<Bucket><Name>{escape(n)}</Name><CreationDate>{iso}</CreationDate></Bucket>" for n in self.buckets
        )
        return self.xml("ListAllMyBucketsResult", f"<Owner><ID>bench</ID></Owner><Buckets>{inner}</Buckets>")

    def create_bucket(self, name: str) -> Response:
        self.buckets.setdefault(name, Bucket(name))
        return 200, [("Location", f"/{name}")], b""

    def head_bucket(self, name: str) -> Response:
        self.bucket(name)
        return 200, [("x-amz-bucket-region", REGION)], b""

    def delete_bucket(self, name: str) -> Response:
        if self.bucket(name).objects:
            raise S3Error(409, "BucketNotEmpty", "The bucket you tried to delete is not empty", BucketName=name)
        del self.buckets[name]
        return 204, [], b""

    def get_location(self, bucket: Bucket, query: dict[str, str], body: bytes) -> Response:
        return 200, [("Content-Type", "application/xml")], XML_HEAD + f'<LocationConstraint xmlns="{NS}"/>'.encode()

    # listing
    def list_objects(self, bucket: Bucket, query: dict[str, str], v2: bool) -> Response:
        prefix = query.get("prefix", "")
        delimiter = query.get("delimiter", "")
        max_keys = max(0, min(1000, int(query.get("max-keys") or 1000)))
        url = query.get("encoding-type") == "url"
        enc = (lambda s: quote(s, safe="/")) if url else escape
        if v2:
            token = query.get("continuation-token")
            start = _untoken(token) if token else query.get("start-after", "")
        else:
            start = query.get("marker", "")
            if delimiter and start.endswith(delimiter):
                start = _past(start)
        start = max(start, prefix[:-1] if prefix else "") if prefix else start
        found, prefixes, truncated, last_common = bucket.index.scan(start, prefix, delimiter, max_keys)
        objects = bucket.objects
        parts = [objects[k].fragment_url for k in found] if url else [objects[k].fragment for k in found]
        count = len(found) + len(prefixes)
        last = (prefixes[-1] if last_common else found[-1]) if count else ""
        head = [f"<Name>{escape(bucket.name)}</Name><Prefix>{enc(prefix)}</Prefix>"]
        if v2:
            head.append(f"<KeyCount>{count}</KeyCount>")
        head.append(f"<MaxKeys>{max_keys}</MaxKeys>")
        if delimiter:
            head.append(f"<Delimiter>{enc(delimiter)}</Delimiter>")
        head.append(f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>")
        if url:
            head.append("<EncodingType>url</EncodingType>")
        if v2:
            if "continuation-token" in query:
                head.append(f"<ContinuationToken>{escape(query['continuation-token'])}</ContinuationToken>")
            if "start-after" in query:
                head.append(f"<StartAfter>{enc(query['start-after'])}</StartAfter>")
            if truncated:
                head.append(f"<NextContinuationToken>{_token(last, last_common)}</NextContinuationToken>")
        else:
            head.append(f"<Marker>{enc(query.get('marker', ''))}</Marker>")
            if truncated and delimiter:
                head.append(f"<NextMarker>{enc(last)}</NextMarker>")
        tail = "".join(f"<CommonPrefixes><Prefix>{enc(p)}</Prefix></CommonPrefixes>" for p in prefixes)
        return self.xml("ListBucketResult", "".join(head).encode() + b"".join(parts) + tail.encode())

    # objects
    def new_object(self, key: str, body: bytes, headers: dict[str, str], etag: str | None = None) -> Obj:
        meta = tuple((k, v) for k, v in headers.items() if k.startswith("x-amz-meta-")) or None
        content_type = headers.get("content-type") or "binary/octet-stream"
        return Obj(key, body, etag or hashlib.md5(body).hexdigest(), self.dates.now(), content_type, meta)

    def put_object(self, bucket: Bucket, key: str, headers: dict[str, str], body: bytes) -> Response:
        current = bucket.objects.get(key)
        if headers.get("if-none-match") == "*" and current is not None:
            raise S3Error(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
        obj = self.new_object(key, body, headers)
        bucket.put(obj)
        return 200, [("ETag", f'"{obj.etag}"')], b""

    def source(self, headers: dict[str, str]) -> Obj:
        raw = unquote(headers["x-amz-copy-source"].split("?", 1)[0]).lstrip("/")
        name, _, key = raw.partition("/")
        obj = self.bucket(name).objects.get(key)
        if obj is None:
            raise S3Error(404, "NoSuchKey", "The specified key does not exist.", Key=key)
        match = headers.get("x-amz-copy-source-if-match")
        if match and match.strip('"') != obj.etag:
            raise S3Error(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
        return obj

    def copy_object(self, name: str, key: str, headers: dict[str, str]) -> Response:
        bucket = self.bucket(name)
        src = self.source(headers)
        if headers.get("x-amz-metadata-directive", "COPY").upper() == "REPLACE":
            obj = self.new_object(key, src.body, headers, src.etag)
        else:
            obj = Obj(key, src.body, src.etag, self.dates.now(), src.content_type, src.meta)
        bucket.put(obj)
        return self.xml(
            "CopyObjectResult", f"<LastModified>{obj.iso_date}</LastModified><ETag>&quot;{obj.etag}&quot;</ETag>"
        )

    def get_object(self, bucket: Bucket, key: str, headers: dict[str, str], head: bool) -> Response:
        obj = bucket.objects.get(key)
        if obj is None:
            raise S3Error(404, "NoSuchKey", "The specified key does not exist.", Key=key)
        out = [
            ("ETag", f'"{obj.etag}"'),
            ("Last-Modified", obj.http_date),
            ("Content-Type", obj.content_type),
            ("Accept-Ranges", "bytes"),
        ]
        if obj.meta:
            out += list(obj.meta)
        body, status = obj.body, 200
        wanted = headers.get("range", "")
        if wanted.startswith("bytes="):
            first, _, last = wanted[6:].partition("-")
            size = len(body)
            lo = int(first) if first else max(0, size - int(last))
            hi = min(size - 1, int(last)) if first and last else size - 1
            if lo >= size:
                raise S3Error(416, "InvalidRange", "The requested range is not satisfiable")
            out.append(("Content-Range", f"bytes {lo}-{hi}/{size}"))
            body, status = body[lo : hi + 1], 206
        if head:
            out.append(("Content-Length", str(len(body))))
            return status, out, b""
        return status, out, body

    def delete_object(self, bucket: Bucket, key: str) -> Response:
        bucket.delete(key)
        return 204, [], b""

    def delete_objects(self, bucket: Bucket, query: dict[str, str], body: bytes) -> Response:
        quiet = b"<Quiet>true</Quiet>" in body
        keys = [_unxml(part.partition("</Key>")[0]) for part in body.decode().split("<Key>")[1:]]
        bucket.delete_many(keys)
        inner = "" if quiet else "".join(f"<Deleted><Key>{escape(k)}</Key></Deleted>" for k in keys)
        return self.xml("DeleteResult", inner)

    # multipart
    def create_upload(self, bucket: Bucket, key: str, headers: dict[str, str]) -> Response:
        upload_id = uuid.uuid4().hex
        bucket.uploads[upload_id] = {"key": key, "parts": {}, "headers": headers, "started": self.dates.now()[0]}
        inner = f"<Bucket>{escape(bucket.name)}</Bucket><Key>{escape(key)}</Key><UploadId>{upload_id}</UploadId>"
        return self.xml("InitiateMultipartUploadResult", inner)

    def upload(self, bucket: Bucket, key: str, upload_id: str) -> dict[str, Any]:
        found = bucket.uploads.get(upload_id)
        if found is None or found["key"] != key:
            raise S3Error(404, "NoSuchUpload", "The specified multipart upload does not exist.", UploadId=upload_id)
        return found

    def upload_part(
        self, bucket: Bucket, key: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Response:
        upload = self.upload(bucket, key, query["uploadId"])
        if headers.get("x-amz-copy-source"):
            data = self.source(headers).body
            wanted = headers.get("x-amz-copy-source-range", "")
            if wanted.startswith("bytes="):
                lo, _, hi = wanted[6:].partition("-")
                data = data[int(lo) : int(hi) + 1]
            body = data
        etag = hashlib.md5(body).hexdigest()
        upload["parts"][int(query["partNumber"])] = (body, etag)
        if headers.get("x-amz-copy-source"):
            iso = self.dates.now()[0]
            return self.xml("CopyPartResult", f"<LastModified>{iso}</LastModified><ETag>&quot;{etag}&quot;</ETag>")
        return 200, [("ETag", f'"{etag}"')], b""

    def complete_upload(self, bucket: Bucket, key: str, query: dict[str, str], body: bytes) -> Response:
        upload = self.upload(bucket, key, query["uploadId"])
        numbers = [int(n) for n in re.findall(r"<PartNumber>(\d+)</PartNumber>", body.decode())]
        try:
            parts = [upload["parts"][n] for n in numbers]
        except KeyError:
            raise S3Error(400, "InvalidPart", "One or more of the specified parts could not be found.") from None
        digest = hashlib.md5(b"".join(bytes.fromhex(etag) for _, etag in parts)).hexdigest()
        obj = self.new_object(key, b"".join(data for data, _ in parts), upload["headers"], f"{digest}-{len(parts)}")
        bucket.put(obj)
        del bucket.uploads[query["uploadId"]]
        inner = (
            f"<Location>/{escape(bucket.name)}/{escape(key)}</Location><Bucket>{escape(bucket.name)}</Bucket>"
            f"<Key>{escape(key)}</Key><ETag>&quot;{obj.etag}&quot;</ETag>"
        )
        return self.xml("CompleteMultipartUploadResult", inner)

    def abort_upload(self, bucket: Bucket, upload_id: str) -> Response:
        if bucket.uploads.pop(upload_id, None) is None:
            raise S3Error(404, "NoSuchUpload", "The specified multipart upload does not exist.", UploadId=upload_id)
        return 204, [], b""

    def list_parts(self, bucket: Bucket, key: str, query: dict[str, str]) -> Response:
        upload = self.upload(bucket, key, query["uploadId"])
        iso = self.dates.now()[0]
        parts = "".join(
            f"<Part><PartNumber>{n}</PartNumber><LastModified>{iso}</LastModified><ETag>&quot;{etag}&quot;</ETag>"
            f"<Size>{len(data)}</Size></Part>"
            for n, (data, etag) in sorted(upload["parts"].items())
        )
        inner = (
            f"<Bucket>{escape(bucket.name)}</Bucket><Key>{escape(key)}</Key><UploadId>{query['uploadId']}</UploadId>"
            f"<MaxParts>1000</MaxParts><IsTruncated>false</IsTruncated>{parts}"
        )
        return self.xml("ListPartsResult", inner)

    def list_uploads(self, bucket: Bucket, query: dict[str, str], body: bytes) -> Response:
        prefix = query.get("prefix", "")
        found = sorted(
            (u["key"], upload_id, u["started"])
            for upload_id, u in bucket.uploads.items()
            if u["key"].startswith(prefix)
        )
        uploads = "".join(
            f"<Upload><Key>{escape(key)}</Key><UploadId>{upload_id}</UploadId><Initiated>{started}</Initiated>"
            "<StorageClass>STANDARD</StorageClass></Upload>"
            for key, upload_id, started in found[:1000]
        )
        inner = (
            f"<Bucket>{escape(bucket.name)}</Bucket><Prefix>{escape(prefix)}</Prefix><MaxUploads>1000</MaxUploads>"
            f"<IsTruncated>{'true' if len(found) > 1000 else 'false'}</IsTruncated>{uploads}"
        )
        return self.xml("ListMultipartUploadsResult", inner)

    # the benchmark's own routes
    def bench(self, route: str, body: bytes) -> Response:
        order: dict[str, Any] = json.loads(body) if body else {}
        answer: Any = {}
        if route == "counts":
            answer = dict(self.counts)
        elif route == "reset":
            answer = dict(self.counts)
            self.counts.clear()
        elif route == "seed":
            answer = {"stored": self.seed(order["bucket"], order["keys"], int(order.get("size", 0)))}
        elif route == "snapshot":
            bucket = self.bucket(order["bucket"])
            self.snapshots[order["bucket"], order["name"]] = (dict(bucket.objects), bucket.index.copy())
            answer = {"objects": len(bucket.objects)}
        elif route == "restore":
            objects, index = self.snapshots[order["bucket"], order["name"]]
            bucket = self.buckets.setdefault(order["bucket"], Bucket(order["bucket"]))
            bucket.objects, bucket.index, bucket.uploads = dict(objects), index.copy(), {}
            answer = {"objects": len(bucket.objects)}
        elif route == "drop":
            self.buckets.pop(order["bucket"], None)
            for name in [k for k in self.snapshots if k[0] == order["bucket"]]:
                del self.snapshots[name]
        else:
            return 404, [], b"no such bench route"
        if route in ("seed", "restore"):
            gc.collect()
            gc.freeze()  # a million long-lived objects: keep them out of every later collection
        return 200, [("Content-Type", "application/json")], json.dumps(answer).encode()

    def seed(self, name: str, keys: Sequence[str], size: int) -> int:
        bucket = self.buckets.setdefault(name, Bucket(name))
        body = b"x" * size
        etag = hashlib.md5(body).hexdigest()
        dates = self.dates.now()
        fresh = [k for k in keys if k not in bucket.objects]
        for key in keys:
            bucket.objects[key] = Obj(key, body, etag, dates, "binary/octet-stream", None)
        if len(fresh) > len(bucket.objects) // 10:  # a large seed: rebuild the index at once
            bucket.index = SortedKeys(bucket.objects)
        else:
            for key in fresh:
                bucket.index.add(key)
        return len(keys)


_BUCKET_CONFIG = {  # subresource: (GET operation, PUT operation, error when absent)
    "cors": ("GetBucketCors", "PutBucketCors", "NoSuchCORSConfiguration"),
    "lifecycle": ("GetBucketLifecycleConfiguration", "PutBucketLifecycleConfiguration", "NoSuchLifecycleConfiguration"),
}
_ENTITIES = {"&lt;": "<", "&gt;": ">", "&quot;": '"', "&apos;": "'", "&amp;": "&"}


def _unxml(text: str) -> str:
    if "&" not in text:
        return text
    text = re.sub(r"&#x([0-9a-fA-F]+);", lambda m: chr(int(m.group(1), 16)), text)
    text = re.sub(r"&#(\d+);", lambda m: chr(int(m.group(1))), text)
    return re.sub(r"&(lt|gt|quot|apos|amp);", lambda m: _ENTITIES[m.group(0)], text)


def _past(common: str) -> str:
    """A string at or after every key that starts with ``common`` (listing resumes past it)."""
    return common + "\U0010ffff"


def _token(last: str, common: bool) -> str:
    """Opaque to clients: the last key (``K``) or common prefix (``P``) of the page."""
    return base64.urlsafe_b64encode(("P" if common else "K").encode() + last.encode()).decode()


def _untoken(token: str) -> str:
    text = base64.urlsafe_b64decode(token.encode()).decode()
    return _past(text[1:]) if text[0] == "P" else text[1:]


# -- HTTP/1.1 ------------------------------------------------------------------------------------------------
class Connection(asyncio.Protocol):
    """One client connection: requests parsed from the buffer, each answered ``delay`` seconds later, in order."""

    def __init__(self, store: Store, delay: float) -> None:
        self.store = store
        self.delay = delay
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False
        self.continued = False
        self.loop = asyncio.get_event_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)  # a listing page in one send

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self.next_request()

    def next_request(self) -> None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.transport is None:
            return
        lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        start = end + 4
        if "chunked" in headers.get("transfer-encoding", "").lower():
            decoded = _dechunk(self.buffer, start)
            if decoded is None:
                self.maybe_continue(headers)
                return
            body, used = decoded
        else:
            length = int(headers.get("content-length") or 0)
            if len(self.buffer) < start + length:
                self.maybe_continue(headers)
                return
            body, used = bytes(self.buffer[start : start + length]), start + length
        del self.buffer[:used]
        self.continued = False
        if headers.get("x-amz-content-sha256", "").startswith("STREAMING-") or "aws-chunked" in headers.get(
            "content-encoding", ""
        ):
            body = _aws_unchunk(body)
        self.busy = True
        request = (method, target, headers, body)
        if self.delay > 0 and not target.startswith("/_bench/"):
            self.loop.call_later(self.delay, self.respond, request)
        else:
            self.respond(request)

    def maybe_continue(self, headers: dict[str, str]) -> None:
        if not self.continued and headers.get("expect", "").lower() == "100-continue" and self.transport:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.continued = True

    def respond(self, request: tuple[str, str, dict[str, str], bytes]) -> None:
        method, target, headers, body = request
        try:
            status, extra, payload = self.store.handle(method, target, headers, body)
        except Exception as exc:  # a bug here must not kill the connection silently
            status, extra, payload = 500, [], f"{type(exc).__name__}: {exc}".encode()
        if self.transport is None:
            return
        lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}", "x-amz-request-id: bench", "Server: bench"]
        lines += [f"{k}: {v}" for k, v in extra]
        if not any(k == "Content-Length" for k, _ in extra):
            lines.append(f"Content-Length: {len(payload)}")
        close = headers.get("connection", "").lower() == "close"
        if close:
            lines.append("Connection: close")
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)
        self.busy = False
        if close:
            self.transport.close()
            return
        if self.buffer:
            self.next_request()


def _dechunk(buffer: bytearray, start: int) -> tuple[bytes, int] | None:
    """An HTTP chunked body from ``start``: (body, end) once complete, else None."""
    out, pos = bytearray(), start
    while True:
        line_end = buffer.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(bytes(buffer[pos:line_end]).split(b";")[0], 16)
        pos = line_end + 2
        if size == 0:
            trailer_end = buffer.find(b"\r\n\r\n", pos - 2)
            return (bytes(out), trailer_end + 4) if trailer_end >= 0 else None
        if len(buffer) < pos + size + 2:
            return None
        out += buffer[pos : pos + size]
        pos += size + 2


def _aws_unchunk(body: bytes) -> bytes:
    """The payload of an ``aws-chunked`` body (``size;chunk-signature=...\\r\\n data \\r\\n``..., trailers)."""
    out, pos = bytearray(), 0
    while pos < len(body):
        line_end = body.find(b"\r\n", pos)
        if line_end < 0:
            break
        size = int(body[pos:line_end].split(b";")[0], 16)
        if size == 0:
            break
        pos = line_end + 2
        out += body[pos : pos + size]
        pos += size + 2
    return bytes(out)


async def serve(host: str, listeners: Sequence[tuple[int, float]]) -> None:
    store = Store()
    loop = asyncio.get_running_loop()
    servers = [
        await loop.create_server(lambda d=delay: Connection(store, d / 1000.0), host, port, backlog=1024)
        for port, delay in listeners
    ]
    print(f"s3store listening on {', '.join(f'{host}:{p} ({d:g} ms)' for p, d in listeners)}", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


# -- the benchmark's handle on it ----------------------------------------------------------------------------
class BenchS3(ChildStore):
    """A child process serving one store at several distances; ``endpoint(delay_ms)`` picks one."""

    def __init__(self, delays_ms: Sequence[float], log_dir: Path, host: str = "127.0.0.1") -> None:
        super().__init__(Path(__file__).resolve(), delays_ms, log_dir, host)

    def call(self, route: str, order: dict[str, Any] | None = None) -> Any:
        data = json.dumps(order or {}).encode()
        request = urllib.request.Request(self.endpoint(min(self.ports)) + "/_bench/" + route, data=data, method="POST")
        with urllib.request.urlopen(request, timeout=600) as answer:
            return json.loads(answer.read())

    def seed(self, bucket: str, keys: Sequence[str], size: int, *, chunk: int = 100_000) -> None:
        for start in range(0, len(keys), chunk):
            part = list(keys[start : start + chunk])
            stored = self.call("seed", {"bucket": bucket, "keys": part, "size": size})["stored"]
            if stored != len(part):
                raise RuntimeError(f"seeding stored {stored} of {len(part)} objects")

    def snapshot(self, bucket: str, name: str = "seed") -> int:
        return int(self.call("snapshot", {"bucket": bucket, "name": name})["objects"])

    def restore(self, bucket: str, name: str = "seed") -> int:
        return int(self.call("restore", {"bucket": bucket, "name": name})["objects"])

    def drop(self, bucket: str) -> None:
        self.call("drop", {"bucket": bucket})

    def counts(self) -> dict[str, int]:
        return dict(self.call("counts"))

    def reset(self) -> dict[str, int]:
        """The counts so far, then zero."""
        return dict(self.call("reset"))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--listen", type=listener_arg, action="append", default=[], metavar="PORT:DELAY_MS")
    args = parser.parse_args()
    if not args.listen:
        parser.error("give at least one --listen PORT:DELAY_MS")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    # The store must answer on time even on a machine busy with other work: ahead of it in the run queue (it
    # uses little CPU, so the contenders lose nothing). Only root may raise a priority; elsewhere it stays.
    with contextlib.suppress(OSError):
        os.nice(-10)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.listen))


if __name__ == "__main__":
    main()
