"""Settings (contract section 3): defaults, every variable validated, one clear error naming the variable."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from scenestore.errors import ConfigError
from scenestore.migration.config import MigrationConfig
from scenestore.settings import (
    DEFAULT_JWT_SECRET,
    DEFAULT_LIMITS,
    DEFAULT_MEDIA_TOKEN_SECRET,
    PUBLISHED_TOKEN_KEYS,
    GiB,
    MiB,
    Settings,
    get_settings,
)

ROOT = Path(__file__).resolve().parents[1]
SCENESTORE_BIN = Path(sys.executable).parent / "scenestore"
#: Tokens checked against an identity provider's keys instead of the shared secret.
JWKS_VALUES = {
    "SCENESTORE_JWT_ISSUER": "iss",
    "SCENESTORE_JWT_AUDIENCE": "aud",
    "SCENESTORE_JWT_JWKS_URL": "https://auth.example.com/jwks",
}


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
        ("SCENESTORE_MEDIA_TOKEN_TTL", "901"),
        ("SCENESTORE_MEDIA_TOKEN_TTL", "0"),
        ("SCENESTORE_MEDIA_TOKEN_TTL", "5m"),
        ("SCENESTORE_MEDIA_TOKEN_SECRET", ""),
        ("SCENESTORE_MEDIA_TOKEN_SECRET", DEFAULT_JWT_SECRET),
        ("SCENESTORE_MULTIPART_PART_SIZE", str(5 * MiB - 1)),
        ("SCENESTORE_MULTIPART_PART_SIZE", "16MiB"),
        ("SCENESTORE_MULTIPART_PART_SIZE", str(5 * GiB + 1)),
        ("SCENESTORE_MULTIPART_ABORT_DAYS", "0"),
        ("SCENESTORE_MULTIPART_ABORT_DAYS", "seven"),
        ("SCENESTORE_S3_MAX_IN_FLIGHT", "0"),
        ("SCENESTORE_S3_MAX_IN_FLIGHT", "many"),
        ("SCENESTORE_MIGRATION_LEASE_TTL", "soon"),
        ("SCENESTORE_MIGRATION_PAUSE_MS", "-1"),
        ("SCENESTORE_MIGRATION_WORKERS", "65"),
    ],
)
def test_a_bad_value_fails_naming_the_variable(variable: str, value: str) -> None:
    settings_class = MigrationConfig if variable.startswith("SCENESTORE_MIGRATION_") else Settings
    with pytest.raises(ConfigError) as info:
        settings_class.from_env({variable: value})
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
            **JWKS_VALUES,
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


def test_the_turn_2_settings_have_the_contract_defaults() -> None:
    s = Settings.from_env({})
    assert s.media_token_ttl == 300
    assert s.media_token_secret == DEFAULT_MEDIA_TOKEN_SECRET != s.jwt_secret
    assert (s.multipart_part_size, s.multipart_abort_days, s.s3_max_in_flight) == (16 * MiB, 7, 64)


def test_the_new_settings_are_read_at_their_bounds() -> None:
    s = Settings.from_env(
        {
            "SCENESTORE_MEDIA_TOKEN_TTL": "900",
            "SCENESTORE_MEDIA_TOKEN_SECRET": "m" * 40,
            "SCENESTORE_MULTIPART_PART_SIZE": str(5 * MiB),
            "SCENESTORE_MULTIPART_ABORT_DAYS": "1",
            "SCENESTORE_S3_MAX_IN_FLIGHT": "1",
        }
    )
    assert (s.media_token_ttl, s.media_token_secret) == (900, "m" * 40)
    assert (s.multipart_part_size, s.multipart_abort_days, s.s3_max_in_flight) == (5 * MiB, 1, 1)


def test_the_error_is_one_line_in_the_documented_form() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"SCENESTORE_UPLOAD_TTL": "abc"})
    assert info.value.message == "SCENESTORE_UPLOAD_TTL: must be an integer, got 'abc'"


def test_every_bad_variable_is_named_on_the_same_line() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"SCENESTORE_UPLOAD_TTL": "abc", "SCENESTORE_S3_MAX_IN_FLIGHT": "0"})
    message = info.value.message
    assert "SCENESTORE_UPLOAD_TTL" in message and "SCENESTORE_S3_MAX_IN_FLIGHT" in message
    assert "\n" not in message and "pydantic" not in message.lower()


SECRET_VALUES = {
    "AWS_SECRET_ACCESS_KEY": "hunter2-aws",
    "AWS_SESSION_TOKEN": "hunter2-session",
    "SCENESTORE_MONGODB_URI": "mongodb://app:hunter2-db@db.example/",
    "SCENESTORE_JWT_SECRET": "hunter2-jwt",
    "SCENESTORE_MEDIA_TOKEN_SECRET": "hunter2-media",
}


def test_secrets_stay_out_of_repr_and_str() -> None:
    s = Settings.from_env(SECRET_VALUES)
    assert s.mongodb_uri == SECRET_VALUES["SCENESTORE_MONGODB_URI"]
    assert "hunter2" not in repr(s) and "hunter2" not in str(s)


def test_a_malformed_secret_is_named_but_its_value_never_shown() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"SCENESTORE_MONGODB_URI": "http://app:hunter2@db.example/"})
    assert info.value.message.startswith("SCENESTORE_MONGODB_URI: ") and "hunter2" not in info.value.message
    with pytest.raises(ConfigError) as info:
        Settings.from_env(
            {"SCENESTORE_JWT_SECRET": "hunter2-shared", "SCENESTORE_MEDIA_TOKEN_SECRET": "hunter2-shared"}
        )
    assert "SCENESTORE_MEDIA_TOKEN_SECRET" in info.value.message and "hunter2" not in info.value.message


def test_to_env_writes_every_declared_variable_and_reads_back() -> None:
    """``to_env`` comes from the fields themselves: a new setting needs no second list of names."""
    full = Settings.from_env(
        {
            **SECRET_VALUES,
            **JWKS_VALUES,
            "SCENESTORE_MEDIA_TOKEN_TTL": "120",
            "SCENESTORE_MULTIPART_PART_SIZE": str(8 * MiB),
            "SCENESTORE_MULTIPART_ABORT_DAYS": "3",
            "SCENESTORE_S3_MAX_IN_FLIGHT": "16",
        }
    )
    declared = {info.alias for info in Settings.model_fields.values() if info.alias}
    env = full.to_env()
    assert declared <= set(env)
    assert {"SCENESTORE_MAX_SIZE_VIDEO", "SCENESTORE_TYPES_OUTPUT"} <= set(env)
    assert Settings.from_env(env) == full
    config = MigrationConfig(lease_ttl=5, pause_ms=120, workers=3)
    assert MigrationConfig.from_env(config.to_env()) == config


def test_constructing_settings_never_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests and the local stack build ``Settings()``: a developer's exported variables must not leak in."""
    monkeypatch.setenv("SCENESTORE_BUCKET", "from-the-shell")
    monkeypatch.setenv("SCENESTORE_UPLOAD_TTL", "abc")
    monkeypatch.setenv("SCENESTORE_MIGRATION_WORKERS", "65")
    assert Settings().bucket == "scenestore-local"
    assert Settings(bucket="given").bucket == "given"
    assert MigrationConfig().workers == 8


