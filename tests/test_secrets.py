"""Deployed credentials come from Secrets Manager (moto's server on the local stack), never plain env vars.

GIVEN the template's ``SCENESTORE_SECRETS_ARN`` WHEN settings are read THEN the secret's R2 keys and MongoDB URI
are used, the process environment is left untouched, and a broken secret fails at start-up naming the problem.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
from scenestore.errors import ConfigError
from scenestore.health import check_health
from scenestore.secrets import SECRETS_ARN_VAR, SECRETS_REQUIRED_VAR, settings_environ
from scenestore.services import Services
from scenestore.settings import Settings, get_settings
from scenestore_cli.local.stack import DevStack

REGION = "us-east-1"


@pytest.fixture
def secretsmanager(stack: DevStack) -> Any:
    """A Secrets Manager client for the local stack's moto server (the same process that serves S3)."""
    return boto3.client(
        "secretsmanager",
        endpoint_url=stack.settings.s3_endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def make_secret(secretsmanager: Any) -> Iterator[Any]:
    created: list[str] = []

    def make(value: Any) -> str:
        body = value if isinstance(value, str) else json.dumps(value)
        arn: str = secretsmanager.create_secret(Name=f"scenestore/{uuid.uuid4().hex}", SecretString=body)["ARN"]
        created.append(arn)
        return arn

    yield make
    for arn in created:
        secretsmanager.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)


@pytest.fixture
def provider(secretsmanager: Any) -> SecretsProvider:
    return SecretsProvider(boto3_client=secretsmanager)


def lambda_like_env(arn: str, **extra: str) -> dict[str, str]:
    """What Lambda's environment looks like: the role's session keys are always there."""
    env = {
        "AWS_ACCESS_KEY_ID": "ASIAROLESESSIONKEY",
        "AWS_SECRET_ACCESS_KEY": "role-session-secret",
        "AWS_SESSION_TOKEN": "role-session-token",
        "SCENESTORE_BUCKET": "autoshorts-media",
        SECRETS_ARN_VAR: arn,
        SECRETS_REQUIRED_VAR: "AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY,SCENESTORE_MONGODB_URI",
    }
    env.update(extra)
    return env


R2_SECRET = {
    "AWS_ACCESS_KEY_ID": "r2-access-key",
    "AWS_SECRET_ACCESS_KEY": "r2-secret-key",
    "SCENESTORE_MONGODB_URI": "mongodb+srv://app:pw@cluster0.example.mongodb.net/",
}


def test_without_the_variable_the_environment_is_used_as_it_is() -> None:
    env = {"SCENESTORE_BUCKET": "b-local", "AWS_ACCESS_KEY_ID": "k"}
    assert settings_environ(env) is env


def test_secret_values_beat_the_role_credentials_lambda_puts_in_the_environment(
    make_secret: Any, provider: SecretsProvider
) -> None:
    arn = make_secret(R2_SECRET)
    env = lambda_like_env(arn)
    settings = Settings.from_env(settings_environ(env, provider=provider))
    assert settings.aws_access_key_id == "r2-access-key"
    assert settings.aws_secret_access_key == "r2-secret-key"
    assert settings.mongodb_uri == R2_SECRET["SCENESTORE_MONGODB_URI"]
    assert settings.bucket == "autoshorts-media"
    assert env["AWS_ACCESS_KEY_ID"] == "ASIAROLESESSIONKEY", "the caller's mapping must not be modified"


