"""The local event runner: what Atlas Triggers + EventBridge do in production, inside ``scenestore serve``.

A change stream on the database watches deletes in ``projects`` and ``scenes`` (pre-images are enabled by
``scenestore_cli.local.bootstrap.prepare``; the stream asks for them with ``whenAvailable``). Each change becomes the
same Atlas-shaped EventBridge event production delivers and is handed to the very Lambda handler
(``functions/delete_project`` or ``functions/delete_scene``), re-invoked with the returned continuation until
``complete``. The resume token is stored in ``scenestore_event_runner`` after each handled change, so a
restarted runner picks up deletes that happened while it was down (at least once: a change handled just
before a crash is handled again, which redelivery-safe cleanup makes harmless).

``invoke_until_complete`` and ``LocalLambdaContext`` are also what the CLI uses to run the handlers locally.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from scenestore.cleanup import DELETE_MARGIN_SECONDS, merge_results
from scenestore.errors import InvalidRequest, StorageError
from scenestore.events import ATLAS_DETAIL_TYPE_PREFIX, ATLAS_SOURCE_PREFIX, COLLECTION_TARGETS
from scenestore.observability import logger

if TYPE_CHECKING:
    from scenestore.services import Services

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

STATE_COLLECTION: Final = "scenestore_event_runner"
STATE_ID: Final = "deletes"
LOCAL_SOURCE: Final = f"{ATLAS_SOURCE_PREFIX}scenestore-local"
#: Work per local invocation in the runner: short slices keep ``stop()`` prompt during a long delete.
RUNNER_SLICE_SECONDS: Final = 5.0
#: Work per local invocation in the CLI: the deployed functions' 15 minutes.
LAMBDA_TIMEOUT_SECONDS: Final = 900.0
#: A change whose handling keeps failing for another reason than a bad event is retried this often
#: (backoff 1, 2, 4, 8 s), then logged with the command that redoes it and skipped.
HANDLER_ATTEMPTS: Final = 5
#: FailedToParse, InvalidResumeToken, ChangeStreamFatalError, ChangeStreamHistoryLost: watch from now instead.
_UNUSABLE_TOKEN_CODES: Final = frozenset({9, 260, 280, 286})


@dataclass
class LocalLambdaContext:
    """The parts of a Lambda context the handlers and Powertools read; time counts down from creation."""

    timeout_seconds: float = LAMBDA_TIMEOUT_SECONDS
    function_name: str = "scenestore-local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:local:000000000000:function:scenestore-local"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


def load_handler(target: str) -> Handler:
    """The very ``lambda_handler`` Lambda runs for ``project`` or ``scene`` deletions."""
    if target == "project":
        from functions.delete_project.handler import lambda_handler as project_handler

        return project_handler
    if target == "scene":
        from functions.delete_scene.handler import lambda_handler as scene_handler

        return scene_handler
    raise ValueError(f"no delete handler for {target!r}")


def invoke_until_complete(
    handler: Handler,
    event: dict[str, Any],
    *,
    work_seconds: float = LAMBDA_TIMEOUT_SECONDS - DELETE_MARGIN_SECONDS,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Invoke like the deployed wiring: the same event plus the last continuation, until ``complete``.

    Returns the results merged (counts summed, ``invocations`` counted). ``should_stop`` lets a caller
    leave between invocations; the merged result then says ``complete: false``.
    """
    total: dict[str, Any] | None = None
    current = dict(event)
    while True:
        context = LocalLambdaContext(timeout_seconds=work_seconds + DELETE_MARGIN_SECONDS)
        try:
            result = handler(current, context)
        finally:
            # The invocation's log keys (user_id, scene_id, cold_start...) end with it: in Lambda the next
            # invocation clears them, here the API's request lines share the process's logger.
            logger.clear_state()
        total = merge_results(total, result)
        if result["complete"] or (should_stop is not None and should_stop()):
            return total
        if not result.get("continuation") or result["continuation"] == current.get("continuation"):
            raise StorageError("a delete invocation returned complete: false without moving its continuation")
        current = {**event, "continuation": result["continuation"]}


def change_to_event(change: dict[str, Any]) -> dict[str, Any]:
    """A change-stream document as an Atlas Trigger delivers it through EventBridge (extended JSON)."""
    from bson import json_util

    detail = json.loads(json_util.dumps(change, json_options=json_util.RELAXED_JSON_OPTIONS))
    ns = detail.get("ns", {})
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": f"{ATLAS_DETAIL_TYPE_PREFIX}{ns.get('db')}.{ns.get('coll')}",
        "source": LOCAL_SOURCE,
        "account": "000000000000",
        "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "region": "local",
        "resources": [],
        "detail": detail,
    }


