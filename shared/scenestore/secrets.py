"""Deployed secrets: R2 keys and the MongoDB URI come from one Secrets Manager secret, never plain env vars.

The template sets ``SCENESTORE_SECRETS_ARN`` to a secret whose value is a JSON object keyed by the
contract's variable names (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``SCENESTORE_MONGODB_URI``,
``SCENESTORE_MEDIA_TOKEN_SECRET`` for the presign function's media tokens, any other ``SCENESTORE_*``).
``settings_environ`` overlays those values on the environment *without touching os.environ*, and
``Settings.from_env`` reads the result. Without the variable (local stack, tests, CLI) the
environment is used as it is, so nothing changes there.

Two choices worth knowing:
- The secret's values win over the environment. Lambda always sets ``AWS_ACCESS_KEY_ID`` to the execution
  role's session credentials, so "fill only what is missing" would silently sign R2 requests with AWS keys.
- os.environ is left alone for the same reason: the Secrets Manager client itself (and any other AWS client
  in the process) must keep using the role's credentials, not the R2 token.

Fetched through Powertools' parameters utility (``get_secret``, JSON transform, ``max_age`` cache); settings
are read once per process (cold start), so a rotated secret reaches new execution environments.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from scenestore.errors import ConfigError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

#: The secret's ARN (or name); unset means "no secret, use the environment as it is".
SECRETS_ARN_VAR: Final = "SCENESTORE_SECRETS_ARN"
#: Comma-separated keys the secret must hold (the template lists the R2 keys only for the R2 backend).
SECRETS_REQUIRED_VAR: Final = "SCENESTORE_SECRETS_REQUIRED"
#: Seconds Powertools keeps a fetched secret before asking Secrets Manager again.
SECRETS_MAX_AGE: Final = 300
#: Keys a secret may carry besides ``SCENESTORE_*``: the object-store credentials of contract section 3.
CREDENTIAL_KEYS: Final = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def settings_environ(
    environ: Mapping[str, str] | None = None, *, provider: SecretsProvider | None = None
) -> Mapping[str, str]:
    """The environment ``Settings.from_env`` should read: ``environ`` overlaid with the secret's values."""
    env = os.environ if environ is None else environ
    secret_id = (env.get(SECRETS_ARN_VAR) or "").strip()
    if not secret_id:
        return env
    values = fetch_secret_values(secret_id, provider=provider)
    missing = [key for key in required_keys(env) if key not in values]
    if missing:
        raise ConfigError(f"{SECRETS_ARN_VAR}: the secret {secret_id} lacks {', '.join(missing)}")
    merged = dict(env)
    if "AWS_ACCESS_KEY_ID" in values and "AWS_SESSION_TOKEN" not in values:
        # The role's session token belongs to the role's keys, not to the secret's (R2 rejects it).
        merged.pop("AWS_SESSION_TOKEN", None)
    merged.update(values)
    return merged


def required_keys(env: Mapping[str, str]) -> list[str]:
    raw = env.get(SECRETS_REQUIRED_VAR, "")
    return [key.strip() for key in raw.split(",") if key.strip()]


def fetch_secret_values(secret_id: str, *, provider: SecretsProvider | None = None) -> dict[str, str]:
    """The secret's JSON object, checked: string values only, and only keys settings know how to use.

    Errors name the secret and the offending key, never a value.
    """
    raw = _get_secret(secret_id, provider)
    if not isinstance(raw, dict):
        raise ConfigError(f"{SECRETS_ARN_VAR}: the secret {secret_id} must be a JSON object of strings")
    values: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not (key in CREDENTIAL_KEYS or _is_setting(key)):
            raise ConfigError(
                f"{SECRETS_ARN_VAR}: the secret {secret_id} holds {key!r}; allowed are "
                f"{', '.join(CREDENTIAL_KEYS)} and SCENESTORE_* settings"
            )
        if not isinstance(value, str):
            raise ConfigError(f"{SECRETS_ARN_VAR}: the secret {secret_id} has a non-string value for {key}")
        values[key] = value
    return values


def _is_setting(key: str) -> bool:
    return key.startswith("SCENESTORE_") and key not in (SECRETS_ARN_VAR, SECRETS_REQUIRED_VAR)


def _get_secret(secret_id: str, provider: SecretsProvider | None) -> Any:
    from aws_lambda_powertools.utilities.parameters import get_secret
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError

    try:
        if provider is not None:
            return provider.get(secret_id, transform="json", max_age=SECRETS_MAX_AGE)
        return get_secret(secret_id, transform="json", max_age=SECRETS_MAX_AGE)
    except TransformParameterError:
        raise ConfigError(f"{SECRETS_ARN_VAR}: the secret {secret_id} is not valid JSON") from None
    except GetParameterError as exc:
        raise ConfigError(f"{SECRETS_ARN_VAR}: cannot read the secret {secret_id}: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    """The AWS error code behind a Powertools error (ResourceNotFoundException, AccessDenied...), no payload."""
    cause = exc.__cause__ or exc.__context__
    response = getattr(cause, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(cause or exc).__name__