def test_get_settings_reads_the_secret_through_powertools_and_leaves_os_environ_alone(
    stack: DevStack, make_secret: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real path: env var -> Powertools' default provider -> Secrets Manager endpoint from the environment."""
    arn = make_secret(R2_SECRET)
    for key, value in lambda_like_env(arn).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", str(stack.settings.s3_endpoint_url))
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delitem(DEFAULT_PROVIDERS, "secrets", raising=False)  # a provider built for another endpoint
    get_settings.cache_clear()
    try:
        settings = get_settings()
    finally:
        get_settings.cache_clear()
        DEFAULT_PROVIDERS.pop("secrets", None)
    assert (settings.aws_access_key_id, settings.mongodb_uri) == ("r2-access-key", R2_SECRET["SCENESTORE_MONGODB_URI"])
    assert os.environ["AWS_ACCESS_KEY_ID"] == "ASIAROLESESSIONKEY"
    assert "SCENESTORE_MONGODB_URI" not in os.environ or os.environ["SCENESTORE_MONGODB_URI"] != settings.mongodb_uri


def test_services_built_from_the_secret_reach_the_servers(
    services: Services, make_secret: Any, provider: SecretsProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN an environment without usable credentials or database URI, THEN the secret alone makes both work."""
    local = services.settings
    arn = make_secret(
        {
            "AWS_ACCESS_KEY_ID": local.aws_access_key_id,
            "AWS_SECRET_ACCESS_KEY": local.aws_secret_access_key,
            "SCENESTORE_MONGODB_URI": local.mongodb_uri,
        }
    )
    env = lambda_like_env(
        arn,
        SCENESTORE_BUCKET=local.bucket,
        SCENESTORE_MONGODB_DB=local.mongodb_db,
        SCENESTORE_S3_ENDPOINT_URL=str(local.s3_endpoint_url),
    )
    settings = Settings.from_env(settings_environ(env, provider=provider))
    built = Services.from_settings(settings)
    try:
        assert check_health(built) == {"s3": "ok", "mongodb": "ok"}
    finally:
        built.mongo.close()


def test_the_secret_is_cached_for_max_age(make_secret: Any, provider: SecretsProvider, secretsmanager: Any) -> None:
    """Cold start reads it once; a second read inside ``max_age`` does not call Secrets Manager again."""
    arn = make_secret(R2_SECRET)
    first = settings_environ(lambda_like_env(arn), provider=provider)
    secretsmanager.put_secret_value(
        SecretId=arn, SecretString=json.dumps({**R2_SECRET, "AWS_ACCESS_KEY_ID": "rotated"})
    )
    cached = settings_environ(lambda_like_env(arn), provider=provider)
    assert first["AWS_ACCESS_KEY_ID"] == cached["AWS_ACCESS_KEY_ID"] == "r2-access-key"
    provider.clear_cache()
    assert settings_environ(lambda_like_env(arn), provider=provider)["AWS_ACCESS_KEY_ID"] == "rotated"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("not json {", "not valid JSON"),
        (["a", "b"], "JSON object"),
        ({**R2_SECRET, "PATH": "/tmp/evil"}, "'PATH'"),
        ({**R2_SECRET, "SCENESTORE_MONGODB_URI": 42}, "non-string value for SCENESTORE_MONGODB_URI"),
        ({"SCENESTORE_MONGODB_URI": "mongodb://db/"}, "lacks AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY"),
    ],
)
def test_a_broken_secret_fails_at_start_up_naming_the_problem_not_the_values(
    make_secret: Any, provider: SecretsProvider, value: Any, expected: str
) -> None:
    arn = make_secret(value)
    with pytest.raises(ConfigError) as info:
        settings_environ(lambda_like_env(arn), provider=provider)
    message = str(info.value)
    assert SECRETS_ARN_VAR in message and expected in message
    assert "r2-secret-key" not in message and "pw@" not in message


def test_a_missing_secret_names_the_aws_error(provider: SecretsProvider) -> None:
    arn = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:scenestore/absent-{uuid.uuid4().hex}"
    with pytest.raises(ConfigError, match="ResourceNotFoundException"):
        settings_environ(lambda_like_env(arn), provider=provider)


def test_s3_backend_needs_only_the_database_uri(make_secret: Any, provider: SecretsProvider) -> None:
    """With StorageBackend=S3 the template requires only the URI: S3 is reached with the role itself."""
    arn = make_secret({"SCENESTORE_MONGODB_URI": "mongodb://db.example:27017/"})
    env = lambda_like_env(arn, **{SECRETS_REQUIRED_VAR: "SCENESTORE_MONGODB_URI"})
    settings = Settings.from_env(settings_environ(env, provider=provider))
    assert settings.mongodb_uri == "mongodb://db.example:27017/"
    assert settings.aws_access_key_id == "ASIAROLESESSIONKEY"


def presign_env(arn: str) -> dict[str, str]:
    """The presign function's environment as Lambda builds it: deployed marker, the template's JWKS URL."""
    return lambda_like_env(
        arn, AWS_LAMBDA_FUNCTION_NAME="scenestore-presign", SCENESTORE_JWT_JWKS_URL="https://auth.example.com/jwks"
    )


def test_the_media_token_key_comes_from_the_deployed_secret(make_secret: Any, provider: SecretsProvider) -> None:
    media_key = "k" * 48
    arn = make_secret({**R2_SECRET, "SCENESTORE_MEDIA_TOKEN_SECRET": media_key})
    env = presign_env(arn)
    settings = Settings.from_env(settings_environ(env, provider=provider)).require_token_keys(env)
    assert settings.media_token_secret == media_key
    assert "SCENESTORE_MEDIA_TOKEN_SECRET" not in env, "the key lives in the secret, not in the environment"


def test_a_deployed_secret_without_the_media_key_fails_at_start_up(make_secret: Any, provider: SecretsProvider) -> None:
    arn = make_secret(R2_SECRET)
    env = presign_env(arn)
    settings = Settings.from_env(settings_environ(env, provider=provider))
    with pytest.raises(ConfigError, match=r"^SCENESTORE_MEDIA_TOKEN_SECRET: a deployed function needs"):
        settings.require_token_keys(env)
