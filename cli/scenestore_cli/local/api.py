"""Serve the presign function's Chalice app over local HTTP, in a thread of the ``serve`` process.

Besides the app (every route of ``functions/presign/app.py``, exactly as Lambda runs it), the local server has
what only a developer's machine needs, never part of the Lambda app:

- ``GET /`` and ``GET /static/<name>``: the demo page (``demo_page/``) and the JS client (``clients/js/``), so
  the page is same-origin with the API and needs no extra server;
- ``/dev/...`` (when ``dev_routes``): a token for the demo user, a short-lived media token for storage URLs,
  the caller's projects and scenes (the real frontend has its own backend for those), creating or deleting
  a scene document, and deleting a project document with its scenes' documents, whose deletion the local event
  runner turns into object cleanup as the Atlas trigger does in production (``leftovers`` says what is left).
  They answer only requests whose ``Host`` is ``127.0.0.1:<port>`` or ``localhost:<port>`` (a web page cannot
  reach them through DNS rebinding) and only API tokens: a media token, which travels in URLs, is refused as on
  every route but ``/storage/{key}``.

Each request is logged once: the app's requests by the app's own structured line (``scenestore.http_api``), the
rest (static files, dev routes, unknown paths) by the access line, whose ``access_token`` values are redacted
however the parameter name is percent-encoded, and in which anything JWT-shaped is redacted wherever it stands
(another parameter's value, the path), so no token of either kind reaches the log.

A request whose ``Content-Length`` is not one whole number (``abc``, ``-1``, two different values) is answered
400 and its connection closed (its body cannot be framed), instead of dropping the connection with a traceback.

Unknown paths get a JSON 404 like the deployed HTTP API, instead of chalice local's 403.
"""

from __future__ import annotations

import json
import mimetypes
import re
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Final
from urllib.parse import unquote, unquote_plus, urlsplit

from chalice.local import ChaliceRequestHandler, RouteMatcher
from scenestore.errors import Conflict, InvalidRequest, NotFound, ScenestoreError, Unauthorized

PAGE_DIR: Final = Path(__file__).resolve().parent / "demo_page"
#: The JS client lives with its package.json in clients/js (repository checkout; the page needs it).
CLIENT_DIR: Final = Path(__file__).resolve().parents[3] / "clients" / "js"
CLIENT_FILES: Final = frozenset({"scenestore.js", "scenestore.d.ts"})
DEV_TOKEN_TTL: Final = 3600
#: How often the server loop checks for ``stop()``: what stopping it costs (Ctrl-C stops serve within ~2 s).
STOP_POLL_SECONDS: Final = 0.1
#: Query parameters whose value never reaches a log line (compared once percent-decoded, case-insensitively).
_SECRET_PARAMETERS: Final = frozenset({"access_token"})
#: Anything JWT-shaped: base64url header (``eyJ`` is ``{"``), payload and signature, the dots possibly percent-encoded.
_JWT_SHAPED: Final = re.compile(r"eyJ[A-Za-z0-9_\-]+(?:\.|%2[Ee])[A-Za-z0-9_\-]*(?:\.|%2[Ee])[A-Za-z0-9_\-]*")
_REDACTED: Final = "<redacted>"
#: A ``Content-Length`` the server can frame a body by: one plain decimal number (no sign, no space inside).
_CONTENT_LENGTH: Final = re.compile(r"[0-9]{1,18}")
#: The hosts a dev route answers to, with the server's own port (DNS-rebinding guard).
_LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost")
_STATIC_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_CONTENT_TYPES: Final = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".ts": "text/plain; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}

Reply = tuple[int, dict[str, Any]]


class ForeignHost(ScenestoreError):
    """A dev route asked for under another ``Host`` than the server's loopback address (DNS rebinding)."""

    code = "forbidden"


