"""HTTP behaviour around the routes: CORS (with preflight), /health, Chalice's own errors in the contract's
shape, structured request logs without tokens, and per-thread requests on the threaded local server.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from chalice.test import Client
from scenestore.clients import make_mongo_client
from scenestore.services import Services, use_services
from scenestore.tokens import issue_media_token
from scenestore_cli.local.api import ApiServer, load_presign_app
from scenestore_cli.local.servers import free_port

from tests.support.presign import ALICE, BOB, Api, seed_two_tenants

pytestmark = pytest.mark.filterwarnings("ignore:The HMAC key")

ORIGINS = ("https://app.example.com", "http://localhost:3000")


@pytest.fixture
def listed_origins(services: Services) -> Any:
    with use_services(Services(services.settings.with_overrides(cors_origins=ORIGINS), services.s3, services.mongo)):
        yield


# -- CORS ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/projects/p1/uploads", "POST"),
        ("/projects/p1/uploads/complete", "POST"),
        ("/files", "GET"),
        ("/storage/abc.png", "GET"),
        ("/projects/p1/files", "GET"),
        ("/health", "GET"),
    ],
)
def test_preflight_answers_a_listed_origin_for_every_route(
    api: Api, listed_origins: None, path: str, method: str
) -> None:
    response = api.request(
        "OPTIONS",
        path,
        user=None,
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert "Origin" in response.headers["Vary"]
    assert method in response.headers["Access-Control-Allow-Methods"]
    allowed_headers = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed_headers
    assert "content-type" in allowed_headers


def test_preflight_from_an_unlisted_origin_gets_no_allowance(api: Api, listed_origins: None) -> None:
    response = api.request(
        "OPTIONS",
        "/files",
        user=None,
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Methods" not in response.headers


def test_responses_and_errors_carry_the_origin(api: Api, services: Services, listed_origins: None) -> None:
    """Errors too: a browser can read a 401/404 body only if it carries the CORS header."""
    seed_two_tenants(services)
    origin = {"Origin": "https://app.example.com"}
    ok = api.get("/projects/pa/files", headers=origin)
    missing = api.get("/projects/pb/files", headers=origin)
    unauthenticated = api.get("/projects/pa/files", user=None, headers=origin)
    wrong_method = api.request("DELETE", "/projects/pa/files", headers=origin)
    for response, status in ((ok, 200), (missing, 404), (unauthenticated, 401), (wrong_method, 405)):
        assert response.status_code == status
        assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com", status
    assert (
        api.get("/projects/pa/files", headers={"Origin": "https://evil.example"}).headers.get(
            "Access-Control-Allow-Origin"
        )
        is None
    )


def test_wildcard_origins_answer_everyone(api: Api) -> None:
    response = api.request("OPTIONS", "/files", user=None, headers={"Origin": "https://anything.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_wrong_method_is_405_in_the_contracts_shape(api: Api) -> None:
    response = api.request("PUT", "/files")
    assert response.status_code == 405
    assert response.json() == {"error": "method_not_allowed", "message": "method not allowed"}


# -- health ----------------------------------------------------------------------------------------------
def _dead_services(services: Services, *, s3_down: bool, mongo_down: bool) -> Services:
    """Services pointing at ports nothing listens on (one retry, short time-outs, so the test is quick)."""
    settings = services.settings
    if s3_down:
        settings = settings.with_overrides(s3_endpoint_url=f"http://127.0.0.1:{free_port()}")
    if mongo_down:
        settings = settings.with_overrides(mongodb_uri=f"mongodb://127.0.0.1:{free_port()}/?directConnection=true")
    s3 = (
        boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=settings.aws_access_key_id,
            aws_secret_access_key=settings.aws_secret_access_key,
            config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=1),
        )
        if s3_down
        else services.s3
    )
    mongo = make_mongo_client(settings, serverSelectionTimeoutMS=300) if mongo_down else services.mongo
    return Services(settings, s3, mongo)  # type: ignore[arg-type]


def test_health_is_200_when_both_parts_answer(api: Api) -> None:
    response = api.get("/health", user=None)
    assert response.status_code == 200
    assert response.json() == {"s3": "ok", "mongodb": "ok"}


@pytest.mark.parametrize(("s3_down", "mongo_down"), [(True, True), (True, False), (False, True)])
def test_health_is_503_naming_what_is_down(api: Api, services: Services, s3_down: bool, mongo_down: bool) -> None:
    dead = _dead_services(services, s3_down=s3_down, mongo_down=mongo_down)
    try:
        with use_services(dead):
            response = api.get("/health", user=None)
    finally:
        if mongo_down:
            dead.mongo.close()
    assert response.status_code == 503
    body = response.json()
    assert body["s3"].startswith("down") is s3_down
    assert body["mongodb"].startswith("down") is mongo_down
    assert (body["s3"] == "ok") is not s3_down


def test_a_dead_database_is_a_bare_500_without_detail(api: Api, services: Services) -> None:
    dead = _dead_services(services, s3_down=False, mongo_down=True)
    try:
        with use_services(dead):
            response = api.presign("pa", "output")
    finally:
        dead.mongo.close()
    assert response.status_code == 500
    assert response.json() == {"error": "internal", "message": "internal error"}


# -- logs ------------------------------------------------------------------------------------------------
def test_each_request_is_logged_with_ids_and_never_the_token(
    api: Api, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    seed_two_tenants(services)
    token = api.token(ALICE)
    with caplog.at_level(logging.INFO, logger="scenestore"):
        api.get("/projects/pa/files", user=None, headers={"Authorization": f"Bearer {token}"})
        api.get("/storage/nothing.png", user=None, params={"access_token": issue_media_token(services.settings, ALICE)})
    records = [r for r in caplog.records if r.getMessage() == "request"]
    assert len(records) == 2
    listing, storage = records
    assert (listing.user_id, listing.project_id, listing.status) == (ALICE, "pa", 200)  # type: ignore[attr-defined]
    assert listing.route == "/projects/{project_id}/files"  # type: ignore[attr-defined]
    assert (storage.status, storage.route) == (404, "/storage/{key+}")  # type: ignore[attr-defined]
    for record in caplog.records:
        assert token not in str(record.__dict__)
        assert token.split(".")[2] not in str(record.__dict__)


# -- threads ---------------------------------------------------------------------------------------------
def test_concurrent_requests_on_the_threaded_server_never_see_each_others_request(api: Api, services: Services) -> None:
    """Chalice keeps the current request on the app object; the local server answers each connection in its
    own thread. 40 interleaved requests by two users must each get their own user's answer."""
    seed_two_tenants(services)

    def presign(i: int) -> tuple[str, int, str]:
        user, project, scene = (ALICE, "pa", "sa") if i % 2 else (BOB, "pb", "sb")
        with requests.Session() as session:
            response = session.post(
                f"{api.base_url}/projects/{project}/uploads",
                json={
                    "kind": "image",
                    "scene_id": scene,
                    "filename": f"f{i}.png",
                    "content_type": "image/png",
                    "size": i + 1,
                },
                headers={"Authorization": f"Bearer {api.token(user)}"},
                timeout=30,
            )
        return user, response.status_code, response.json().get("key", "")

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(presign, range(40)))
    for i, (user, status, key) in enumerate(results):
        assert status == 201
        assert key.startswith(f"users/{user}/") and key.endswith(f"/f{i}.png")


