"""``scenestore preflight`` against the suite's moto S3 and SecantusDB: the command's output and exit codes, the
MongoDB checks with indexes and pre-images really missing, moto's unchecked signatures (a warning), nothing left
behind after a run, an interruption or an unreachable store; and the fixes are docs/deploy.md's commands.

The misconfigured buckets (CORS, lifecycle, credentials) are in ``tests/peer/test_peer_preflight.py``, against
LocalStack's S3, which checks signatures as R2 does.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo.errors import OperationFailure
from scenestore.db import PROJECTS, SCENES
from scenestore.services import Services
from scenestore.storage import abort_multipart_rule, bucket_cors
from scenestore_cli.local.servers import free_port
from scenestore_cli.preflight_checks import mongo as mongo_checks
from scenestore_cli.preflight_checks import s3 as s3_checks

from tests.conftest import unique_name
from tests.support.preflight import (
    APP_ORIGIN,
    DEPLOYABLE_KEYS,
    NOTHING_LEFT,
    SCENESTORE,
    by_id,
    cli_json,
    left_behind,
    new_run,
    run_all,
    run_cli,
    statuses,
)

DEPLOY_MD = Path(__file__).resolve().parents[1] / "docs" / "deploy.md"


# -- the command --------------------------------------------------------------------------------------------------
def test_a_local_stack_passes_every_check_but_the_emulators_signatures(
    services: Services, cli_env: dict[str, str]
) -> None:
    code, body = cli_json({**cli_env, **DEPLOYABLE_KEYS}, "--origin", APP_ORIGIN)

    found = {check["id"]: check for check in body["checks"]}
    assert code == 0, body
    assert body["ok"] is True and body["cleaned_up"] is True
    assert found["s3.presigned"]["status"] == "warn"
    assert "emulator" in found["s3.presigned"]["message"]  # moto accepts any signature: said, not failed
    others = {cid: c["status"] for cid, c in found.items() if cid != "s3.presigned"}
    assert set(others.values()) == {"ok"}, others
    assert {
        "config.keys",
        "mongodb.reachable",
        "mongodb.scratch",
        "mongodb.indexes",
        "mongodb.pre_images",
        "s3.bucket",
        "s3.clock",
        "s3.objects",
        "s3.multipart",
        f"s3.cors:{APP_ORIGIN}",
        "s3.lifecycle",
    } <= set(others)
    assert body["summary"] == {"ok": len(others), "fail": 0, "warn": 1, "skipped": 0}
    assert body["prefix"].startswith("scenestore-preflight/") and body["collection"].startswith("scenestore_preflight_")
    assert left_behind(services) == NOTHING_LEFT


def test_the_dev_keys_fail_the_configuration_check_without_printing_a_secret(
    services: Services, cli_env: dict[str, str]
) -> None:
    env = {**cli_env, "SCENESTORE_JWT_SECRET": "short-jwt-secret-XYZZY"}
    done = run_cli(env, "--origin", APP_ORIGIN)

    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    failed = [line for line in lines if line.startswith("✗")]
    assert len(failed) == 1 and "config: a deployed presign function would refuse" in failed[0]
    assert "SCENESTORE_JWT_SECRET" in failed[0]
    fix = lines[lines.index(failed[0]) + 1]
    assert fix.strip().startswith("fix: ") and "aws secretsmanager put-secret-value" in fix
    assert any(line.startswith("⚠") and "emulator" in line for line in lines)
    assert re.search(r"\d+ passed, 1 failed, 1 warning\(s\); removed what it wrote", lines[-1])
    for secret in (
        "short-jwt-secret-XYZZY",
        services.settings.media_token_secret,
        services.settings.aws_secret_access_key,
    ):
        assert secret not in done.stdout + done.stderr
    assert left_behind(services) == NOTHING_LEFT


def test_a_bad_origin_is_bad_usage(cli_env: dict[str, str]) -> None:
    for bad in ("app.example.com", "https://app.example.com/path"):
        done = run_cli(cli_env, "--origin", bad)
        assert done.returncode == 2, done.stderr
        assert "is not an origin" in done.stderr


@pytest.mark.parametrize("dependency", ["s3", "mongodb"])
def test_an_unreachable_dependency_is_one_line_exit_1_and_the_rest_is_cleaned_up(
    services: Services, cli_env: dict[str, str], dependency: str
) -> None:
    closed = free_port()
    env = {**cli_env, **DEPLOYABLE_KEYS}
    if dependency == "s3":
        env["SCENESTORE_S3_ENDPOINT_URL"] = f"http://127.0.0.1:{closed}"
    else:
        env["SCENESTORE_MONGODB_URI"] = f"mongodb://127.0.0.1:{closed}/?directConnection=true"
    started = time.monotonic()
    done = run_cli(env, "--json")

    assert time.monotonic() - started < 30
    assert done.returncode == 1, done.stdout + done.stderr
    body = json.loads(done.stdout)
    assert body["error"] == f"{dependency}_unreachable", body
    assert "removed what it wrote" in body["message"]
    assert "Traceback" not in done.stderr
    assert left_behind(services) == NOTHING_LEFT  # the scratch collection written before S3 failed is gone too


# -- MongoDB, misconfigured for real ----------------------------------------------------------------------------
def test_missing_indexes_fail_with_the_ensure_indexes_fix(services: Services) -> None:
    services.db[SCENES].drop_index("project_id_1")
    services.db["scenestore_multipart_uploads"].drop_index("expire_at_1")
    run = new_run(services)

    mongo_checks.run_mongo_checks(run)

    check = by_id(run)["mongodb.indexes"]
    assert check.status == "fail"
    assert "scenes.project_id" in check.message and "scenestore_multipart_uploads.expire_at (TTL)" in check.message
    assert "media.storageKey" not in check.message
    assert check.fix is not None and check.fix.startswith("scenestore ensure-indexes")


def test_an_index_without_its_expiry_is_not_the_ttl_index(services: Services) -> None:
    records = services.db["scenestore_multipart_uploads"]
    records.drop_index("expire_at_1")
    records.create_index("expire_at")  # same key, no expireAfterSeconds: records would never expire
    run = new_run(services)
    mongo_checks.check_indexes(run)
    assert "expire_at (TTL)" in by_id(run)["mongodb.indexes"].message


def test_pre_images_off_fail_with_the_mongosh_fix(services: Services) -> None:
    """SecantusDB reports ``changeStreamPreAndPostImages`` in listCollections as MongoDB does: a real ✗, no warning."""
    services.db.command("collMod", SCENES, changeStreamPreAndPostImages={"enabled": False})
    run = new_run(services)

    mongo_checks.check_pre_images(run)

    check = by_id(run)["mongodb.pre_images"]
    assert check.status == "fail"
    assert "off for scenes" in check.message and "InvalidEvent" in check.message
    assert check.fix == mongo_checks.pre_images_fix(services.settings.mongodb_db)
    assert f'db.getSiblingDB("{services.settings.mongodb_db}")' in check.fix


def test_a_database_without_the_apps_collections_fails_both_mongodb_checks(services: Services) -> None:
    services.db.drop_collection(PROJECTS)
    run = new_run(services)
    mongo_checks.run_mongo_checks(run)
    assert statuses(run, "mongodb.") == {
        "mongodb.reachable": "ok",
        "mongodb.scratch": "ok",
        "mongodb.indexes": "fail",
        "mongodb.pre_images": "fail",
    }
    assert "projects does not exist" in by_id(run)["mongodb.pre_images"].message
    assert PROJECTS not in services.db.list_collection_names()  # read, never created
    mongo_checks.drop_scratch(run)


def test_a_server_that_cannot_list_collection_options_gives_a_warning(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An Atlas user without listCollections: faked (SecantusDB has no roles), the only mock in this file."""
    run = new_run(services)

    def refused(*_args: Any, **_kwargs: Any) -> Any:
        raise OperationFailure("not authorized", code=13, details={"codeName": "Unauthorized"})

    monkeypatch.setattr(type(run.db), "list_collections", refused)
    mongo_checks.check_pre_images(run)
    check = by_id(run)["mongodb.pre_images"]
    assert check.status == "warn" and "cannot tell" in check.message and "Unauthorized" in check.message


