"""Small idioms every module needs, written once: dotted-path reads, validation messages, capped error lists.

Each used to be re-typed in its module (seven readers of ``"media.storageKey"``, four formatters of pydantic
errors, two error caps); one copy here means one behaviour: a missing or non-dict level reads as ``None``,
a validation message names each field the same way, and no report grows past ``MAX_REPORTED_ERRORS``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from typing import Any, Final, TypeVar

#: No result, run document or CLI report carries more errors than this; the counts stay exact.
MAX_REPORTED_ERRORS: Final = 100

T = TypeVar("T")


def get_path(doc: Mapping[str, Any] | None, dotted: str) -> Any:
    """``doc["a"]["b"]`` for ``"a.b"``; ``None`` when a level is missing or is not a mapping."""
    value: Any = doc
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def validation_problems(errors: Iterable[Mapping[str, Any]], *, root: str = "body", limit: int | None = None) -> str:
    """pydantic's ``exc.errors()`` as ``"field.sub: message; ..."``; ``root`` names an error without a location."""
    parts = []
    for error in islice(errors, limit):
        where = ".".join(str(part) for part in error.get("loc", ())) or root
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def extend_capped(errors: list[T], more: Iterable[T], *, cap: int = MAX_REPORTED_ERRORS) -> None:
    """Append ``more`` to ``errors`` in place, stopping at ``cap`` entries (callers count failures separately)."""
    room = cap - len(errors)
    if room > 0:
        errors.extend(islice(more, room))


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of at most ``size`` items (the last may be shorter); lazy, so any iterable works."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, got {size}")
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk
