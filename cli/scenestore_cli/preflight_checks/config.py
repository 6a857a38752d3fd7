"""Configuration: would a deployed presign function start with these settings?

The rules are ``Settings.require_token_keys``'s (the function calls it at start-up), asked as a deployed function
would ask them, so they are written nowhere else; their messages name variables, never values.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Final

from scenestore.errors import ConfigError
from scenestore.settings import DEPLOYED_MARKER_VAR

from scenestore_cli.preflight_checks import Run

#: docs/deploy.md section 2: the deployed keys live in the runtime secret.
SECRET_FIX: Final = (
    "put the keys into the runtime secret (docs/deploy.md section 2): aws secretsmanager put-secret-value "
    "--secret-id <RuntimeSecretArn> --secret-string file://secret.json, and export them here to check them"
)
JWKS_FIX: Final = (
    "set SCENESTORE_JWT_JWKS_URL to your identity provider's JWKS URL (sam deploy parameter JwtJwksUrl, "
    "docs/deploy.md section 1)"
)
JWKS_TIMEOUT: Final = 10.0


def run_config_checks(run: Run) -> None:
    deployed_env = {**os.environ, DEPLOYED_MARKER_VAR: "scenestore-preflight"}
    try:
        run.settings.require_token_keys(deployed_env)
    except ConfigError as exc:
        run.fail("config.keys", f"config: a deployed presign function would refuse to start: {exc.message}", SECRET_FIX)
    else:
        how = "RS256 via SCENESTORE_JWT_JWKS_URL" if run.settings.jwt_jwks_url else "an HS256 secret of 32+ bytes"
        run.ok("config.keys", f"config: a deployed presign function would accept these keys ({how}, own media key)")
    if run.settings.jwt_jwks_url:
        check_jwks(run, run.settings.jwt_jwks_url)


def check_jwks(run: Run, url: str) -> None:
    """The JWKS must answer with keys: without them every bearer token is refused (401) at the first request."""
    try:
        with urllib.request.urlopen(url, timeout=JWKS_TIMEOUT) as response:  # the operator's configured URL
            keys = json.load(response).get("keys")
    except (OSError, ValueError, AttributeError) as exc:
        run.fail(
            "config.jwks", f"config: SCENESTORE_JWT_JWKS_URL does not answer with a key set ({_reason(exc)})", JWKS_FIX
        )
        return
    if not isinstance(keys, list) or not keys:
        run.fail("config.jwks", "config: SCENESTORE_JWT_JWKS_URL answers, but with no keys", JWKS_FIX)
        return
    run.ok("config.jwks", f"config: SCENESTORE_JWT_JWKS_URL answers with {len(keys)} key(s)")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return type(exc).__name__