# -- S3 on moto ---------------------------------------------------------------------------------------------------
def test_a_clock_far_off_fails_with_its_fix(services: Services) -> None:
    run = new_run(services)
    reachable, server_date = s3_checks.check_bucket(run)
    assert reachable and server_date is not None
    s3_checks.check_clock(run, server_date, time.time() + 600)  # our clock 10 minutes ahead
    check = by_id(run)["s3.clock"]
    assert check.status == "fail" and "behind this machine's" in check.message
    assert check.fix is not None and "timedatectl" in check.fix


def test_an_origin_star_is_checked_with_a_probe_origin_and_said(services: Services) -> None:
    run = new_run(services, "*")
    assert run_all(run) == {"cleaned_up": True}
    found = by_id(run)
    assert found["s3.cors.origins"].status == "warn" and "--origin" in found["s3.cors.origins"].message
    assert found[f"s3.cors:{s3_checks.ANY_ORIGIN_PROBE}"].status == "ok"
    assert left_behind(services) == NOTHING_LEFT


def test_a_missing_bucket_fails_and_skips_the_other_s3_checks(services: Services) -> None:
    run = new_run(services)
    run.settings = services.settings.with_overrides(bucket=unique_name("missing"))
    s3_checks.run_s3_checks(run)
    check = by_id(run)["s3.bucket"]
    assert check.status == "fail" and "there is no bucket" in check.message
    assert check.fix is not None and "SCENESTORE_BUCKET" in check.fix
    assert {c.status for c in run.checks if c.id != "s3.bucket"} == {"skipped"}


