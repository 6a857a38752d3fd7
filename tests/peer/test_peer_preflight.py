"""``scenestore preflight`` against an S3 that checks presigned signatures and CORS (LocalStack, or the existing
bucket of an acceptance run): configured as docs/deploy.md says, every S3 check is ✓; each misconfiguration, made
for real on a bucket of its own, is its ✗ with a fix that, applied as printed, makes the check pass; and nothing is
ever left under the preflight's prefix.

LocalStack checks the signatures of presigned URLs but not of the SDK's own signed requests: wrong keys show at
the first presigned PUT there (on R2 the first listing already refuses them).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from typing import Any

import pytest
from scenestore.clients import make_s3_client
from scenestore.services import Services
from scenestore.storage import bucket_cors
from scenestore_cli.local import peer
from scenestore_cli.preflight_checks import Check, Run
from scenestore_cli.preflight_checks import s3 as s3_checks

from tests.peer.conftest import configure_as_deploy_md
from tests.support.preflight import NOTHING_LEFT, by_id, left_behind, new_run, run_all, statuses

pytestmark = [pytest.mark.s3_peer]

OTHER_ORIGIN = "https://elsewhere.example.org"


def test_a_bucket_configured_as_deploy_md_passes_every_s3_check(
    services: Services, peer_target: peer.PeerTarget, peer_origin: str
) -> None:
    run = new_run(services, peer_origin)  # through this test's confined client: its prefix holds the preflight's
    outcome = run_all(run)

    s3 = statuses(run, "s3.")
    assert outcome == {"cleaned_up": True}
    if peer_target.existing_bucket and s3.get("s3.lifecycle") == "warn":
        s3.pop("s3.lifecycle")  # an Object Read & Write token may not read the rules: said, not failed
    assert set(s3.values()) == {"ok"}, [c.message for c in run.checks if c.status != "ok"]
    assert set(s3) >= {"s3.bucket", "s3.clock", "s3.objects", "s3.presigned", "s3.multipart", f"s3.cors:{peer_origin}"}
    assert services.s3.list_objects_v2(Bucket=services.settings.bucket).get("KeyCount", 0) == 0
    assert services.s3.list_multipart_uploads(Bucket=services.settings.bucket).get("Uploads", []) == []


# -- misconfigured for real, each on a bucket of its own ------------------------------------------------------
def _no_cors(s3: Any, bucket: str) -> None:
    s3.delete_bucket_cors(Bucket=bucket)


def _no_etag(s3: Any, bucket: str) -> None:
    rule = {**bucket_cors((peer.DEFAULT_ORIGIN,))["CORSRules"][0]}
    del rule["ExposeHeaders"]
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [rule]})


def _other_origin_only(s3: Any, bucket: str) -> None:
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=bucket_cors((OTHER_ORIGIN,)))


def _no_lifecycle(s3: Any, bucket: str) -> None:
    other_rule = {"ID": "teams-own-rule", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 3}}
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [other_rule]})


MISCONFIGURED: dict[str, tuple[Callable[[Any, str], None], str, str]] = {
    # name: (how the bucket is broken, the check that fails, what its message says)
    "no CORS rule": (_no_cors, f"s3.cors:{peer.DEFAULT_ORIGIN}", "CORS refuses a browser's PUT"),
    "a rule without ExposeHeaders ETag": (_no_etag, f"s3.cors:{peer.DEFAULT_ORIGIN}", "ETag is not exposed"),
    "a rule for another origin only": (_other_origin_only, f"s3.cors:{peer.DEFAULT_ORIGIN}", "preflight answered 403"),
    "no lifecycle rule": (_no_lifecycle, "s3.lifecycle", "no lifecycle rule aborts incomplete multipart uploads"),
}


@pytest.mark.parametrize("name", list(MISCONFIGURED))
def test_a_misconfigured_bucket_fails_its_check_and_the_printed_fix_mends_it(
    bucket_of_its_own: Services, name: str
) -> None:
    services = bucket_of_its_own
    bucket = services.settings.bucket
    configure_as_deploy_md(services.s3, bucket)
    breaks, check_id, said = MISCONFIGURED[name]
    breaks(services.s3, bucket)

    run = new_run(services, peer.DEFAULT_ORIGIN)
    outcome = run_all(run)

    failed = {c.id: c for c in s3_failures(run)}
    assert set(failed) == {check_id}, [c.message for c in run.checks if c.status != "ok"]
    assert said in failed[check_id].message
    assert outcome == {"cleaned_up": True}
    assert left_behind(services) == NOTHING_LEFT

    apply_fix(services.s3, failed[check_id].fix or "")  # the command exactly as printed, through boto3
    again = new_run(services, peer.DEFAULT_ORIGIN)
    run_all(again)
    assert s3_failures(again) == []
    if name == "no lifecycle rule":  # the fix kept the team's own rule
        rules = services.s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        assert "teams-own-rule" in {rule["ID"] for rule in rules}
    if name == "a rule for another origin only":  # ... and the other origin's rule
        origins = [r["AllowedOrigins"] for r in services.s3.get_bucket_cors(Bucket=bucket)["CORSRules"]]
        assert [OTHER_ORIGIN] in origins


def s3_failures(run: Run) -> list[Check]:
    """The bucket's ✗ (the suite's dev keys fail the configuration check, which is not what these tests are about)."""
    return [c for c in run.checks if c.status == "fail" and c.id.startswith("s3.")]


def apply_fix(s3: Any, fix: str) -> None:
    """Run an ``aws s3api put-bucket-cors`` / ``put-bucket-lifecycle-configuration`` command line with boto3."""
    argv = shlex.split(fix)
    assert argv[:2] == ["aws", "s3api"], fix
    options = dict(zip(argv[3::2], argv[4::2], strict=True))
    bucket = options["--bucket"]
    if argv[2] == "put-bucket-cors":
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=json.loads(options["--cors-configuration"]))
    elif argv[2] == "put-bucket-lifecycle-configuration":
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration=json.loads(options["--lifecycle-configuration"])
        )
    else:
        pytest.fail(f"not a bucket-rule command: {fix}")


def test_wrong_credentials_fail_with_the_credentials_fix(bucket_of_its_own: Services) -> None:
    services = bucket_of_its_own
    configure_as_deploy_md(services.s3, services.settings.bucket)
    wrong = services.settings.with_overrides(aws_secret_access_key="not-the-secret")
    client = make_s3_client(wrong)
    run = new_run(services, peer.DEFAULT_ORIGIN, s3=client)
    run.settings = wrong

    outcome = run_all(run)

    failed = s3_failures(run)
    assert failed, [c.message for c in run.checks]
    assert by_id(run)["s3.presigned"].status == "fail"
    assert "SignatureDoesNotMatch" in by_id(run)["s3.presigned"].message
    assert all(c.fix and "AWS_ACCESS_KEY_ID" in c.fix for c in failed), [(c.message, c.fix) for c in failed]
    assert statuses(run, "s3.multipart") == {"s3.multipart": "skipped"}  # one cause, reported once
    assert outcome == {"cleaned_up": True}
    assert left_behind(services) == NOTHING_LEFT
    client.close()


def test_the_cors_fix_puts_the_checked_origins_rule_first(bucket_of_its_own: Services) -> None:
    """S3 applies the first matching rule: the fix's rule must come before a deficient one for the same origin."""
    services = bucket_of_its_own
    _no_etag(services.s3, services.settings.bucket)
    run = new_run(services, peer.DEFAULT_ORIGIN)
    fix = s3_checks.cors_fix(run)
    rules = json.loads(dict(zip(shlex.split(fix)[3::2], shlex.split(fix)[4::2], strict=True))["--cors-configuration"])
    assert rules["CORSRules"][0] == bucket_cors((peer.DEFAULT_ORIGIN,))["CORSRules"][0]
    assert len(rules["CORSRules"]) == 2
