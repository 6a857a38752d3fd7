"""A bucket and database with something in every chart of the HTML reports, for their tests.

More users than a chart shows (so a "rest" bar exists), every kind of key, legacy keys, and each finding of
the audit: a missing reference, a legacy reference, objects under projects that are gone, unreferenced objects.
Sizes differ per user so the bars differ in length.
"""

from __future__ import annotations

from typing import Any, Final

from scenestore.services import Services

from tests.support.seed import add_project, add_scene, put_objects

USERS: Final = [f"u{n:02d}" for n in range(1, 15)]
#: The one user whose projects have documents; every other user's objects are orphaned.
OWNER: Final = USERS[0]
MISSING_KEY: Final = "gone/never-uploaded.jpg"
LEGACY_REFERENCED: Final = "media/legacy-shot.jpg"


def _objects() -> dict[str, int]:
    """key -> size in bytes."""
    objects: dict[str, int] = {}
    for index, user in enumerate(USERS, start=1):
        base = f"users/{user}/projects/p-{user}"
        objects[f"{base}/scenes/s1/image/frame.png"] = 100 * index
        if index % 3 == 0:
            objects[f"{base}/scenes/s1/audio/voice.mp3"] = 37 * index
    owner = f"users/{OWNER}/projects/p-{OWNER}"
    objects[f"users/{OWNER}/projects/second/scenes/s2/video/clip.mp4"] = 5000
    objects[f"{owner}/output/final.mp4"] = 2500
    objects[f"users/{USERS[1]}/avatar.png"] = 64
    objects[LEGACY_REFERENCED] = 900
    objects["audio/old-narration.mp3"] = 450
    return objects


def seed_report_data(services: Services) -> dict[str, int]:
    """Fill the test's bucket and database; returns what was put (key -> size)."""
    objects = _objects()
    sizes = list(objects.values())
    put_objects(services, objects, lambda i: b"x" * sizes[i])
    owner = f"users/{OWNER}/projects/p-{OWNER}"
    add_project(services, f"p-{OWNER}", OWNER, output={"storageKey": f"{owner}/output/final.mp4"})
    add_project(services, "second", OWNER)
    add_scene(services, "s1", f"p-{OWNER}", media={"storageKey": f"{owner}/scenes/s1/image/frame.png"})
    add_scene(services, "s2", "second", media={"storageKey": LEGACY_REFERENCED, "type": "image"})
    add_scene(services, "s3", "second", audio={"storageKey": MISSING_KEY})
    return objects


# -- what a chart must show, given the --json figures ---------------------------------------------------------------


def user_figures(report: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """user -> (bytes, objects), straight from ``usage --json``."""
    return {user["user_id"]: (user["bytes"], user["objects"]) for user in report["users"]}


def project_figures(report: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """``user/project`` -> (bytes, objects), straight from ``usage --json``."""
    return {
        f"{user['user_id']}/{project['project_id']}": (project["bytes"], project["objects"])
        for user in report["users"]
        for project in user["projects"]
    }


def check_top_chart(bars: list[dict[str, Any]], figures: dict[str, tuple[int, int]], top: int) -> None:
    """The chart's bars are the ``top`` largest entries with their exact figures, plus one bar summing the rest.

    ``bars`` are ``{"label", "value", "objects", "rest"}`` as read from the page (HTML parser or the DOM).
    """
    shown = [bar for bar in bars if not bar["rest"]]
    rest = [bar for bar in bars if bar["rest"]]
    assert len(shown) == min(top, len(figures))
    for bar in shown:
        assert (bar["value"], bar["objects"]) == figures[bar["label"]], bar
    left_out = set(figures) - {bar["label"] for bar in shown}
    assert all(bar["value"] >= figures[label][0] for bar in shown for label in left_out)
    if left_out:
        (summed,) = rest
        assert summed["value"] == sum(figures[label][0] for label in left_out)
        assert summed["objects"] == sum(figures[label][1] for label in left_out)
        assert summed["label"].startswith(f"{len(left_out)} other")
    else:
        assert rest == []
