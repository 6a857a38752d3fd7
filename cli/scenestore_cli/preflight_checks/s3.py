"""The bucket, as the service and browsers will use it: reachable with these credentials, PUT/GET/HEAD and
``DeleteObjects`` with the client's checksum settings, presigned PUTs refused when changed, a presigned two-part
multipart upload, CORS answering a real browser preflight and exposing ``ETag``, the lifecycle rule that aborts
incomplete multipart uploads, and the store's clock.

Everything is written under the run's prefix (``scenestore-preflight/<random>/``); ``remove_prefix`` deletes it
and aborts its multipart uploads. The bucket's rules are read, never written: a ✗ prints the command that sets
them (docs/deploy.md section 1), with the bucket's other rules kept.
"""

from __future__ import annotations

import fnmatch
import http.client
import json
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import Any, Final
from urllib.parse import urlsplit

from botocore.exceptions import ClientError, EndpointConnectionError
from scenestore.storage import abort_multipart_rule, bucket_cors, error_code

from scenestore_cli.preflight_checks import Run

#: The store's clock may be this far from ours (presigned URLs carry our time; S3 refuses 15 minutes off).
MAX_CLOCK_SKEW: Final = 300.0
HTTP_TIMEOUT: Final = 20.0
PART_SIZE: Final = 5 * 1024 * 1024  # the smallest part S3 and R2 accept (all but the last)
#: Checked when SCENESTORE_CORS_ORIGINS is ``*`` and no ``--origin`` is given: any origin must then pass.
ANY_ORIGIN_PROBE: Final = "https://scenestore-preflight.example"
CREDENTIALS_FIX: Final = (
    "export AWS_ACCESS_KEY_ID=<R2 API token access key id> and AWS_SECRET_ACCESS_KEY=<R2 API token secret> "
    "of a token with Object Read & Write on this bucket (docs/deploy.md section 1)"
)
_CREDENTIAL_CODES: Final = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "403", "Forbidden"}
)
S3_CHECKS: Final = ["s3.clock", "s3.objects", "s3.presigned", "s3.multipart", "s3.cors", "s3.lifecycle"]


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Message
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def code(self) -> str:
        """The S3 error code in an XML error body (``SignatureDoesNotMatch``), or the status."""
        text = self.body.decode("utf-8", "replace")
        start = text.find("<Code>")
        end = text.find("</Code>")
        return text[start + 6 : end] if 0 <= start < end else str(self.status)


def send(method: str, url: str, headers: dict[str, str], body: bytes | None = None) -> Answer:
    """One HTTP request as a browser would send it: these headers, ``Content-Length`` from the body, nothing else.

    ``http.client`` rather than urllib: urllib adds a form ``Content-Type`` to any request with a body.
    A connection failure is botocore's ``EndpointConnectionError``: the CLI reports it as S3 unreachable.
    """
    parts = urlsplit(url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.netloc, timeout=HTTP_TIMEOUT)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return Answer(response.status, response.msg, response.read())
    except OSError as exc:
        raise EndpointConnectionError(endpoint_url=f"{parts.scheme}://{parts.netloc}") from exc
    finally:
        connection.close()


def _aws_flags(run: Run) -> str:
    endpoint = run.settings.s3_endpoint_url
    flags = f"--bucket {shlex.quote(run.settings.bucket)}"
    if endpoint:
        flags += f" --endpoint-url {shlex.quote(endpoint)}"
    return f"{flags} --region {shlex.quote(run.settings.s3_region)}"


def run_s3_checks(run: Run, now: Callable[[], float] = time.time) -> None:
    reachable, server_date = check_bucket(run)
    if not reachable:
        run.skip(S3_CHECKS, "the bucket is not reachable with these credentials")
        return
    if server_date is None:
        run.warn("s3.clock", "S3: the store's answers carry no Date header: its clock is not checked")
    else:
        check_clock(run, server_date, now())
    check_objects(run)
    if check_presigned(run):
        check_multipart(run)
        for origin in cors_origins(run):
            check_cors(run, origin)
    else:
        run.skip(["s3.multipart", "s3.cors"], "a correct presigned PUT is refused")
    check_lifecycle(run)


