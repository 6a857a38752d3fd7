"""The migration state machine as deployed, on moto's Step Functions engine (``tests.support.moto_engine``).

GIVEN infra/migration.asl.yaml deployed into moto with the template's substitutions, its three functions
answered by the real handlers (migrate-batch on a short time budget, so each shard loops several batches)
against the local S3 and MongoDB servers, and a data set with legacy keys (shared objects, a project without
user, mixed ``_id`` types, keys already in the layout) WHEN an operator starts an execution THEN the plan's
shards run in the Distributed Map until done, Verify's verdict decides the outcome, and the state stays far
below Step Functions' 256 KiB whatever the shard count and the errors.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from scenestore.db import SCENES
from scenestore.migration.config import LAMBDA_MARGIN
from scenestore.migration.shards import MAX_SHARDS
from scenestore.services import Services

from tests.support.infra import Resolver, resources, state_machine_definition_path
from tests.support.migration import assert_converged, snapshot
from tests.support.moto_engine import STATE_LIMIT, THROTTLE, TIMEOUT, Engine, load_definition
from tests.support.seed import Seeder

MACHINE = "MigrationStateMachine"
BATCH = "MigrateBatchFunction"


@pytest.fixture
def engine(services: Services) -> Any:
    with Engine() as deployed:
        # A migrate-batch Lambda with a fraction of a second past its margin: a few batches per invocation.
        deployed.budget[BATCH] = LAMBDA_MARGIN + 0.3
        yield deployed


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


def test_a_dry_run_changes_nothing_and_reports_what_would_move(services: Services, engine: Engine) -> None:
    seed(services)
    before, collections = snapshot(services), sorted(services.db.list_collection_names())

    execution = engine.run(MACHINE, {"dry_run": True, "shards": 2, "batch_size": 2}, name="dry-engine")

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert execution.output["legacy_referenced"] == 13 and execution.output["ok"] is True
    assert snapshot(services) == before and sorted(services.db.list_collection_names()) == collections
    batches = [c.answer for c in engine.calls(BATCH)]
    assert sum(b["migrated"] for b in batches) == 13, "it counts what it would move, once"


def test_a_multi_shard_run_survives_a_throttled_plan_and_a_timed_out_batch(services: Services, engine: Engine) -> None:
    """Faults injected on purpose (the local stack cannot produce them): Lambda throttles the plan twice, and
    one batch times out after its work (its answer lost). Both are retried with the definition's backoff; the
    run converges and verifies clean, and the run id is the execution's name."""
    seeder = seed(services)
    engine.fault("MigratePlanFunction", THROTTLE, times=2)
    engine.fault(BATCH, TIMEOUT, when=lambda payload: payload["cursor"] is not None)

    execution = engine.run(MACHINE, {"shards": 3, "batch_size": 1}, name="mig-engine-1")

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    plan = engine.calls("MigratePlanFunction")
    assert [c.outcome for c in plan] == ["throttled", "throttled", "ok"]
    assert plan[-1].answer["run_id"] == "mig-engine-1" and len(plan[-1].answer["shards"]) == 3
    batches = engine.calls(BATCH)
    assert [c.outcome for c in batches].count("timeout") == 1
    assert 5 in engine.waits, "the timed-out batch is retried after States.TaskFailed's 5 s"
    per_shard = Counter(repr(c.payload["shard"]) for c in batches)
    assert set(per_shard) == {repr(shard) for shard in plan[-1].answer["shards"]}
    assert max(per_shard.values()) >= 2, "the per-shard loop went round"
    assert execution.output["ok"] is True and execution.output["legacy_referenced"] == 0
    assert_converged(services, seeder)
    run = services.db.scenestore_migrations.find_one({"_id": "mig-engine-1"})
    assert run is not None and run["status"] == "done"
    map_result = next(e for e in execution.history if e["type"] == "MapStateExited")["stateExitedEventDetails"]
    assert "errors" not in map_result["output"], "the shards' results carry counts only"


def test_a_missing_object_ends_in_verification_failed(services: Services, engine: Engine) -> None:
    """A document whose legacy object does not exist is left untouched (source_missing, kept in the run's
    document) and Verify fails the execution naming the key."""
    seeder = seed(services)
    seeder.scene("p1", "ghost", media="media/never-uploaded.jpg")

    execution = engine.run(MACHINE, {"shards": 2, "batch_size": 3}, name="mig-ghost")

    assert (execution.status, execution.error) == ("FAILED", "VerificationFailed")
    assert "media/never-uploaded.jpg" in str(execution.cause)
    run = services.db.scenestore_migrations.find_one({"_id": "mig-ghost"})
    assert run is not None
    assert [e["code"] for e in run["errors"]] == ["source_missing"], "the error lives in the run's document"
    ghost = services.db[SCENES].find_one({"_id": "ghost"})
    assert ghost is not None and ghost["media"]["storageKey"] == "media/never-uploaded.jpg"


def test_invalid_input_fails_at_planning_without_retries(services: Services, engine: Engine) -> None:
    execution = engine.run(MACHINE, {"shard": 3}, name="mig-typo")
    assert (execution.status, execution.error) == ("FAILED", "InvalidRequest")
    assert len(engine.invocations) == 1 and engine.waits == []
    assert services.db.scenestore_migrations.count_documents({}) == 0


