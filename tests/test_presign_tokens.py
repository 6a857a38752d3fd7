"""Production identity: RS256 tokens verified against a JWKS URL (issuer and audience checked, keys cached),
and the short-lived media tokens of ``GET /storage/{key}``.

The JWKS is served over real HTTP on 127.0.0.1 by a tiny server that counts its hits.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from scenestore.services import Services, use_services
from scenestore.tokens import MEDIA_SCOPE, MEDIA_TOKEN_TTL, issue_media_token, verify_token

from tests.support.presign import ALICE, Api
from tests.support.seed import add_project

pytestmark = pytest.mark.filterwarnings("ignore:The HMAC key")

ISSUER = "https://auth.example.com/"
AUDIENCE = "scenestore-api"
KID = "key-1"


class _JwksServer:
    def __init__(self, jwks: dict[str, Any]) -> None:
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                body = json.dumps(jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/.well-known/jwks.json"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwks(services: Services, rsa_key: rsa.RSAPrivateKey) -> Iterator[_JwksServer]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    server = _JwksServer({"keys": [{**public, "kid": KID, "use": "sig", "alg": "RS256"}]})
    settings = services.settings.with_overrides(jwt_jwks_url=server.url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    add_project(services, "p1", ALICE)
    try:
        with use_services(Services(settings, services.s3, services.mongo)):
            yield server
    finally:
        server.stop()


def rs256(key: Any, *, kid: str = KID, **claims: Any) -> str:
    now = int(time.time())
    body = {"sub": ALICE, "iat": now, "exp": now + 600, "iss": ISSUER, "aud": AUDIENCE, **claims}
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": kid})


def listing(api: Api, token: str) -> int:
    return api.get("/projects/p1/files", user=None, headers={"Authorization": f"Bearer {token}"}).status_code


def test_rs256_tokens_from_the_jwks_are_accepted_and_the_keys_cached(
    api: Api, jwks: _JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    for _ in range(5):
        assert listing(api, rs256(rsa_key)) == 200
    assert jwks.hits == 1, "the JWKS is fetched once, then served from PyJWKClient's cache"


@pytest.mark.parametrize(
    "claims",
    [
        {"iss": "https://evil.example.com/"},
        {"aud": "another-api"},
        {"exp": int(time.time()) - 3600},
        {"sub": None},
        {"exp": str(int(time.time()) + 600)},
        {"iat": "0"},
        {"aud": [AUDIENCE, 7]},
    ],
    ids=["wrong issuer", "wrong audience", "expired", "no subject", "numeric-string exp", "string iat", "mixed aud"],
)
def test_rs256_tokens_with_wrong_claims_are_401(
    api: Api, jwks: _JwksServer, rsa_key: rsa.RSAPrivateKey, claims: dict[str, Any]
) -> None:
    token = rs256(rsa_key, **{k: v for k, v in claims.items() if v is not None})
    if claims == {"sub": None}:
        token = jwt.encode(
            {"exp": int(time.time()) + 600, "iss": ISSUER, "aud": AUDIENCE}, rsa_key, algorithm="RS256",
            headers={"kid": KID},
        )  # fmt: skip
    assert listing(api, token) == 401


def test_other_keys_and_algorithms_are_401(api: Api, jwks: _JwksServer, rsa_key: rsa.RSAPrivateKey) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert listing(api, rs256(stranger)) == 401, "signed by a key the JWKS does not hold"
    assert listing(api, rs256(rsa_key, kid="unknown")) == 401, "a kid the JWKS does not list"
    # algorithm confusion: HS256 "signed" with the public key (which anyone can fetch) as the HMAC secret
    pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    claims = {"sub": ALICE, "exp": int(time.time()) + 600, "iss": ISSUER, "aud": AUDIENCE}
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': KID})}.{_b64(claims)}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    confused = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    assert listing(api, confused) == 401, "HS256 is never accepted in JWKS mode"


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def test_media_tokens_are_short_lived_and_scoped(services: Services) -> None:
    claims = verify_token(services.settings, issue_media_token(services.settings, ALICE))
    assert claims["scope"] == MEDIA_SCOPE
    assert claims["sub"] == ALICE
    assert 0 < claims["exp"] - claims["iat"] <= MEDIA_TOKEN_TTL <= 300
