"""Split the keys under a prefix into disjoint ranges, so that several listings can run at once.

A listing is a chain: page N+1 cannot be asked for before page N's last key is known, so one lister spends a
round trip per 1,000 keys whatever the store's capacity. At R2's distance (tens of milliseconds a request)
that chain, not the deletes, bounds a large prefix delete. Several listers over disjoint key ranges shorten
it; the ranges only need good split points, and exactness does not depend on how good they are:

- a range is ``after < key <= upto`` (``None``: open on that side), so any increasing list of strings
  partitions the key space exactly, whatever keys exist;
- split points come from the prefix's own tree (``ListObjectsV2`` with ``Delimiter="/"``), expanded
  breadth-first a few levels down until there are enough entries to split evenly (a project prefix holds
  ``output/`` and ``scenes/``; one level down, one entry per scene). Entries are weighted one each: a good
  enough guess of where the keys are, never a correctness question;
- a split point is a child prefix ``c/`` without its slash, ``c`` (a key ``c!x`` then falls in the next
  range, which is still exact: both sides compare against the same string). A flat prefix (keys, no child
  prefixes) has no such points and stays one range.

A lister whose range ends before the prefix's end reads at most one page past its bound (S3 cannot stop a
listing at a key), and drops what lies beyond: the cost of splitting is at most one page per split point,
and usually less, because each range is made a little larger than the next (``LATER_SHARE_LESS``), so the
next one tends to be deleted already when the earlier one reads past its end.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from scenestore.storage import LIST_PAGE

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DELIMITER: Final = "/"
#: Stop expanding the tree once there are this many entries per wanted range (enough to balance them).
ENTRIES_PER_RANGE: Final = 4
#: Levels below the prefix that may be listed to find split points.
MAX_DEPTH: Final = 3
#: Child prefixes listed per level at the most (each is one request, or a few: ``MAX_TREE_PAGES``).
MAX_EXPANSIONS: Final = 8
#: Delimiter pages read of one level at the most (10,000 children: a project's scenes, a user's projects).
MAX_TREE_PAGES: Final = 10
#: Each split point sits this much (as a share of the entries) later than an even split, so a range is a
#: little larger than the next one and tends to finish after it: its last page, which reads past its end,
#: then finds the next range already deleted (deleted keys are not listed) instead of 1,000 keys to drop.
LATER_SHARE_LESS: Final = 0.05


@dataclass(frozen=True, slots=True)
class KeyRange:
    """The keys under a prefix with ``after < key <= upto``; ``None`` leaves that side open."""

    after: str | None = None
    upto: str | None = None

    def holds(self, key: str) -> bool:
        return (self.after is None or key > self.after) and (self.upto is None or key <= self.upto)


def ranges_from(after: str | None, points: Sequence[str]) -> list[KeyRange]:
    """Consecutive ranges from ``after`` to the end, split at ``points`` (increasing, all ``> after``)."""
    bounds: list[str | None] = [after, *points, None]
    return [KeyRange(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


def candidate_points(
    client: S3Client,
    bucket: str,
    prefix: str,
    *,
    after: str | None,
    parts: int,
    max_depth: int = MAX_DEPTH,
) -> list[str]:
    """Every split point the prefix's tree offers past ``after`` (one per child prefix found), increasing.

    The tree is read until it offers about ``ENTRIES_PER_RANGE`` entries per wanted range, so that
    :func:`choose_points` can balance ``parts`` ranges. A flat prefix (no ``/`` below it) offers none.
    """
    if parts < 2:
        return []
    entries: list[tuple[str, bool]] = [(prefix, True)]  # (name, is a child prefix)
    for _ in range(max_depth):
        entries = [(name, is_dir) for name, is_dir in entries if _may_follow(name, is_dir, after)]
        expandable = [name for name, is_dir in entries if is_dir][:MAX_EXPANSIONS]
        if not expandable or len(entries) >= parts * ENTRIES_PER_RANGE:
            break
        children = _map(lambda q: _children(client, bucket, q, after), expandable)
        expanded = dict(zip(expandable, children, strict=True))
        entries = sorted(
            (entry for name, is_dir in entries for entry in expanded.get(name, [(name, is_dir)])),
            key=lambda entry: entry[0],
        )
    # Only child prefixes: a key stands for itself, a child prefix for a subtree (and a flat prefix, whose
    # delimiter page is just its next 1,000 keys, says nothing about where the rest of its keys lie).
    candidates = sorted({name[: -len(DELIMITER)] for name, is_dir in entries if is_dir and name != prefix})
    return [point for point in candidates if after is None or point > after]


def choose_points(candidates: Sequence[str], parts: int) -> list[str]:
    """At most ``parts - 1`` of the (increasing) ``candidates``, spread so each range holds about as many."""
    count = len(candidates)
    if parts < 2 or not count:
        return []
    shares = (min(0.95, i / parts + LATER_SHARE_LESS) for i in range(1, parts))
    return sorted({candidates[min(count - 1, int(count * share))] for share in shares})


def _may_follow(name: str, is_dir: bool, after: str | None) -> bool:
    """Whether the entry can hold a key ``> after`` (entries wholly at or before it are done)."""
    if after is None or name > after:
        return True
    return is_dir and after.startswith(name)


def _children(client: S3Client, bucket: str, parent: str, after: str | None) -> list[tuple[str, bool]]:
    """``parent``'s direct keys and child prefixes, from delimiter pages (up to ``MAX_TREE_PAGES`` of them).

    All of a large level is wanted, not its first page: a project of 5,000 scenes split at the middle of its
    first 1,000 would leave one range nine tenths of the work.
    """
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": parent, "Delimiter": DELIMITER, "MaxKeys": LIST_PAGE}
    if after is not None and after.startswith(parent):
        # Start at the child that holds ``after`` (its point, not ``after``: servers differ on whether a child
        # prefix that sorts before ``after`` but holds later keys is returned).
        rest = after[len(parent) :]
        child = rest.split(DELIMITER, 1)[0]
        kwargs["StartAfter"] = parent + child if DELIMITER in rest else after
    entries: list[tuple[str, bool]] = []
    for _ in range(MAX_TREE_PAGES):
        response = client.list_objects_v2(**kwargs)
        entries += [(item["Key"], False) for item in response.get("Contents", [])]
        entries += [(item["Prefix"], True) for item in response.get("CommonPrefixes", []) if item["Prefix"] != parent]
        token = response.get("NextContinuationToken")
        if not response.get("IsTruncated") or not token:
            break
        kwargs.pop("StartAfter", None)
        kwargs["ContinuationToken"] = token
    return entries


def _map(fn: Callable[[str], list[tuple[str, bool]]], items: list[str]) -> list[list[tuple[str, bool]]]:
    """One round trip per level, not per child: the level's listings run side by side."""
    if len(items) == 1:
        return [fn(items[0])]
    with ThreadPoolExecutor(max_workers=len(items), thread_name_prefix="split") as pool:
        return list(pool.map(fn, items))