# -- access ---------------------------------------------------------------------------------------------------
def check_bucket(run: Run) -> tuple[bool, datetime | None]:
    """List the run's (empty) prefix: the endpoint, the bucket and the credentials in one request. Returns whether
    the bucket can be used, and the store's ``Date`` when its answer had one."""
    bucket = run.settings.bucket
    try:
        response = run.s3.list_objects_v2(Bucket=bucket, Prefix=run.prefix, MaxKeys=1)
    except ClientError as exc:
        code = error_code(exc)
        if code == "NoSuchBucket":
            run.fail(
                "s3.bucket",
                f"S3: there is no bucket {bucket} at {run.settings.s3_endpoint_url or 'AWS'}",
                "set SCENESTORE_BUCKET to the bucket's name, or create the bucket (docs/deploy.md section 1)",
            )
        elif code == "RequestTimeTooSkewed":
            run.fail(
                "s3.bucket",
                "S3: the store refuses our requests: this machine's clock is more than 15 minutes off",
                "set this machine's clock right (timedatectl set-ntp true)",
            )
        elif code in _CREDENTIAL_CODES:
            run.fail(
                "s3.bucket", f"S3: the store refuses these credentials for bucket {bucket} ({code})", CREDENTIALS_FIX
            )
        else:
            run.fail("s3.bucket", f"S3: listing bucket {bucket} failed ({code or exc})", CREDENTIALS_FIX)
        return False, None
    run.ok("s3.bucket", f"S3: bucket {bucket} reachable at {run.settings.s3_endpoint_url or 'AWS'} with these keys")
    return True, _server_date(response)


def _server_date(response: Any) -> datetime | None:
    raw = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        return parsedate_to_datetime(raw) if raw else None
    except (TypeError, ValueError):
        return None


def check_clock(run: Run, server_date: datetime, now: float) -> None:
    skew = server_date.timestamp() - now
    if abs(skew) > MAX_CLOCK_SKEW:
        run.fail(
            "s3.clock",
            f"S3: the store's clock is {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} this machine's "
            f"(at most {MAX_CLOCK_SKEW:.0f} s): presigned URLs would expire early or be refused",
            "set this machine's clock right (timedatectl set-ntp true)",
        )
        return
    run.ok("s3.clock", f"S3: the store's clock is within {max(abs(skew), 1):.0f} s of this machine's")


def check_objects(run: Run) -> None:
    """The client's own calls, checksum settings included (R2 refuses some of boto3's newer default checksums)."""
    bucket, first, second = run.settings.bucket, f"{run.prefix}object-1.bin", f"{run.prefix}object-2.bin"
    data = b"scenestore preflight " + run.token.encode()
    step = "PUT"
    run.s3_written = True
    try:
        run.s3.put_object(Bucket=bucket, Key=first, Body=data, ContentType="application/octet-stream")
        run.s3.put_object(Bucket=bucket, Key=second, Body=data)
        step = "GET"
        read = run.s3.get_object(Bucket=bucket, Key=first)["Body"].read()
        step = "HEAD"
        size = run.s3.head_object(Bucket=bucket, Key=first)["ContentLength"]
        step = "DeleteObjects"
        deleted = run.s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": first}, {"Key": second}], "Quiet": False}
        )
    except ClientError as exc:
        run.fail(
            "s3.objects",
            f"S3: {step} under {run.prefix} failed ({error_code(exc) or exc})",
            CREDENTIALS_FIX
            + "; a refused checksum header needs boto3 >= 1.36 (request_checksum_calculation=when_required)",
        )
        return
    problems = []
    if read != data:
        problems.append("GET returned other bytes")
    if size != len(data):
        problems.append(f"HEAD reported {size} bytes, not {len(data)}")
    if deleted.get("Errors") or {d.get("Key") for d in deleted.get("Deleted", [])} != {first, second}:
        problems.append(f"DeleteObjects did not delete both keys: {deleted.get('Errors') or deleted.get('Deleted')}")
    if problems:
        run.fail("s3.objects", f"S3: {'; '.join(problems)}", CREDENTIALS_FIX)
        return
    run.ok("s3.objects", "S3: PUT, GET, HEAD and DeleteObjects work with the client's checksum settings")