def test_overrides_are_validated_like_the_environment() -> None:
    with pytest.raises(ConfigError, match=r"^SCENESTORE_UPLOAD_TTL: "):
        Settings().with_overrides(upload_ttl=0)
    with pytest.raises(ConfigError, match=r"^SCENESTORE_BUCKET: "):
        Settings(bucket="Not_A_Bucket")
    assert Settings().with_overrides(media_token_ttl=60).media_token_ttl == 60


def test_migration_settings_come_from_the_same_mechanism() -> None:
    config = MigrationConfig.from_env({"SCENESTORE_MIGRATION_PAUSE_MS": "120", "SCENESTORE_MIGRATION_LEASE_TTL": "5"})
    assert (config.pause, config.lease_ttl, config.workers) == (0.12, 5.0, 8)
    assert config.heartbeat_interval == pytest.approx(5 / 3)
    with pytest.raises(ConfigError) as info:
        MigrationConfig.from_env({"SCENESTORE_MIGRATION_LEASE_TTL": "soon"})
    assert info.value.message == "SCENESTORE_MIGRATION_LEASE_TTL: must be a number, got 'soon'"


# -- deployed: no dev token keys (contract section 3) -----------------------------------------------------------------
DEPLOYED = {"AWS_LAMBDA_FUNCTION_NAME": "scenestore-presign"}
STRONG_JWT = "j" * 32
STRONG_MEDIA = "m" * 32


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "SCENESTORE_JWT_SECRET"),
        ({"SCENESTORE_JWT_SECRET": "j" * 31, "SCENESTORE_MEDIA_TOKEN_SECRET": STRONG_MEDIA}, "SCENESTORE_JWT_SECRET"),
        ({"SCENESTORE_JWT_SECRET": STRONG_JWT}, "SCENESTORE_MEDIA_TOKEN_SECRET"),
        (
            {"SCENESTORE_JWT_JWKS_URL": "https://auth.example.com/jwks", "SCENESTORE_MEDIA_TOKEN_SECRET": "m" * 31},
            "SCENESTORE_MEDIA_TOKEN_SECRET",
        ),
    ],
)
def test_a_deployed_function_refuses_weak_token_keys(env: dict[str, str], variable: str) -> None:
    settings = Settings.from_env({**DEPLOYED, **env})
    with pytest.raises(ConfigError) as info:
        settings.require_token_keys({**DEPLOYED, **env})
    assert info.value.message.startswith(f"{variable}: ") and "\n" not in info.value.message
    settings.require_token_keys(env)  # the local stack and tests keep their dev keys


