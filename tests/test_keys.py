"""Key layout (contract section 1): ids are rejected, filenames sanitized, keys never leave their tenant.

Pure logic, no servers: hypothesis generates hostile inputs, explicit cases pin every sanitization rule.
"""

from __future__ import annotations

import string
import unicodedata
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from scenestore.errors import InvalidFilename, InvalidId, InvalidKey
from scenestore.keys import (
    MAX_FILENAME_LENGTH,
    SCENE_KINDS,
    LayoutKey,
    build_key,
    is_legacy_key,
    output_key,
    owner_of,
    parse_key,
    project_prefix,
    sanitize_filename,
    scene_key,
    scene_prefix,
    split_extension,
    validate_id,
)

ID_ALPHABET = string.ascii_letters + string.digits + "_-."
FILENAME_SAFE = set(string.ascii_letters + string.digits + "._-")

valid_ids = st.text(alphabet=ID_ALPHABET, min_size=1, max_size=128).filter(lambda s: not s.startswith("."))
#: Anything at all, including separators, dots, NUL, control and non-ASCII characters.
hostile_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=140)
any_id = st.one_of(valid_ids, hostile_text, st.sampled_from(["..", "../x", "a/b", ".x", "a\x00", "", "x" * 129]))
hostile_filenames = st.one_of(
    hostile_text,
    st.text(alphabet="aA.-/\\ _é\u0301\x00", max_size=300),
    st.text(alphabet=string.ascii_letters + ".", min_size=100, max_size=400),
)
kinds = st.sampled_from([*SCENE_KINDS, "output"])


# -- the tenant boundary -------------------------------------------------------------------------------
@hsettings(max_examples=400, deadline=None)
@given(user=any_id, project=any_id, scene=any_id, kind=kinds, filename=hostile_filenames)
def test_no_input_escapes_the_project_prefix(user: str, project: str, scene: str, kind: str, filename: str) -> None:
    """GIVEN any strings WHEN a key is built THEN it lies under users/{user}/projects/{project}/ or is refused."""
    try:
        key = build_key(user, project, kind, filename, None if kind == "output" else scene)
    except (InvalidId, InvalidFilename):
        return
    prefix = f"users/{user}/projects/{project}/"
    assert key.startswith(prefix)
    rest = key[len(prefix) :].split("/")
    if kind == "output":
        assert rest[:1] == ["output"] and len(rest) == 2
    else:
        assert rest[:3] == ["scenes", scene, kind] and len(rest) == 4
    parts = key.split("/")
    assert all(part and part not in (".", "..") for part in parts)
    assert set(rest[-1]) <= FILENAME_SAFE and 1 <= len(rest[-1]) <= MAX_FILENAME_LENGTH
    assert owner_of(key) == (user, project)


@hsettings(max_examples=300, deadline=None)
@given(user=valid_ids, project=valid_ids, scene=valid_ids, kind=kinds, filename=hostile_filenames)
def test_parse_inverts_build(user: str, project: str, scene: str, kind: str, filename: str) -> None:
    """parse_key(build_key(x)) == x (with the filename as stored, i.e. sanitized)."""
    scene_id = None if kind == "output" else scene
    try:
        stored = sanitize_filename(filename)
    except InvalidFilename:
        return
    key = build_key(user, project, kind, filename, scene_id)
    assert parse_key(key) == LayoutKey(user, project, kind, stored, scene_id)
    assert parse_key(key).key == key
    assert not is_legacy_key(key)


@hsettings(max_examples=300, deadline=None)
@given(name=hostile_filenames)
def test_sanitize_is_idempotent_and_safe(name: str) -> None:
    """A stored name sanitizes to itself, so keys we built always parse back."""
    try:
        once = sanitize_filename(name)
    except InvalidFilename:
        return
    assert sanitize_filename(once) == once
    assert set(once) <= FILENAME_SAFE
    assert 1 <= len(once) <= MAX_FILENAME_LENGTH
    assert "--" not in once and not once.startswith(".")


