"""Deletion wiring, followed name by name from template.yaml: which rule matches which event, where it sends it.

GIVEN each sample event of each source (tests/events/, the delete functions' own samples) WHEN it is matched
against every EventBridge rule of the template (moto's EventBridge pattern matcher) THEN exactly the rules
meant for it match, on the bus their source publishes to, with retries and the dead-letter queue. What the
state machines then do with the event runs on moto's engine: tests/test_engine_deletion.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.events.models import EventPattern

from tests.support.events import load_event
from tests.support.infra import (
    Resolver,
    resources,
)


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
