"""Configuration from the environment, read once and validated (contract section 3).

A bad or missing setting fails at start-up with one line naming the variable, so a misconfigured
deployment never reaches its first request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Final
from urllib.parse import urlsplit

from scenestore.errors import ConfigError

MiB: Final = 1024 * 1024
GiB: Final = 1024 * MiB

DEFAULT_BUCKET: Final = "scenestore-local"
DEFAULT_S3_PORT: Final = 4566
DEFAULT_MONGO_PORT: Final = 27017
DEFAULT_API_PORT: Final = 8000
DEFAULT_JWT_SECRET: Final = "dev-secret-change-me"
DEFAULT_S3_ENDPOINT: Final = f"http://127.0.0.1:{DEFAULT_S3_PORT}"
DEFAULT_MONGODB_URI: Final = f"mongodb://127.0.0.1:{DEFAULT_MONGO_PORT}/"
DEFAULT_ACCESS_KEY: Final = "scenestore-local"
DEFAULT_SECRET_KEY: Final = "scenestore-local-secret"


@dataclass(frozen=True, slots=True)
class KindLimits:
    """What one kind of upload may be: its MIME types and its largest size in bytes."""

    content_types: tuple[str, ...]
    max_size: int


DEFAULT_LIMITS: Final[dict[str, KindLimits]] = {
    "image": KindLimits(("image/jpeg", "image/png", "image/webp", "image/gif"), 20 * MiB),
    "video": KindLimits(("video/mp4", "video/webm", "video/quicktime"), 1 * GiB),
    "audio": KindLimits(
        ("audio/mpeg", "audio/wav", "audio/x-wav", "audio/ogg", "audio/mp4", "audio/aac", "audio/webm"),
        100 * MiB,
    ),
    "output": KindLimits(("video/mp4",), 2 * GiB),
}


@dataclass(frozen=True, slots=True)
class Settings:
    bucket: str = DEFAULT_BUCKET
    s3_endpoint_url: str | None = DEFAULT_S3_ENDPOINT
    s3_region: str = "us-east-1"
    aws_access_key_id: str = DEFAULT_ACCESS_KEY
    aws_secret_access_key: str = field(default=DEFAULT_SECRET_KEY, repr=False)
    mongodb_uri: str = field(default=DEFAULT_MONGODB_URI, repr=False)
    mongodb_db: str = "autoshorts"
    jwt_secret: str = field(default=DEFAULT_JWT_SECRET, repr=False)
    jwt_jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    upload_ttl: int = 900
    download_ttl: int = 3600
    cors_origins: tuple[str, ...] = ("*",)
    limits: Mapping[str, KindLimits] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    #: Temporary credentials (an IAM role, when the bucket is AWS S3); never set for R2 API tokens.
    aws_session_token: str | None = field(default=None, repr=False)

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with some fields replaced (command-line ports beat the environment)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        """The environment variables that reproduce these settings (for child processes and the CLI)."""
        env = {
            "SCENESTORE_BUCKET": self.bucket,
            "SCENESTORE_S3_REGION": self.s3_region,
            "AWS_ACCESS_KEY_ID": self.aws_access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.aws_secret_access_key,
            "SCENESTORE_MONGODB_URI": self.mongodb_uri,
            "SCENESTORE_MONGODB_DB": self.mongodb_db,
            "SCENESTORE_JWT_SECRET": self.jwt_secret,
            "SCENESTORE_UPLOAD_TTL": str(self.upload_ttl),
            "SCENESTORE_DOWNLOAD_TTL": str(self.download_ttl),
            "SCENESTORE_CORS_ORIGINS": ",".join(self.cors_origins),
        }
        if self.s3_endpoint_url:
            env["SCENESTORE_S3_ENDPOINT_URL"] = self.s3_endpoint_url
        if self.aws_session_token:
            env["AWS_SESSION_TOKEN"] = self.aws_session_token
        for name, value in (
            ("SCENESTORE_JWT_JWKS_URL", self.jwt_jwks_url),
            ("SCENESTORE_JWT_ISSUER", self.jwt_issuer),
            ("SCENESTORE_JWT_AUDIENCE", self.jwt_audience),
        ):
            if value:
                env[name] = value
        for kind, limit in self.limits.items():
            env[f"SCENESTORE_MAX_SIZE_{kind.upper()}"] = str(limit.max_size)
            env[f"SCENESTORE_TYPES_{kind.upper()}"] = ",".join(limit.content_types)
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            bucket=_bucket(env),
            s3_endpoint_url=_url(env, "SCENESTORE_S3_ENDPOINT_URL", DEFAULT_S3_ENDPOINT),
            s3_region=_nonempty(env, "SCENESTORE_S3_REGION", "us-east-1"),
            aws_access_key_id=_nonempty(env, "AWS_ACCESS_KEY_ID", DEFAULT_ACCESS_KEY),
            aws_secret_access_key=_nonempty(env, "AWS_SECRET_ACCESS_KEY", DEFAULT_SECRET_KEY),
            aws_session_token=env.get("AWS_SESSION_TOKEN") or None,
            mongodb_uri=_mongodb_uri(env),
            mongodb_db=_db_name(env),
            jwt_secret=_nonempty(env, "SCENESTORE_JWT_SECRET", DEFAULT_JWT_SECRET),
            jwt_jwks_url=_url(env, "SCENESTORE_JWT_JWKS_URL", None),
            jwt_issuer=env.get("SCENESTORE_JWT_ISSUER") or None,
            jwt_audience=env.get("SCENESTORE_JWT_AUDIENCE") or None,
            upload_ttl=_seconds(env, "SCENESTORE_UPLOAD_TTL", 900),
            download_ttl=_seconds(env, "SCENESTORE_DOWNLOAD_TTL", 3600),
            cors_origins=_origins(env),
            limits=_limits(env),
        )


def _nonempty(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name)
    if value is None:
        return default
    value = value.strip()
    if not value:
        raise ConfigError(f"{name} is set but empty")
    return value


def _bucket(env: Mapping[str, str]) -> str:
    import re

    value = _nonempty(env, "SCENESTORE_BUCKET", DEFAULT_BUCKET)
    if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", value):
        raise ConfigError(f"SCENESTORE_BUCKET must be a valid bucket name (3-63 of a-z 0-9 . -), got {value!r}")
    return value


def _url(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    value = env.get(name)
    if value is None:
        return default
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
    return value


def _mongodb_uri(env: Mapping[str, str]) -> str:
    value = _nonempty(env, "SCENESTORE_MONGODB_URI", DEFAULT_MONGODB_URI)
    if not value.startswith(("mongodb://", "mongodb+srv://")):
        raise ConfigError("SCENESTORE_MONGODB_URI must start with mongodb:// or mongodb+srv://")
    return value


def _db_name(env: Mapping[str, str]) -> str:
    value = _nonempty(env, "SCENESTORE_MONGODB_DB", "autoshorts")
    if any(ch in value for ch in '/\\. "$') or len(value) > 63:
        raise ConfigError(f"SCENESTORE_MONGODB_DB is not a valid database name: {value!r}")
    return value


def _seconds(env: Mapping[str, str], name: str, default: int) -> int:
    return _positive_int(env, name, default, upper=7 * 24 * 3600)


def _positive_int(env: Mapping[str, str], name: str, default: int, upper: int | None = None) -> int:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a positive integer, got {raw!r}") from None
    if value <= 0 or (upper is not None and value > upper):
        limit = f" at most {upper}" if upper else ""
        raise ConfigError(f"{name} must be a positive integer{limit}, got {raw!r}")
    return value


def _origins(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("SCENESTORE_CORS_ORIGINS")
    if raw is None:
        return ("*",)
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    if not origins:
        raise ConfigError("SCENESTORE_CORS_ORIGINS is set but lists no origin")
    for origin in origins:
        if origin != "*" and urlsplit(origin).scheme not in ("http", "https"):
            raise ConfigError(f"SCENESTORE_CORS_ORIGINS: {origin!r} is not '*' or an http(s) origin")
    return origins


def _limits(env: Mapping[str, str]) -> dict[str, KindLimits]:
    """``SCENESTORE_MAX_SIZE_<KIND>`` (bytes) and ``SCENESTORE_TYPES_<KIND>`` (comma-separated) override."""
    limits: dict[str, KindLimits] = {}
    for kind, default in DEFAULT_LIMITS.items():
        size_var = f"SCENESTORE_MAX_SIZE_{kind.upper()}"
        types_var = f"SCENESTORE_TYPES_{kind.upper()}"
        max_size = _positive_int(env, size_var, default.max_size, upper=5 * 1024 * GiB)
        types = default.content_types
        if types_var in env:
            types = tuple(t.strip().lower() for t in env[types_var].split(",") if t.strip())
            if not types or any("/" not in t for t in types):
                raise ConfigError(f"{types_var} must list MIME types like image/png, comma-separated")
        limits[kind] = KindLimits(types, max_size)
    return limits


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once (call ``get_settings.cache_clear()`` in tests that change env).

    Deployed, the secret named by ``SCENESTORE_SECRETS_ARN`` supplies the credentials (``scenestore.secrets``).
    """
    from scenestore.secrets import settings_environ

    return Settings.from_env(settings_environ())
