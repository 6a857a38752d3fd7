"""Bearer tokens: issue HS256 tokens (local stack, tests, `scenestore token`) and verify incoming ones.

Verification accepts exactly one algorithm per mode (HS256 with the shared secret, or RS256 from the
JWKS URL), so ``alg: none`` or an algorithm swap can never pass; ``exp`` and ``sub`` are required.
"""

from __future__ import annotations

import time
import warnings
from functools import lru_cache
from typing import Any, Final

from scenestore.errors import Unauthorized
from scenestore.keys import validate_id
from scenestore.settings import Settings

LEEWAY_SECONDS: Final = 30
DEFAULT_TTL: Final = 3600

#: Claim ``scope`` of a media token: good only for ``GET /storage/{key}``, where it may travel in a URL.
MEDIA_SCOPE: Final = "media"
#: Media tokens end up in URLs (``<img src>``, logs, history), so they live minutes, not hours.
MEDIA_TOKEN_TTL: Final = 300

# PyJWT warns on every encode/decode when an HS256 secret is shorter than 32 bytes, which the documented dev
# default (``dev-secret-change-me``) is. The warning is noise on the local stack and in tests; production uses
# RS256 via JWKS or a long secret, and a short production secret is the operator's call, not a per-request log.
warnings.filterwarnings("ignore", message=r"The HMAC key is \d+ bytes long", category=UserWarning)


def issue_token(
    settings: Settings, user_id: str, *, ttl: int = DEFAULT_TTL, extra: dict[str, Any] | None = None
) -> str:
    import jwt

    validate_id(user_id, "user_id")
    now = int(time.time())
    claims: dict[str, Any] = {"sub": user_id, "iat": now, "exp": now + ttl}
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    claims.update(extra or {})
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


@lru_cache(maxsize=4)
def _jwks_client(url: str) -> Any:
    import jwt

    return jwt.PyJWKClient(url, cache_keys=True, lifespan=3600)


def verify_token(settings: Settings, token: str) -> dict[str, Any]:
    """The verified claims of ``token``; ``Unauthorized`` for anything not perfectly valid."""
    import jwt

    if not token or len(token) > 8192:
        raise Unauthorized("missing or oversized bearer token")
    options: Any = {"require": ["exp", "sub"]}
    try:
        if settings.jwt_jwks_url:
            key = _jwks_client(settings.jwt_jwks_url).get_signing_key_from_jwt(token).key
            algorithms = ["RS256"]
        else:
            key = settings.jwt_secret
            algorithms = ["HS256"]
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            options=options,
            leeway=LEEWAY_SECONDS,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"invalid bearer token: {type(exc).__name__}") from None
    subject = claims.get("sub")
    try:
        validate_id(subject, "sub")
    except Exception:
        raise Unauthorized("invalid bearer token: bad subject") from None
    return claims


def issue_media_token(settings: Settings, user_id: str, *, ttl: int = MEDIA_TOKEN_TTL) -> str:
    """A short-lived token for ``?access_token=`` on ``GET /storage/{key}`` (media tags cannot send headers).

    It carries ``scope: media`` and is refused by every other route, so a URL that leaks (browser history,
    a proxy log, a copied link) can only read the caller's own media, and only for ``ttl`` seconds.
    """
    return issue_token(settings, user_id, ttl=ttl, extra={"scope": MEDIA_SCOPE})


def is_media_token(claims: dict[str, Any]) -> bool:
    return claims.get("scope") == MEDIA_SCOPE
