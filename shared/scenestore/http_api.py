"""HTTP plumbing of the presign function, independent of Chalice: identity, bodies, errors, CORS, logs.

One request goes through :func:`handle`: preflight answered, bearer token verified, the view called, any
exception turned into the contract's ``{"error", "message"}`` by its *type* (:data:`STATUS_BY_ERROR`, the one
place that maps errors to statuses), CORS headers added, one structured log line written. A client never
sees a stack trace or an internal detail: anything unexpected is a bare 500 ``internal``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic import Field as PydanticField

from scenestore.common import validation_problems
from scenestore.errors import (
    InvalidRequest,
    NotFound,
    ScenestoreError,
    TooLarge,
    Unauthorized,
    UnsupportedType,
)
from scenestore.observability import logger

if TYPE_CHECKING:
    from scenestore.services import Services

#: Exception type -> HTTP status, most specific first; subclasses (InvalidId, InvalidFilename) inherit.
STATUS_BY_ERROR: Final[tuple[tuple[type[ScenestoreError], int], ...]] = (
    (InvalidRequest, 400),
    (Unauthorized, 401),
    (NotFound, 404),
    (TooLarge, 413),
    (UnsupportedType, 415),
)

#: Request bodies here are a few fields; anything bigger is not a well-meaning client.
MAX_BODY_BYTES: Final = 16 * 1024
MAX_QUERY_VALUE: Final = 4096
ALLOWED_REQUEST_HEADERS: Final = "Authorization, Content-Type"
PREFLIGHT_MAX_AGE: Final = "600"
_BEARER: Final = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9_\-.=+/]+) *")


# -- errors -------------------------------------------------------------------------------------------
def status_for(exc: BaseException) -> int:
    for error_type, status in STATUS_BY_ERROR:
        if isinstance(exc, error_type):
            return status
    return 500


def error_body(exc: BaseException) -> dict[str, str]:
    """The client-facing body: the error's own code and message, or a bare ``internal`` for a 500."""
    if status_for(exc) == 500 or not isinstance(exc, ScenestoreError):
        return {"error": "internal", "message": "internal error"}
    return exc.to_dict()


# -- requests and replies -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ApiRequest:
    """What a view may look at; built by the framework glue (``functions/presign/app.py``)."""

    method: str
    route: str
    headers: Mapping[str, str]
    """Lower-case names."""
    query: Mapping[str, list[str]] = field(default_factory=dict)
    path_params: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def path_param(self, name: str) -> str:
        """A path parameter, percent-decoded once (the local gateway hands them over still encoded)."""
        raw = self.path_params.get(name)
        if raw is None:
            raise InvalidRequest(f"missing path parameter {name}")
        try:
            return unquote(raw, errors="strict")
        except UnicodeDecodeError:
            raise InvalidRequest(f"path parameter {name} is not valid UTF-8 once decoded") from None

    def query_param(self, name: str) -> str | None:
        """One query value; a repeated parameter is ambiguous and refused."""
        values = self.query.get(name) or []
        if len(values) > 1:
            raise InvalidRequest(f"query parameter {name} is given more than once")
        if values and len(values[0]) > MAX_QUERY_VALUE:
            raise InvalidRequest(f"query parameter {name} is too long")
        return values[0] if values else None


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Caller:
    """The verified identity of a request plus the collaborators a view needs."""

    user_id: str
    services: Services
    log_keys: dict[str, str] = field(default_factory=dict)

    def note(self, **keys: str) -> None:
        """Add structured log keys for this request (``project_id``...); never a token."""
        self.log_keys.update(keys)


