"""The key layout: build, parse and validate every key, with no I/O.

Layout (contract section 1)::

    users/{user}/projects/{project}/scenes/{scene}/{kind}/{filename}   kind: image | video | audio
    users/{user}/projects/{project}/output/{filename}

Ids are validated and rejected, never rewritten, because a silently rewritten id would let two tenants'
ids collide. Filenames come from clients and are sanitized, because a browser's file name is not ours to
reject for a stray space. Every prefix ends in ``/`` so ``p1`` never matches ``p10``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final, Literal

from scenestore.errors import InvalidFilename, InvalidId, InvalidKey

SceneKind = Literal["image", "video", "audio"]
Kind = Literal["image", "video", "audio", "output"]

SCENE_KINDS: Final[tuple[str, ...]] = ("image", "video", "audio")
OUTPUT_KIND: Final = "output"
ALL_KINDS: Final[tuple[str, ...]] = (*SCENE_KINDS, OUTPUT_KIND)

ROOT: Final = "users/"
MAX_ID_LENGTH: Final = 128
MAX_FILENAME_LENGTH: Final = 120

_ID_RE: Final = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,127}")
_UNSAFE_FILENAME_CHARS: Final = re.compile(r"[^A-Za-z0-9._\-]")
_DASH_RUNS: Final = re.compile(r"-{2,}")


def validate_id(value: object, what: str = "id") -> str:
    """Return ``value`` if it is a valid user/project/scene id, else raise ``InvalidId``.

    ``what`` names the field in the error so a client can tell which one was wrong.
    """
    if not isinstance(value, str):
        raise InvalidId(f"{what} must be a string")
    if not _ID_RE.fullmatch(value):
        raise InvalidId(f"{what} must be 1-{MAX_ID_LENGTH} characters from A-Z a-z 0-9 _ - . and not start with '.'")
    return value


def validate_kind(kind: object, *, allow_output: bool = True) -> str:
    allowed = ALL_KINDS if allow_output else SCENE_KINDS
    if kind not in allowed:
        raise InvalidKey(f"kind must be one of {', '.join(allowed)}")
    return str(kind)


def sanitize_filename(name: object) -> str:
    """Derive the stored file name from a client's file name (contract section 1).

    Path components are dropped (both ``/`` and ``\\``), the text is NFC-normalised, anything outside
    ``A-Za-z0-9._-`` becomes ``-``, runs of ``-`` collapse, leading dots go, the extension is lower-cased,
    and the result is cut to 120 characters keeping the extension.
    """
    if not isinstance(name, str):
        raise InvalidFilename("filename must be a string")
    base = re.split(r"[/\\]", name)[-1]
    base = unicodedata.normalize("NFC", base)
    base = _UNSAFE_FILENAME_CHARS.sub("-", base)
    base = _DASH_RUNS.sub("-", base)
    base = base.lstrip(".")
    stem, dot, ext = base.rpartition(".")
    if dot and stem and len(ext) + 1 < MAX_FILENAME_LENGTH:
        base = stem[: MAX_FILENAME_LENGTH - len(ext) - 1] + "." + ext.lower()
    elif len(base) > MAX_FILENAME_LENGTH:
        # An "extension" too long to keep is cut with the rest; whatever ends up after the last dot of
        # the cut name is its extension now and is lower-cased, so the result sanitizes to itself
        # (a stored key must parse back to the same filename).
        base = _lower_extension(base[:MAX_FILENAME_LENGTH])
    else:
        base = _lower_extension(base)
    if not base:
        raise InvalidFilename("filename is empty once unsafe characters and path components are removed")
    return base


def _lower_extension(name: str) -> str:
    stem, dot, ext = name.rpartition(".")
    return f"{stem}.{ext.lower()}" if dot and stem else name


def split_extension(filename: str) -> tuple[str, str]:
    """``("photo", ".jpg")`` for ``photo.jpg``; ``("README", "")`` without an extension."""
    stem, dot, ext = filename.rpartition(".")
    if not dot or not stem:
        return filename, ""
    return stem, "." + ext


def user_prefix(user_id: str) -> str:
    return f"{ROOT}{validate_id(user_id, 'user_id')}/"


def project_prefix(user_id: str, project_id: str) -> str:
    return f"{user_prefix(user_id)}projects/{validate_id(project_id, 'project_id')}/"


def scene_prefix(user_id: str, project_id: str, scene_id: str) -> str:
    return f"{project_prefix(user_id, project_id)}scenes/{validate_id(scene_id, 'scene_id')}/"


def output_prefix(user_id: str, project_id: str) -> str:
    return f"{project_prefix(user_id, project_id)}output/"


def scene_key(user_id: str, project_id: str, scene_id: str, kind: str, filename: str) -> str:
    """Key of a scene's media or audio object; ``filename`` is sanitized here."""
    validate_kind(kind, allow_output=False)
    return f"{scene_prefix(user_id, project_id, scene_id)}{kind}/{sanitize_filename(filename)}"


