"""Deletion wiring, followed name by name from template.yaml: rule -> state machine -> function -> handler.

GIVEN each sample event of each source (tests/events/, the delete functions' own samples) WHEN it is matched
against every EventBridge rule of the template (moto's EventBridge pattern matcher) THEN exactly the rules
meant for it match, and the state machine they target, simulated from the deployed ASL file, runs the real
handler named by the template against the local stack until the deletion is complete.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from bson import ObjectId
from moto.events.models import EventPattern
from scenestore.cleanup import DELETE_MARGIN_SECONDS
from scenestore.services import Services

from tests.support.asl import Execution, StateMachine, load_definition, placeholders
from tests.support.events import load_event
from tests.support.infra import (
    Resolver,
    load_handler,
    logical_id,
    resources,
    state_machine_definition_path,
)
from tests.support.lambda_context import FakeLambdaContext
from tests.support.seed import add_project, image, keys_in, output, put_objects, scene_doc

ATLAS_PROJECT_ID = "65a5091c2f8e4b0012345678"  # tests/events/atlas_project_delete.json
PROJECT_SAMPLES = ["eventbridge_project_deleted", "atlas_project_delete", "atlas_project_delete_no_preimage"]
SCENE_SAMPLES = ["eventbridge_scene_deleted", "atlas_scene_delete", "atlas_scene_delete_no_preimage"]
ZERO_BUDGET_MS = int(DELETE_MARGIN_SECONDS * 1000)


@pytest.fixture(scope="module")
def resolver() -> Resolver:
    return Resolver()


def rules(resolver: Resolver) -> dict[str, dict[str, Any]]:
    return {
        name: resolver.resolve(res["Properties"])
        for name, res in resources("AWS::Events::Rule").items()
        if resolver.exists(name)
    }


def matching_rules(resolver: Resolver, event: dict[str, Any]) -> list[str]:
    return sorted(
        name
        for name, rule in rules(resolver).items()
        if EventPattern.load(json.dumps(rule["EventPattern"])).matches_event(event)
    )


def state_machine_for(
    resolver: Resolver, logical: str, invoke: Callable[[Callable[..., Any], Any], Any]
) -> StateMachine:
    """The deployed definition of ``logical`` with each substituted function ARN bound to its real handler."""
    props = resources()[logical]["Properties"]
    substitutions = resolver.resolve(props["DefinitionSubstitutions"])
    path = state_machine_definition_path(logical)
    assert placeholders(path) <= set(substitutions), "the ASL uses a placeholder the template does not substitute"
    definition = load_definition(path, substitutions)
    functions = {}
    for value in substitutions.values():
        if isinstance(value, str) and value.startswith("getatt:") and value.endswith(".Arn"):
            handler = load_handler(logical_id(value))
            functions[value] = lambda payload, handler=handler: invoke(handler, payload)
    return StateMachine(definition, functions, name=logical)


def with_budget(remaining_ms: int) -> Callable[[Callable[..., Any], Any], Any]:
    return lambda handler, payload: handler(payload, FakeLambdaContext(remaining_ms=remaining_ms))


def deliver(resolver: Resolver, event: dict[str, Any], *, remaining_ms: int = 900_000) -> dict[str, Execution]:
    """Every rule that matches ``event`` starts its target state machine with the event, as EventBridge would."""
    started: dict[str, Execution] = {}
    all_rules = rules(resolver)
    for name in matching_rules(resolver, event):
        for target in all_rules[name]["Targets"]:
            machine = state_machine_for(resolver, logical_id(target["Arn"]), with_budget(remaining_ms))
            started[name] = machine.run(event)
    return started


# -- patterns ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("eventbridge_project_deleted", ["AppProjectDeletedRule"]),
        ("eventbridge_scene_deleted", ["AppSceneDeletedRule"]),
        ("atlas_project_delete", ["AtlasProjectDeletedRule"]),
        ("atlas_project_delete_no_preimage", ["AtlasProjectDeletedRule"]),
        ("atlas_scene_delete", ["AtlasSceneDeletedRule"]),
        ("atlas_scene_delete_no_preimage", ["AtlasSceneDeletedRule"]),
        ("atlas_scene_update", []),
    ],
)
def test_each_sample_event_matches_exactly_the_rule_meant_for_it(
    resolver: Resolver, sample: str, expected: list[str]
) -> None:
    assert matching_rules(resolver, load_event(sample)) == expected


def test_rules_listen_on_the_bus_their_source_publishes_to(resolver: Resolver) -> None:
    """App events arrive on the app's bus; Atlas events only ever arrive on the partner event bus."""
    all_rules = rules(resolver)
    for name in ("AppProjectDeletedRule", "AppSceneDeletedRule"):
        assert all_rules[name]["EventBusName"] == resolver.parameters["AppEventBusName"]
    atlas_bus = resolver.resolve(resources()["AtlasEventBus"]["Properties"])
    assert atlas_bus["Name"] == atlas_bus["EventSourceName"] == resolver.parameters["AtlasEventSourceName"]
    for name in ("AtlasProjectDeletedRule", "AtlasSceneDeletedRule"):
        assert all_rules[name]["EventBusName"] == "ref:AtlasEventBus"


