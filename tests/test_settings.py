"""Settings (contract section 3): defaults, every variable validated, one clear error naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from scenestore.errors import ConfigError
from scenestore.settings import (
    DEFAULT_LIMITS,
    GiB,
    MiB,
    Settings,
    get_settings,
)

SCENESTORE_BIN = Path(sys.executable).parent / "scenestore"


def test_defaults_match_the_contract() -> None:
    s = Settings.from_env({})
    assert s.bucket == "scenestore-local"
    assert s.s3_endpoint_url == "http://127.0.0.1:4566"
    assert s.s3_region == "us-east-1"
    assert s.aws_access_key_id and s.aws_secret_access_key
    assert s.mongodb_uri.startswith("mongodb://127.0.0.1:27017")
    assert s.mongodb_db == "autoshorts"
    assert s.jwt_secret == "dev-secret-change-me"
    assert (s.jwt_jwks_url, s.jwt_issuer, s.jwt_audience) == (None, None, None)
    assert (s.upload_ttl, s.download_ttl) == (900, 3600)
    assert s.cors_origins == ("*",)
    assert s.limits["image"].max_size == 20 * MiB
    assert s.limits["video"].max_size == 1 * GiB
    assert s.limits["audio"].max_size == 100 * MiB
    assert s.limits["output"].max_size == 2 * GiB
    assert s.limits["output"].content_types == ("video/mp4",)
    assert "image/webp" in s.limits["image"].content_types
    assert "audio/x-wav" in s.limits["audio"].content_types
    assert s == Settings()


def test_an_r2_configuration_is_read_as_given() -> None:
    env = {
        "SCENESTORE_BUCKET": "autoshorts-media",
        "SCENESTORE_S3_ENDPOINT_URL": "https://0123abcd.r2.cloudflarestorage.com",
        "SCENESTORE_S3_REGION": "auto",
        "AWS_ACCESS_KEY_ID": "r2-key",
        "AWS_SECRET_ACCESS_KEY": "r2-secret",
        "SCENESTORE_MONGODB_URI": "mongodb+srv://user:pw@cluster0.example.mongodb.net/",
        "SCENESTORE_MONGODB_DB": "prod_db",
        "SCENESTORE_JWT_SECRET": "s3cret",
        "SCENESTORE_JWT_JWKS_URL": "https://auth.example.com/.well-known/jwks.json",
        "SCENESTORE_JWT_ISSUER": "https://auth.example.com/",
        "SCENESTORE_JWT_AUDIENCE": "autoshorts",
        "SCENESTORE_UPLOAD_TTL": " 600 ",
        "SCENESTORE_DOWNLOAD_TTL": "7200",
        "SCENESTORE_CORS_ORIGINS": "https://app.example.com/, http://localhost:3000",
        "SCENESTORE_MAX_SIZE_IMAGE": "1048576",
        "SCENESTORE_TYPES_AUDIO": "audio/mpeg, AUDIO/WAV",
    }
    s = Settings.from_env(env)
    assert s.bucket == "autoshorts-media"
    assert s.s3_endpoint_url == "https://0123abcd.r2.cloudflarestorage.com"
    assert s.s3_region == "auto"
    assert (s.aws_access_key_id, s.aws_secret_access_key) == ("r2-key", "r2-secret")
    assert s.mongodb_uri.startswith("mongodb+srv://") and s.mongodb_db == "prod_db"
    assert s.jwt_jwks_url == "https://auth.example.com/.well-known/jwks.json"
    assert (s.jwt_issuer, s.jwt_audience) == ("https://auth.example.com/", "autoshorts")
    assert (s.upload_ttl, s.download_ttl) == (600, 7200)
    assert s.cors_origins == ("https://app.example.com", "http://localhost:3000")
    assert s.limits["image"].max_size == 1048576
    assert s.limits["audio"].content_types == ("audio/mpeg", "audio/wav")
    assert s.limits["video"] == DEFAULT_LIMITS["video"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SCENESTORE_BUCKET", ""),
        ("SCENESTORE_BUCKET", "Has_Upper"),
        ("SCENESTORE_BUCKET", "ab"),
        ("SCENESTORE_BUCKET", "x" * 64),
        ("SCENESTORE_BUCKET", "-leading-dash"),
        ("SCENESTORE_S3_ENDPOINT_URL", "localhost:4566"),
        ("SCENESTORE_S3_ENDPOINT_URL", "ftp://example.com"),
        ("SCENESTORE_S3_ENDPOINT_URL", ""),
        ("SCENESTORE_S3_REGION", "  "),
        ("AWS_ACCESS_KEY_ID", ""),
        ("AWS_SECRET_ACCESS_KEY", " "),
        ("SCENESTORE_MONGODB_URI", "http://127.0.0.1:27017"),
        ("SCENESTORE_MONGODB_URI", ""),
        ("SCENESTORE_MONGODB_DB", "a.b"),
        ("SCENESTORE_MONGODB_DB", "with space"),
        ("SCENESTORE_MONGODB_DB", "x" * 64),
        ("SCENESTORE_MONGODB_DB", ""),
        ("SCENESTORE_JWT_SECRET", ""),
        ("SCENESTORE_JWT_JWKS_URL", "not a url"),
        ("SCENESTORE_UPLOAD_TTL", "abc"),
        ("SCENESTORE_UPLOAD_TTL", "0"),
        ("SCENESTORE_UPLOAD_TTL", "-5"),
        ("SCENESTORE_UPLOAD_TTL", "1.5"),
        ("SCENESTORE_UPLOAD_TTL", str(7 * 24 * 3600 + 1)),
        ("SCENESTORE_DOWNLOAD_TTL", ""),
        ("SCENESTORE_CORS_ORIGINS", " , "),
        ("SCENESTORE_CORS_ORIGINS", "example.com"),
        ("SCENESTORE_MAX_SIZE_IMAGE", "0"),
        ("SCENESTORE_MAX_SIZE_VIDEO", "big"),
        ("SCENESTORE_TYPES_IMAGE", ""),
        ("SCENESTORE_TYPES_OUTPUT", "mp4"),
    ],
)
def test_a_bad_value_fails_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({variable: value})
    message = info.value.message
    assert variable in message
    assert "\n" not in message
    assert info.value.code == "config"


def test_to_env_round_trips() -> None:
    original = Settings.from_env(
        {
            "SCENESTORE_BUCKET": "round-trip",
            "SCENESTORE_S3_ENDPOINT_URL": "https://acc.r2.cloudflarestorage.com",
            "SCENESTORE_S3_REGION": "auto",
            "SCENESTORE_JWT_ISSUER": "iss",
            "SCENESTORE_JWT_AUDIENCE": "aud",
            "SCENESTORE_JWT_JWKS_URL": "https://auth.example.com/jwks",
            "SCENESTORE_UPLOAD_TTL": "61",
            "SCENESTORE_CORS_ORIGINS": "https://a.example,https://b.example",
            "SCENESTORE_MAX_SIZE_AUDIO": "12345",
            "SCENESTORE_TYPES_IMAGE": "image/png",
        }
    )
    assert Settings.from_env(original.to_env()) == original
    assert Settings.from_env(Settings().to_env()) == Settings()
    changed = Settings().with_overrides(bucket="other-bucket", download_ttl=5)
    assert Settings.from_env(changed.to_env()) == changed


def test_get_settings_reads_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    get_settings.cache_clear()
    monkeypatch.setenv("SCENESTORE_BUCKET", "first-bucket")
    try:
        first = get_settings()
        monkeypatch.setenv("SCENESTORE_BUCKET", "second-bucket")
        assert get_settings() is first and first.bucket == "first-bucket"
        get_settings.cache_clear()
        assert get_settings().bucket == "second-bucket"
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize("as_json", [False, True])
def test_the_cli_fails_at_start_up_with_one_line_and_exit_2(as_json: bool) -> None:
    """A misconfigured command exits 2 before touching any server, with one line naming the variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCENESTORE_")}
    env["SCENESTORE_UPLOAD_TTL"] = "soon"
    env["POWERTOOLS_METRICS_DISABLED"] = "true"
    argv = [str(SCENESTORE_BIN), "ensure-indexes", *(["--json"] if as_json else [])]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    output = done.stdout if as_json else done.stderr
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "SCENESTORE_UPLOAD_TTL" in lines[0]
    assert "Traceback" not in done.stderr
