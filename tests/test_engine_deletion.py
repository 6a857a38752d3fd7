"""The deletion path as deployed, on moto's Step Functions engine (``tests.support.moto_engine``).

GIVEN the template's rules, both deletion state machines (``infra/deletion.asl.yaml`` with each machine's
substitutions) and the delete functions, deployed into moto, with the real handlers answering the invokes
against the local S3 and MongoDB servers WHEN the app's events and the Atlas Trigger's events are sent as their
producers send them THEN exactly the rule meant for each starts its machine, and the loop deletes what the
contract says, round after round on a short Lambda time budget, through the faults Lambda and S3 can throw.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from bson import ObjectId
from scenestore.cleanup import DELETE_MARGIN_SECONDS
from scenestore.services import Services, use_services

from tests.support.events import load_event
from tests.support.moto_engine import ATLAS_SOURCE, TIMEOUT, Engine
from tests.support.s3faults import FaultyS3, with_s3
from tests.support.seed import add_project, image, keys_in, output, put_objects, scene_doc

ATLAS_PROJECT_ID = "65a5091c2f8e4b0012345678"  # tests/events/atlas_project_delete.json
#: A Lambda with no time past the handler's margin: each invocation does its one guaranteed unit of work.
ONE_UNIT = DELETE_MARGIN_SECONDS


def sample(name: str, services: Services) -> dict[str, Any]:
    """A sample event aimed at this test's database, Atlas's from the stack's own trigger (one per stack)."""
    event = load_event(name)
    if event["source"].startswith("aws.partner/"):
        event["source"] = ATLAS_SOURCE
        event["detail"] = {**event["detail"], "ns": {**event["detail"]["ns"], "db": services.settings.mongodb_db}}
    return event


@pytest.fixture
def engine(services: Services) -> Any:
    with Engine(parameters={"MongoDbName": services.settings.mongodb_db}) as deployed:
        yield deployed


def seed_rounds(services: Services, user: str, project: str) -> set[str]:
    """A project of three rounds on a one-unit budget, with little data: 201 scenes whose legacy media are the
    project's (two legacy batches of 200), then its prefix (one page). Returns the keys that go."""
    legacy = [f"legacy/{n:03d}.jpg" for n in range(201)]
    prefix = [image(user, project, f"s{n}") for n in range(5)]
    put_objects(services, [*legacy, *prefix])
    services.db.scenes.insert_many([scene_doc(f"s{n}", project, media=key) for n, key in enumerate(legacy)])
    return {*legacy, *prefix}


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


@pytest.mark.parametrize(
    ("name", "rule", "machine"),
    [
        ("eventbridge_project_deleted", "AppProjectDeletedRule", "ProjectDeletionStateMachine"),
        ("atlas_project_delete", "AtlasProjectDeletedRule", "ProjectDeletionStateMachine"),
    ],
)
def test_project_events_delete_through_the_rule_meant_for_them(
    services: Services, engine: Engine, name: str, rule: str, machine: str
) -> None:
    atlas = name.startswith("atlas")
    project = ATLAS_PROJECT_ID if atlas else "p1"
    objects = seed_project(services, "user-1", project)
    if atlas:
        add_project(services, ObjectId("65a5091c2f8e4b00123456ff"), "user-1")

    started = engine.put_event(sample(name, services))

    assert [r for r, _ in engine.started_by_rules] == [rule]
    (execution,) = [engine.wait(arn) for arn in started]
    assert execution.arn.split(":")[-2] == engine.machines[machine].split(":")[-1]
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert execution.input["detail"] == sample(name, services)["detail"], "delivered as the rule delivers it"
    assert execution.input["account"] == "123456789012"
    left = keys_in(services)
    assert objects["kept"] <= left
    assert not {k for k in left if k.startswith(f"users/user-1/projects/{project}/")}
    assert ("renders/holiday.mp4" not in left) == atlas, "only the pre-image knows the project's legacy output"


@pytest.mark.parametrize(
    ("name", "rule"),
    [("eventbridge_scene_deleted", "AppSceneDeletedRule"), ("atlas_scene_delete", "AtlasSceneDeletedRule")],
)
def test_scene_events_delete_the_scene_only(services: Services, engine: Engine, name: str, rule: str) -> None:
    user, project = "user-1", "p1"
    doomed = {image(user, project, "s1"), "media/beach.jpg", "narration-1.mp3"}
    kept = {image(user, project, "s10"), image(user, project, "s2"), output(user, project)}
    put_objects(services, doomed | kept)
    add_project(services, project, user)

    (arn,) = engine.put_event(sample(name, services))
    execution = engine.wait(arn)

    assert [r for r, _ in engine.started_by_rules] == [rule]
    assert engine.machines["SceneDeletionStateMachine"].split(":")[-1] in execution.arn
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    left = keys_in(services)
    assert kept <= left and image(user, project, "s1") not in left
    assert bool(left & {"media/beach.jpg", "narration-1.mp3"}) == (not name.startswith("atlas"))