class LocalSite:
    """What the local server adds around the app: static files and the dev routes."""

    def __init__(
        self, *, dev_routes: bool, port: int, page_dir: Path = PAGE_DIR, client_dir: Path = CLIENT_DIR
    ) -> None:
        self.dev_routes = dev_routes
        self.port = port
        self.page_dir = page_dir
        self.client_dir = client_dir
        #: Legacy keys held by the documents of a project deleted through the dev route, by (user, project).
        self._legacy_keys: dict[tuple[str, str], set[str]] = {}
        self._lock = threading.Lock()

    # -- static files -------------------------------------------------------------------------------
    def static_file(self, path: str) -> Path | None:
        """The file for ``/`` or ``/static/<name>``, or ``None`` when the path is not a static one."""
        if path in ("/", "/index.html"):
            return self.page_dir / "index.html"
        if not path.startswith("/static/"):
            return None
        name = path[len("/static/") :]
        if not _STATIC_NAME.fullmatch(name):
            return None
        folder = self.client_dir if name in CLIENT_FILES else self.page_dir
        return folder / name

    # -- dev routes ---------------------------------------------------------------------------------
    def dev_reply(self, method: str, path: str, headers: dict[str, str], body: bytes | None) -> Reply | None:
        """Answer a ``/dev/...`` request, or ``None`` when the path is not one."""
        if not path.startswith("/dev/"):
            return None
        self._require_loopback_host(headers)
        if not self.dev_routes:
            raise NotFound("dev routes are off (they are on with `scenestore serve --demo`)")
        parts = path.strip("/").split("/")
        if parts == ["dev", "token"] and method == "GET":
            return 200, self._token()
        user_id = self._caller(headers)
        if parts == ["dev", "media-token"] and method == "GET":
            return 200, self._media_token(user_id)
        if parts == ["dev", "projects"] and method == "GET":
            return 200, {"projects": self._projects(user_id)}
        if len(parts) == 4 and parts[:2] == ["dev", "projects"] and parts[3] == "scenes" and method == "POST":
            return 201, self._create_scene(user_id, unquote(parts[2]), _json_body(body))
        if len(parts) == 5 and parts[:2] == ["dev", "projects"] and parts[3] == "scenes" and method == "DELETE":
            return 200, self._delete_scene(user_id, unquote(parts[2]), unquote(parts[4]))
        if len(parts) == 3 and parts[:2] == ["dev", "projects"] and method == "DELETE":
            return 200, self._delete_project(user_id, unquote(parts[2]))
        if len(parts) == 4 and parts[:2] == ["dev", "projects"] and parts[3] == "leftovers" and method == "GET":
            return 200, self._leftovers(user_id, unquote(parts[2]))
        raise NotFound("no such dev route")

    def _require_loopback_host(self, headers: dict[str, str]) -> None:
        """A page on ``evil.example`` whose name re-resolves to 127.0.0.1 sends ``Host: evil.example:<port>``."""
        host = _header(headers, "host").strip().lower()
        if host not in {f"{name}:{self.port}" for name in _LOOPBACK_HOSTS}:
            raise ForeignHost(f"dev routes answer only to Host 127.0.0.1:{self.port} or localhost:{self.port}")

    @staticmethod
    def _services() -> Any:
        from scenestore.services import get_services

        return get_services()

    def _token(self) -> dict[str, Any]:
        from scenestore.tokens import issue_token

        from scenestore_cli.local.demo import DEMO_USER

        token = issue_token(self._services().settings, DEMO_USER, ttl=DEV_TOKEN_TTL)
        return {"user_id": DEMO_USER, "token": token, "expires_in": DEV_TOKEN_TTL}

    def _media_token(self, user_id: str) -> dict[str, Any]:
        """What the app's backend would hand the frontend for storage URLs: a minutes-long ``scope: media`` token."""
        from scenestore.tokens import issue_media_token

        settings = self._services().settings
        token = issue_media_token(settings, user_id)
        return {"user_id": user_id, "token": token, "expires_in": settings.media_token_ttl}

    def _caller(self, headers: dict[str, str]) -> str:
        """The API token's user; a media token (it travels in URLs) cannot list, create or delete anything."""
        from scenestore.tokens import is_media_token, verify_token

        scheme, _, token = _header(headers, "authorization").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("missing bearer token")
        claims = verify_token(self._services().settings, token.strip())
        if is_media_token(claims):
            raise Unauthorized("a media token is only valid for GET /storage/{key}")
        return str(claims["sub"])

    def _owned_project(self, user_id: str, project_id: str) -> dict[str, Any]:
        from scenestore.db import id_filter, project_owner
        from scenestore.keys import validate_id

        validate_id(project_id, "project_id")
        project = self._services().db.projects.find_one(id_filter(project_id))
        if project is None or project_owner(project) != user_id:
            raise NotFound("no such project")
        return project

    def _projects(self, user_id: str) -> list[dict[str, Any]]:
        db = self._services().db
        projects = list(db.projects.find({"user_id": user_id}).sort("_id", 1))
        ids = [str(p["_id"]) for p in projects]
        scenes_by_project: dict[str, list[dict[str, Any]]] = {pid: [] for pid in ids}
        for scene in db.scenes.find({"project_id": {"$in": ids}}):
            scenes_by_project[str(scene["project_id"])].append(
                {
                    "id": str(scene["_id"]),
                    "order": scene.get("order"),
                    "media": _slot(scene.get("media")),
                    "audio": _slot(scene.get("audio")),
                }
            )
        return [
            {
                "id": pid,
                "title": project.get("title") or pid,
                "output": _slot(project.get("output")),
                "scenes": sorted(scenes_by_project[pid], key=lambda s: (s["order"] is None, s["order"], s["id"])),
            }
            for pid, project in zip(ids, projects, strict=True)
        ]

    def _create_scene(self, user_id: str, project_id: str, body: dict[str, Any]) -> dict[str, Any]:
        from scenestore.keys import validate_id

        """A scene document in the caller's project. Scene ids are one namespace for all users, so a taken id is
        answered by one generic 409, the same whoever holds it: it never says that another user's scene exists."""
        from pymongo.errors import DuplicateKeyError

        self._owned_project(user_id, project_id)
        scene_id = validate_id(body.get("scene_id") or f"scene-{uuid.uuid4().hex[:8]}", "scene_id")
        db = self._services().db
        last = db.scenes.find_one({"project_id": project_id}, sort=[("order", -1)])
        order = int((last or {}).get("order") or 0) + 1
        taken = Conflict("this scene_id cannot be used: choose another, or leave scene_id out for a fresh one")
        if db.scenes.find_one({"_id": scene_id}, {"_id": 1}) is not None:
            raise taken
        try:
            db.scenes.insert_one({"_id": scene_id, "project_id": project_id, "order": order})
        except DuplicateKeyError:  # created meanwhile by another request
            raise taken from None
        return {"id": scene_id, "project_id": project_id, "order": order}

    def _delete_scene(self, user_id: str, project_id: str, scene_id: str) -> dict[str, Any]:
        """Delete the scene *document* only: the event runner deletes the objects, as in production."""
        from scenestore.db import id_filter
        from scenestore.keys import validate_id

        self._owned_project(user_id, project_id)
        validate_id(scene_id, "scene_id")
        db = self._services().db
        scene = db.scenes.find_one(id_filter(scene_id))
        if scene is None or str(scene.get("project_id")) != project_id:
            raise NotFound("no such scene")
        deleted = db.scenes.delete_one({"_id": scene["_id"]}).deleted_count
        return {"deleted": deleted, "scene_id": scene_id, "project_id": project_id}

    def _delete_project(self, user_id: str, project_id: str) -> dict[str, Any]:
        """Delete the project document, then its scene documents, as the app does: the event runner turns each
        delete into cleanup (the project's prefix, its uploads in progress, legacy keys only these documents held).

        The legacy keys are noted first, so :meth:`_leftovers` can tell when the cleanup has reached them too.
        """
        project = self._owned_project(user_id, project_id)
        db = self._services().db
        scenes = list(db.scenes.find({"project_id": project_id}))
        legacy = {
            slot["storageKey"]
            for document in (project, *scenes)
            for field in ("output", "media", "audio")
            if (slot := _slot(document.get(field))) and not slot["storageKey"].startswith("users/")
        }
        with self._lock:
            self._legacy_keys[(user_id, project_id)] = legacy
        deleted = db.projects.delete_one({"_id": project["_id"]}).deleted_count
        scene_count = db.scenes.delete_many({"project_id": project_id}).deleted_count
        return {"deleted": deleted, "scenes": scene_count, "project_id": project_id, "legacy_keys": len(legacy)}

    def _leftovers(self, user_id: str, project_id: str) -> dict[str, Any]:
        """What the cleanup of the caller's project has yet to remove: objects under the caller's own prefix for
        it, multipart uploads in progress there, and legacy keys that the caller's deleted documents held."""
        from scenestore.keys import project_prefix, validate_id

        validate_id(project_id, "project_id")
        services = self._services()
        prefix = project_prefix(user_id, project_id)
        objects = sum(1 for _ in services.store.iter_objects(prefix))
        listed = services.s3.list_multipart_uploads(Bucket=services.settings.bucket, Prefix=prefix)
        with self._lock:
            legacy = sorted(self._legacy_keys.get((user_id, project_id), ()))
        legacy_left = sum(1 for key in legacy if services.store.exists(key))
        return {"objects": objects, "uploads": len(listed.get("Uploads", [])), "legacy": legacy_left}