# -- interruptions ---------------------------------------------------------------------------------------------
def test_an_interruption_mid_multipart_upload_leaves_nothing_behind(services: Services) -> None:
    """Ctrl-C arriving while the two-part upload completes: raised from a botocore hook at that very call (a
    moment a real signal cannot be aimed at); the upload, its parts and every object written so far are gone."""
    run = new_run(services)
    seen: list[str] = []

    def ctrl_c(**_kwargs: Any) -> None:
        seen.append(str(len(left_behind(services)["uploads"])))
        raise KeyboardInterrupt

    services.s3.meta.events.register("before-call.s3.CompleteMultipartUpload", ctrl_c)
    try:
        outcome = run_all(run)
    finally:
        services.s3.meta.events.unregister("before-call.s3.CompleteMultipartUpload", ctrl_c)

    assert seen == ["1"]  # an upload was in progress when the interruption came
    assert outcome == {"interrupted": "SIGINT", "cleaned_up": True}
    assert left_behind(services) == NOTHING_LEFT
    assert "s3.lifecycle" not in by_id(run)  # the run stopped there


@pytest.fixture
def silent_s3() -> Iterator[str]:
    """An endpoint that accepts connections and never answers: preflight waits there, interruptible."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        server.close()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_during_the_run_removes_the_scratch_collection(
    services: Services, cli_env: dict[str, str], silent_s3: str, signum: int
) -> None:
    env = {**cli_env, "SCENESTORE_S3_ENDPOINT_URL": silent_s3, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [SCENESTORE, "preflight"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    for line in process.stdout:  # until the scratch document is written; S3 (silent) comes next
        if "scratch collection" in line:
            break
    assert left_behind(services)["collections"], "the scratch collection should exist while the run waits on S3"
    time.sleep(0.3)
    process.send_signal(signum)
    _out, err = process.communicate(timeout=15)

    assert process.returncode == 1, err
    assert f"interrupted ({signal.Signals(signum).name}); removed what it wrote" in err
    assert "Traceback" not in err
    assert left_behind(services) == NOTHING_LEFT


# -- the fixes are docs/deploy.md's commands ------------------------------------------------------------------
def _heredoc(name: str) -> Any:
    text = DEPLOY_MD.read_text()
    match = re.search(rf"cat > {re.escape(name)} <<'EOF'\n(.*?)\nEOF", text, re.S)
    assert match, f"docs/deploy.md has no {name}"
    return json.loads(match.group(1))


def test_deploy_md_gives_the_rules_preflight_checks_for() -> None:
    assert _heredoc("cors.json") == bucket_cors((APP_ORIGIN,))
    assert _heredoc("lifecycle.json") == {"Rules": [abort_multipart_rule(7)]}


def test_every_fix_names_a_command_of_deploy_md(services: Services) -> None:
    text = " ".join(DEPLOY_MD.read_text().split())
    run = new_run(services)
    commands = {
        "cors": s3_checks.cors_fix(run),
        "indexes": mongo_checks.INDEX_FIX,
        "pre_images": mongo_checks.pre_images_fix("autoshorts"),
    }
    assert commands["cors"].startswith("aws s3api put-bucket-cors --bucket ")
    assert (
        json.loads(commands["cors"].split("--cors-configuration ", 1)[1].strip("'"))["CORSRules"][0]
        == (bucket_cors((APP_ORIGIN,))["CORSRules"][0])
    )
    for verb in (
        "aws s3api put-bucket-cors",
        "aws s3api put-bucket-lifecycle-configuration",
        "scenestore ensure-indexes",
    ):
        assert verb in text
    assert "scenestore preflight" in text
    loop = (
        'for (const c of ["projects", "scenes"]) '
        "db.runCommand({collMod: c, changeStreamPreAndPostImages: {enabled: true}});"
    )
    assert loop in text and loop in commands["pre_images"]
    assert (
        "aws secretsmanager put-secret-value --secret-id <RuntimeSecretArn> --secret-string file://secret.json" in text
    )


# -- configuration: the JWKS a deployed function would verify tokens against ------------------------------------
@pytest.fixture
def jwks_url() -> Iterator[str]:
    """A JWKS endpoint on loopback, serving one RSA public key (only its shape matters here)."""
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"keys": [{"kty": "RSA", "kid": "k1", "n": "sXch", "e": "AQAB"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


def test_a_jwks_url_answering_with_keys_passes_and_a_silent_one_fails(services: Services, jwks_url: str) -> None:
    from scenestore_cli.preflight_checks.config import JWKS_FIX, check_jwks

    run = new_run(services)
    check_jwks(run, jwks_url)
    check_jwks(run, f"http://127.0.0.1:{free_port()}/jwks.json")
    answered, silent = run.checks
    assert (answered.status, answered.message) == ("ok", "config: SCENESTORE_JWT_JWKS_URL answers with 1 key(s)")
    assert silent.status == "fail" and "does not answer with a key set" in silent.message
    assert silent.fix == JWKS_FIX
