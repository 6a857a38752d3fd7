"""MongoDB: reachable with these credentials, the indexes of contract section 2 and the multipart records' TTL
index, document pre-images on ``projects`` and ``scenes``, and a write and read in a scratch collection.

Nothing here changes the app's collections: indexes and collection options are read (``listIndexes``,
``listCollections``), never created. An unreachable server is left to propagate (the contract's one-line exit).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from pymongo.errors import OperationFailure
from scenestore import multipart
from scenestore.db import INDEXES, PROJECTS, SCENES

from scenestore_cli.preflight_checks import Run

INDEX_FIX: Final = "scenestore ensure-indexes   (this shell's SCENESTORE_MONGODB_URI and SCENESTORE_MONGODB_DB)"
#: Change-stream pre-images exist from MongoDB 6.0 (wire version 17).
PRE_IMAGES_WIRE_VERSION: Final = 17
MONGO_CHECKS: Final = ["mongodb.scratch", "mongodb.indexes", "mongodb.pre_images"]
#: The field of the multipart records' TTL index (``scenestore.multipart.ensure_indexes``).
MULTIPART_TTL_FIELD: Final = "expire_at"


def pre_images_fix(db_name: str) -> str:
    """docs/deploy.md section 1's mongosh command, reading the URI from this shell instead of printing it."""
    return (
        f'mongosh "$SCENESTORE_MONGODB_URI" --eval \'db = db.getSiblingDB("{db_name}"); '
        'for (const c of ["projects", "scenes"]) '
        "db.runCommand({collMod: c, changeStreamPreAndPostImages: {enabled: true}});'"
    )


def run_mongo_checks(run: Run) -> None:
    try:
        run.db.command("ping")
    except OperationFailure as exc:  # reached, but refused (credentials, permissions)
        run.fail(
            "mongodb.reachable",
            f"MongoDB: the server refuses these credentials ({_code(exc)})",
            "check the user and password in SCENESTORE_MONGODB_URI (Atlas: Database Access; docs/deploy.md section 1)",
        )
        run.skip(MONGO_CHECKS, "MongoDB refused the credentials")
        return
    run.ok("mongodb.reachable", f"MongoDB: reachable, database {run.db.name}")
    check_scratch(run)
    check_indexes(run)
    check_pre_images(run)


def check_scratch(run: Run) -> None:
    """A write and a read; the collection stays until cleanup (``drop_scratch``), whatever happens."""
    document = {"_id": run.token, "written_at": datetime.now(UTC).replace(microsecond=0)}
    run.scratch_written = True
    try:
        run.db[run.collection].insert_one(dict(document))
        found = run.db[run.collection].find_one({"_id": run.token})
    except OperationFailure as exc:
        run.fail(
            "mongodb.scratch",
            f"MongoDB: cannot write to {run.db.name} ({_code(exc)})",
            "give the database user readWrite on this database (Atlas: Database Access)",
        )
        return
    if found != document:
        run.fail(
            "mongodb.scratch",
            f"MongoDB: a document written to {run.collection} read back different: {found!r}",
            "check that SCENESTORE_MONGODB_URI names a primary (or a replica set) and not a stale secondary",
        )
        return
    run.ok("mongodb.scratch", f"MongoDB: wrote and read a document in the scratch collection {run.collection}")


def expected_indexes() -> list[tuple[str, str, bool]]:
    """``(collection, field, is_ttl)``: contract section 2's indexes and the multipart records' TTL index."""
    return [*((c, f, False) for c, f in INDEXES), (multipart.COLLECTION, MULTIPART_TTL_FIELD, True)]


def missing_indexes(run: Run) -> list[str]:
    missing = []
    infos: dict[str, dict[str, Any]] = {}
    for collection, field, ttl in expected_indexes():
        if collection not in infos:
            infos[collection] = run.db[collection].index_information()  # {} for a collection that does not exist
        if not any(_serves(index, field, ttl) for index in infos[collection].values()):
            missing.append(f"{collection}.{field}{' (TTL)' if ttl else ''}")
    return missing


def _serves(index: dict[str, Any], field: str, ttl: bool) -> bool:
    """An index whose first key is ``field`` serves the one-field look-ups; a TTL index needs its expiry."""
    keys = index.get("key") or []
    return bool(keys) and keys[0][0] == field and (not ttl or "expireAfterSeconds" in index)


def check_indexes(run: Run) -> None:
    try:
        missing = missing_indexes(run)
    except OperationFailure as exc:
        run.warn("mongodb.indexes", f"MongoDB: cannot list the indexes ({_code(exc)}): not checked")
        return
    if missing:
        run.fail(
            "mongodb.indexes",
            f"MongoDB: missing indexes: {', '.join(missing)} (reference and tenancy look-ups would scan collections)",
            INDEX_FIX,
        )
        return
    run.ok(
        "mongodb.indexes",
        f"MongoDB: the {len(INDEXES)} indexes of contract section 2 and the multipart TTL index exist",
    )


def check_pre_images(run: Run) -> None:
    """``listCollections`` reports ``changeStreamPreAndPostImages`` in each collection's options (MongoDB 6.0+).

    Without them an Atlas Trigger's delete event has no ``fullDocumentBeforeChange``, and every deletion it starts
    fails with ``InvalidEvent``. A server that will not list collection options cannot tell: a warning.
    """
    fix = pre_images_fix(run.db.name)
    wire = run.db.client.admin.command("hello").get("maxWireVersion", 0)
    if isinstance(wire, int) and wire < PRE_IMAGES_WIRE_VERSION:
        version = run.db.client.server_info().get("version", "?")
        run.fail(
            "mongodb.pre_images",
            f"MongoDB: server {version} has no document pre-images (6.0 or later is needed for Atlas Triggers)",
            "upgrade the cluster to MongoDB 6.0 or later (Atlas: Edit Configuration), then: " + fix,
        )
        return
    try:
        options = {
            c["name"]: c.get("options", {})
            for c in run.db.list_collections(filter={"name": {"$in": [PROJECTS, SCENES]}})
        }
    except OperationFailure as exc:
        run.warn(
            "mongodb.pre_images",
            f"MongoDB: cannot tell whether document pre-images are on ({_code(exc)} on listCollections): "
            f"check in Atlas that {PROJECTS} and {SCENES} have changeStreamPreAndPostImages enabled",
        )
        return
    off = [name for name in (PROJECTS, SCENES) if not _pre_images_on(options.get(name))]
    if off:
        absent = [name for name in off if name not in options]
        note = f" ({', '.join(absent)} does not exist)" if absent else ""
        run.fail(
            "mongodb.pre_images",
            f"MongoDB: document pre-images are off for {', '.join(off)}{note}: Atlas-triggered deletions would fail "
            "with InvalidEvent",
            fix,
        )
        return
    run.ok("mongodb.pre_images", f"MongoDB: document pre-images are on for {PROJECTS} and {SCENES}")


def _pre_images_on(options: dict[str, Any] | None) -> bool:
    setting = (options or {}).get("changeStreamPreAndPostImages") or {}
    return setting.get("enabled") is True


def drop_scratch(run: Run) -> None:
    run.db.drop_collection(run.collection)


def _code(exc: OperationFailure) -> str:
    """The server's error name (``AuthenticationFailed``), else its number."""
    details = exc.details or {}
    return str(details.get("codeName") or exc.code)
