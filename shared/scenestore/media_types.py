"""Which file extensions agree with which MIME types, so a filename cannot contradict its ``content_type``.

The table covers every type of the default limits (contract section 4). Types an operator adds through
``SCENESTORE_TYPES_<KIND>`` fall back to the standard library's ``mimetypes`` table, so a configured type is
never unusable just because it is missing here.
"""

from __future__ import annotations

import mimetypes
from typing import Final

from scenestore.errors import InvalidFilename, UnsupportedType
from scenestore.keys import split_extension

#: Extensions (lower case, with the dot) accepted for each MIME type.
EXTENSIONS: Final[dict[str, tuple[str, ...]]] = {
    "image/jpeg": (".jpg", ".jpeg"),
    "image/png": (".png",),
    "image/webp": (".webp",),
    "image/gif": (".gif",),
    "video/mp4": (".mp4", ".m4v"),
    "video/webm": (".webm",),
    "video/quicktime": (".mov",),
    "audio/mpeg": (".mp3",),
    "audio/wav": (".wav",),
    "audio/x-wav": (".wav",),
    "audio/ogg": (".ogg", ".oga"),
    "audio/mp4": (".m4a",),
    "audio/aac": (".aac",),
    "audio/webm": (".weba", ".webm"),
}

#: Longest MIME type we accept; anything longer is not a type but an attack on log files.
MAX_CONTENT_TYPE_LENGTH: Final = 100


def normalize_content_type(value: str) -> str:
    """Lower-cased and trimmed; parameters (``; charset=...``) are refused, not dropped.

    The type is signed into the upload URL exactly as returned, so it must be the bare type the browser
    will send for the file (``File.type``), never something we rewrote.
    """
    text = value.strip().lower()
    if not text or len(text) > MAX_CONTENT_TYPE_LENGTH or ";" in text or text.count("/") != 1:
        raise UnsupportedType("content_type must be a bare MIME type such as image/png")
    if not text.isascii() or not all(ch.isalnum() or ch in "/.+-_" for ch in text):
        raise UnsupportedType("content_type must be a bare MIME type such as image/png")
    return text


def extensions_for(content_type: str) -> tuple[str, ...]:
    known = EXTENSIONS.get(content_type)
    if known is not None:
        return known
    return tuple(ext.lower() for ext in mimetypes.guess_all_extensions(content_type, strict=False))


def check_extension(filename: str, content_type: str) -> None:
    """Raise ``InvalidFilename`` unless ``filename``'s extension is one of ``content_type``'s."""
    _stem, ext = split_extension(filename)
    allowed = extensions_for(content_type)
    if not ext:
        raise InvalidFilename(f"filename needs an extension matching {content_type} ({', '.join(allowed) or 'none'})")
    if ext.lower() not in allowed:
        expected = ", ".join(allowed) if allowed else "none known"
        raise InvalidFilename(f"extension {ext} contradicts content_type {content_type} (expected {expected})")