# -- presigned uploads ----------------------------------------------------------------------------------------
def check_presigned(run: Run) -> bool:
    """A presigned PUT binds key, type and length: changed, the store must refuse it (``SignatureDoesNotMatch``).
    ``False`` when even the correct PUT is refused (the browser checks that follow would fail for that reason)."""
    key = f"{run.prefix}presigned.png"
    body = b"\x89PNG\r\n\x1a\n" + b"\0" * 56
    signed = run.store.presign_put(key, content_type="image/png", content_length=len(body), expires_in=300)
    other = f"{run.prefix}another-key.png"
    tampered = {
        "the wrong length": send(
            "PUT", signed.url, signed.headers | {"Content-Length": str(len(body) + 1)}, body + b"!"
        ),
        "the wrong type": send("PUT", signed.url, signed.headers | {"Content-Type": "image/jpeg"}, body),
        "another key": send("PUT", signed.url.replace(key, other), signed.headers, body),
    }
    right = send("PUT", signed.url, signed.headers, body)
    if not right.ok:
        run.fail(
            "s3.presigned",
            f"S3: the store refuses a correct presigned PUT ({right.code()})",
            CREDENTIALS_FIX + "; and set this machine's clock right (timedatectl set-ntp true)",
        )
        return False
    accepted = [name for name, answer in tampered.items() if answer.ok]
    if accepted:
        run.warn(
            "s3.presigned",
            f"S3: the store accepted a presigned PUT with {', '.join(accepted)}: it does not check presigned "
            "signatures, an emulator's behaviour (moto's); S3 and R2 refuse such a PUT",
        )
        return True
    run.ok("s3.presigned", "S3: a presigned PUT is accepted, and refused with the wrong length, type or key")
    return True


def check_multipart(run: Run) -> None:
    """Two presigned parts (the smallest allowed first part, a short last one), completed: what browsers do."""
    key = f"{run.prefix}multipart.mp4"
    parts_data = [b"\1" * PART_SIZE, b"\2" * 1024]
    try:
        upload_id = run.store.create_multipart(key, content_type="video/mp4")
    except ClientError as exc:
        run.fail("s3.multipart", f"S3: CreateMultipartUpload failed ({error_code(exc) or exc})", CREDENTIALS_FIX)
        return
    etags: list[tuple[int, str]] = []
    for number, data in enumerate(parts_data, start=1):
        signed = run.store.presign_upload_part(
            key, upload_id=upload_id, part_number=number, content_length=len(data), expires_in=300
        )
        answer = send("PUT", signed.url, signed.headers, data)
        etag = answer.headers.get("ETag")
        if not answer.ok or not etag:
            run.fail(
                "s3.multipart",
                f"S3: a presigned UploadPart (part {number}) failed ({answer.code() if not answer.ok else 'no ETag'})",
                CREDENTIALS_FIX,
            )
            return  # the upload is aborted with the prefix (remove_prefix)
        etags.append((number, etag))
    try:
        run.store.complete_multipart(key, upload_id, etags)
    except Exception as exc:  # StorageError/InvalidRequest from the store: reported, the prefix is removed anyway
        run.fail("s3.multipart", f"S3: CompleteMultipartUpload failed ({exc})", CREDENTIALS_FIX)
        return
    info = run.store.head(key)
    expected = sum(len(d) for d in parts_data)
    if info is None or info.size != expected:
        run.fail(
            "s3.multipart",
            f"S3: the completed upload holds {info.size if info else 'no'} bytes, not {expected}",
            CREDENTIALS_FIX,
        )
        return
    run.ok("s3.multipart", "S3: a presigned multipart upload of two parts completed")


