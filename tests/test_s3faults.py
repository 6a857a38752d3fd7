"""The S3 fault wrapper the fault-injection tests rely on: each rule fails what it names and nothing else."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError
from scenestore.services import Services

from tests.support.s3faults import FaultyS3
from tests.support.seed import keys_in, put_objects


def _head(faulty: FaultyS3, services: Services, key: str) -> str:
    """``"ok"``, or the error code the call raised."""
    try:
        faulty.head_object(Bucket=services.settings.bucket, Key=key)
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "ok"


def test_a_counted_fault_fails_that_many_calls_like_s3_then_passes_through(services: Services) -> None:
    put_objects(services, ["a.png"])
    faulty = FaultyS3(services.s3)
    storm = faulty.fail("head_object", "SlowDown", times=2)

    with pytest.raises(ClientError) as raised:
        faulty.head_object(Bucket=services.settings.bucket, Key="a.png")
    assert raised.value.response["Error"]["Code"] == "SlowDown"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert raised.value.operation_name == "HeadObject"
    assert [_head(faulty, services, "a.png") for _ in range(2)] == ["SlowDown", "ok"]
    assert (storm.injected, faulty.calls["head_object"]) == (2, 3)
    assert faulty.list_objects_v2(Bucket=services.settings.bucket)["KeyCount"] == 1  # other operations untouched


def test_a_timed_storm_ends_by_itself_and_a_keyed_fault_spares_other_keys(services: Services) -> None:
    put_objects(services, ["a.png", "b.png"])
    faulty = FaultyS3(services.s3)
    faulty.fail("head_object", "InternalError", keys={"b.png"})
    faulty.fail("get_object", "ServiceUnavailable", seconds=0.3)

    assert (_head(faulty, services, "a.png"), _head(faulty, services, "b.png")) == ("ok", "InternalError")
    with pytest.raises(ClientError, match="ServiceUnavailable"):
        faulty.get_object(Bucket=services.settings.bucket, Key="a.png")
    time.sleep(0.35)
    assert faulty.get_object(Bucket=services.settings.bucket, Key="a.png")["Body"].read() == b"0123456789"


def test_per_key_delete_errors_come_back_in_the_response_for_the_first_attempts(services: Services) -> None:
    put_objects(services, ["a.png", "b.png"])
    faulty = FaultyS3(services.s3)
    faulty.fail_keys({"b.png"}, "InternalError", times=1)
    request = {"Bucket": services.settings.bucket, "Delete": {"Objects": [{"Key": "a.png"}, {"Key": "b.png"}]}}

    first = faulty.delete_objects(**request)
    assert [(e["Key"], e["Code"]) for e in first["Errors"]] == [("b.png", "InternalError")]
    assert keys_in(services) == {"b.png"}
    second = faulty.delete_objects(**request)
    assert "Errors" not in second and keys_in(services) == set()
    assert faulty.attempts == {"a.png": 2, "b.png": 2} and faulty.batch_sizes == [2, 2]


def test_a_crash_after_a_step_leaves_the_step_done_and_the_caller_without_an_answer(services: Services) -> None:
    class Crash(BaseException):
        pass

    def crash(call: object) -> None:
        raise Crash

    faulty = FaultyS3(services.s3)
    faulty.after("put_object", crash, nth=2)
    bucket = services.settings.bucket
    faulty.put_object(Bucket=bucket, Key="first", Body=b"1")
    with pytest.raises(Crash):
        faulty.put_object(Bucket=bucket, Key="second", Body=b"2")
    assert keys_in(services) == {"first", "second"}

    faulty.before("put_object", crash)
    with pytest.raises(Crash):
        faulty.put_object(Bucket=bucket, Key="third", Body=b"3")
    assert "third" not in keys_in(services)
