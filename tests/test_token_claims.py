"""A token (either kind) whose claims have the wrong type or shape is 401, never a 500 (contract section 4).

GIVEN a token signed with the right key whose ``exp``/``iat``/``nbf``/``sub``/``aud``/``scope`` is a string where a
number belongs, a boolean, ``null``, ``Infinity`` or a list of the wrong things, WHEN it reaches a route over real
HTTP (the bearer header, or ``?access_token=`` on ``/storage/{key}`` for a media token), THEN the answer is 401
``unauthorized``. A media token with ``"iat": "0"`` used to reach ``exp - iat`` and answer 500; a numeric-string
``exp`` used to pass, since PyJWT reads it with ``int()``.
"""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest
from scenestore.errors import Unauthorized
from scenestore.settings import Settings
from scenestore.tokens import MEDIA_KEY_ID, MEDIA_SCOPE, Claims, verify_token

from tests.support.presign import ALICE, Api
from tests.support.seed import add_project, add_scene

pytestmark = pytest.mark.filterwarnings("ignore:The HMAC key")

NOW = int(time.time())
KEY = "media/a.png"
STORAGE = "/storage/media%2Fa.png"  #: the key URL-encoded, as the frontend's constructStorageUrl builds it

#: (name, changes to good claims); ``None`` as a value drops the claim.
BAD_CLAIMS: list[tuple[str, dict[str, Any]]] = [
    ("iat-string", {"iat": "0"}),
    ("iat-now-string", {"iat": str(NOW)}),
    ("exp-numeric-string", {"exp": str(NOW + 300)}),
    ("exp-bool", {"exp": True}),
    ("exp-null", {"exp": "__null__"}),
    ("exp-infinity", {"exp": float("inf")}),
    ("exp-nan", {"exp": float("nan")}),
    ("exp-huge", {"exp": 10**400}),
    ("exp-negative", {"exp": -1}),
    ("exp-list", {"exp": [NOW + 300]}),
    ("exp-object", {"exp": {"$gt": 0}}),
    ("nbf-string", {"nbf": "0"}),
    ("nbf-null", {"nbf": "__null__"}),
    ("sub-number", {"sub": 42}),
    ("sub-list", {"sub": [ALICE]}),
    ("aud-list-of-numbers", {"aud": [1, 2]}),
    ("jti-number", {"jti": 7}),
    ("iss-object", {"iss": {"a": 1}}),
]


def good_claims(*, media: bool) -> dict[str, Any]:
    """Dated when the test runs, not when the module was collected (minutes earlier under pytest-xdist)."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": ALICE, "iat": now, "exp": now + 300}
    if media:
        claims["scope"] = MEDIA_SCOPE
    return claims


def signed(settings: Settings, changes: dict[str, Any], *, media: bool) -> str:
    """A token signed with the right key (the media key with its ``kid`` for a media token), claims as given.

    PyJWT's encoder refuses some of these values, so the payload is serialised here (``Infinity``, ``NaN`` and
    a 400-digit number are what Python's JSON reader accepts, hence what a verifier must expect).
    """
    claims = {**good_claims(media=media), **changes}
    payload = json.dumps(claims).replace('"__null__"', "null")
    key = settings.media_token_secret if media else settings.jwt_secret
    headers = {"kid": MEDIA_KEY_ID} if media else None
    return jwt.api_jws.encode(payload.encode(), key, algorithm="HS256", headers=headers)


@pytest.fixture
def media(api: Api) -> str:
    add_project(api.services, "p1", ALICE)
    add_scene(api.services, "s1", "p1", media=KEY)
    api.services.store.put_bytes(KEY, b"\x89PNG", content_type="image/png")
    return KEY


def test_well_formed_tokens_of_both_kinds_pass(api: Api, media: str) -> None:
    """The control: the same construction with good claims is accepted, so each 401 below is the claim's."""
    settings = api.services.settings
    bearer = {"Authorization": f"Bearer {signed(settings, {}, media=False)}"}
    assert api.get("/files", params={"key": media}, user=None, headers=bearer).status_code == 200
    url_token = signed(settings, {}, media=True)
    assert api.get(STORAGE, params={"access_token": url_token}, user=None).status_code == 302


@pytest.mark.parametrize(("name", "changes"), BAD_CLAIMS, ids=[name for name, _ in BAD_CLAIMS])
def test_a_bearer_token_with_a_malformed_claim_is_401(api: Api, media: str, name: str, changes: dict[str, Any]) -> None:
    token = signed(api.services.settings, changes, media=False)
    for response in (
        api.get("/files", params={"key": media}, user=None, headers={"Authorization": f"Bearer {token}"}),
        api.post("/media-token", user=None, headers={"Authorization": f"Bearer {token}"}),
    ):
        assert response.status_code == 401, (name, response.text)
        assert response.json()["error"] == "unauthorized"


@pytest.mark.parametrize(("name", "changes"), BAD_CLAIMS, ids=[name for name, _ in BAD_CLAIMS])
def test_a_media_token_with_a_malformed_claim_is_401(api: Api, media: str, name: str, changes: dict[str, Any]) -> None:
    token = signed(api.services.settings, changes, media=True)
    in_url = api.get(STORAGE, params={"access_token": token}, user=None)
    in_header = api.get("/files", params={"key": media}, user=None, headers={"Authorization": f"Bearer {token}"})
    storage_header = api.get(STORAGE, user=None, headers={"Authorization": f"Bearer {token}"})
    for response in (in_url, in_header, storage_header):
        assert response.status_code == 401, (name, response.text)
        assert response.json()["error"] == "unauthorized"


@pytest.mark.parametrize("scope", [["media"], 1, "__null__"], ids=["list", "number", "null"])
def test_a_media_token_whose_scope_is_not_the_string_media_is_401(api: Api, media: str, scope: Any) -> None:
    token = signed(api.services.settings, {"scope": scope}, media=True)
    assert api.get(STORAGE, params={"access_token": token}, user=None).status_code == 401


def test_the_message_names_the_claim_and_never_echoes_its_value() -> None:
    settings = Settings(jwt_secret="j" * 32, media_token_secret="m" * 32)
    with pytest.raises(Unauthorized) as caught:
        verify_token(settings, signed(settings, {"iat": "0"}, media=True))
    assert caught.value.message == "invalid media token: claim iat has the wrong type or shape"
    with pytest.raises(Unauthorized, match="claim exp is null"):
        verify_token(settings, signed(settings, {"exp": "__null__"}, media=False))


def test_claims_from_identity_providers_pass_as_they_come() -> None:
    """Extra claims, fractional NumericDates and OAuth scopes (a string or a list) are an IdP's business."""
    Claims.model_validate({"sub": "u", "exp": NOW + 1.5, "iat": NOW, "aud": ["a", "b"], "scope": "openid email"})
    Claims.model_validate({"sub": "u", "exp": NOW, "scope": ["read", "write"], "email": "u@example.com", "x": None})