@hsettings(max_examples=200, deadline=None)
@given(user=valid_ids, a=valid_ids, b=valid_ids)
def test_project_prefixes_never_match_each_other(user: str, a: str, b: str) -> None:
    """Distinct projects have prefixes of which neither starts with the other (p1/ vs p10/)."""
    assume(a != b)
    pa, pb = project_prefix(user, a), project_prefix(user, b)
    assert pa.endswith("/") and pb.endswith("/")
    assert not pa.startswith(pb) and not pb.startswith(pa)


@pytest.mark.parametrize(
    ("shorter", "longer"), [("p1", "p10"), ("p1", "p1."), ("p1", "p1-x"), ("p", "p1"), ("a.b", "a.bc")]
)
def test_p1_never_matches_p10(shorter: str, longer: str) -> None:
    long_key = scene_key("u", longer, "s", "image", "x.png")
    assert not long_key.startswith(project_prefix("u", shorter))
    assert not scene_key("u", "p", longer, "image", "x.png").startswith(scene_prefix("u", "p", shorter))
    assert owner_of(long_key) == ("u", longer)


# -- ids: rejected, never rewritten --------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    [
        "../etc",
        "..",
        "a/b",
        "/abs",
        ".hidden",
        ".",
        "",
        "x" * 129,
        "a\x00b",
        "é",
        "caf\u00e9",
        "a b",
        "a\nb",
        "a\\b",
        "%2e%2e",
        "x:y",
        None,
        5,
        b"bytes",
        ["list"],
    ],
)
def test_invalid_ids_are_rejected(bad: Any) -> None:
    with pytest.raises(InvalidId) as info:
        validate_id(bad, "project_id")
    assert "project_id" in info.value.message
    assert info.value.code == "invalid_id"
    with pytest.raises(InvalidId):
        build_key("u", bad, "image", "x.png", "s")
    with pytest.raises(InvalidId):
        build_key(bad, "p", "output", "x.mp4")
    with pytest.raises(InvalidId):
        scene_key("u", "p", bad, "audio", "x.mp3")


@pytest.mark.parametrize("good", ["a", "x" * 128, "A-z_0.9", "507f1f77bcf86cd799439011", "a..", "-", "_x"])
def test_valid_ids_are_kept_verbatim(good: str) -> None:
    assert validate_id(good) == good
    assert project_prefix("u", good) == f"users/u/projects/{good}/"


@hsettings(max_examples=300, deadline=None)
@given(value=hostile_text)
def test_an_id_is_either_returned_unchanged_or_rejected(value: str) -> None:
    try:
        assert validate_id(value) == value
    except InvalidId:
        return
    assert 1 <= len(value) <= 128 and set(value) <= set(ID_ALPHABET) and not value.startswith(".")


# -- filenames: every rule of section 1 ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("given_name", "stored"),
    [
        ("photo.jpg", "photo.jpg"),
        ("dir/sub/clip.mp4", "clip.mp4"),
        ("/abs/path/a.png", "a.png"),
        ("C:\\Users\\me\\Photo.PNG", "Photo.png"),
        ("mixed/and\\back\\x.wav", "x.wav"),
        ("../../etc/passwd", "passwd"),
        ("my photo (1).jpg", "my-photo-1-.jpg"),
        ("a   b.png", "a-b.png"),
        ("a--b---c.png", "a-b-c.png"),
        ("a?*b.png", "a-b.png"),
        ("...hidden.txt", "hidden.txt"),
        (".env", "env"),
        ("Clip.MP4", "Clip.mp4"),
        ("archive.Tar.GZ", "archive.Tar.gz"),
        ("README", "README"),
        ("photo.", "photo."),
        ("日本語.png", "-.png"),
        ("a\x00b.png", "a-b.png"),
        ("tab\there.png", "tab-here.png"),
    ],
)
def test_sanitize_rules(given_name: str, stored: str) -> None:
    assert sanitize_filename(given_name) == stored


def test_sanitize_normalises_to_nfc_before_replacing() -> None:
    """A decomposed é (e + combining acute) is one character after NFC, so it becomes one dash, not 'e-'."""
    decomposed = "e\u0301te.png"
    assert unicodedata.normalize("NFC", decomposed) == "\u00e9te.png"
    assert sanitize_filename(decomposed) == "-te.png"
    assert sanitize_filename("\u00e9te.png") == "-te.png"
    assert sanitize_filename("cafe\u0301.png") == "caf-.png"