# -- CORS -----------------------------------------------------------------------------------------------------
def cors_origins(run: Run) -> tuple[str, ...]:
    origins = tuple(o for o in run.origins if o != "*")
    if origins:
        return origins
    run.warn(
        "s3.cors.origins",
        f"S3: SCENESTORE_CORS_ORIGINS is '*': CORS checked with {ANY_ORIGIN_PROBE}; "
        "give the app's origins with --origin",
    )
    return (ANY_ORIGIN_PROBE,)


def check_cors(run: Run, origin: str) -> None:
    """A real preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method: PUT``), then the PUT
    itself from that origin, whose answer must expose ``ETag`` (browser multipart uploads read it per part)."""
    check_id = f"s3.cors:{origin}"
    body = b"cors"
    signed = run.store.presign_put(
        f"{run.prefix}cors.png", content_type="image/png", content_length=len(body), expires_in=300
    )
    if not _preflight_allows(run, check_id, origin, signed.url):
        return
    put = send("PUT", signed.url, signed.headers | {"Origin": origin}, body)
    exposed = {h.strip().lower() for h in (put.headers.get("Access-Control-Expose-Headers") or "").split(",")}
    if not put.ok:
        run.fail(check_id, f"S3: CORS answers {origin}'s preflight, but the PUT failed ({put.code()})", CREDENTIALS_FIX)
        return
    if "etag" not in exposed:
        _etag_hidden(run, check_id, origin)
        return
    run.ok(check_id, f"S3: CORS answers a browser's PUT preflight from {origin} and exposes ETag")


def _preflight_allows(run: Run, check_id: str, origin: str, url: str) -> bool:
    """Send the browser's preflight for a PUT to ``url``; a refusal is this check's ✗ (``False``)."""
    preflight = send(
        "OPTIONS",
        url,
        {"Origin": origin, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "content-type"},
    )
    allowed = preflight.headers.get("Access-Control-Allow-Origin")
    methods = (preflight.headers.get("Access-Control-Allow-Methods") or "").upper()
    if preflight.ok and allowed in (origin, "*") and "PUT" in methods:
        return True
    seen = f", Access-Control-Allow-Origin {allowed}" if allowed else ""
    run.fail(
        check_id,
        f"S3: CORS refuses a browser's PUT from {origin} (preflight answered {preflight.status}{seen})",
        cors_fix(run),
    )
    return False


def _etag_hidden(run: Run, check_id: str, origin: str) -> None:
    run.fail(
        check_id,
        f"S3: CORS answers {origin}'s preflight, but ETag is not exposed: browser multipart uploads fail at complete",
        cors_fix(run),
    )


def check_rules(run: Run) -> None:
    """The bucket's CORS and lifecycle rules, without writing anything (``serve --s3-endpoint`` on a bucket it did
    not create): the real preflight per origin, ``ETag`` exposure read from the rule that answers it, and the
    lifecycle rule."""
    for origin in tuple(o for o in run.origins if o != "*") or (ANY_ORIGIN_PROBE,):
        check_id = f"s3.cors:{origin}"
        url = run.store.presign_put(
            f"{run.prefix}cors.png", content_type="image/png", content_length=4, expires_in=60
        ).url
        if not _preflight_allows(run, check_id, origin, url):
            continue
        try:
            rules = run.s3.get_bucket_cors(Bucket=run.settings.bucket).get("CORSRules", [])
        except ClientError as exc:
            run.warn(
                check_id, f"S3: cannot read the CORS rules ({error_code(exc)}): whether ETag is exposed is unknown"
            )
            continue
        rule = next((r for r in rules if _rule_answers(r, origin)), None)
        if rule is None or "etag" not in {h.lower() for h in rule.get("ExposeHeaders", [])}:
            _etag_hidden(run, check_id, origin)
            continue
        run.ok(check_id, f"S3: CORS answers a browser's PUT preflight from {origin} and exposes ETag")
    check_lifecycle(run)


def _rule_answers(rule: dict[str, Any], origin: str) -> bool:
    """S3 answers with the first rule whose origins (``*`` wildcards allowed) and methods match."""
    methods = {m.upper() for m in rule.get("AllowedMethods", [])}
    return "PUT" in methods and any(fnmatch.fnmatchcase(origin, allowed) for allowed in rule.get("AllowedOrigins", []))