def test_the_local_server_is_the_same_app_as_in_process(services: Services, api_server: ApiServer) -> None:
    """``scenestore serve`` serves exactly the Lambda app: same routes, same answers as chalice.test.Client."""
    with Client(load_presign_app()) as client:
        in_process = client.http.get("/health")
    over_http = requests.get(f"{api_server.url}/health", timeout=30)
    assert in_process.status_code == over_http.status_code == 200
    assert in_process.json_body == over_http.json()
    assert set(load_presign_app().routes) == {
        "/projects/{project_id}/uploads",
        "/projects/{project_id}/uploads/complete",
        "/projects/{project_id}/multipart",
        "/projects/{project_id}/multipart/{upload_id}",
        "/projects/{project_id}/multipart/{upload_id}/parts/{part_number}",
        "/projects/{project_id}/multipart/{upload_id}/complete",
        "/files",
        "/storage/{key+}",
        "/media-token",
        "/projects/{project_id}/files",
        "/health",
    }


# -- the greedy storage route and API Gateway events ----------------------------------------------------
def _gateway_event(method: str, resource: str, path: str, **extra: Any) -> dict[str, Any]:
    """An API Gateway payload-1.0 event as the HTTP API route of template.yaml delivers it to Lambda."""
    event: dict[str, Any] = {
        "version": "1.0",
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {"httpMethod": method, "resourcePath": resource, "path": path, "stage": "$default"},
        "body": None,
        "isBase64Encoded": False,
    }
    event.update(extra)
    return event


