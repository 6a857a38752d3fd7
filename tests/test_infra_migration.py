"""The migration state machine, simulated from the very ASL file the template deploys, with the real handlers.

GIVEN a seeded data set with legacy keys (shared objects, a project without user, mixed ``_id`` types, keys
already in the layout) WHEN infra/migration.asl.yaml is walked with the template's substitutions (its three
function ARNs bound to the handlers their CodeUri/Handler name) THEN every shard loops migrate-batch until
``done``, the verify step finds nothing missing, and the execution's outcome follows the verify verdict.

Each invocation gets a deliberately small Lambda time budget, as a function near its timeout would: the budget
halves after an invocation that made progress and doubles after one that did not, so invocations stay short
and the per-shard loop (Choice -> NextBatch -> MigrateBatch) really runs several rounds.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from scenestore.db import SCENES
from scenestore.keys import is_legacy_key
from scenestore.migration.config import LAMBDA_MARGIN
from scenestore.services import Services

from tests.support.asl import StateMachine, StatesError, load_definition, placeholders
from tests.support.infra import Resolver, load_handler, logical_id, resources, state_machine_definition_path
from tests.support.lambda_context import FakeLambdaContext
from tests.support.migration import assert_converged, snapshot
from tests.support.seed import Seeder, references

MACHINE = "MigrationStateMachine"


class ShortBudget:
    """Calls a handler with a small, self-adjusting remaining time; serialized like one execution environment.

    A Lambda execution environment runs one invocation at a time, and module state (Powertools metrics, the
    services) is per process; the simulator's threads share one process, so invocations take turns here.
    """

    def __init__(self, handler: Callable[..., Any], start_ms: int = 50) -> None:
        self.handler = handler
        self.budget_ms = start_ms
        self.lock = threading.Lock()

    def __call__(self, payload: Any) -> Any:
        with self.lock:
            context = FakeLambdaContext(remaining_ms=int(LAMBDA_MARGIN * 1000) + self.budget_ms)
            result = self.handler(payload, context)
            progressed = (
                result.get("scanned", 0) > 0 or result.get("done") or result.get("cursor") != payload.get("cursor")
            )
            self.budget_ms = max(5, self.budget_ms // 2) if progressed else min(60_000, self.budget_ms * 2)
            return result


def migration_machine(**overrides: Callable[[Any], Any]) -> tuple[StateMachine, dict[str, str]]:
    """The deployed definition; each substituted function ARN is bound to its handler (or an override by logical id)."""
    resolver = Resolver()
    substitutions = resolver.resolve(resources()[MACHINE]["Properties"]["DefinitionSubstitutions"])
    path = state_machine_definition_path(MACHINE)
    assert placeholders(path) == set(substitutions)
    definition = load_definition(path, substitutions)
    functions: dict[str, Callable[[Any], Any]] = {}
    arns: dict[str, str] = {}
    for value in substitutions.values():
        if isinstance(value, str) and value.startswith("getatt:"):
            logical = logical_id(value)
            arns[logical] = value
            if logical in overrides:
                functions[value] = overrides[logical]
            elif logical == "MigrateBatchFunction":
                functions[value] = ShortBudget(load_handler(logical))
            else:
                handler = load_handler(logical)
                functions[value] = lambda payload, handler=handler: handler(payload, FakeLambdaContext())
    return StateMachine(definition, functions, name="scenestore-migration"), arns


def seed(services: Services) -> Seeder:
    """Projects and scenes with legacy keys: shared objects, no user_id, string and ObjectId ids, layout keys."""
    s = Seeder(services)
    for key in ("media/a.jpg", "media/shared.jpg", "clips/b.mp4", "audio/n.mp3", "renders/p1.mp4", "c.png"):
        s.put(key)
    s.put("users/u2/projects/p3/scenes/s9/image/x.png")
    p1 = s.project("p1", user="u1", output="renders/p1.mp4")
    p2 = s.project(user=None)  # ObjectId _id, owner "default"
    p3 = s.project("p3", user="u2")
    s.scene(p1, "s1", media="media/a.jpg")
    s.scene(p1, "s2", media="clips/b.mp4", media_type="video", audio="audio/n.mp3")
    s.scene(p1, "s3", media="media/shared.jpg")
    s.scene(p2, media="media/shared.jpg")  # the same legacy object from another project
    s.scene(p2, media="c.png", media_type=None)
    s.scene(p3, "s9", media="users/u2/projects/p3/scenes/s9/image/x.png")
    for i in range(6):  # more scenes than shards, so every shard has several batches of one
        key = f"media/extra-{i}.jpg"
        s.put(key)
        s.scene(p3 if i % 2 else p1, f"x{i}", media=key)
    return s


def migrated(machine: StateMachine, arns: dict[str, str]) -> int:
    """Objects moved over every migrate-batch invocation of an execution (each reports its own counts)."""
    return sum(payload["migrated"] for name, payload in machine.responses if name == arns["MigrateBatchFunction"])


def batch_calls(machine: StateMachine, arns: dict[str, str]) -> list[dict[str, Any]]:
    return [payload for name, payload in machine.invocations if name == arns["MigrateBatchFunction"]]


def test_a_run_migrates_every_shard_in_a_loop_and_ends_with_a_clean_verify(services: Services) -> None:
    seeder = seed(services)
    machine, arns = migration_machine()

    execution = machine.run({"shards": 3, "batch_size": 1}, execution_name="mig-sim-1")

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert execution.output["ok"] is True and execution.output["missing"] == 0
    assert execution.output["legacy_referenced"] == 0 and execution.output["run_id"] == "mig-sim-1"
    report = assert_converged(services, seeder)
    assert report["clean"]
    assert not [key for *_, key in references(services) if is_legacy_key(key)]

    plan = next(payload for name, payload in machine.responses if name == arns["MigratePlanFunction"])
    assert plan["run_id"] == "mig-sim-1" and len(plan["shards"]) == 3
    calls = batch_calls(machine, arns)
    per_shard = Counter(repr(call["shard"]) for call in calls)
    assert set(per_shard) == {repr(shard) for shard in plan["shards"]}
    assert max(per_shard.values()) >= 2, "the per-shard loop should have gone round at least once"
    assert {call["run_id"] for call in calls} == {"mig-sim-1"} and {call["batch_size"] for call in calls} == {1}
    assert [child.status for child in execution.children] == ["SUCCEEDED"] * 3
    assert all(child.output["done"] is True for child in execution.children)
    run = services.db.scenestore_migrations.find_one({"_id": "mig-sim-1"})
    assert run is not None and run["status"] == "done"


def test_a_dry_run_changes_nothing_and_still_verifies(services: Services) -> None:
    seed(services)
    before = snapshot(services)
    collections = sorted(services.db.list_collection_names())
    machine, arns = migration_machine()

    execution = machine.run({"dry_run": True, "shards": 2, "batch_size": 2}, execution_name="dry-sim")

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert execution.output["legacy_referenced"] > 0
    assert snapshot(services) == before
    assert sorted(services.db.list_collection_names()) == collections
    assert migrated(machine, arns) == execution.output["legacy_referenced"] == 13, "it reports what it would move"


def test_a_second_execution_of_the_same_run_reuses_its_plan_and_migrates_nothing(services: Services) -> None:
    seeder = seed(services)
    first, _ = migration_machine()
    assert first.run({"shards": 2, "batch_size": 5}, execution_name="mig-once").status == "SUCCEEDED"
    services.db[SCENES].insert_one({"_id": "a-new-scene", "project_id": "p1"})  # would move planned boundaries

    again, arns = migration_machine()
    execution = again.run({"run_id": "mig-once", "shards": 5, "batch_size": 5}, execution_name="mig-once-retry")

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    plan = next(payload for name, payload in again.responses if name == arns["MigratePlanFunction"])
    recorded = services.db.scenestore_migrations.find_one({"_id": "mig-once"})
    assert recorded is not None and plan["shards"] == recorded["planned"] and len(plan["shards"]) == 2
    assert migrated(again, arns) == 0
    assert_converged(services, seeder)


def test_throttled_invocations_are_retried_with_backoff(services: Services) -> None:
    """A fault injected on purpose: Lambda throttling cannot be produced by the local stack."""
    seeder = seed(services)
    real = ShortBudget(load_handler("MigrateBatchFunction"), start_ms=2_000)
    throttled = {"left": 3}
    lock = threading.Lock()

    def batch(payload: Any) -> Any:
        with lock:
            if throttled["left"]:
                throttled["left"] -= 1
                raise StatesError("Lambda.TooManyRequestsException", "Rate Exceeded.")
        return real(payload)

    slept: list[float] = []
    machine, _ = migration_machine(MigrateBatchFunction=batch)
    machine.sleep = slept.append

    execution = machine.run({"shards": 1, "batch_size": 10}, execution_name="mig-throttled")

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    retries = [e for e in execution.all_events() if e.type == "Retry"]
    assert [e.error for e in retries] == ["Lambda.TooManyRequestsException"] * 3
    assert [e.retry_delay for e in retries] == [2, 4, 8]
    assert_converged(services, seeder)


def test_a_missing_referenced_object_makes_the_verify_step_fail_the_execution(services: Services) -> None:
    """A document whose legacy object does not exist is left untouched (source_missing) and verify reports it."""
    seeder = seed(services)
    seeder.scene("p1", "ghost", media="media/never-uploaded.jpg")
    machine, arns = migration_machine()

    execution = machine.run({"shards": 2, "batch_size": 3}, execution_name="mig-ghost")

    assert (execution.status, execution.error) == ("FAILED", "VerificationFailed")
    assert "media/never-uploaded.jpg" in str(execution.cause)
    reported = [e for name, out in machine.responses if name == arns["MigrateBatchFunction"] for e in out["errors"]]
    skipped = [e for e in reported if e["code"] == "source_missing"]
    assert skipped, "migrate-batch should report the missing source"
    ghost = services.db[SCENES].find_one({"_id": "ghost"})
    assert ghost is not None and ghost["media"]["storageKey"] == "media/never-uploaded.jpg"


def test_invalid_input_fails_at_planning_without_retries(services: Services) -> None:
    machine, _ = migration_machine()
    execution = machine.run({"shard": 3}, execution_name="mig-typo")
    assert (execution.status, execution.error) == ("FAILED", "InvalidRequest")
    assert len(machine.invocations) == 1
    assert services.db.scenestore_migrations.count_documents({}) == 0


def test_every_field_the_definition_reads_is_one_the_handlers_return(services: Services) -> None:
    """The Choice and Pass states read ``done``, ``cursor``, ``ok`` and the plan's fields: each must be a key of
    what the real handlers returned in a run, so a renamed output field fails here, not in production."""
    seed(services)
    machine, arns = migration_machine()
    assert machine.run({"shards": 2, "batch_size": 4}, execution_name="mig-fields").status == "SUCCEEDED"
    returned: dict[str, set[str]] = {}
    for name, payload in machine.responses:
        returned.setdefault(name, set()).update(payload)

    text = state_machine_definition_path(MACHINE).read_text()
    batch_fields = {"done", "cursor", "scanned", "migrated", "skipped", "failed", "bytes_copied"}
    assert all(f"$.Payload.{field}" in text for field in batch_fields)
    assert batch_fields <= returned[arns["MigrateBatchFunction"]]
    assert "$.verify.report.ok" in text and "ok" in returned[arns["MigrateVerifyFunction"]]
    plan_fields = {"run_id", "batch_size", "dry_run", "shards"}
    assert all(f"$.Payload.{field}" in text for field in plan_fields)
    assert plan_fields <= returned[arns["MigratePlanFunction"]]
    contract = {"run_id", "cursor", "done", "scanned", "migrated", "skipped", "failed", "bytes_copied", "errors"}
    assert contract <= returned[arns["MigrateBatchFunction"]]


def test_the_map_is_distributed_bounded_and_fed_from_the_plan() -> None:
    machine, _ = migration_machine()
    state = machine.definition["States"]["MigrateShards"]
    assert state["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert "ItemReader" not in state and state["ItemsPath"] == "$.shards"
    assert state["MaxConcurrency"] == int(Resolver().parameters["MigrationMaxConcurrency"])
    spec = resources()["MigrationStateMachine"]["Properties"]
    assert spec["Type"] == "STANDARD"
