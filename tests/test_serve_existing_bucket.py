"""``scenestore serve --s3-endpoint`` never rewrites an existing bucket's rules (contract section 7): a team's dev
bucket keeps its CORS and lifecycle configuration exactly, and serve reports what they lack, with the fix, as
``scenestore preflight`` checks it. Rules are set only on a bucket serve creates itself.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from scenestore.clients import make_s3_client
from scenestore.services import Services
from scenestore.settings import Settings
from scenestore.storage import bucket_cors
from scenestore_cli.local.bootstrap import bucket_rule_lines, prepare
from scenestore_cli.local.servers import free_port, start_s3

from tests.test_serve import Served, kill_leftovers, start_serve, stop_and_check

__all__ = ["kill_leftovers"]  # the fixture, used by name below

TEAM_CORS = {
    "CORSRules": [{"AllowedOrigins": ["https://team.example"], "AllowedMethods": ["GET"], "MaxAgeSeconds": 60}]
}
TEAM_LIFECYCLE = {
    "Rules": [{"ID": "team-expire-tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 2}}]
}


def rules_of(s3: Any, bucket: str) -> tuple[Any, Any]:
    return (
        s3.get_bucket_cors(Bucket=bucket)["CORSRules"],
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"],
    )


def test_serve_leaves_an_existing_buckets_rules_and_reports_what_they_lack(
    tmp_path: Path, kill_leftovers: list[Served]
) -> None:
    external = start_s3(free_port(), tmp_path / "external-logs")
    try:
        endpoint = f"http://127.0.0.1:{external.port}"
        env = {"SCENESTORE_BUCKET": "team-dev-bucket", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
        s3 = make_s3_client(
            Settings().with_overrides(s3_endpoint_url=endpoint, aws_access_key_id="k", aws_secret_access_key="s")
        )
        s3.create_bucket(Bucket="team-dev-bucket")
        s3.put_bucket_cors(Bucket="team-dev-bucket", CORSConfiguration=TEAM_CORS)  # type: ignore[arg-type]
        s3.put_bucket_lifecycle_configuration(Bucket="team-dev-bucket", LifecycleConfiguration=TEAM_LIFECYCLE)  # type: ignore[arg-type]
        before = rules_of(s3, "team-dev-bucket")

        served = start_serve(None, "--s3-endpoint", endpoint, env=env, s3_port=False)
        kill_leftovers.append(served)

        assert rules_of(s3, "team-dev-bucket") == before  # not one rule rewritten
        reported = {rule["id"]: rule for rule in served.info["bucket_rules"]}
        assert set(reported) == {"s3.cors:https://scenestore-preflight.example", "s3.lifecycle"}, reported
        assert all(rule["status"] == "fail" for rule in reported.values())
        assert reported["s3.lifecycle"]["fix"].startswith("aws s3api put-bucket-lifecycle-configuration")
        assert "team-expire-tmp" in reported["s3.lifecycle"]["fix"]  # the fix keeps the team's rule
        assert reported["s3.cors:https://scenestore-preflight.example"]["fix"].startswith("aws s3api put-bucket-cors")
        listed = s3.list_objects_v2(Bucket="team-dev-bucket").get("KeyCount", 0)
        assert listed == 0  # checked without writing a single object

        stop_and_check(served, lambda: served.process.send_signal(signal.SIGINT))
        assert served.process.returncode == 0
    finally:
        external.stop()


def test_an_existing_bucket_with_the_contracts_rules_is_reported_clean_and_left_alone(services: Services) -> None:
    before = rules_of(services.s3, services.settings.bucket)
    prepared = prepare(services)
    assert (prepared["bucket_created"], prepared["bucket_rules"]) == (False, [])
    assert rules_of(services.s3, services.settings.bucket) == before


def test_a_rule_hiding_etag_is_reported_not_rewritten(services: Services) -> None:
    bucket = services.settings.bucket
    rule = {**bucket_cors(("*",))["CORSRules"][0], "ExposeHeaders": []}
    services.s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [rule]})
    before = rules_of(services.s3, bucket)

    prepared = prepare(services)

    assert rules_of(services.s3, bucket) == before
    [reported] = prepared["bucket_rules"]
    assert reported["status"] == "fail" and "ETag is not exposed" in reported["message"]
    lines = bucket_rule_lines(prepared["bucket_rules"])
    assert "its rules are left as they are" in lines[0]
    assert lines[1].startswith("    ✗ S3: CORS answers") and lines[2].startswith("      fix: aws s3api put-bucket-cors")


def test_a_missing_bucket_is_created_with_the_contracts_rules(services: Services) -> None:
    other = Services(
        services.settings.with_overrides(bucket=services.settings.bucket + "-new"), services.s3, services.mongo
    )
    prepared = prepare(other)
    assert (prepared["bucket_created"], prepared["bucket_rules"]) == (True, [])
    cors, lifecycle = rules_of(services.s3, other.settings.bucket)
    assert cors == bucket_cors(services.settings.cors_origins)["CORSRules"]
    assert lifecycle[0]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