@pytest.mark.parametrize(
    "change",
    [
        {"source": "someone.else"},  # only the app may ask for deletions on a shared bus
        {"detail-type": "ProjectCreated"},
    ],
)
def test_lookalike_app_events_start_nothing(resolver: Resolver, change: dict[str, Any]) -> None:
    assert matching_rules(resolver, {**load_event("eventbridge_project_deleted"), **change}) == []


@pytest.mark.parametrize(("coll", "db"), [("renders", "autoshorts"), ("projects", "otherdb")])
def test_atlas_deletes_of_other_collections_or_databases_start_nothing(resolver: Resolver, coll: str, db: str) -> None:
    event = load_event("atlas_project_delete")
    event["detail"] = {**event["detail"], "ns": {"db": db, "coll": coll}}
    assert matching_rules(resolver, event) == []


def test_without_an_atlas_source_the_partner_bus_and_its_rules_are_not_created() -> None:
    resolver = Resolver(AtlasEventSourceName="")
    assert not resolver.exists("AtlasEventBus")
    assert sorted(rules(resolver)) == ["AppProjectDeletedRule", "AppSceneDeletedRule", "DeletionExecutionFailedRule"]
    queue_policy = resolver.resolve(resources()["DeletionDeadLetterQueuePolicy"]["Properties"])
    assert len(queue_policy["PolicyDocument"]["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"]) == 3


def test_every_deletion_rule_retries_and_dead_letters_and_the_queue_accepts_them(resolver: Resolver) -> None:
    all_rules = rules(resolver)
    policy = resolver.resolve(resources()["DeletionDeadLetterQueuePolicy"]["Properties"])
    allowed = set(policy["PolicyDocument"]["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"])
    for name, rule in all_rules.items():
        for target in rule["Targets"]:
            if target["Arn"].startswith("ref:") and target["Arn"].endswith("StateMachine"):
                assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0, name
                assert target["DeadLetterConfig"]["Arn"] == "getatt:DeletionDeadLetterQueue.Arn", name
                assert target["RoleArn"] == "getatt:DeletionEventsRole.Arn", name
            else:
                assert target["Arn"] == "getatt:DeletionDeadLetterQueue.Arn", name
        assert f"getatt:{name}.Arn" in allowed, f"the dead-letter queue would refuse messages from {name}"


def test_a_failed_deletion_execution_lands_in_the_dead_letter_queue(resolver: Resolver) -> None:
    status_change = {
        "version": "0",
        "id": "315c1398-40ff-a850-213b-158f73e60175",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2025-01-15T10:40:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:states:us-east-1:123456789012:execution:ProjectDeletion:abc"],
        "detail": {"status": "FAILED", "stateMachineArn": "ref:ProjectDeletionStateMachine", "name": "abc"},
    }
    assert matching_rules(resolver, status_change) == ["DeletionExecutionFailedRule"]
    assert (
        matching_rules(resolver, {**status_change, "detail": {**status_change["detail"], "status": "SUCCEEDED"}}) == []
    )


# -- the loop, with the real handlers on the local stack -------------------------------------------------------------


def sample_for(services: Services, sample: str) -> dict[str, Any]:
    """A sample event aimed at this test's database (Atlas events name theirs; the function checks it)."""
    event = load_event(sample)
    if sample.startswith("atlas"):
        event["detail"] = {**event["detail"], "ns": {**event["detail"]["ns"], "db": services.settings.mongodb_db}}
    return event


def stack_resolver(services: Services) -> Resolver:
    """The template's parameters as deployed against this test's database."""
    return Resolver(MongoDbName=services.settings.mongodb_db)


def seed_project(services: Services, user: str, project: str) -> dict[str, set[str]]:
    """A deleted project's objects (prefix + owned legacy ones) and neighbours that must survive."""
    doomed = {
        image(user, project, "s1"),
        image(user, project, "s2", "b.png"),
        output(user, project),
        "renders/holiday.mp4",  # the Atlas pre-image's output key
        "media/left-behind.jpg",  # a remaining scene of the deleted project
    }
    kept = {image(user, "p10", "s1"), image(user, f"{project}0", "s1"), "media/shared.jpg", "unrelated.jpg"}
    put_objects(services, doomed | kept)
    services.db.scenes.insert_many(
        [
            scene_doc("left", project, media="media/left-behind.jpg"),
            scene_doc("other", "p10", media="media/shared.jpg"),
        ]
    )
    return {"doomed": doomed, "kept": kept}