def test_events_no_rule_is_meant_for_start_nothing(services: Services, engine: Engine) -> None:
    lookalike = {**sample("eventbridge_project_deleted", services), "source": "someone.else"}
    update = sample("atlas_scene_update", services)
    assert engine.put_event(lookalike) == [] and engine.put_event(update) == []
    assert engine.invocations == []


def test_the_loop_resends_the_event_every_round_and_survives_a_round_killed_after_its_work(
    services: Services, engine: Engine
) -> None:
    """GIVEN a Lambda with no time past its margin (one unit of work per round) and the second round timing
    out after its work (Lambda's timeout, injected: its answer is lost) WHEN the Atlas event is sent THEN every
    round gets the original event (its pre-image) plus the last continuation, the killed round is retried with
    the same input after States.TaskFailed's 10 s, and every object is deleted exactly once."""
    doomed = seed_rounds(services, "user-1", ATLAS_PROJECT_ID)
    put_objects(services, ["renders/holiday.mp4", "unrelated.jpg"])  # the pre-image's output; a neighbour
    total = len(doomed) + 1
    engine.budget["DeleteProjectFunction"] = ONE_UNIT
    engine.fault("DeleteProjectFunction", TIMEOUT, when=lambda payload: "continuation" in payload)
    event = sample("atlas_project_delete", services)

    (arn,) = engine.put_event(event)
    execution = engine.wait(arn)

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    calls = engine.calls("DeleteProjectFunction")
    assert len(calls) >= 4 and [c.outcome for c in calls].count("timeout") == 1
    killed = next(i for i, c in enumerate(calls) if c.outcome == "timeout")
    assert calls[killed + 1].payload == calls[killed].payload, "the retry has the same input"
    assert 10 in engine.waits
    delivered = execution.input
    for call in calls:
        resent = dict(call.payload)
        assert resent.pop("continuation", None) is not None or call is calls[0]
        assert resent == delivered, "each round resends the event as delivered (with the pre-image)"
    deleted = sum(c.answer["deleted_count"] for c in calls if c.outcome == "ok")
    deleted += calls[killed].lost["deleted_count"]
    assert deleted == total, "each object deleted exactly once: the killed round's work is not redone"
    assert keys_in(services) == {"unrelated.jpg"}
    assert execution.output["complete"] is True and execution.largest_state < 256 * 1024


@pytest.mark.parametrize("name", ["atlas_project_delete_no_preimage", "atlas_scene_delete_no_preimage"])
def test_a_refused_event_fails_at_once_and_reaches_the_dead_letter_queue(
    services: Services, engine: Engine, name: str
) -> None:
    """A refused event is not retried (retrying cannot fix it): one invocation, InvalidEvent, nothing deleted,
    and the failed execution's status change lands in the dead-letter queue."""
    put_objects(services, {image("user-1", "p1", "s1"), "media/beach.jpg"})

    (arn,) = engine.put_event(sample(name, services))
    execution = engine.wait(arn)

    assert (execution.status, execution.error) == ("FAILED", "InvalidEvent")
    assert len(engine.invocations) == 1 and engine.waits == []
    assert keys_in(services) == {image("user-1", "p1", "s1"), "media/beach.jpg"}
    (message,) = engine.dead_letters()
    body = json.loads(message["Body"])
    assert body["detail-type"] == "Step Functions Execution Status Change"
    assert (body["detail"]["status"], body["detail"]["executionArn"]) == ("FAILED", arn)


def refused_key_run(services: Services, engine: Engine) -> tuple[Any, FaultyS3, dict[str, Any]]:
    """A project of three rounds or more whose one legacy key S3 refuses in round 1 (a fault the local store
    cannot produce: ``FaultyS3`` answers AccessDenied for that key); the execution as it ends."""
    seed_rounds(services, "user-1", "p1")
    faulty = FaultyS3(services.s3)
    faulty.fail_keys({"legacy/000.jpg"}, "AccessDenied")
    engine.budget["DeleteProjectFunction"] = ONE_UNIT
    event = sample("eventbridge_project_deleted", services)
    with use_services(with_s3(services, faulty)):
        (arn,) = engine.put_event(event)
        execution = engine.wait(arn)
    return execution, faulty, event