@pytest.mark.parametrize(
    "env",
    [
        {"SCENESTORE_JWT_SECRET": STRONG_JWT, "SCENESTORE_MEDIA_TOKEN_SECRET": STRONG_MEDIA},
        {"SCENESTORE_JWT_JWKS_URL": "https://auth.example.com/jwks", "SCENESTORE_MEDIA_TOKEN_SECRET": STRONG_MEDIA},
        {"SCENESTORE_JWT_SECRET": "é" * 16, "SCENESTORE_MEDIA_TOKEN_SECRET": "ü" * 16},  # bytes, not characters
    ],
)
def test_a_deployed_function_starts_with_real_token_keys(env: dict[str, str]) -> None:
    settings = Settings.from_env({**DEPLOYED, **env})
    assert settings.require_token_keys({**DEPLOYED, **env}) is settings


@pytest.mark.parametrize("published", sorted(PUBLISHED_TOKEN_KEYS))
@pytest.mark.parametrize("variable", ["SCENESTORE_JWT_SECRET", "SCENESTORE_MEDIA_TOKEN_SECRET"])
def test_a_deployed_function_refuses_a_published_key_as_either_key(published: str, variable: str) -> None:
    """``dev-media-token-secret-change-me`` is 32 bytes: long enough, and printed in the contract for anyone."""
    other = "SCENESTORE_MEDIA_TOKEN_SECRET" if variable == "SCENESTORE_JWT_SECRET" else "SCENESTORE_JWT_SECRET"
    env = {variable: published, other: "o" * 32}
    settings = Settings.from_env({**DEPLOYED, **env})
    with pytest.raises(ConfigError) as info:
        settings.require_token_keys({**DEPLOYED, **env})
    assert info.value.message.startswith(f"{variable}: a deployed function needs "), info.value.message
    assert published not in info.value.message
    settings.require_token_keys(env)  # locally it is the default, as documented


