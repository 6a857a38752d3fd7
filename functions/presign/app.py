"""The presign HTTP function (Chalice): thin routes over the shared layer.

Lambda handler: ``app.app`` (API Gateway, REST-style payload 1.0). ``scenestore serve`` serves this same
object locally. Each route parses its inputs, calls one shared-layer function and shapes the reply;
identity, error mapping, CORS and logging happen once for all routes in ``scenestore.http_api.handle``.

Import cost matters (it is the Lambda cold start): boto3, pymongo and PyJWT load on first use, inside the
shared layer, not here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from chalice import Chalice, Response
from scenestore import http_api
from scenestore.http_api import ApiRequest, Caller, Reply, RouteSpec
from scenestore.settings import get_settings

if TYPE_CHECKING:
    from scenestore.services import Services
    from scenestore.uploads import UploadSpec

    #: ``presign_upload`` or ``create_multipart``: how an upload starts once its body is checked.
    StartUpload = Callable[[Services, str, str, UploadSpec], dict[str, Any]]

# A bad setting fails here, at start-up (Lambda init), naming the variable, not at the first request; deployed,
# so do the local stack's dev token keys (contract section 3).
get_settings().require_token_keys()


class _ThreadSafeChalice(Chalice):
    """Chalice keeps the current request on the app object; the local HTTP server runs a thread per
    connection, so it must be per thread (as chalice's own ``LocalChalice`` does) or concurrent requests
    would read each other's bodies and headers."""

    _local = threading.local()

    @property  # type: ignore[override]
    def current_request(self) -> Any:
        return getattr(self._local, "request", None)

    @current_request.setter
    def current_request(self, value: Any) -> None:
        self._local.request = value

    @property  # type: ignore[override]
    def lambda_context(self) -> Any:
        return getattr(self._local, "context", None)

    @lambda_context.setter
    def lambda_context(self, value: Any) -> None:
        self._local.context = value


app = _ThreadSafeChalice(app_name="scenestore-presign")
app.api.binary_types = []  # every body here is JSON; never base64-encode one

#: Bodies are parsed by us (a non-JSON body is our 400, not Chalice's 415), so any Content-Type reaches the view.
_ANY_TYPE = ["*/*"]


#: Every method registered per path: one path may serve several (GET and DELETE of a multipart upload), and its
#: one ``OPTIONS`` route (Chalice allows a method once per path) must announce them all.
_METHODS_BY_PATH: dict[str, list[str]] = {}


def route(path: str, method: str, *, auth: bool = True, query_token: bool = False) -> Callable[..., Any]:
    """Register ``view(request, caller)`` for ``method`` plus, once per path, its CORS preflight (``OPTIONS``)."""
    spec = RouteSpec(method=method, auth=auth, query_token=query_token)
    methods = _METHODS_BY_PATH.setdefault(path, [])
    first_on_path = not methods
    methods.append(method)

    def register(view: Callable[..., Reply]) -> Callable[..., Reply]:
        def chalice_view(**_path_params: str) -> Response:
            request = app.current_request
            api_request = ApiRequest(
                method=request.method,
                route=path,
                headers={k.lower(): v for k, v in request.headers.items()},
                query={k: request.query_params.getlist(k) for k in request.query_params or {}},
                path_params={k.rstrip("+"): v for k, v in (request.uri_params or {}).items()},
                body=_raw_body(request),
            )
            active = spec if request.method != "OPTIONS" else replace(spec, preflight_methods=tuple(methods))
            reply = http_api.handle(api_request, active, view)
            return Response(body=reply.body, status_code=reply.status, headers=reply.headers)

        chalice_view.__name__ = view.__name__
        route_methods = [method, "OPTIONS"] if first_on_path else [method]
        app.route(path, methods=route_methods, content_types=_ANY_TYPE)(chalice_view)
        return view

    return register


def _raw_body(request: Any) -> bytes:
    """The body as bytes; a body the gateway could not even decode (bad base64) reads as none, which every
    route that needs one answers with 400."""
    try:
        raw = request.raw_body
    except ValueError:  # binascii.Error: malformed base64 from a (mis)configured gateway
        return b""
    return raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")


@app.middleware("http")
def contract_errors(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """Errors Chalice answers itself (405 for a wrong method, its 500 fallback) get the contract's shape."""
    response = get_response(event)
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and "Code" in body:
        code = "method_not_allowed" if response.status_code == 405 else "internal"
        message = "method not allowed" if response.status_code == 405 else "internal error"
        response.body = {"error": code, "message": message}
        from scenestore.services import get_services

        origin = event.headers.get("origin") if event is not None else None
        for name, value in http_api.cors_headers(origin, get_services().settings.cors_origins).items():
            response.headers.setdefault(name, value)
    return response


# -- routes ----------------------------------------------------------------------------------------------
def _project_id(request: ApiRequest, caller: Caller) -> str:
    """The route's project id, also put on the request's log line (cut to an id's length: it is unchecked yet)."""
    project_id = request.path_param("project_id")
    caller.note(project_id=project_id[:128])
    return project_id


def _start_upload(request: ApiRequest, caller: Caller, start: StartUpload) -> Reply:
    """The single PUT and the multipart create start alike: the route's project, one parse of the same upload
    body (so the same checks), and a 201 with what ``start(services, user_id, project_id, spec)`` signed."""
    from scenestore.uploads import UploadSpec  # loaded on first use (cold start)

    project_id = _project_id(request, caller)
    body = http_api.parse_body(http_api.UploadBody, request.body)
    spec = UploadSpec(body.kind, body.filename, body.content_type, body.size, body.scene_id)
    return Reply(201, start(caller.services, caller.user_id, project_id, spec))


def _multipart_upload(request: ApiRequest) -> tuple[str, str]:
    """``(upload_id, key)`` of the multipart upload a route names: the id in the path, the key in the query
    (S3 needs both to find the upload; the shared layer checks the key belongs to the caller's project)."""
    return request.path_param("upload_id"), request.query_param("key")


@route("/projects/{project_id}/uploads", "POST")
def create_upload(request: ApiRequest, caller: Caller) -> Reply:
    from scenestore.uploads import presign_upload

    return _start_upload(request, caller, presign_upload)


@route("/projects/{project_id}/uploads/complete", "POST")
def complete_upload(request: ApiRequest, caller: Caller) -> Reply:
    from scenestore.uploads import complete_upload as complete

    project_id = _project_id(request, caller)
    body = http_api.parse_body(http_api.CompleteBody, request.body)
    return Reply(200, complete(caller.services, caller.user_id, project_id, body.key))


# -- multipart uploads (contract section 4): the same checks as the single PUT, in scenestore.multipart -----
@route("/projects/{project_id}/multipart", "POST")
def create_multipart_upload(request: ApiRequest, caller: Caller) -> Reply:
    from scenestore.multipart import create_multipart

    return _start_upload(request, caller, create_multipart)


@route("/projects/{project_id}/multipart/{upload_id}/parts/{part_number}", "GET")
def sign_multipart_part(request: ApiRequest, caller: Caller) -> Reply:
    from scenestore.multipart import sign_part

    project_id = _project_id(request, caller)
    upload_id, key = _multipart_upload(request)
    part_number = request.path_param("part_number")
    return Reply(200, sign_part(caller.services, caller.user_id, project_id, upload_id, key, part_number))


@route("/projects/{project_id}/multipart/{upload_id}", "GET")
def list_multipart_parts(request: ApiRequest, caller: Caller) -> Reply:
    from scenestore.multipart import list_parts

    project_id = _project_id(request, caller)
    upload_id, key = _multipart_upload(request)
    return Reply(200, list_parts(caller.services, caller.user_id, project_id, upload_id, key))


@route("/projects/{project_id}/multipart/{upload_id}/complete", "POST")
def complete_multipart_upload(request: ApiRequest, caller: Caller) -> Reply:
    from scenestore.multipart import complete_multipart

    project_id = _project_id(request, caller)
    body = http_api.parse_body(
        http_api.MultipartCompleteBody, request.body, max_bytes=http_api.MAX_MULTIPART_COMPLETE_BYTES
    )
    parts = [(part.PartNumber, part.ETag) for part in body.parts]
    upload_id = request.path_param("upload_id")
    return Reply(200, complete_multipart(caller.services, caller.user_id, project_id, upload_id, body.key, parts))


@route("/projects/{project_id}/multipart/{upload_id}", "DELETE")
def abort_multipart_upload(request: ApiRequest, caller: Caller) -> Reply:
    from scenestore.multipart import abort_multipart

    project_id = _project_id(request, caller)
    upload_id, key = _multipart_upload(request)
    abort_multipart(caller.services, caller.user_id, project_id, upload_id, key)
    return Reply(204, "")


# -- downloads ------------------------------------------------------------------------------------------
@route("/files", "GET")
def get_file(request: ApiRequest, caller: Caller) -> Reply:
    from scenestore.files import presign_download

    return Reply(200, presign_download(caller.services, caller.user_id, request.query_param("key")))


@route("/storage/{key+}", "GET", query_token=True)
def storage_redirect(request: ApiRequest, caller: Caller) -> Reply:
    """302 to a presigned GET, for ``<img>``/``<video>``/``<audio>`` tags that cannot send headers."""
    from scenestore.files import presign_download

    target = presign_download(caller.services, caller.user_id, request.path_param("key"))
    headers = {"Location": target["url"], "Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"}
    return Reply(302, "", headers)


@route("/media-token", "POST")
def create_media_token(_request: ApiRequest, caller: Caller) -> Reply:
    """A minutes-long ``scope: media`` token for ``?access_token=`` in ``<img>``/``<video>``/``<audio>`` URLs,
    signed with the service's own key; a media token cannot mint another (it is refused here like anywhere
    but ``GET /storage/{key}``)."""
    from scenestore.tokens import media_token_for

    return Reply(201, media_token_for(caller.services.settings, caller.user_id))


@route("/projects/{project_id}/files", "GET")
def list_files(request: ApiRequest, caller: Caller) -> Reply:
    from scenestore.files import list_project_files

    project_id = _project_id(request, caller)
    return Reply(200, list_project_files(caller.services, caller.user_id, project_id, request.query_param("cursor")))


@route("/health", "GET", auth=False)
def health(_request: ApiRequest, services: Any) -> Reply:
    from scenestore.health import check_health

    status = check_health(services)
    return Reply(200 if all(v == "ok" for v in status.values()) else 503, status)
