"""Configuration from the environment, declared once per variable and validated at start-up (contract section 3).

Every setting is one pydantic field whose alias is its environment variable; its type says how the text is read
and checked, and its docstring says what it is for. ``Settings.from_env`` reads a mapping (the environment, or the
environment overlaid with the deployed secret, see ``scenestore.secrets``) through pydantic-settings' own
environment source; ``Settings.to_env`` writes the same fields back, so the variable names are written nowhere
else. pydantic-settings is used rather than hand parsing because the rules (aliases, types, bounds, error
locations) are pydantic's, which the event and request models already use.

A bad or missing setting fails at start-up with ONE line naming the variable (``SCENESTORE_UPLOAD_TTL: must be an
integer, got 'abc'``), never a pydantic dump and never a secret's value, so a misconfigured deployment never
reaches its first request.

Constructing ``Settings(...)`` reads nothing from the process environment: tests and the local stack get the
documented defaults plus their keyword overrides, whatever the developer's shell exports.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Annotated, Any, Final, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, model_validator
from pydantic.dataclasses import dataclass
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

from scenestore.errors import ConfigError

MiB: Final = 1024 * 1024
GiB: Final = 1024 * MiB
TiB: Final = 1024 * GiB
WEEK: Final = 7 * 24 * 3600

DEFAULT_BUCKET: Final = "scenestore-local"
DEFAULT_S3_PORT: Final = 4566
DEFAULT_MONGO_PORT: Final = 27017
DEFAULT_API_PORT: Final = 8000
DEFAULT_JWT_SECRET: Final = "dev-secret-change-me"
#: The local stack's media-token key: a different value from the JWT dev secret, so the two keys never mix.
DEFAULT_MEDIA_TOKEN_SECRET: Final = "dev-media-token-secret-change-me"
#: Every token key printed in this repository (the local stack's defaults, shown in docs/ and the contract): known
#: to anyone who reads them, so a deployed function refuses each of them as either key, whatever its length.
PUBLISHED_TOKEN_KEYS: Final = frozenset({DEFAULT_JWT_SECRET, DEFAULT_MEDIA_TOKEN_SECRET})
_NOT_PUBLISHED: Final = "a key of its own, not one published in the docs"
DEFAULT_S3_ENDPOINT: Final = f"http://127.0.0.1:{DEFAULT_S3_PORT}"
DEFAULT_MONGODB_URI: Final = f"mongodb://127.0.0.1:{DEFAULT_MONGO_PORT}/"
DEFAULT_ACCESS_KEY: Final = "scenestore-local"
DEFAULT_SECRET_KEY: Final = "scenestore-local-secret"

#: Media tokens travel in URLs; the contract caps their whole lifetime at 15 minutes.
MAX_MEDIA_TOKEN_TTL: Final = 900
#: HS256 keys shorter than this are guessable offline (RFC 7518 section 3.2); a deployed function refuses them.
MIN_DEPLOYED_KEY_BYTES: Final = 32
#: S3 and R2 refuse multipart parts (all but the last) smaller than this.
MIN_MULTIPART_PART_SIZE: Final = 5 * MiB
MAX_MULTIPART_PART_SIZE: Final = 5 * GiB
#: Lambda sets this in every deployed function; it is never set on the local stack, in tests or for the CLI.
DEPLOYED_MARKER_VAR: Final = "AWS_LAMBDA_FUNCTION_NAME"


# -- how a variable's text is read ------------------------------------------------------------------------------
def _stripped(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _nonempty(value: object) -> object:
    value = _stripped(value)
    if value == "":
        raise ValueError("is set but empty")
    return value


def _empty_is_none(value: object) -> object:
    value = _stripped(value)
    return None if value == "" else value


def _integer(value: object) -> object:
    """Whole numbers only: ``1.5``, ``1e3`` and ``ten`` are mistakes, not something to round."""
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"[+-]?\d+", text):
            raise ValueError("must be an integer")
        return int(text)
    return value


def _number(value: object) -> object:
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise ValueError("must be a number") from None
    return value


def _bucket_name(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", value):
        raise ValueError("must be a valid bucket name (3-63 of a-z 0-9 . -)")
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http(s) URL")
    return value


def _optional_http_url(value: str | None) -> str | None:
    return None if value is None else _http_url(value)


def _mongodb_uri(value: str) -> str:
    if not value.startswith(("mongodb://", "mongodb+srv://")):
        raise ValueError("must start with mongodb:// or mongodb+srv://")
    return value


def _db_name(value: str) -> str:
    if any(ch in value for ch in '/\\. "$') or len(value) > 63:
        raise ValueError("is not a valid database name")
    return value


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


def _origins(value: tuple[str, ...]) -> tuple[str, ...]:
    origins = tuple(origin.rstrip("/") for origin in value)
    if not origins:
        raise ValueError("is set but lists no origin")
    for origin in origins:
        if origin != "*" and urlsplit(origin).scheme not in ("http", "https"):
            raise ValueError(f"{origin!r} is not '*' or an http(s) origin")
    return origins


def _mime_types(value: tuple[str, ...]) -> tuple[str, ...]:
    types = tuple(t.lower() for t in value)
    if not types or any("/" not in t for t in types):
        raise ValueError("must list MIME types like image/png, comma-separated")
    return types


Text = Annotated[str, BeforeValidator(_nonempty)]
#: A secret's field also says ``repr=False``, which keeps its value out of ``repr`` and out of error messages.
Secret = Text
OptionalText = Annotated[str | None, BeforeValidator(_empty_is_none)]
OptionalUrl = Annotated[str | None, BeforeValidator(_nonempty), AfterValidator(_optional_http_url)]
Seconds = Annotated[int, BeforeValidator(_integer), Field(gt=0, le=WEEK)]
Count = Annotated[int, BeforeValidator(_integer), Field(ge=1)]
Origins = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_comma_list), AfterValidator(_origins)]
MimeTypes = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_comma_list), AfterValidator(_mime_types)]
Number = Annotated[float, BeforeValidator(_number)]


@dataclass(frozen=True)
class KindLimits:
    """What one kind of upload may be: its MIME types and its largest size in bytes."""

    content_types: MimeTypes
    max_size: Annotated[int, BeforeValidator(_integer), Field(gt=0, le=5 * TiB)]


DEFAULT_LIMITS: Final[dict[str, KindLimits]] = {
    "image": KindLimits(("image/jpeg", "image/png", "image/webp", "image/gif"), 20 * MiB),
    "video": KindLimits(("video/mp4", "video/webm", "video/quicktime"), 1 * GiB),
    "audio": KindLimits(
        ("audio/mpeg", "audio/wav", "audio/x-wav", "audio/ogg", "audio/mp4", "audio/aac", "audio/webm"),
        100 * MiB,
    ),
    "output": KindLimits(("video/mp4",), 2 * GiB),
}

#: ``KindLimits`` field -> the variable that sets it for a kind (``SCENESTORE_MAX_SIZE_IMAGE``).
LIMIT_VARIABLES: Final = {"max_size": "SCENESTORE_MAX_SIZE_{KIND}", "content_types": "SCENESTORE_TYPES_{KIND}"}


def limit_variable(kind: str, part: str) -> str:
    return LIMIT_VARIABLES[part].format(KIND=kind.upper())


# -- the mechanism every settings class shares ---------------------------------------------------------------------
class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of ``os.environ``.

    The deployed secret is overlaid on the environment without writing it into ``os.environ`` (the AWS clients
    must keep the role's credentials), and tests pass plain dicts; both need the source to read a mapping.
    """

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """The field's variable, exactly: keyword arguments may use field names, the environment may not (a
        stray ``upload_ttl=`` or ``limits=`` is not a setting); a field without a variable (``limits``) reads none."""
        if field.alias is None:
            return None, field_name, False
        return self.env_vars.get(field.alias), field.alias, self.field_is_complex(field)