@pytest.mark.parametrize("url", ["http://auth.example.com/jwks", "HTTP://auth.example.com/jwks"])
def test_a_deployed_function_refuses_a_jwks_url_that_is_not_https(url: str) -> None:
    env = {"SCENESTORE_JWT_JWKS_URL": url, "SCENESTORE_MEDIA_TOKEN_SECRET": STRONG_MEDIA}
    settings = Settings.from_env({**DEPLOYED, **env})
    with pytest.raises(ConfigError) as info:
        settings.require_token_keys({**DEPLOYED, **env})
    assert info.value.message == "SCENESTORE_JWT_JWKS_URL: a deployed function needs an https:// URL"
    settings.require_token_keys(env)  # the local stack and tests may serve a JWKS over plain HTTP


def _key_values_printed_in(text: str) -> set[str]:
    """Values shown for the two token keys: `backticked` on a line naming one, or ``VARIABLE=value`` / JSON."""
    found: set[str] = set()
    for line in text.splitlines():
        if not any(variable in line for variable in _TOKEN_KEY_VARIABLES):
            continue
        for match in re.finditer(r"`([^`\s]{8,})`", line):
            value = match.group(1)
            if not value.startswith(("<", "$", "/", "SCENESTORE_", "AWS_", "http")) and not value.isdigit():
                found.add(value)
        assigned = r"""(?:SCENESTORE_JWT_SECRET|SCENESTORE_MEDIA_TOKEN_SECRET)["']?\s*[=:]\s*["']?([^\s"'<$`]{8,})"""
        found.update(match.group(1) for match in re.finditer(assigned, line))
    return found


_TOKEN_KEY_VARIABLES = ("SCENESTORE_JWT_SECRET", "SCENESTORE_MEDIA_TOKEN_SECRET")


def test_every_token_key_the_docs_print_is_one_a_deployed_function_refuses() -> None:
    """A key added to the docs as an example must join ``PUBLISHED_TOKEN_KEYS``, or this fails."""
    pages = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md", *sorted((ROOT / "clients").rglob("*.md"))]
    printed = set().union(
        *(_key_values_printed_in(page.read_text()) for page in pages if "node_modules" not in str(page))
    )
    assert {DEFAULT_JWT_SECRET, DEFAULT_MEDIA_TOKEN_SECRET} <= printed  # the scan does find what the contract shows
    assert printed <= PUBLISHED_TOKEN_KEYS, printed - PUBLISHED_TOKEN_KEYS


def _import_presign_app(extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCENESTORE_", "AWS_"))}
    env.update({"POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_TRACE_DISABLED": "true", **DEPLOYED, **extra})
    return subprocess.run(
        [sys.executable, "-c", "import app"],
        cwd=ROOT / "functions" / "presign",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_deployed_presign_function_refuses_to_start_with_the_dev_secret() -> None:
    """Lambda init imports ``app``: with the dev JWT secret it fails there, naming the variable on one line."""
    refused = _import_presign_app({})
    assert refused.returncode != 0
    assert "ConfigError: SCENESTORE_JWT_SECRET: a deployed function needs" in refused.stderr.splitlines()[-1]
    started = _import_presign_app(
        {"SCENESTORE_JWT_JWKS_URL": "https://auth.example.com/jwks", "SCENESTORE_MEDIA_TOKEN_SECRET": STRONG_MEDIA}
    )
    assert started.returncode == 0, started.stderr


def test_only_the_declared_variables_are_read() -> None:
    """Field names are not variables: a stray ``bucket=`` or ``limits=`` in the environment changes nothing."""
    assert Settings.from_env({"bucket": "other-bucket", "limits": "{}", "upload_ttl": "abc"}) == Settings()
    assert Settings.from_env({"scenestore_bucket": "lower-case"}).bucket == "scenestore-local"
