"""Bearer tokens: issue HS256 tokens (local stack, tests, `scenestore token`) and verify incoming ones.

Verification accepts exactly one algorithm per mode (HS256 with the shared secret, or RS256 from the
JWKS URL), so ``alg: none`` or an algorithm swap can never pass; ``exp`` and ``sub`` are required.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any, Final

from scenestore.errors import Unauthorized
from scenestore.keys import validate_id
from scenestore.settings import Settings

LEEWAY_SECONDS: Final = 30
DEFAULT_TTL: Final = 3600


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
