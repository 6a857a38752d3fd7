"""``_id`` values as text (cursors, shard bounds, journal ids) and ranges over a mixed-type ``_id`` space.

The app's ``_id`` values are ObjectIds or strings (numbers are handled too). MongoDB orders values of
different types by type first (numbers < strings < ObjectIds) and compares a range bound only with values
of its own type ("type bracketing": ``{_id: {$gt: "m"}}`` never returns an ObjectId). So a range over the
whole ``_id`` space is a sequence of per-type *segments*, each an index-backed range of one type, read in
that order; one position in the total order is a value of one type, which the text form carries:

    num:42   num:2.5   str:scene-7   oid:65f0c0ffee00000000000001

Bounds and cursors are these strings so they travel through JSON (Step Functions) unchanged. Any other
``_id`` type (binary UUIDs, dates, documents) is outside every segment: planning counts and reports them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from bson import ObjectId

from scenestore.errors import InvalidRequest

#: The supported type classes in MongoDB's cross-type sort order.
CLASSES: Final[tuple[str, ...]] = ("num", "str", "oid")
#: The smallest value of each class: ``{$gte: MIN}`` selects exactly that class (type bracketing).
CLASS_MIN: Final[dict[str, Any]] = {"num": -math.inf, "str": "", "oid": ObjectId("0" * 24)}


class UnsupportedId(InvalidRequest):
    """An ``_id`` of a type the migration cannot place in its ordered ranges."""

    code = "unsupported_id"


def id_class(value: Any) -> str:
    if isinstance(value, bool):  # bool is an int in Python but sorts after ObjectId in BSON
        raise UnsupportedId("boolean _id values are not supported")
    if isinstance(value, int | float):
        if isinstance(value, float) and math.isnan(value):
            raise UnsupportedId("NaN _id values are not supported")
        return "num"
    if isinstance(value, str):
        return "str"
    if isinstance(value, ObjectId):
        return "oid"
    raise UnsupportedId(f"_id of type {type(value).__name__} is not supported")


def encode_id(value: Any) -> str:
    """``oid:<hex>``, ``str:<text>``, ``num:<int or float>``."""
    cls = id_class(value)
    if cls == "oid":
        return f"oid:{value}"
    if cls == "str":
        return f"str:{value}"
    return f"num:{value!r}" if isinstance(value, float) else f"num:{int(value)}"


def decode_id(text: str) -> Any:
    if not isinstance(text, str):
        raise InvalidRequest("an encoded _id must be a string like 'oid:<24 hex>' or 'str:<text>'")
    cls, sep, raw = text.partition(":")
    if not sep or cls not in CLASSES:
        raise InvalidRequest(f"{text!r} is not an encoded _id ('oid:<24 hex>', 'str:<text>' or 'num:<number>')")
    if cls == "str":
        return raw
    if cls == "oid":
        if not ObjectId.is_valid(raw):
            raise InvalidRequest(f"{text!r}: not a valid ObjectId")
        return ObjectId(raw)
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        number = float(raw)
    except ValueError:
        raise InvalidRequest(f"{text!r}: not a number") from None
    if math.isnan(number):
        raise InvalidRequest(f"{text!r}: NaN is not a position")
    return number


def sort_key(value: Any) -> tuple[int, Any]:
    """A Python sort key that agrees with MongoDB's order for the supported classes."""
    cls = id_class(value)
    if cls == "oid":
        return (2, value.binary)
    return (CLASSES.index(cls), value)


@dataclass(frozen=True, slots=True)
class Bound:
    value: Any
    inclusive: bool


def segment_filters(lower: Bound | None, upper: Any | None) -> list[dict[str, Any]]:
    """Index-backed ``_id`` filters, in order, that together select ``lower <(=) _id < upper`` exactly once.

    ``lower=None`` starts at the beginning of the space, ``upper=None`` runs to its end.
    """
    lower_cls = CLASSES.index(id_class(lower.value)) if lower is not None else -1
    upper_cls = CLASSES.index(id_class(upper)) if upper is not None else len(CLASSES)
    filters: list[dict[str, Any]] = []
    for index, cls in enumerate(CLASSES):
        if index < lower_cls or index > upper_cls:
            continue
        condition: dict[str, Any] = {}
        if lower is not None and index == lower_cls:
            condition["$gte" if lower.inclusive else "$gt"] = lower.value
        else:
            condition["$gte"] = CLASS_MIN[cls]
        if upper is not None and index == upper_cls:
            condition["$lt"] = upper
        filters.append({"_id": condition})
    return filters