def test_the_largest_shard_count_with_the_most_errors_stays_under_the_state_limit(
    services: Services, engine: Engine
) -> None:
    """GIVEN the most shards migrate-plan accepts (the real plan over one scene per shard) and every shard's
    migrate-batch answer the largest the contract allows (done, counts, and 100 errors each naming a 1024-byte
    key: a stand-in answers for the handler, since what is measured is the definition's state, and 25,600 such
    errors cannot be made in seconds) WHEN the run goes through to the real Verify THEN no state's input or
    output reaches 256 KiB: the map keeps each shard's counts only."""
    seeder = Seeder(services)
    project = seeder.project("p1", user="u1")
    for i in range(MAX_SHARDS):
        seeder.scene(project, f"s{i:03d}", media=seeder.put(f"users/u1/projects/p1/scenes/s{i:03d}/image/a.png"))
    key = "media/" + "k" * 1018
    error = {"code": "copy_failed", "message": "S3 " + "x" * 200, "collection": "scenes", "id": "str:x"}

    def largest_answer(payload: dict[str, Any]) -> dict[str, Any]:
        counts = dict.fromkeys(("scanned", "migrated", "skipped", "bytes_copied"), 10**9)
        errors = [{**error, "field": "media.storageKey", "key": key}] * 100
        return {"run_id": payload["run_id"], "cursor": "projects:str:" + "z" * 100, "done": True, **counts,
                "failed": 100, "errors": errors}  # fmt: skip

    engine.stand_ins[BATCH] = largest_answer

    execution = engine.run(MACHINE, {"shards": MAX_SHARDS, "batch_size": 1000}, name="mig-widest", timeout=280)

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert len(engine.calls(BATCH)) == MAX_SHARDS
    largest, answer = execution.largest_state, engine.largest_answer(BATCH)
    print(f"\n{MAX_SHARDS} shards: largest state {largest:,} bytes; each migrate-batch answer {answer:,} bytes")
    assert answer * MAX_SHARDS > STATE_LIMIT * 100, "kept whole, these answers would exceed the limit a hundredfold"
    assert largest < STATE_LIMIT // 2


def test_what_the_engine_cannot_show_is_in_the_definition() -> None:
    """Against the definition's text and AWS's semantics (W8: moto's Distributed Map ignores the tolerance):
    a Distributed Map of STANDARD children, fed from the plan, bounded by the template's parameter, that
    tolerates no failed shard (AWS: ToleratedFailurePercentage 0 fails the map on the first failed child)."""
    resolver = Resolver()
    definition = load_definition(
        MACHINE,
        {k: str(v) for k, v in resolver.resolve(resources()[MACHINE]["Properties"]["DefinitionSubstitutions"]).items()},
    )
    state = definition["States"]["MigrateShards"]
    assert state["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert "ItemReader" not in state and state["ItemsPath"] == "$.shards"
    assert state["MaxConcurrency"] == int(resolver.parameters["MigrationMaxConcurrency"])
    assert "ToleratedFailurePercentage: 0\n" in state_machine_definition_path(MACHINE).read_text()
    assert "ToleratedFailureCount" not in state_machine_definition_path(MACHINE).read_text()
    assert resources()[MACHINE]["Properties"]["Type"] == "STANDARD"


def test_the_errors_of_a_state_machine_run_are_shown_by_verify_and_migrate(
    services: Services, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The map keeps counts only; an operator reads the errors where they live, through the CLI."""
    import json

    from click.testing import CliRunner
    from scenestore_cli.migrate import migrate_command, verify_command

    seeder = seed(services)
    seeder.scene("p1", "ghost", media="media/never-uploaded.jpg")
    assert engine.run(MACHINE, {"shards": 2, "batch_size": 3}, name="mig-shown").error == "VerificationFailed"
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")

    verified = CliRunner().invoke(verify_command, ["--json"], catch_exceptions=False)
    resumed = CliRunner().invoke(migrate_command, ["--resume", "mig-shown", "--json"], catch_exceptions=False)
    human = CliRunner().invoke(verify_command, [], catch_exceptions=False)

    last_run = json.loads(verified.stdout)["last_run"]
    assert last_run["run_id"] == "mig-shown" and [e["code"] for e in last_run["errors"]] == ["source_missing"]
    assert [e["key"] for e in json.loads(resumed.stdout)["errors"]] == ["media/never-uploaded.jpg"]
    assert "last migration run mig-shown" in human.output and "media/never-uploaded.jpg" in human.output


def test_a_new_execution_with_the_same_run_id_reuses_its_plan_and_migrates_nothing_more(
    services: Services, engine: Engine
) -> None:
    """docs/operations.md, MigrationFailures: a run is resumed by a new execution with {"run_id": ...}."""
    seeder = seed(services)
    assert engine.run(MACHINE, {"shards": 2, "batch_size": 5}, name="mig-once").status == "SUCCEEDED"
    services.db[SCENES].insert_one({"_id": "a-new-scene", "project_id": "p1"})  # would move planned boundaries
    first = len(engine.invocations)

    again = engine.run(MACHINE, {"run_id": "mig-once", "shards": 5, "batch_size": 5}, name="mig-once-resumed")

    assert again.status == "SUCCEEDED", (again.error, again.cause)
    plan = [c for c in engine.invocations[first:] if c.function == "MigratePlanFunction"][-1].answer
    recorded = services.db.scenestore_migrations.find_one({"_id": "mig-once"})
    assert recorded is not None and plan["shards"] == recorded["planned"] and len(plan["shards"]) == 2
    assert sum(c.answer["migrated"] for c in engine.invocations[first:] if c.function == BATCH) == 0
    assert_converged(services, seeder)