def test_atlas_project_delete_runs_the_loop_until_complete_with_the_pre_image_every_round(services: Services) -> None:
    """GIVEN no time left in any invocation (each does one unit of work) WHEN the Atlas event is delivered THEN
    the loop re-invokes with the same event plus each continuation, and the project's objects are gone."""
    objects = seed_project(services, "user-1", ATLAS_PROJECT_ID)
    event = sample_for(services, "atlas_project_delete")
    resolver = stack_resolver(services)
    machine = state_machine_for(resolver, "ProjectDeletionStateMachine", with_budget(ZERO_BUDGET_MS))

    execution = machine.run(event)

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    payloads = [payload for _, payload in machine.invocations]
    assert len(payloads) >= 2, "a zero budget must take several rounds"
    assert payloads[0] == event
    for payload in payloads[1:]:
        continuation = payload.pop("continuation")
        assert isinstance(continuation, str) and continuation
        assert payload == event, "each round must resend the original event (its pre-image) plus the continuation"
    assert execution.output["complete"] is True and execution.output["failed_count"] == 0
    assert keys_in(services) == objects["kept"]


@pytest.mark.parametrize("sample", ["eventbridge_project_deleted", "atlas_project_delete"])
def test_project_samples_delete_through_the_rule_they_match(services: Services, sample: str) -> None:
    user = "user-1"
    project = ATLAS_PROJECT_ID if sample.startswith("atlas") else "p1"
    objects = seed_project(services, user, project)
    if sample.startswith("atlas"):
        add_project(services, ObjectId("65a5091c2f8e4b00123456ff"), user)

    started = deliver(stack_resolver(services), sample_for(services, sample))

    assert list(started) == (["AtlasProjectDeletedRule"] if sample.startswith("atlas") else ["AppProjectDeletedRule"])
    execution = next(iter(started.values()))
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    left = keys_in(services)
    assert objects["kept"] <= left
    assert not (left & {k for k in objects["doomed"] if k.startswith("users/")}), "the prefix must be gone"
    if sample.startswith("atlas"):
        assert "renders/holiday.mp4" not in left, "the pre-image's legacy output must be deleted"


@pytest.mark.parametrize("sample", ["eventbridge_scene_deleted", "atlas_scene_delete"])
def test_scene_samples_delete_the_scene_only(services: Services, sample: str) -> None:
    user, project = "user-1", "p1"
    doomed = {image(user, project, "s1"), "media/beach.jpg", "narration-1.mp3"}
    kept = {image(user, project, "s10"), image(user, project, "s2"), output(user, project)}
    put_objects(services, doomed | kept)
    add_project(services, project, user)

    started = deliver(stack_resolver(services), sample_for(services, sample))

    execution = next(iter(started.values()))
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    left = keys_in(services)
    assert kept <= left and image(user, project, "s1") not in left
    if sample.startswith("atlas"):
        assert not left & {"media/beach.jpg", "narration-1.mp3"}


@pytest.mark.parametrize("sample", ["atlas_project_delete_no_preimage", "atlas_scene_delete_no_preimage"])
def test_an_event_the_function_refuses_fails_at_once_without_retries_and_deletes_nothing(
    services: Services, sample: str
) -> None:
    """A refused event is not retried (retrying cannot fix it); the failed execution goes to the dead letters."""
    put_objects(services, {image("user-1", "p1", "s1"), "media/beach.jpg"})
    resolver = stack_resolver(services)
    event = sample_for(services, sample)
    (rule,) = matching_rules(resolver, event)
    target = rules(resolver)[rule]["Targets"][0]
    machine = state_machine_for(resolver, logical_id(target["Arn"]), with_budget(900_000))

    execution = machine.run(event)

    assert (execution.status, execution.error) == ("FAILED", "InvalidEvent")
    assert len(machine.invocations) == 1
    assert keys_in(services) == {image("user-1", "p1", "s1"), "media/beach.jpg"}


def test_a_redelivered_event_is_harmless(services: Services) -> None:
    objects = seed_project(services, "user-1", "p1")
    event = load_event("eventbridge_project_deleted")
    first = deliver(Resolver(), event)["AppProjectDeletedRule"]
    second = deliver(Resolver(), event)["AppProjectDeletedRule"]
    assert first.status == second.status == "SUCCEEDED"
    assert first.output["deleted_count"] > 0
    assert (second.output["deleted_count"], second.output["failed_count"]) == (0, 0)
    assert objects["kept"] <= keys_in(services)