def test_sanitize_cuts_to_120_keeping_the_extension() -> None:
    name = "a" * 200 + ".JPEG"
    stored = sanitize_filename(name)
    assert len(stored) == MAX_FILENAME_LENGTH
    assert stored == "a" * 115 + ".jpeg"
    assert sanitize_filename("b" * 120) == "b" * 120
    assert sanitize_filename("b" * 121) == "b" * 120
    assert sanitize_filename("c" * 116 + ".mp4") == "c" * 116 + ".mp4"


def test_sanitize_with_an_extension_too_long_to_keep_is_still_stable() -> None:
    """An 'extension' that cannot fit is cut with the rest; the result is a fixed point (parse(build) holds)."""
    name = "X" * 50 + ".ABC" + "Y" * 100 + "." + "Z" * 150
    stored = sanitize_filename(name)
    assert len(stored) <= MAX_FILENAME_LENGTH
    assert sanitize_filename(stored) == stored
    key = scene_key("u", "p", "s", "image", name)
    assert parse_key(key).filename == stored


@pytest.mark.parametrize("empty", ["", "/", "dir/", "a\\", ".", "..", "....", "x/..", None, 3])
def test_empty_or_non_string_filenames_are_rejected(empty: Any) -> None:
    with pytest.raises(InvalidFilename) as info:
        sanitize_filename(empty)
    assert info.value.code == "invalid_filename"


def test_split_extension() -> None:
    assert split_extension("photo.jpg") == ("photo", ".jpg")
    assert split_extension("README") == ("README", "")
    assert split_extension("a.tar.gz") == ("a.tar", ".gz")


# -- shapes, output keys, parse and legacy -------------------------------------------------------------
def test_output_keys_have_no_scene() -> None:
    assert build_key("u", "p", "output", "Final Video.MP4") == "users/u/projects/p/output/Final-Video.mp4"
    assert output_key("u", "p", "f.mp4") == "users/u/projects/p/output/f.mp4"
    with pytest.raises(InvalidKey):
        build_key("u", "p", "output", "f.mp4", "s1")
    with pytest.raises(InvalidKey):
        build_key("u", "p", "image", "f.png")
    with pytest.raises(InvalidKey):
        build_key("u", "p", "document", "f.pdf", "s1")
    with pytest.raises(InvalidKey):
        scene_key("u", "p", "s", "output", "f.mp4")


@pytest.mark.parametrize(
    "key",
    [
        "abc.jpg",
        "media/abc.jpg",
        "users/u/projects/p/",
        "users/u/projects/p/output/",
        "users/u/projects/p/scenes/s/image/",
        "users/u/projects/p/scenes/s/doc/x.png",
        "users/u/projects/p/scenes/s/image/x.PNG",
        "users/u/projects/p/scenes/s/image/a b.png",
        "users/u/projects/../scenes/s/image/x.png",
        "users/.u/projects/p/output/x.mp4",
        "users/u/projects/p/output/x.mp4/extra",
        "users/u/projects/p/scenes/s/image/x.png/",
        "users//projects/p/output/x.mp4",
        "users/u/projects/p/scenes/s/output/x.mp4",
        "users/u/projects/p/scenes//image/x.png",
    ],
)
def test_parse_rejects_non_layout_keys(key: str) -> None:
    with pytest.raises(InvalidKey):
        parse_key(key)


@pytest.mark.parametrize(
    ("key", "legacy"),
    [("abc.jpg", True), ("media/abc.jpg", True), ("audio/n.mp3", True), ("users/u/projects/p/output/a.mp4", False)],
)
def test_legacy_keys_are_anything_outside_users(key: str, legacy: bool) -> None:
    assert is_legacy_key(key) is legacy


def test_owner_of() -> None:
    assert owner_of("users/u/projects/p/anything/below.bin") == ("u", "p")
    assert owner_of("users/u/projects/p/") is None
    assert owner_of("users/u/projects/../x") is None
    assert owner_of("media/x.png") is None
