"""What a job's S3 requests cost on R2: operations sorted into Class A, Class B and free, priced at list prices.

R2 bills requests by class (Cloudflare's R2 pricing page): **Class A** (writes, lists, copies: ``PutObject``,
``CopyObject``, ``ListObjects``/``ListObjectsV2``, the multipart calls, ``ListBuckets``...), **Class B**
(reads: ``GetObject``, ``HeadObject``, ``HeadBucket``, ``GetBucketLocation``...), and **free**
(``DeleteObject``, ``DeleteBucket``, ``AbortMultipartUpload``). ``DeleteObjects``, the batch delete, is named
in neither paid class and is counted free here, like the single delete; were it billed as Class A, a prefix
delete would add one Class A request per 1,000 objects.

The prices are R2's published list prices for Standard storage, with the date they were read
(:data:`LIST_PRICES`); ``SCENESTORE_R2_PRICES="CLASS_A,CLASS_B[,DATE]"`` (dollars per million requests)
overrides them, for a negotiated rate or a later price list. The free tier (1 M Class A and 10 M Class B
requests a month) is not subtracted: a job's price is what it adds to a bill already past it.

:func:`estimate_prefix_delete` and :func:`estimate_migration` say which requests a real run will send, from
what a dry run found; ``scenestore clear-bucket --dry-run`` and ``scenestore migrate --dry-run`` print them.
The benchmarks count the requests a store really received and sort them with :func:`request_class`.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from scenestore.errors import InvalidRequest

Class = Literal["A", "B", "free"]

CLASS_A: Final = frozenset(
    {
        "ListBuckets",
        "PutBucket",
        "CreateBucket",
        "ListObjects",
        "ListObjectsV2",
        "PutObject",
        "CopyObject",
        "CompleteMultipartUpload",
        "CreateMultipartUpload",
        "LifecycleStorageTierTransition",
        "ListMultipartUploads",
        "UploadPart",
        "UploadPartCopy",
        "ListParts",
        "PutBucketEncryption",
        "PutBucketCors",
        "PutBucketLifecycleConfiguration",
    }
)
CLASS_B: Final = frozenset(
    {
        "HeadBucket",
        "HeadObject",
        "GetObject",
        "UsageSummary",
        "GetBucketEncryption",
        "GetBucketLocation",
        "GetBucketCors",
        "GetBucketLifecycleConfiguration",
    }
)
FREE: Final = frozenset({"DeleteObject", "DeleteObjects", "DeleteBucket", "AbortMultipartUpload"})

#: The environment variable that overrides :data:`LIST_PRICES`: ``"CLASS_A,CLASS_B[,DATE]"``.
PRICES_ENV: Final = "SCENESTORE_R2_PRICES"

#: Keys per ``ListObjectsV2`` page and per ``DeleteObjects`` request.
PAGE: Final = 1000
#: Above this size a move is copied in parts (``storage.MAX_SINGLE_COPY``, 5 GiB), ``PART`` bytes a part.
MAX_SINGLE_COPY: Final = 5 * 1024**3
PART: Final = 512 * 1024**2


def request_class(operation: str) -> Class:
    """The R2 class of an S3 operation; an operation R2 does not name is counted as Class A (the dearer)."""
    if operation in CLASS_B:
        return "B"
    if operation in FREE:
        return "free"
    return "A"


@dataclass(frozen=True, slots=True)
class Prices:
    """Dollars per million requests of each class, and the date those prices were read."""

    class_a: float
    class_b: float
    date: str
    source: str = "R2 list prices (Standard storage), Cloudflare's R2 pricing page"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Prices:
        """:data:`LIST_PRICES`, or ``SCENESTORE_R2_PRICES="A,B[,DATE]"`` when set."""
        text = (os.environ if environ is None else environ).get(PRICES_ENV, "").strip()
        if not text:
            return LIST_PRICES
        parts = [p.strip() for p in text.split(",")]
        try:
            if len(parts) not in (2, 3):
                raise ValueError
            class_a, class_b = float(parts[0]), float(parts[1])
            if class_a < 0 or class_b < 0 or not (math.isfinite(class_a) and math.isfinite(class_b)):
                raise ValueError
        except ValueError:
            raise InvalidRequest(
                f"{PRICES_ENV} must be 'CLASS_A,CLASS_B[,DATE]' in dollars per million requests, got {text!r}"
            ) from None
        date = parts[2] if len(parts) == 3 and parts[2] else "date not given"
        return cls(class_a, class_b, date, source=f"{PRICES_ENV}")


#: R2's published list prices, read on the date given: $4.50 per million Class A, $0.36 per million Class B.
LIST_PRICES: Final = Prices(class_a=4.50, class_b=0.36, date="2026-12-07")


@dataclass(slots=True)
class Requests:
    """Requests by operation; their classes and price follow."""

    operations: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(cls, counts: Mapping[str, int]) -> Requests:
        return cls(Counter({op: int(n) for op, n in counts.items() if n}))

    def add(self, operation: str, count: int = 1) -> None:
        if count:
            self.operations[operation] += count

    def by_class(self) -> dict[Class, int]:
        out: dict[Class, int] = {"A": 0, "B": 0, "free": 0}
        for op, n in self.operations.items():
            out[request_class(op)] += n
        return out

    def price(self, prices: Prices = LIST_PRICES) -> float:
        classes = self.by_class()
        return (classes["A"] * prices.class_a + classes["B"] * prices.class_b) / 1_000_000

    def per_object(self, objects: int) -> dict[Class, float]:
        classes = self.by_class()
        return {c: (n / objects if objects else 0.0) for c, n in classes.items()}

    def to_dict(self, prices: Prices = LIST_PRICES) -> dict[str, Any]:
        classes = self.by_class()
        return {
            "operations": dict(sorted(self.operations.items())),
            "class_a": classes["A"],
            "class_b": classes["B"],
            "free": classes["free"],
            "price_usd": round(self.price(prices), 9),
            "prices": {"class_a_per_million": prices.class_a, "class_b_per_million": prices.class_b},
            "prices_date": prices.date,
            "prices_source": prices.source,
        }


def describe(requests: Requests, prices: Prices = LIST_PRICES) -> str:
    """One line for a human: the classes, the operations behind them, and the price."""
    classes = requests.by_class()
    ops = ", ".join(f"{n:,} {op}" for op, n in sorted(requests.operations.items()))
    return (
        f"{classes['A']:,} Class A + {classes['B']:,} Class B + {classes['free']:,} free requests ({ops or 'none'}): "
        f"${requests.price(prices):,.4f} at ${prices.class_a:g}/M A, ${prices.class_b:g}/M B "
        f"({prices.source}, {prices.date})"
    )


def pages(count: int, per_page: int = PAGE) -> int:
    return math.ceil(max(0, count) / per_page)


def estimate_prefix_delete(objects: int, *, listers: int = 2, split_early: bool = True) -> Requests:
    """What ``delete_prefix`` sends for ``objects`` keys under one prefix (``scenestore.prefix_delete``).

    One ``ListObjectsV2`` page and one ``DeleteObjects`` per 1,000 keys; past one page the prefix's tree is read
    for split points (about two delimiter listings for a project or a ``users/`` prefix) and each key range but
    the last reads at most one page past its end. An empty prefix costs one listing. Retries are not counted.
    """
    requests = Requests()
    listed = max(1, pages(objects))
    requests.add("ListObjectsV2", listed)
    if objects > PAGE and listers > 1:
        requests.add("ListObjectsV2", 2 + (listers - 1))  # the tree (two levels), one page past each split
    elif split_early and listers > 1:
        requests.add("ListObjectsV2", 2)  # the tree is read beside the first page even when it is the last
    requests.add("DeleteObjects", pages(objects))
    return requests


def estimate_migration(
    moves: int, *, batch_size: int, legacy_objects: int | None = None, large: int = 0, large_bytes: int = 0
) -> Requests:
    """What a migration run sends to move ``moves`` objects (``scenestore.migration``), as a dry run counts them.

    The legacy keys are listed once (the inventory, one page per 1,000; ``legacy_objects`` defaults to
    ``moves``); each batch lists its target keys once (one page) and deletes its old keys with one
    ``DeleteObjects``; each move is one ``CopyObject``, or, above 5 GiB (``large`` of them, ``large_bytes`` in
    all), a multipart copy: create, one ``UploadPartCopy`` per 512 MiB and complete. A copy's ETag is checked
    against the source's from the listing, so a single-part move needs no HEAD; a multipart copy's ETag is
    not an MD5, so its target is HEADed once. Retries and the run's database work are not counted.
    """
    requests = Requests()
    if moves <= 0:
        requests.add("ListObjectsV2", max(1, pages(legacy_objects or 0)))
        return requests
    batches = math.ceil(moves / max(1, batch_size))
    requests.add("ListObjectsV2", max(1, pages(moves if legacy_objects is None else legacy_objects)) + batches)
    requests.add("CopyObject", moves - large)
    if large:
        requests.add("CreateMultipartUpload", large)
        requests.add("UploadPartCopy", max(large, math.ceil(large_bytes / PART)))
        requests.add("CompleteMultipartUpload", large)
        requests.add("HeadObject", large)
    requests.add("DeleteObjects", batches)
    return requests


def prefix_delete_cost(objects: int, *, listers: int | None = None, prices: Prices | None = None) -> dict[str, Any]:
    """What ``clear-bucket --dry-run`` prints: the real run's requests for ``objects`` keys and their price."""
    if listers is None:
        from scenestore.prefix_delete import LISTERS

        listers = LISTERS
    prices = prices or Prices.from_env()
    requests = estimate_prefix_delete(objects, listers=listers)
    return {**requests.to_dict(prices), "summary": describe(requests, prices)}


def migration_cost(summary: Mapping[str, Any], *, batch_size: int, prices: Prices | None = None) -> dict[str, Any]:
    """What ``migrate --dry-run`` prints: the real run's requests for the moves the dry run found, and their price
    (objects above 5 GiB, copied in parts, are not told apart by a dry run: each adds a few requests)."""
    prices = prices or Prices.from_env()
    requests = estimate_migration(int(summary.get("migrated", 0)), batch_size=batch_size)
    return {**requests.to_dict(prices), "summary": describe(requests, prices)}