def _header(headers: dict[str, str], name: str) -> str:
    return next((v for k, v in headers.items() if k.lower() == name), "")


def redact_query(target: str) -> str:
    """``target`` (a request line's path and query) with the values of secret parameters replaced.

    The name is compared percent-decoded (``access%5Ftoken``, ``%61ccess_token`` and ``access_token`` are one
    parameter to the server's query parser), so no spelling of it slips a token into the log.
    """
    path, mark, query = target.partition("?")
    if not mark:
        return target
    pairs = []
    for pair in re.split(r"([&;])", query):
        name, equals, _value = pair.partition("=")
        if equals and unquote_plus(name).lower() in _SECRET_PARAMETERS:
            pair = f"{name}=<redacted>"
        pairs.append(pair)
    return f"{path}?{''.join(pairs)}"


def _slot(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict) or not value.get("storageKey"):
        return None
    return {k: value[k] for k in ("storageKey", "type", "contentType", "size") if k in value}


def _json_body(body: bytes | None) -> dict[str, Any]:
    if not body:
        return {}
    try:
        data = json.loads(body)
    except ValueError:
        raise InvalidRequest("body must be JSON") from None
    if not isinstance(data, dict):
        raise InvalidRequest("body must be a JSON object")
    return data


_STATUS_BY_CODE: Final = {
    "invalid_request": 400,
    "invalid_id": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
}