# -- bodies -------------------------------------------------------------------------------------------
def json_object(raw: bytes | str | None, *, max_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """The body as a JSON object, or ``InvalidRequest`` for anything else (empty, not UTF-8, not JSON,
    a list, a number too long to parse, nesting deep enough to exhaust recursion)."""
    if raw is None or len(raw) == 0:
        raise InvalidRequest("request body must be a JSON object")
    if len(raw) > max_bytes:
        raise TooLarge(f"request body must be at most {max_bytes} bytes")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise InvalidRequest("request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidRequest("request body must be a JSON object")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


M = TypeVar("M", bound=BaseModel)


class UploadBody(BaseModel):
    """``POST /projects/{id}/uploads``. Strict: ``"size": "10"``, ``10.0`` or ``true`` is not a size.

    ``scene_id`` is left untyped here so that ``keys.validate_id`` rejects a non-string (an operator object
    such as ``{"$ne": null}``) as ``invalid_id``, like any other malformed id.
    """

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    kind: str
    filename: str
    content_type: str
    size: int
    scene_id: Any = None


class CompleteBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    key: str


class CompletedPart(BaseModel):
    """One entry of a multipart complete, as S3 (and ``@uppy/aws-s3``) spell it."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    PartNumber: int = PydanticField(ge=1, le=10_000)
    ETag: str = PydanticField(min_length=1, max_length=256)


class MultipartCompleteBody(BaseModel):
    """``POST /projects/{id}/multipart/{upload_id}/complete``: the key and every part's ETag."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    key: str
    parts: list[CompletedPart] = PydanticField(min_length=1, max_length=10_000)


#: A complete of 10,000 parts is about 600 KB of JSON: the one body allowed past ``MAX_BODY_BYTES``.
MAX_MULTIPART_COMPLETE_BYTES: Final = 1024 * 1024


def parse_body(model: type[M], raw: bytes | str | None, *, max_bytes: int = MAX_BODY_BYTES) -> M:
    data = json_object(raw, max_bytes=max_bytes)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(f"invalid request body: {validation_problems(exc.errors(), limit=5)}") from None


# -- identity -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PresentedToken:
    """The token a request carries and where: ``in_url`` for ``?access_token=`` (media tokens only)."""

    value: str
    in_url: bool


def bearer_token(request: ApiRequest, *, allow_query: bool) -> PresentedToken:
    """The token of ``Authorization: Bearer ...``, or (where allowed) of ``?access_token=``."""
    header = request.header("authorization")
    if header is not None:
        match = _BEARER.fullmatch(header)
        if not match:
            raise Unauthorized("Authorization must be 'Bearer <token>'")
        return PresentedToken(match.group(1), in_url=False)
    if allow_query:
        token = request.query_param("access_token")
        if token:
            return PresentedToken(token, in_url=True)
    raise Unauthorized("missing bearer token")


def authenticate(services: Services, request: ApiRequest, *, allow_query: bool) -> str:
    """The verified user id.

    ``allow_query`` marks the one route media tags load (``GET /storage/{key}``): there a token may come in the
    URL, and a token in a URL must be a media token (``scope: media``, whole lifetime at most 15 minutes), since
    URLs end up in history, logs and referrers; a full API token there is 401. Media tokens are good for that
    route only, never elsewhere (contract section 4).
    """
    from scenestore.tokens import is_media_token, verify_media_token, verify_token

    token = bearer_token(request, allow_query=allow_query)
    if token.in_url:
        return str(verify_media_token(services.settings, token.value)["sub"])
    claims = verify_token(services.settings, token.value)
    if is_media_token(claims) and not allow_query:
        raise Unauthorized("a media token is only valid for GET /storage/{key}")
    return str(claims["sub"])


# -- CORS ---------------------------------------------------------------------------------------------
def cors_headers(origin: str | None, allowed: tuple[str, ...]) -> dict[str, str]:
    """``*`` answers every origin; a list answers a listed origin by echoing it (with ``Vary: Origin``)."""
    if "*" in allowed:
        return {"Access-Control-Allow-Origin": "*"}
    headers = {"Vary": "Origin"}
    if origin and origin.rstrip("/") in allowed:
        headers["Access-Control-Allow-Origin"] = origin
    return headers


def preflight(origin: str | None, allowed: tuple[str, ...], methods: tuple[str, ...]) -> Reply:
    headers = cors_headers(origin, allowed)
    if "Access-Control-Allow-Origin" in headers:
        headers.update(
            {
                "Access-Control-Allow-Methods": ", ".join((*methods, "OPTIONS")),
                "Access-Control-Allow-Headers": ALLOWED_REQUEST_HEADERS,
                "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
            }
        )
    return Reply(204, "", headers)


# -- the request cycle --------------------------------------------------------------------------------
View = Callable[[ApiRequest, Caller], Reply]
PublicView = Callable[[ApiRequest, "Services"], Reply]


@dataclass(frozen=True)
class RouteSpec:
    method: str
    auth: bool = True
    query_token: bool = False
    preflight_methods: tuple[str, ...] = ()
    """Every method the path serves, for its CORS preflight (empty: just ``method``)."""


def handle(request: ApiRequest, spec: RouteSpec, view: Callable[..., Reply]) -> Reply:
    """Run one request through identity, the view, error mapping, CORS and logging (module doc)."""
    from scenestore.services import get_services

    started = time.perf_counter()
    # Keys appended by anything that ran before in this process (a warm Lambda's last request; locally, the
    # event runner's deletion: user_id, scene_id, cold_start) describe that work, not this request.
    logger.clear_state()
    log_keys: dict[str, str] = {}
    origin = request.header("origin")
    allowed_origins: tuple[str, ...] = ("*",)
    try:
        services = get_services()
        allowed_origins = services.settings.cors_origins
        if request.method == "OPTIONS":
            reply = preflight(origin, allowed_origins, spec.preflight_methods or (spec.method,))
        elif spec.auth:
            caller = Caller(user_id=authenticate(services, request, allow_query=spec.query_token), services=services)
            log_keys = caller.log_keys
            log_keys["user_id"] = caller.user_id
            reply = view(request, caller)
        else:
            reply = view(request, services)
    except Exception as exc:
        reply = error_reply(exc, request)
    for name, value in cors_headers(origin, allowed_origins).items():
        reply.headers.setdefault(name, value)
    reply.headers.setdefault("Cache-Control", "no-store")  # presigned URLs are bearer secrets
    _log(request, reply, started, log_keys)
    return reply


def error_reply(exc: BaseException, request: ApiRequest) -> Reply:
    status = status_for(exc)
    if status == 500:
        logger.exception("unhandled error", extra={"route": request.route, "method": request.method})
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="scenestore"'
    return Reply(status, error_body(exc), headers)


def _log(request: ApiRequest, reply: Reply, started: float, keys: dict[str, str]) -> None:
    """One line per request: route template (never the raw path or query, which may hold a token)."""
    extra: dict[str, Any] = {
        "method": request.method,
        "route": request.route,
        "status": reply.status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        **keys,
    }
    if isinstance(reply.body, dict) and "error" in reply.body and reply.status < 500:
        extra["error"] = reply.body["error"]
    logger.info("request", extra=extra)