def output_key(user_id: str, project_id: str, filename: str) -> str:
    """Key of a project's finished video."""
    return f"{output_prefix(user_id, project_id)}{sanitize_filename(filename)}"


def build_key(user_id: str, project_id: str, kind: str, filename: str, scene_id: str | None = None) -> str:
    """One entry point for both shapes: ``kind="output"`` takes no scene, every other kind needs one."""
    validate_kind(kind)
    if kind == OUTPUT_KIND:
        if scene_id is not None:
            raise InvalidKey("output files belong to the project, not to a scene")
        return output_key(user_id, project_id, filename)
    if scene_id is None:
        raise InvalidKey(f"kind {kind!r} needs a scene_id")
    return scene_key(user_id, project_id, scene_id, kind, filename)


def is_legacy_key(key: str) -> bool:
    """A legacy key is any key outside ``users/`` (contract section 1)."""
    return not key.startswith(ROOT)


@dataclass(frozen=True, slots=True)
class LayoutKey:
    """A parsed layout key. ``scene_id`` is ``None`` exactly when ``kind == "output"``."""

    user_id: str
    project_id: str
    kind: str
    filename: str
    scene_id: str | None = None

    @property
    def key(self) -> str:
        return build_key(self.user_id, self.project_id, self.kind, self.filename, self.scene_id)

    @property
    def project_prefix(self) -> str:
        return project_prefix(self.user_id, self.project_id)


def parse_key(key: str) -> LayoutKey:
    """Parse a layout key; raise ``InvalidKey`` for legacy or malformed keys.

    Strict on purpose: a key is accepted only if building it again gives the very same string, so a
    parsed key can be trusted for tenancy decisions.
    """
    parts = key.split("/")
    try:
        if len(parts) == 8 and parts[0] == "users" and parts[2] == "projects" and parts[4] == "scenes":
            parsed = LayoutKey(
                user_id=parts[1], project_id=parts[3], kind=parts[6], filename=parts[7], scene_id=parts[5]
            )
        elif len(parts) == 6 and parts[0] == "users" and parts[2] == "projects" and parts[4] == "output":
            parsed = LayoutKey(user_id=parts[1], project_id=parts[3], kind=OUTPUT_KIND, filename=parts[5])
        else:
            raise InvalidKey("not a layout key")
        if parsed.key != key:
            raise InvalidKey("not a canonical layout key")
    except (InvalidId, InvalidFilename) as exc:
        raise InvalidKey(f"not a layout key: {exc.message}") from exc
    return parsed


def owner_of(key: str) -> tuple[str, str] | None:
    """``(user_id, project_id)`` of a key under a project prefix, else ``None``.

    Looser than :func:`parse_key`: any object under ``users/{u}/projects/{p}/`` belongs to that project,
    whatever sits below it, which is what tenancy and cleanup need.
    """
    parts = key.split("/")
    if len(parts) < 5 or parts[0] != "users" or parts[2] != "projects" or not parts[4]:
        return None
    try:
        return validate_id(parts[1], "user_id"), validate_id(parts[3], "project_id")
    except InvalidId:
        return None