class LocalApiHandler(ChaliceRequestHandler):
    """Static files and dev routes first; every other request goes to the Chalice app unchanged."""

    site: ClassVar[LocalSite]
    routes: ClassVar[RouteMatcher]
    #: Keep-alive responses otherwise wait ~40 ms for delayed ACKs (Nagle); measured 48 ms -> 2.7 ms p50.
    disable_nagle_algorithm = True

    #: Set when the request went to the app, which writes the request's log line itself.
    _logged_by_app: bool = False

    def _generic_handle(self) -> None:
        self._logged_by_app = False
        if not self._content_length_is_framable():
            return
        path = urlsplit(self.path).path
        if self.command in ("GET", "HEAD"):
            file = self.site.static_file(path)
            if file is not None:
                self._send_file(file)
                return
        if path.startswith("/dev/"):
            self._send_dev(path)
            return
        try:
            self.routes.match_route(self.path)
        except ValueError:
            self._drain_body()
            self._send_json(404, {"error": "not_found", "message": f"no route for {self.command} {path}"})
            return
        self._logged_by_app = True
        super()._generic_handle()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """One line per request: the app's requests already have theirs (module doc)."""
        if not self._logged_by_app:
            super().log_request(code, size)

    def log_message(self, format: str, *args: Any) -> None:
        """The access log, minus the tokens that storage URLs carry in ``access_token`` (however spelled)."""
        super().log_message(format, *(_redact_request_line(a) if isinstance(a, str) else a for a in args))

    def handle(self) -> None:
        """A browser that drops a connection (a media element seeking, a closed tab) is not a server error."""
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _content_length_is_framable(self) -> bool:
        """``False`` (after answering 400 and closing) when ``Content-Length`` is not one whole number: the body
        cannot be told from the next request, and chalice's ``int()`` of it would drop the connection."""
        values = {value.strip() for value in self.headers.get_all("content-length") or []}
        if not values or (len(values) == 1 and _CONTENT_LENGTH.fullmatch(next(iter(values)))):
            return True
        self._send_json(
            400, {"error": "invalid_request", "message": "Content-Length must be one whole number"}, close=True
        )
        return False

    def _drain_body(self) -> bytes | None:
        length = int(self.headers.get("content-length", "0") or 0)
        return self.rfile.read(length) if length > 0 else None

    def _send_dev(self, path: str) -> None:
        body = self._drain_body()
        try:
            reply = self.site.dev_reply(self.command, path, dict(self.headers), body)
        except ScenestoreError as exc:
            reply = _STATUS_BY_CODE.get(exc.code, 500), exc.to_dict()
        assert reply is not None  # dev_reply answers every /dev/ path
        self._send_json(*reply)

    def _send_json(self, status: int, payload: dict[str, Any], *, close: bool = False) -> None:
        self._send_bytes(status, json.dumps(payload).encode(), "application/json", close=close)

    def _send_file(self, file: Path) -> None:
        if not file.is_file():
            self._send_json(404, {"error": "not_found", "message": f"no such file: {file.name}"})
            return
        content_type = _CONTENT_TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0]
        self._send_bytes(200, file.read_bytes(), content_type or "application/octet-stream")

    def _send_bytes(self, status: int, data: bytes, content_type: str, *, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        if close:
            self.send_header("Connection", "close")  # also sets close_connection
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


def redact_tokens(text: str) -> str:
    """``text`` with every JWT-shaped run replaced: a token logged under any parameter name (``token``,
    ``access+token``, ``access_token[]``), in the path, or in an error message quoting the request line."""
    return _JWT_SHAPED.sub(_REDACTED, text)


def _redact_request_line(text: str) -> str:
    """``GET /path?query HTTP/1.1`` with :func:`redact_query` applied to its target and :func:`redact_tokens` to
    the whole; other text gets :func:`redact_tokens` too."""
    method, space, rest = text.partition(" ")
    if not space:
        return redact_tokens(redact_query(text))
    target, space2, version = rest.rpartition(" ")
    if not space2:
        return redact_tokens(f"{method} {redact_query(rest)}")
    return redact_tokens(f"{method} {redact_query(target)} {version}")


def _handler_for(site: LocalSite, app: Any) -> Callable[..., LocalApiHandler]:
    routes = RouteMatcher(list(app.routes))
    return type("BoundLocalApiHandler", (LocalApiHandler,), {"site": site, "routes": routes})


class ApiServer:
    """The local HTTP API on ``host:port``, served from a daemon thread.

    ``dev_routes`` turns on the ``/dev/...`` helpers of the demo page. They are on by default because this server
    only ever runs on a developer's machine (loopback), and the token route only issues tokens for the demo user.
    """

    def __init__(self, app: Any, port: int, host: str = "127.0.0.1", *, dev_routes: bool = True) -> None:
        from chalice.config import Config
        from chalice.local import LocalDevServer

        self.host = host
        self.port = port
        self.site = LocalSite(dev_routes=dev_routes, port=port)
        self._server = LocalDevServer(app, Config(), host, port, handler_cls=_handler_for(self.site, app))
        self._thread = threading.Thread(
            target=self._server.server.serve_forever,
            kwargs={"poll_interval": STOP_POLL_SECONDS},
            name="api",
            daemon=True,
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server.server_close()
        self._thread.join(5)


def load_presign_app() -> Any:
    """The very app object Lambda runs (``functions/presign/app.py``)."""
    from functions.presign.app import app

    return app