def test_storage_key_as_one_encoded_segment_works_in_process_and_over_http(
    api: Api, services: Services, api_server: ApiServer
) -> None:
    """Chalice 1.x has no greedy path parameters: ``/storage/{key+}`` matches one path segment locally, which
    is exactly what ``encodeURIComponent(key)`` produces (every ``/`` becomes ``%2F``)."""
    from scenestore.keys import scene_key

    seed_two_tenants(services)
    key = scene_key(ALICE, "pa", "sa", "image", "a.png")
    services.store.put_bytes(key, b"png")
    services.db.scenes.update_one({"_id": "sa"}, {"$set": {"media": {"storageKey": key}}})
    encoded = key.replace("/", "%2F")
    assert encoded.startswith("users%2Falice%2F")
    with Client(load_presign_app()) as client:
        in_process = client.http.get(f"/storage/{encoded}", headers=api.auth(ALICE))
        unencoded = client.http.get(f"/storage/{key}", headers=api.auth(ALICE))
    over_http = api.get(f"/storage/{encoded}")
    assert in_process.status_code == over_http.status_code == 302
    assert requests.get(in_process.headers["Location"], timeout=30).content == b"png"
    assert requests.get(over_http.headers["Location"], timeout=30).content == b"png"
    assert unencoded.status_code in (403, 404), "locally an unencoded key is not routed (API Gateway routes it)"


def test_api_gateway_events_reach_the_routes_including_a_greedy_key(api: Api, services: Services) -> None:
    """Deployed, API Gateway matches ``/storage/{key+}`` greedily and passes the key, slashes and all, as
    ``pathParameters.key``; uploads arrive as payload-1.0 events with a string body."""
    from scenestore.keys import output_key

    from tests.support.lambda_context import FakeLambdaContext

    seed_two_tenants(services)
    key = output_key(ALICE, "pa", "final.mp4")
    services.store.put_bytes(key, b"mp4")
    services.db.projects.update_one({"_id": "pa"}, {"$set": {"output": {"storageKey": key}}})
    app = load_presign_app()
    auth = api.auth(ALICE)

    redirect = app(
        _gateway_event(
            "GET", "/storage/{key+}", f"/storage/{key}", headers=auth, multiValueHeaders={}, pathParameters={"key": key}
        ),
        FakeLambdaContext(),
    )
    assert redirect["statusCode"] == 302
    assert requests.get(redirect["headers"]["Location"], timeout=30).content == b"mp4"

    body = {"kind": "image", "scene_id": "sa", "filename": "x.png", "content_type": "image/png", "size": 3}
    created = app(
        _gateway_event(
            "POST",
            "/projects/{project_id}/uploads",
            "/projects/pa/uploads",
            headers={**auth, "content-type": "application/json"},
            pathParameters={"project_id": "pa"},
            body=json.dumps(body),
        ),
        FakeLambdaContext(),
    )
    assert created["statusCode"] == 201, created["body"]
    assert json.loads(created["body"])["key"] == "users/alice/projects/pa/scenes/sa/image/x.png"
