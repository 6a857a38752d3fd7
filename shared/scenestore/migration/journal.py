"""The move journal, ``scenestore_migration_journal``: one entry per (run, document, field) moved.

An entry is written as an *intent* before the object is copied (so a copy left behind by a crash is known
to be ours) and always before the document update; its *outcome* is recorded once the update is done::

    {_id: "<run>|<collection>|<encoded _id>|<field>", run_id, collection, doc_id, field, old_key, new_key,
     created: bool (the new object was copied by this run, not reused), size, state: "intent", created_at}
    {_id: "<entry _id>|outcome", entry, run_id, state: applied|conflict|failed|rolled_back, at, code?}

The outcome is a document of its own because inserting it costs a quarter of updating the entry on the
MongoDB-wire server (and no more on Atlas); readers (``load``, ``iter_run``) see one merged entry whose
``state`` is the outcome's. States: ``intent`` -> ``applied`` | ``conflict`` (the app changed the field
first) | ``failed``; rollback sets ``rolled_back``. A re-run reads the entries of its batch and compares
them with the documents to tell what a crashed attempt had already done. Whether an old object was deleted
is not recorded: it is deleted once nothing references it, and a re-run of a batch simply checks again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from scenestore.common import chunked
from scenestore.migration.ids import encode_id
from scenestore.migration.runs import now
from scenestore.migration.states import JournalState

if TYPE_CHECKING:
    from pymongo.collection import Collection
    from pymongo.database import Database

JOURNAL: Final = "scenestore_migration_journal"

OUTCOME: Final = "|outcome"


def journal(db: Database[dict[str, Any]]) -> Collection[dict[str, Any]]:
    return db[JOURNAL]


def entry_id(run_id: str, collection: str, doc_id: Any, field: str) -> str:
    return f"{run_id}|{collection}|{encode_id(doc_id)}|{field}"


def run_range(run_id: str) -> dict[str, Any]:
    """Every ``_id`` of a run: they all start with ``<run>|`` (``}`` is the character after ``|``).

    The ``_id`` index serves it, so the journal needs no second index, which would double the cost of
    every insert on the hot path.
    """
    return {"_id": {"$gte": f"{run_id}|", "$lt": f"{run_id}}}"}}


def outcome_id(entry: str) -> str:
    return entry + OUTCOME


def load(db: Database[dict[str, Any]], ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Entries by ``_id``, each merged with its outcome."""
    wanted = list(dict.fromkeys(ids))
    docs: dict[str, dict[str, Any]] = {}
    for batch in chunked([*wanted, *map(outcome_id, wanted)], 500):
        docs.update((doc["_id"], doc) for doc in journal(db).find({"_id": {"$in": batch}}))
    return {i: _merge(docs[i], docs.get(outcome_id(i))) for i in wanted if i in docs}


def _merge(entry: dict[str, Any], outcome: dict[str, Any] | None) -> dict[str, Any]:
    if outcome is None:
        return entry
    merged = dict(entry)
    merged.update({k: v for k, v in outcome.items() if k not in ("_id", "entry")})
    return merged


class DuplicateIntent(Exception):
    """An intent thought new already exists: the batch must be planned again with the journal read."""


def insert_intents(db: Database[dict[str, Any]], entries: list[dict[str, Any]]) -> None:
    """New intents, for moves with no entry yet (one ``insert_many``)."""
    from pymongo.errors import BulkWriteError

    if not entries:
        return
    stamp = now()
    try:
        journal(db).insert_many(
            [{**e, "state": JournalState.INTENT.value, "created_at": stamp} for e in entries], ordered=False
        )
    except BulkWriteError as exc:
        if all(err.get("code") == 11000 for err in exc.details.get("writeErrors", [])):
            raise DuplicateIntent("journal entries already exist for this batch") from exc
        raise


def write_intents(db: Database[dict[str, Any]], entries: list[dict[str, Any]]) -> None:
    """Intents over entries that exist (a move of this run retried or re-targeted): replaced, outcome cleared."""
    from pymongo import ReplaceOne

    if not entries:
        return
    stamp = now()
    ops = [
        ReplaceOne(
            {"_id": e["_id"]},
            {**e, "state": JournalState.INTENT.value, "created_at": e.get("created_at") or stamp},
            upsert=True,
        )
        for e in entries
    ]
    journal(db).bulk_write(ops, ordered=False)
    journal(db).delete_many({"_id": {"$in": [outcome_id(e["_id"]) for e in entries]}})


@dataclass(frozen=True, slots=True)
class Outcome:
    """The outcome of one entry: its new state (checked by the caller with ``states.transition``) and details."""

    entry: str
    state: JournalState
    fields: Mapping[str, Any] = field(default_factory=dict)


def record(db: Database[dict[str, Any]], outcomes: Sequence[Outcome]) -> None:
    """Record the outcomes of a batch in one round trip: inserted (cheap) the first time; those that already
    had one (a re-run, a rollback) are replaced in a second ``bulk_write``."""
    from pymongo import ReplaceOne
    from pymongo.errors import BulkWriteError

    if not outcomes:
        return
    stamp = now()
    docs: dict[str, dict[str, Any]] = {}
    for outcome in outcomes:
        oid = outcome_id(outcome.entry)
        docs[oid] = {
            "_id": oid,
            "entry": outcome.entry,
            "run_id": outcome.entry.split("|", 1)[0],
            "state": outcome.state.value,
            "at": stamp,
            **outcome.fields,
        }
    try:
        journal(db).insert_many(list(docs.values()), ordered=False)
        return
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(err.get("code") != 11000 for err in errors):
            raise
        existing = {docs_id for err in errors if (docs_id := (err.get("keyValue") or {}).get("_id"))}
    if not existing:  # the server did not say which: replace them all, idempotently
        existing = set(docs)
    ops = [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs.values() if d["_id"] in existing]
    journal(db).bulk_write(ops, ordered=False)


def iter_run(db: Database[dict[str, Any]], run_id: str) -> Iterator[dict[str, Any]]:
    """Every entry of a run in ``_id`` order, merged with its outcome (which sorts right after it)."""
    pending: dict[str, Any] | None = None
    for doc in journal(db).find(run_range(run_id)).sort("_id", 1).batch_size(1000):
        if "entry" in doc:
            if pending is not None and doc["entry"] == pending["_id"]:
                yield _merge(pending, doc)
                pending = None
            continue
        if pending is not None:
            yield pending
        pending = doc
    if pending is not None:
        yield pending


def count_applied(db: Database[dict[str, Any]], run_id: str) -> dict[str, int]:
    """Exact totals of a run from its journal (counts in the run document may lag after a crash)."""
    totals = {"migrated": 0, "bytes_copied": 0}
    for entry in iter_run(db, run_id):
        if entry.get("state") == JournalState.APPLIED:
            totals["migrated"] += 1
            if entry.get("created"):
                totals["bytes_copied"] += int(entry.get("size") or 0)
    return totals