def test_a_key_refused_in_round_one_of_three_fails_the_execution_naming_it_once(
    services: Services, engine: Engine
) -> None:
    execution, _, _ = refused_key_run(services, engine)

    assert (execution.status, execution.error) == ("FAILED", "DeletionIncomplete")
    calls = engine.calls("DeleteProjectFunction")
    assert calls[0].answer["failed_count"] == 1 and len(calls) >= 3 + 1 + 2, "3 rounds, the recheck, 2 retries"
    assert all(c.answer["failed_count"] == 0 for c in calls[1:-3] if c.outcome == "ok")
    cause = execution.cause_json
    assert cause["errorType"] == "DeletionIncomplete"
    detail = json.loads(cause["errorMessage"])
    assert (detail["failed_count"], [e["key"] for e in detail["errors"]]) == (1, ["legacy/000.jpg"])
    assert detail["errors"][0]["code"] == "AccessDenied"
    assert execution.states_entered()[-1] == "Delete", "the failed step is the deleting one (a redrive re-runs it)"
    assert engine.waits[-2:] == [30, 120], "DeletionIncomplete is retried twice, 30 s then 120 s apart"
    assert [c.outcome for c in calls[-3:]] == ["error"] * 3, "the recheck, then its two retries"
    assert keys_in(services) == {"legacy/000.jpg"}
    (message,) = engine.dead_letters()
    assert json.loads(message["Body"])["detail"]["executionArn"] == execution.arn


@pytest.mark.parametrize("how", ["redrive", "new execution"])
def test_once_the_cause_is_fixed_a_redrive_or_a_new_execution_deletes_what_was_left(
    services: Services, engine: Engine, how: str
) -> None:
    """docs/operations.md, "Re-driving a deletion": from the dead-letter message, redrive the failed execution
    (W7 stands in for RedriveExecution: the failed step again with its input) or start a new one with its input."""
    refused_key_run(services, engine)
    (message,) = engine.dead_letters()
    detail = json.loads(message["Body"])["detail"]

    if how == "redrive":
        arn = engine.redrive(detail["executionArn"])
    else:
        machine = next(k for k, v in engine.machines.items() if v == detail["stateMachineArn"])
        arn = engine.start(machine, json.loads(detail["input"]))
    again = engine.wait(arn)

    assert again.status == "SUCCEEDED", (again.error, again.cause)
    assert keys_in(services) == set()
    if how == "redrive":
        assert again.states_entered()[0] == "Delete"
        last = engine.calls("DeleteProjectFunction")[-1]
        assert last.answer["deleted_count"] == 1 and "rechecked" in {w["code"] for w in last.answer["warnings"]}


def test_an_undelivered_event_from_the_dead_letter_queue_is_re_driven_to_its_target(
    services: Services, engine: Engine
) -> None:
    """docs/operations.md, "an undelivered event": EventBridge dead-letters an event it could not deliver with
    its body and the attributes RULE_ARN, TARGET_ARN, ERROR_CODE, ERROR_MESSAGE (AWS's documented format; moto's
    EventBridge never dead-letters, so the message is put here as EventBridge would). Starting TARGET_ARN with
    the body deletes the project."""
    objects = seed_project(services, "user-1", "p1")
    event = {**sample("eventbridge_project_deleted", services), "account": "123456789012"}
    sqs = engine.client("sqs")
    attributes = {
        "RULE_ARN": "arn:aws:events:us-east-1:123456789012:rule/AppProjectDeletedRule",
        "TARGET_ARN": engine.machines["ProjectDeletionStateMachine"],
        "ERROR_CODE": "SDK_CLIENT_ERROR",
        "ERROR_MESSAGE": "Unable to invoke the target (states:StartExecution AccessDenied)",
    }
    sqs.send_message(
        QueueUrl=engine.queue_url,
        MessageBody=json.dumps(event),
        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    )

    (message,) = engine.dead_letters()
    target = message["MessageAttributes"]["TARGET_ARN"]["StringValue"]
    machine = next(k for k, v in engine.machines.items() if v == target)
    execution = engine.wait(engine.start(machine, json.loads(message["Body"])))

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert not {k for k in keys_in(services) if k.startswith("users/user-1/projects/p1/")}
    assert objects["kept"] <= keys_in(services)
