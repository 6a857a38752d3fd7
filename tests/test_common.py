"""The shared idioms (scenestore.common): one behaviour for every module that reads paths, reports errors, chunks."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError
from scenestore.common import MAX_REPORTED_ERRORS, chunked, extend_capped, get_path, validation_problems


def test_get_path_reads_nested_fields_and_treats_missing_or_non_mapping_levels_as_none() -> None:
    doc = {"media": {"storageKey": "a.jpg", "type": "image"}, "audio": "not-a-dict"}
    assert get_path(doc, "media.storageKey") == "a.jpg"
    assert get_path(doc, "media") == {"storageKey": "a.jpg", "type": "image"}
    assert get_path(doc, "audio.storageKey") is None
    assert get_path(doc, "output.storageKey") is None
    assert get_path(None, "media") is None


class _Body(BaseModel):
    kind: str
    size: int


def test_validation_problems_name_each_field_and_fall_back_to_the_root() -> None:
    with pytest.raises(ValidationError) as caught:
        _Body.model_validate({"size": "x"})
    text = validation_problems(caught.value.errors())
    assert "kind: Field required" in text
    assert "size: " in text
    assert validation_problems([{"loc": (), "msg": "bad"}], root="event") == "event: bad"
    assert validation_problems(caught.value.errors(), limit=1).count(":") == 1


def test_extend_capped_stops_at_the_cap_and_keeps_what_was_there() -> None:
    errors = [0] * (MAX_REPORTED_ERRORS - 2)
    extend_capped(errors, range(10))
    assert len(errors) == MAX_REPORTED_ERRORS
    assert errors[-2:] == [0, 1]
    extend_capped(errors, range(10))
    assert len(errors) == MAX_REPORTED_ERRORS
    small: list[int] = []
    extend_capped(small, range(5), cap=3)
    assert small == [0, 1, 2]


def test_chunked_is_lazy_exact_and_refuses_a_zero_size() -> None:
    assert list(chunked(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunked([], 3)) == []
    assert next(chunked(iter(range(10**9)), 2)) == [0, 1]
    with pytest.raises(ValueError):
        list(chunked([1], 0))
