"""``scenestore serve`` at its edges (issue 13, contract section 7 "Additions (turn 2)"), as a real subprocess.

- any region: ``SCENESTORE_S3_REGION=eu-west-1`` creates the bucket with that location constraint;
- Ctrl-C to the whole process group stops everything within about 2 s; a ``kill -9`` leaves no server behind;
- each request is logged once;
- ``--s3-endpoint URL`` runs against an external S3 (here a second moto server the test starts) with the
  bucket and credentials of the environment, and starts no S3 server of its own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
import requests
from scenestore.clients import make_s3_client
from scenestore.settings import Settings
from scenestore_cli.local.servers import free_port, start_s3

from tests.test_serve import SCENESTORE, Served, clean_env, kill_leftovers, start_serve, stop_and_check

__all__ = ["kill_leftovers"]  # the fixture, used by name below

#: "within about 2 s" on an idle machine; the margin is for a CI box running other suites at the same time.
CTRL_C_BUDGET_S = 3.0


def _stderr_after_ctrl_c(served: Served) -> tuple[float, str]:
    pgid = os.getpgid(served.process.pid)
    started = time.monotonic()
    err = stop_and_check(served, lambda: os.killpg(pgid, signal.SIGINT))
    return time.monotonic() - started, err


def test_any_region_ctrl_c_within_2_s_and_each_request_logged_once(kill_leftovers: list[Served]) -> None:
    env = {"SCENESTORE_S3_REGION": "eu-west-1", "POWERTOOLS_LOG_LEVEL": "INFO"}  # the session runs at WARNING
    served = start_serve(None, new_session=True, env=env)
    kill_leftovers.append(served)
    info = served.info
    assert info["region"] == "eu-west-1"
    s3 = make_s3_client(Settings().with_overrides(s3_endpoint_url=info["s3"], s3_region="eu-west-1"))
    assert s3.get_bucket_location(Bucket=info["bucket"])["LocationConstraint"] == "eu-west-1"

    for _ in range(2):
        assert requests.get(f"{info['api']}/health", timeout=30).status_code == 200
    assert requests.get(f"{info['api']}/files?key=a.png", timeout=30).status_code == 401

    elapsed, err = _stderr_after_ctrl_c(served)
    assert elapsed < CTRL_C_BUDGET_S, err
    assert served.process.returncode == 0, err
    assert len([line for line in err.splitlines() if "/health" in line]) == 2, err
    assert len([line for line in err.splitlines() if "/files" in line]) == 1, err


def test_ctrl_c_with_a_data_dir_shuts_mongodb_down_cleanly(tmp_path: Path, kill_leftovers: list[Served]) -> None:
    served = start_serve(tmp_path, new_session=True)
    kill_leftovers.append(served)
    elapsed, err = _stderr_after_ctrl_c(served)
    assert served.process.returncode == 0, err
    assert elapsed < CTRL_C_BUDGET_S + 2.5  # SecantusDB's own shutdown takes about 2 s
    # the same data directory serves again: the clean shutdown left WiredTiger consistent
    again = start_serve(tmp_path)
    kill_leftovers.append(again)
    assert requests.get(f"{again.info['api']}/health", timeout=30).json() == {"s3": "ok", "mongodb": "ok"}
    stop_and_check(again, lambda: again.process.send_signal(signal.SIGTERM))


def test_kill_9_of_serve_leaves_no_server_running(kill_leftovers: list[Served]) -> None:
    served = start_serve(None)
    kill_leftovers.append(served)
    assert len(served.children) >= 2
    served.process.send_signal(signal.SIGKILL)
    served.process.wait(10)
    _, alive = psutil.wait_procs(served.children, timeout=10)
    assert not alive, [p.cmdline() for p in alive]


def test_s3_endpoint_serves_against_an_external_s3(tmp_path: Path, kill_leftovers: list[Served]) -> None:
    external = start_s3(free_port(), tmp_path / "external-logs")
    try:
        endpoint = f"http://127.0.0.1:{external.port}"
        env = {
            "SCENESTORE_BUCKET": "external-dev-bucket",
            "AWS_ACCESS_KEY_ID": "external-key-id",
            "AWS_SECRET_ACCESS_KEY": "external-secret",
        }
        served = start_serve(None, "--demo", "--s3-endpoint", endpoint, env=env, s3_port=False)
        kill_leftovers.append(served)
        info = served.info
        assert (info["s3"], info["s3_external"], info["bucket"]) == (endpoint, True, "external-dev-bucket")
        names = [" ".join(child.cmdline()) for child in served.children]
        assert not any("moto.server" in name for name in names), names  # no S3 server of its own

        s3 = make_s3_client(
            Settings().with_overrides(
                s3_endpoint_url=endpoint, aws_access_key_id="external-key-id", aws_secret_access_key="external-secret"
            )
        )
        stored = {o["Key"] for o in s3.list_objects_v2(Bucket="external-dev-bucket").get("Contents", [])}
        assert stored, "the demo data went to the external S3"
        assert s3.get_bucket_cors(Bucket="external-dev-bucket")["CORSRules"]

        auth = {"Authorization": f"Bearer {info['token']}"}
        assert requests.get(f"{info['api']}/health", timeout=30).json() == {"s3": "ok", "mongodb": "ok"}
        project = info["demo"]["projects"][0]
        listed = requests.get(f"{info['api']}/projects/{project}/files", headers=auth, timeout=30).json()
        assert listed["files"] and {f["key"] for f in listed["files"]} <= stored
        key = listed["files"][0]["key"]
        download = requests.get(f"{info['api']}/files", params={"key": key}, headers=auth, timeout=30).json()
        assert download["url"].startswith(f"{endpoint}/external-dev-bucket/")
        assert "external-key-id" in download["url"]  # signed with the environment's credentials
        assert requests.get(download["url"], timeout=30).status_code == 200

        stop_and_check(served, lambda: served.process.send_signal(signal.SIGINT))
        assert served.process.returncode == 0
        assert external.alive  # serve stopped what it started, not the external server
    finally:
        external.stop()


def test_s3_endpoint_and_s3_port_together_are_bad_usage() -> None:
    done = subprocess.run(
        [SCENESTORE, "serve", "--s3-endpoint", "http://127.0.0.1:1", "--s3-port", str(free_port())],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    assert done.returncode == 2
    assert "--s3-endpoint" in done.stderr and "--s3-port" in done.stderr


@pytest.mark.parametrize("endpoint", ["127.0.0.1:9000", "ftp://x"])
def test_s3_endpoint_must_be_an_http_url(endpoint: str) -> None:
    done = subprocess.run(
        [SCENESTORE, "serve", "--s3-endpoint", endpoint], capture_output=True, text=True, env=clean_env(), timeout=60
    )
    assert done.returncode == 2
    assert json.dumps(endpoint)[1:-1] in done.stderr
