"""Domain errors with a stable ``code``.

Callers map them to HTTP statuses or CLI exit codes by *type*, in one place each
(``functions/presign`` and ``scenestore_cli``), never by message text.
"""

from __future__ import annotations


class ScenestoreError(Exception):
    """Base of every error this package raises on purpose."""

    code: str = "internal"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


class ConfigError(ScenestoreError):
    """A setting is missing or malformed; raised at start-up, naming the variable."""

    code = "config"


class InvalidRequest(ScenestoreError):
    code = "invalid_request"


class InvalidId(InvalidRequest):
    code = "invalid_id"


class InvalidFilename(InvalidRequest):
    code = "invalid_filename"


class InvalidKey(InvalidRequest):
    """A key that is not part of the layout where a layout key is required."""

    code = "invalid_request"


class UsageError(ScenestoreError):
    """The operator asked for something impossible as given (a busy port, a wrong --confirm): CLI exit 2."""

    code = "usage"


class Unauthorized(ScenestoreError):
    code = "unauthorized"


class NotFound(ScenestoreError):
    """Also raised for other tenants' resources: existence is never revealed."""

    code = "not_found"


class TooLarge(ScenestoreError):
    code = "too_large"


class UnsupportedType(ScenestoreError):
    code = "unsupported_type"


class Conflict(ScenestoreError):
    """A concurrent writer won (a lease held by another run, a slot changed under us)."""

    code = "conflict"


class StorageError(ScenestoreError):
    """The object store failed in a way the caller cannot fix by changing its input."""

    code = "internal"