class EnvSettings(BaseSettings):
    """Settings read from environment variables: one field per variable, its alias being the variable's name.

    Subclasses declare fields only; reading (``from_env``), writing (``to_env``), copying with changes
    (``with_overrides``) and the one-line error naming the variable come from here.
    """

    model_config = SettingsConfigDict(
        frozen=True,
        case_sensitive=True,
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        use_attribute_docstrings=True,
    )

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigError(self._problems(exc.errors(include_url=False))) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments only: the environment is read by ``from_env``, explicitly, never implicitly."""
        return (init_settings,)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """These settings as ``environ`` (default: the process environment) sets them."""
        env = os.environ if environ is None else environ
        return cls(**_MappingEnvSource(cls, env)(), **cls._extra_env_values(env))

    @classmethod
    def _extra_env_values(cls, environ: Mapping[str, str]) -> dict[str, Any]:
        """Fields set by a family of variables rather than one (``limits``); none by default."""
        return {}

    def to_env(self) -> dict[str, str]:
        """The environment variables that reproduce these settings (child processes, the CLI, tests)."""
        env: dict[str, str] = {}
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            if info.alias is not None and value is not None:
                env[info.alias] = _env_text(value)
        return env

    def with_overrides(self, **changes: Any) -> Self:
        """A validated copy with some fields replaced (command-line ports beat the environment)."""
        return type(self)(**{**dict(self), **changes})

    @classmethod
    def variable(cls, loc: tuple[int | str, ...]) -> str:
        """The environment variable behind an error location (``("upload_ttl",)`` -> ``SCENESTORE_UPLOAD_TTL``)."""
        if not loc:
            return ""
        info = cls.model_fields.get(str(loc[0]))
        if info is None:
            return str(loc[0])  # the location is already the alias
        return info.alias or str(loc[0])

    @classmethod
    def _is_secret(cls, variable: str) -> bool:
        return any(info.alias == variable and not info.repr for info in cls.model_fields.values())

    @classmethod
    def _problems(cls, errors: Iterable[Mapping[str, Any]]) -> str:
        """``VARIABLE: what is wrong, got 'value'`` per error, on one line; a secret's value is never shown."""
        lines = []
        for error in errors:
            variable = cls.variable(tuple(error.get("loc", ())))
            message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
            message = message.replace("Input should be", "must be")
            if not variable:
                lines.append(message)
                continue
            shown = "" if cls._is_secret(variable) or error.get("type") == "missing" else f", got {error['input']!r}"
            lines.append(f"{variable}: {message}{shown}")
        return "; ".join(lines)


