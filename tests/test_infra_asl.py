"""The ASL simulator (tests/support/asl.py) behaves like Step Functions where our state machines rely on it.

These tests use tiny inline definitions, no servers: input/output processing, Choice, Retry backoff, Map
concurrency and tolerated failures, intrinsics, and the refusals that keep the simulator honest (it implements
only what ``infra/*.asl.yaml`` use, and raises ``ASLError`` for anything else).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tests.support.asl import (
    LAMBDA_INVOKE,
    ASLError,
    StateMachine,
    StatesError,
    evaluate_intrinsic,
    read_path,
    validate,
)


def invoke_state(function: str, **extra: Any) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": LAMBDA_INVOKE,
        "Parameters": {"FunctionName": function, "Payload.$": "$"},
        **extra,
    }


def _task(**fields: Any) -> dict[str, Any]:
    """A one-state definition around a Task with ``fields`` changed."""
    return {"StartAt": "A", "States": {"A": {**invoke_state("f"), "End": True, **fields}}}


def test_pass_parameters_and_output_path_follow_the_spec() -> None:
    definition = {
        "StartAt": "Shape",
        "States": {
            "Shape": {
                "Type": "Pass",
                "Parameters": {
                    "copied.$": "$.inner.a",
                    "literal": {"nested.$": "$.inner.b", "n": 1},
                    "ctx.$": "$$.Execution.Name",
                },
                "Next": "Trim",
            },
            "Trim": {"Type": "Pass", "OutputPath": "$.literal", "End": True},
        },
    }
    execution = StateMachine(definition, {}).run({"inner": {"a": 1, "b": [10, 20]}, "x": 0}, execution_name="e1")
    assert execution.status == "SUCCEEDED"
    # Parameters build the state's output from paths, literals and the context object; the rest is dropped.
    assert execution.history[0].output == {"copied": 1, "literal": {"nested": [10, 20], "n": 1}, "ctx": "e1"}
    assert execution.output == {"nested": [10, 20], "n": 1}


def test_task_result_selector_and_result_path_keep_the_input() -> None:
    definition = {
        "StartAt": "Call",
        "States": {"Call": invoke_state("f", ResultSelector={"v.$": "$.Payload.v"}, ResultPath="$.out", End=True)},
    }
    execution = StateMachine(definition, {"f": lambda event: {"v": event["n"] * 2}}).run({"n": 21})
    assert execution.output == {"n": 21, "out": {"v": 42}}


def test_choice_loops_until_done_and_numeric_rules_compare_numbers_only() -> None:
    definition = {
        "StartAt": "Step",
        "States": {
            "Step": invoke_state(
                "count", ResultSelector={"n.$": "$.Payload.n", "stop.$": "$.Payload.stop"}, Next="Done?"
            ),
            "Done?": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.n", "NumericGreaterThan": 2, "Next": "Finished"},
                    {"Variable": "$.stop", "BooleanEquals": True, "Next": "Broken"},
                ],
                "Default": "Step",
            },
            "Finished": {"Type": "Succeed"},
            "Broken": {"Type": "Fail", "Error": "Broken"},
        },
    }
    machine = StateMachine(definition, {"count": lambda event: {"n": event["n"] + 1, "stop": False}})
    assert machine.run({"n": 0}).output == {"n": 3, "stop": False}
    assert len(machine.invocations) == 3
    # "3" is not a number: NumericGreaterThan does not match it, so the next rule decides.
    assert StateMachine(definition, {"count": lambda event: {"n": "3", "stop": True}}).run({"n": 0}).error == "Broken"


def test_a_choice_on_a_missing_field_is_a_runtime_error_that_no_retry_hides() -> None:
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": invoke_state("f", ResultSelector={"finished.$": "$.Payload.finished"}, Next="Check"),
            "Check": {"Type": "Choice", "Choices": [{"Variable": "$.done", "BooleanEquals": True, "Next": "Ok"}]},
            "Ok": {"Type": "Succeed"},
        },
    }
    execution = StateMachine(definition, {"f": lambda event: {"finished": True}}).run({})
    assert (execution.status, execution.error) == ("FAILED", "States.Runtime")


def test_retry_backs_off_exponentially_capped_then_succeeds() -> None:
    """A fault injected on purpose: Lambda throttling cannot be produced by the local stack."""
    calls = {"n": 0}

    def flaky(event: Any) -> Any:
        calls["n"] += 1
        if calls["n"] <= 4:
            raise StatesError("Lambda.TooManyRequestsException", "Rate exceeded")
        return {"ok": True}

    retry = [
        {
            "ErrorEquals": ["Lambda.TooManyRequestsException"],
            "IntervalSeconds": 2,
            "BackoffRate": 3,
            "MaxAttempts": 5,
            "MaxDelaySeconds": 30,
        }
    ]
    slept: list[float] = []
    definition = {"StartAt": "Call", "States": {"Call": invoke_state("f", Retry=retry, End=True)}}
    execution = StateMachine(definition, {"f": flaky}, sleep=slept.append).run({})
    assert execution.status == "SUCCEEDED"
    assert slept == [2, 6, 18, 30]


def test_retries_run_out_and_the_error_fails_the_execution() -> None:
    retry = [{"ErrorEquals": ["States.TaskFailed"], "MaxAttempts": 2, "IntervalSeconds": 1}]

    def broken(event: Any) -> Any:
        raise KeyError("boom")

    definition = {"StartAt": "Call", "States": {"Call": invoke_state("f", Retry=retry, End=True)}}
    machine = StateMachine(definition, {"f": broken})
    execution = machine.run({})
    assert (execution.status, execution.error) == ("FAILED", "KeyError")
    assert len(machine.invocations) == 3
    assert '"errorType": "KeyError"' in str(execution.cause)


def test_map_respects_max_concurrency_and_keeps_item_order() -> None:
    active = {"now": 0, "peak": 0}
    lock = threading.Lock()

    def work(event: Any) -> Any:
        with lock:
            active["now"] += 1
            active["peak"] = max(active["peak"], active["now"])
        time.sleep(0.02)
        with lock:
            active["now"] -= 1
        return event["item"] * 10

    definition = {
        "StartAt": "Fan",
        "States": {
            "Fan": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemSelector": {"item.$": "$$.Map.Item.Value", "tag.$": "$.tag"},
                "MaxConcurrency": 2,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Work",
                    "States": {"Work": invoke_state("work", ResultSelector={"v.$": "$.Payload"}, End=True)},
                },
                "ResultPath": "$.results",
                "End": True,
            }
        },
    }
    execution = StateMachine(definition, {"work": work}).run({"items": [1, 2, 3, 4, 5, 6], "tag": "t"})
    assert execution.output["results"] == [{"v": 10 * i} for i in range(1, 7)]
    assert active["peak"] == 2
    assert len(execution.children) == 6


def test_a_failed_distributed_child_fails_the_map_beyond_the_tolerated_percentage() -> None:
    def work(event: Any) -> Any:
        if event == 3:
            raise RuntimeError("shard 3 broke")
        return event

    processor = {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        "StartAt": "Work",
        "States": {"Work": invoke_state("work", End=True)},
    }
    definition = {
        "StartAt": "Fan",
        "States": {"Fan": {"Type": "Map", "ItemProcessor": processor, "ToleratedFailurePercentage": 0, "End": True}},
    }
    execution = StateMachine(definition, {"work": work}).run([1, 2, 3])
    assert (execution.status, execution.error) == ("FAILED", "States.ExceedToleratedFailureThreshold")
    assert [child.status for child in execution.children] == ["SUCCEEDED", "SUCCEEDED", "FAILED"]


def test_intrinsics_used_by_our_definitions() -> None:
    data = {"event": {"detail": {"a": 1}, "continuation": None}, "next": {"continuation": "c2"}, "n": 1}
    assert evaluate_intrinsic("States.JsonMerge($.event, $.next, false)", data, {}) == {
        "detail": {"a": 1},
        "continuation": "c2",
    }
    assert evaluate_intrinsic("States.JsonToString($.next)", data, {}) == '{"continuation":"c2"}'
    with pytest.raises(StatesError, match="shallow"):
        evaluate_intrinsic("States.JsonMerge($.event, $.next, true)", data, {})
    for unsupported in ("States.Hash($.n, 'SHA-1')", "States.Format('{}', $.n)", "States.JsonToString('x')"):
        with pytest.raises(ASLError):
            evaluate_intrinsic(unsupported, data, {})


def test_paths_read_context_and_report_missing_keys() -> None:
    assert read_path({"a": {"b": 2}}, "$.a.b") == 2
    assert read_path({}, "$$.Map.Item.Value", {"Map": {"Item": {"Value": "v"}}}) == "v"
    with pytest.raises(StatesError, match=r"States\.Runtime"):
        read_path({"a": 1}, "$.b")
    with pytest.raises(ASLError, match="unsupported path"):
        read_path({"a": [{"b": 2}]}, "$.a[0].b")


def test_handler_output_must_be_json_like_a_real_lambda_payload() -> None:
    definition = {"StartAt": "Call", "States": {"Call": invoke_state("f", End=True)}}
    execution = StateMachine(definition, {"f": lambda event: {"when": object()}}).run({})
    assert (execution.status, execution.error) == ("FAILED", "Lambda.Unknown")


def test_oversized_state_fails_with_the_data_limit() -> None:
    definition = {
        "StartAt": "Blow",
        "States": {"Blow": {"Type": "Pass", "Parameters": {"x": "x" * 300_000}, "End": True}},
    }
    assert StateMachine(definition, {}).run({}).error == "States.DataLimitExceeded"


def test_a_runaway_loop_is_stopped() -> None:
    definition = {"StartAt": "Spin", "States": {"Spin": {"Type": "Pass", "Next": "Spin"}}}
    assert StateMachine(definition, {}, max_transitions=50).run({}).error == "Simulator.RunawayLoop"


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True, "Heartbeat": 1}}}, "unsupported fields"),
        ({"StartAt": "A", "States": {"A": {"Type": "Parallel", "End": True}}}, "unsupported Type"),
        ({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}, "is not a state"),
        ({"StartAt": "A", "States": {"A": {"Type": "Pass"}}}, "exactly one of Next or End"),
        ({"StartAt": "A", "States": {"A": {"Type": "Succeed"}, "B": {"Type": "Succeed"}}}, "unreachable"),
        ({"StartAt": "A", "QueryLanguage": "JSONata", "States": {"A": {"Type": "Succeed"}}}, "top-level"),
        (
            {
                "StartAt": "A",
                "States": {
                    "A": {"Type": "Choice", "Choices": [{"Variable": "$.x", "StringMatches": "a*", "Next": "B"}]},
                    "B": {"Type": "Succeed"},
                },
            },
            "unsupported Choice rule",
        ),
        (
            {
                "StartAt": "A",
                "States": {
                    "A": {
                        "Type": "Task",
                        "Resource": LAMBDA_INVOKE,
                        "Parameters": {"FunctionName": "f"},
                        "Retry": [{"ErrorEquals": ["States.ALL"]}],
                        "End": True,
                    }
                },
            },
            "not simulated",
        ),
        (_task(Catch=[{"ErrorEquals": ["States.TaskFailed"], "Next": "A"}]), "unsupported fields"),
        (_task(InputPath="$.x"), "unsupported fields"),
        (_task(Resource="arn:aws:lambda:us-east-1:123456789012:function:f"), "unsupported Task Resource"),
        (_task(Parameters={"FunctionName": "f", "InvocationType": "Event"}), "FunctionName and Payload only"),
        (_task(Parameters={"FunctionName": "f", "Payload.$": "States.Format('{}', $.x)"}), "unsupported intrinsic"),
        (_task(ResultPath="$.a[0]"), "unsupported path"),
        ({"StartAt": "A", "States": {"A": {"Type": "Wait", "Seconds": 1, "End": True}}}, "unsupported Type"),
        (
            {
                "StartAt": "A",
                "States": {
                    "A": {
                        "Type": "Map",
                        "ItemProcessor": {"StartAt": "B", "States": {"B": {"Type": "Succeed"}}},
                        "End": True,
                    }
                },
            },
            "only a DISTRIBUTED Map",
        ),
    ],
)
def test_validate_refuses_what_it_does_not_simulate(definition: dict[str, Any], message: str) -> None:
    with pytest.raises(ASLError, match=message):
        validate(definition)
    with pytest.raises(ASLError, match=message):
        StateMachine(definition, {})