def cors_fix(run: Run) -> str:
    """docs/deploy.md's ``put-bucket-cors`` with contract section 4's rule for the checked origins first (the first
    matching rule wins), the bucket's other rules after it when they can be read."""
    ours = bucket_cors(cors_origins_quiet(run))["CORSRules"]
    try:
        kept = run.s3.get_bucket_cors(Bucket=run.settings.bucket).get("CORSRules", [])
    except ClientError:
        kept = []  # none, or not readable with an object-scoped token
    configuration = json.dumps({"CORSRules": [*ours, *kept]}, separators=(", ", ": "))
    return f"aws s3api put-bucket-cors {_aws_flags(run)} --cors-configuration {shlex.quote(configuration)}"


def cors_origins_quiet(run: Run) -> tuple[str, ...]:
    return tuple(o for o in run.origins if o != "*") or ("*",)


# -- lifecycle ------------------------------------------------------------------------------------------------
def check_lifecycle(run: Run) -> None:
    """An enabled rule aborting incomplete multipart uploads bucket-wide (any ID: the operator's own counts)."""
    bucket = run.settings.bucket
    try:
        rules = run.s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except ClientError as exc:
        code = error_code(exc)
        if code != "NoSuchLifecycleConfiguration":
            run.warn(
                "s3.lifecycle",
                f"S3: cannot read the bucket's lifecycle rules ({code}): an Object Read & Write token may not; check "
                f"with an admin token: aws s3api get-bucket-lifecycle-configuration {_aws_flags(run)}",
            )
            return
        rules = []
    wanted = run.settings.multipart_abort_days
    aborting = [r for r in rules if _aborts_incomplete_uploads(r)]
    if not aborting:
        configuration = json.dumps({"Rules": [*rules, abort_multipart_rule(wanted)]}, separators=(", ", ": "))
        run.fail(
            "s3.lifecycle",
            "S3: no lifecycle rule aborts incomplete multipart uploads: abandoned uploads' parts stay, and are billed",
            f"aws s3api put-bucket-lifecycle-configuration {_aws_flags(run)} "
            f"--lifecycle-configuration {shlex.quote(configuration)}",
        )
        return
    days = int(aborting[0]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
    if days != wanted:
        run.warn(
            "s3.lifecycle",
            f"S3: lifecycle rule {aborting[0].get('ID', '')!r} aborts incomplete uploads after {days} days, "
            f"SCENESTORE_MULTIPART_ABORT_DAYS says {wanted}: the API's expires_at would be wrong",
        )
        return
    run.ok(
        "s3.lifecycle", f"S3: lifecycle rule {aborting[0].get('ID', '')!r} aborts incomplete uploads after {days} days"
    )


def _aborts_incomplete_uploads(rule: dict[str, Any]) -> bool:
    if rule.get("Status") != "Enabled" or "AbortIncompleteMultipartUpload" not in rule:
        return False
    scope = rule.get("Filter", {"Prefix": rule.get("Prefix", "")})
    return scope in ({}, {"Prefix": ""})


# -- cleanup --------------------------------------------------------------------------------------------------
def remove_prefix(run: Run) -> int:
    """Abort the run's multipart uploads and delete every object under its prefix; returns what was left there
    afterwards (0 when the bucket is as it was)."""
    bucket = run.settings.bucket
    uploads = run.s3.list_multipart_uploads(Bucket=bucket, Prefix=run.prefix).get("Uploads", [])
    for upload in uploads:
        run.s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    keys = [obj.key for obj in run.store.iter_objects(run.prefix)]
    for start in range(0, len(keys), 1000):
        batch = [{"Key": key} for key in keys[start : start + 1000]]
        run.s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})  # type: ignore[typeddict-item]
    left = run.s3.list_objects_v2(Bucket=bucket, Prefix=run.prefix, MaxKeys=1).get("KeyCount", 0)
    left_uploads = run.s3.list_multipart_uploads(Bucket=bucket, Prefix=run.prefix).get("Uploads", [])
    return int(left) + len(left_uploads)
