"""Media tokens use the service's own key and lifetime (contract sections 3 and 4), never the bearer-token key.

GIVEN settings with a JWT secret (or a JWKS URL) and a separate media-token secret, WHEN a media token is minted
THEN it is signed with the media key only, lives ``SCENESTORE_MEDIA_TOKEN_TTL`` seconds, and verification tells
the two kinds apart by key, so neither can pass for the other.
"""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from scenestore.errors import Unauthorized
from scenestore.settings import MAX_MEDIA_TOKEN_TTL, Settings
from scenestore.tokens import (
    MEDIA_KEY_ID,
    MEDIA_SCOPE,
    is_media_token,
    issue_media_token,
    issue_token,
    verify_media_token,
    verify_token,
)

SETTINGS = Settings(jwt_secret="j" * 32, media_token_secret="m" * 32)
#: A JWKS that cannot be reached: media tokens must verify without asking the identity provider.
JWKS_SETTINGS = Settings(jwt_jwks_url="http://127.0.0.1:9/jwks.json", media_token_secret="m" * 32)


def media_claims(lifetime: int, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "alice", "iat": now, "exp": now + lifetime, "scope": MEDIA_SCOPE, **extra}


def test_a_media_token_is_signed_with_the_media_key_not_the_bearer_key() -> None:
    token = issue_media_token(SETTINGS, "alice")
    assert jwt.get_unverified_header(token)["kid"] == MEDIA_KEY_ID
    claims = jwt.decode(token, SETTINGS.media_token_secret, algorithms=["HS256"])
    assert claims["sub"] == "alice" and claims["scope"] == MEDIA_SCOPE
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, SETTINGS.jwt_secret, algorithms=["HS256"])


@pytest.mark.parametrize("ttl", [1, 120, MAX_MEDIA_TOKEN_TTL])
def test_a_media_token_lives_the_configured_ttl(ttl: int) -> None:
    claims = verify_token(SETTINGS.with_overrides(media_token_ttl=ttl), issue_media_token(SETTINGS, "alice", ttl=ttl))
    assert claims["exp"] - claims["iat"] == ttl
    default = verify_token(SETTINGS, issue_media_token(SETTINGS.with_overrides(media_token_ttl=ttl), "alice"))
    assert default["exp"] - default["iat"] == ttl


@pytest.mark.parametrize("ttl", [0, MAX_MEDIA_TOKEN_TTL + 1])
def test_no_media_token_outside_the_lifetime_bounds_is_minted(ttl: int) -> None:
    with pytest.raises(ValueError):
        issue_media_token(SETTINGS, "alice", ttl=ttl)


@pytest.mark.parametrize("settings", [SETTINGS, JWKS_SETTINGS], ids=["hs256", "jwks"])
def test_media_tokens_verify_with_either_bearer_mode(settings: Settings) -> None:
    token = issue_media_token(settings, "alice")
    assert is_media_token(verify_token(settings, token))
    assert verify_media_token(settings, token)["sub"] == "alice"


def test_a_bearer_token_is_not_a_media_token() -> None:
    with pytest.raises(Unauthorized, match="media token"):
        verify_media_token(SETTINGS, issue_token(SETTINGS, "alice"))


def test_scope_media_signed_with_the_bearer_key_is_refused() -> None:
    """Whoever holds the identity provider's key (or the shared dev secret) still cannot mint media tokens."""
    forged = issue_token(SETTINGS, "alice", ttl=60, extra={"scope": MEDIA_SCOPE})
    with pytest.raises(Unauthorized, match="media key"):
        verify_token(SETTINGS, forged)


def test_the_media_key_id_with_another_key_is_refused() -> None:
    forged = jwt.encode(media_claims(60), SETTINGS.jwt_secret, algorithm="HS256", headers={"kid": MEDIA_KEY_ID})
    with pytest.raises(Unauthorized, match="InvalidSignatureError"):
        verify_token(SETTINGS, forged)


@pytest.mark.parametrize(
    "claims",
    [
        media_claims(MAX_MEDIA_TOKEN_TTL + 60),
        {k: v for k, v in media_claims(60).items() if k != "iat"},
        media_claims(60, scope="api"),
        media_claims(60, sub="../bob"),
    ],
    ids=["lives-too-long", "no-iat", "wrong-scope", "bad-subject"],
)
def test_a_media_key_token_must_be_a_short_media_token(claims: dict[str, Any]) -> None:
    token = jwt.encode(claims, SETTINGS.media_token_secret, algorithm="HS256", headers={"kid": MEDIA_KEY_ID})
    with pytest.raises(Unauthorized):
        verify_token(SETTINGS, token)


def test_rotating_the_media_key_ends_the_old_media_tokens_only() -> None:
    media, bearer = issue_media_token(SETTINGS, "alice"), issue_token(SETTINGS, "alice")
    rotated = SETTINGS.with_overrides(media_token_secret="n" * 32)
    with pytest.raises(Unauthorized):
        verify_token(rotated, media)
    assert verify_token(rotated, bearer)["sub"] == "alice"