class EventRunner:
    """Background thread: change stream -> delete handlers. ``start()`` returns self; ``stop()`` joins."""

    def __init__(
        self,
        services: Services,
        *,
        poll_ms: int = 500,
        slice_seconds: float = RUNNER_SLICE_SECONDS,
        handlers: dict[str, Handler] | None = None,
    ) -> None:
        self.services = services
        self.poll_ms = poll_ms
        self.slice_seconds = slice_seconds
        self._handlers = handlers
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.handled = 0

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> EventRunner:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="event-runner", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("event runner did not stop within the timeout", extra={"timeout_s": timeout})
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- resume token -------------------------------------------------------------------------------
    @property
    def _state(self) -> Any:
        return self.services.db[STATE_COLLECTION]

    def stored_token(self) -> dict[str, Any] | None:
        doc = self._state.find_one({"_id": STATE_ID})
        return doc.get("resume_token") if doc else None

    def _save_token(self, token: dict[str, Any] | None) -> None:
        if token is not None:
            self._state.update_one(
                {"_id": STATE_ID},
                {"$set": {"resume_token": token, "updated_at": datetime.now(UTC)}},
                upsert=True,
            )

    # -- loop ---------------------------------------------------------------------------------------
    def _run(self) -> None:
        from pymongo.errors import OperationFailure, PyMongoError

        backoff = 0.5
        while not self._stopping.is_set():
            try:
                self._watch()
                backoff = 0.5
            except OperationFailure as exc:
                if exc.code in _UNUSABLE_TOKEN_CODES:
                    logger.warning("stored resume token is unusable; watching from now", extra={"error": str(exc)})
                    self._state.delete_one({"_id": STATE_ID})
                else:
                    logger.warning("change stream failed; reopening", extra={"error": str(exc)})
                self._stopping.wait(backoff)
            except PyMongoError as exc:
                if self._stopping.is_set():
                    break
                logger.warning("change stream lost its connection; reopening", extra={"error": str(exc)})
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    def _watch(self) -> None:
        token = self.stored_token()
        pipeline = [{"$match": {"operationType": "delete", "ns.coll": {"$in": list(COLLECTION_TARGETS)}}}]
        with self.services.db.watch(
            pipeline,
            full_document_before_change="whenAvailable",
            resume_after=token,
            max_await_time_ms=self.poll_ms,
        ) as stream:
            if token is None:
                # Remember "now", so that deletes made while the runner is down are not missed on restart.
                self._save_token(stream.resume_token)
            while not self._stopping.is_set():
                change = stream.try_next()
                if change is None:
                    continue
                if not self._handle(change):
                    return  # stopping half-way: the change stays unacknowledged and is handled after a restart
                self._save_token(stream.resume_token)

    def _handle(self, change: dict[str, Any]) -> bool:
        """Run the handler for one change; ``False`` if it was interrupted and must be handled again."""
        coll = change.get("ns", {}).get("coll")
        target = COLLECTION_TARGETS.get(coll) if isinstance(coll, str) else None
        if target is None:
            return True
        handler = (self._handlers or {}).get(target) or load_handler(target)
        event = change_to_event(change)
        for attempt in range(1, HANDLER_ATTEMPTS + 1):
            try:
                result = invoke_until_complete(
                    handler, event, work_seconds=self.slice_seconds, should_stop=self._stopping.is_set
                )
            except InvalidRequest as exc:  # a bad event: retrying cannot help
                logger.error(
                    "deletion event refused; skipped",
                    extra={"collection": coll, "error": exc.code, "reason": exc.message},
                )
                return True
            except Exception:
                logger.exception("deletion failed", extra={"collection": coll, "attempt": attempt})
                if attempt < HANDLER_ATTEMPTS and self._stopping.wait(2 ** (attempt - 1)):
                    return False
                continue
            if not result["complete"]:
                return False
            self.handled += 1
            logger.info(
                "deletion event handled",
                extra={
                    "collection": coll,
                    "deleted_count": result["deleted_count"],
                    "failed_count": result["failed_count"],
                    "invocations": result["invocations"],
                },
            )
            return True
        if self._stopping.is_set():
            return False
        logger.error(
            "giving up on a deletion event after repeated failures; redo it with `scenestore delete-project` or "
            "`scenestore delete-scene`",
            extra={"collection": coll, "document_key": event["detail"].get("documentKey")},
        )
        return True