def _env_text(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)
    return str(value)


# -- the service's settings -----------------------------------------------------------------------------------------
class Settings(EnvSettings):
    """Everything scenestore reads from its environment (contract section 3)."""

    bucket: Annotated[Text, AfterValidator(_bucket_name)] = Field(DEFAULT_BUCKET, alias="SCENESTORE_BUCKET")
    """The bucket holding the media (R2 or S3)."""
    s3_endpoint_url: OptionalUrl = Field(DEFAULT_S3_ENDPOINT, alias="SCENESTORE_S3_ENDPOINT_URL")
    """S3/R2 endpoint (``https://<account>.r2.cloudflarestorage.com`` for R2); ``None`` lets boto3 pick AWS's."""
    s3_region: Text = Field("us-east-1", alias="SCENESTORE_S3_REGION")
    """Signing region (``auto`` for R2)."""
    aws_access_key_id: Text = Field(DEFAULT_ACCESS_KEY, alias="AWS_ACCESS_KEY_ID")
    """Object-store access key (the R2 API token's key id when the bucket is R2)."""
    aws_secret_access_key: Secret = Field(DEFAULT_SECRET_KEY, alias="AWS_SECRET_ACCESS_KEY", repr=False)
    aws_session_token: OptionalText = Field(None, alias="AWS_SESSION_TOKEN", repr=False)
    """Temporary credentials (an IAM role, when the bucket is AWS S3); never set for R2 API tokens."""
    mongodb_uri: Annotated[Secret, AfterValidator(_mongodb_uri)] = Field(
        DEFAULT_MONGODB_URI, alias="SCENESTORE_MONGODB_URI", repr=False
    )
    """The app's MongoDB (it may carry a password, so it is treated as a secret)."""
    mongodb_db: Annotated[Text, AfterValidator(_db_name)] = Field("autoshorts", alias="SCENESTORE_MONGODB_DB")
    jwt_secret: Secret = Field(DEFAULT_JWT_SECRET, alias="SCENESTORE_JWT_SECRET", repr=False)
    """HS256 key of bearer tokens (dev, tests); production verifies RS256 against ``jwt_jwks_url``."""
    jwt_jwks_url: OptionalUrl = Field(None, alias="SCENESTORE_JWT_JWKS_URL")
    """The identity provider's JWKS; when set, bearer tokens must be RS256 signed by one of its keys."""
    jwt_issuer: OptionalText = Field(None, alias="SCENESTORE_JWT_ISSUER")
    jwt_audience: OptionalText = Field(None, alias="SCENESTORE_JWT_AUDIENCE")
    upload_ttl: Seconds = Field(900, alias="SCENESTORE_UPLOAD_TTL")
    """Lifetime of presigned upload URLs, seconds."""
    download_ttl: Seconds = Field(3600, alias="SCENESTORE_DOWNLOAD_TTL")
    """Lifetime of presigned download URLs, seconds."""
    media_token_ttl: Annotated[Seconds, Field(le=MAX_MEDIA_TOKEN_TTL)] = Field(300, alias="SCENESTORE_MEDIA_TOKEN_TTL")
    """Lifetime of media tokens minted by ``POST /media-token`` (they travel in URLs), seconds, at most 900."""
    media_token_secret: Secret = Field(DEFAULT_MEDIA_TOKEN_SECRET, alias="SCENESTORE_MEDIA_TOKEN_SECRET", repr=False)
    """The service's own HS256 key for media tokens, never the identity provider's (part of the deployed secret)."""
    cors_origins: Origins = Field(("*",), alias="SCENESTORE_CORS_ORIGINS")
    """Browser origins allowed to call the API (``*`` or http(s) origins), comma-separated."""
    multipart_part_size: Annotated[int, BeforeValidator(_integer)] = Field(
        16 * MiB, alias="SCENESTORE_MULTIPART_PART_SIZE", ge=MIN_MULTIPART_PART_SIZE, le=MAX_MULTIPART_PART_SIZE
    )
    """Bytes of every multipart part but the last (S3 and R2 need at least 5 MiB); raised when 10,000 parts
    would not hold the object."""
    multipart_abort_days: Count = Field(7, alias="SCENESTORE_MULTIPART_ABORT_DAYS")
    """Days after which the bucket's lifecycle rule aborts an incomplete multipart upload."""
    s3_max_in_flight: Count = Field(64, alias="SCENESTORE_S3_MAX_IN_FLIGHT")
    """Ceiling of the adaptive S3 concurrency: requests in flight at once, whatever the controller measures."""
    limits: Mapping[str, KindLimits] = Field(default_factory=lambda: dict(DEFAULT_LIMITS))
    """Per kind: MIME types (``SCENESTORE_TYPES_<KIND>``) and largest size in bytes (``SCENESTORE_MAX_SIZE_<KIND>``)."""

    @model_validator(mode="after")
    def _media_key_is_the_services_own(self) -> Self:
        if self.media_token_secret == self.jwt_secret:
            raise ValueError("SCENESTORE_MEDIA_TOKEN_SECRET: must differ from SCENESTORE_JWT_SECRET")
        return self

    @classmethod
    def _extra_env_values(cls, environ: Mapping[str, str]) -> dict[str, Any]:
        """``limits`` from ``SCENESTORE_MAX_SIZE_<KIND>`` and ``SCENESTORE_TYPES_<KIND>``, defaults for the rest."""
        if not any(limit_variable(kind, part) in environ for kind in DEFAULT_LIMITS for part in LIMIT_VARIABLES):
            return {}
        limits: dict[str, dict[str, Any]] = {}
        for kind, default in DEFAULT_LIMITS.items():
            limits[kind] = {
                part: environ.get(limit_variable(kind, part), getattr(default, part)) for part in LIMIT_VARIABLES
            }
        return {"limits": limits}

    def to_env(self) -> dict[str, str]:
        env = super().to_env()
        for kind, limit in self.limits.items():
            for part in LIMIT_VARIABLES:
                env[limit_variable(kind, part)] = _env_text(getattr(limit, part))
        return env

    @classmethod
    def variable(cls, loc: tuple[int | str, ...]) -> str:
        if len(loc) >= 3 and loc[0] == "limits":
            return limit_variable(str(loc[1]), str(loc[2]))
        return super().variable(loc)

    def require_token_keys(self, environ: Mapping[str, str] | None = None) -> Self:
        """Refuse, in a deployed function, keys that exist for the local stack and tests only (contract section 3).

        Called at start-up by the function that verifies and mints tokens (presign): bearer tokens need the
        identity provider's JWKS, fetched over ``https://`` (a JWKS read over plain HTTP can be swapped on the
        way, and with it every key), or an HS256 secret of at least 32 bytes; media tokens need the service's own
        key, as long, from the deployed secret. A key published in this repository (:data:`PUBLISHED_TOKEN_KEYS`)
        is refused as either key. Functions that never touch a token do not need these keys.
        """
        env = os.environ if environ is None else environ
        if not env.get(DEPLOYED_MARKER_VAR):
            return self
        if self.jwt_jwks_url:
            if urlsplit(self.jwt_jwks_url).scheme != "https":
                raise ConfigError("SCENESTORE_JWT_JWKS_URL: a deployed function needs an https:// URL")
        elif self.jwt_secret in PUBLISHED_TOKEN_KEYS:
            raise ConfigError(
                "SCENESTORE_JWT_SECRET: a deployed function needs a key of its own, not one published in the docs"
            )
        elif len(self.jwt_secret.encode()) < MIN_DEPLOYED_KEY_BYTES:
            raise ConfigError(
                f"SCENESTORE_JWT_SECRET: a deployed function needs SCENESTORE_JWT_JWKS_URL or a secret of at least "
                f"{MIN_DEPLOYED_KEY_BYTES} bytes"
            )
        secret = self.media_token_secret
        if secret in PUBLISHED_TOKEN_KEYS:
            raise ConfigError(f"SCENESTORE_MEDIA_TOKEN_SECRET: a deployed function needs {_NOT_PUBLISHED}")
        if len(secret.encode()) < MIN_DEPLOYED_KEY_BYTES:
            raise ConfigError(
                f"SCENESTORE_MEDIA_TOKEN_SECRET: a deployed function needs its own key of at least "
                f"{MIN_DEPLOYED_KEY_BYTES} bytes in the runtime secret"
            )
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once (call ``get_settings.cache_clear()`` in tests that change env).

    Deployed, the secret named by ``SCENESTORE_SECRETS_ARN`` supplies the credentials (``scenestore.secrets``).
    """
    from scenestore.secrets import settings_environ

    return Settings.from_env(settings_environ())
