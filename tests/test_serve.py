"""``scenestore serve`` as a user runs it (issue 3, contract section 7): a real subprocess on free ports.

It starts (health 200 over HTTP), seeds demo data and prints a token with ``--demo``, stops every child on
SIGINT/SIGTERM (also when Ctrl-C reaches the whole process group), and refuses a port already in use quickly
and clearly. Also ``ensure-indexes --json`` is idempotent.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
from scenestore.clients import make_s3_client
from scenestore.services import Services
from scenestore.settings import Settings
from scenestore_cli.local.servers import free_port

SCENESTORE = str(Path(sys.executable).parent / "scenestore")
START_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0


def clean_env() -> dict[str, str]:
    """The environment of a fresh shell: no SCENESTORE_* from the test session, metrics off."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCENESTORE_", "AWS_"))}
    env["POWERTOOLS_METRICS_DISABLED"] = "true"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Served:
    process: subprocess.Popen[str]
    info: dict[str, Any]
    children: list[psutil.Process]


def start_serve(
    tmp_path: Path | None,
    *extra: str,
    new_session: bool = False,
    env: dict[str, str] | None = None,
    s3_port: bool = True,
) -> Served:
    """``scenestore serve --json`` on free ports; ``tmp_path=None``: no --data-dir (serve's own temporary one);
    ``s3_port=False``: no --s3-port (with --s3-endpoint); ``env`` is added to a fresh shell's environment."""
    ports = [free_port() for _ in range(3)]
    argv = [SCENESTORE, "serve", "--json", "--mongo-port", str(ports[1]), "--api-port", str(ports[2])]
    if s3_port:
        argv += ["--s3-port", str(ports[0])]
    if tmp_path is not None:
        argv += ["--data-dir", str(tmp_path / "data")]
    process = subprocess.Popen(
        [*argv, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**clean_env(), **(env or {})},
        start_new_session=new_session,
    )
    deadline = time.monotonic() + START_TIMEOUT
    assert process.stdout is not None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if ready:
            line = process.stdout.readline()
            if line.strip().startswith("{"):
                info = json.loads(line)
                children = psutil.Process(process.pid).children(recursive=True)
                return Served(process, info, children)
        if process.poll() is not None:
            break
    process.kill()
    _, err = process.communicate(timeout=10)
    raise AssertionError(f"serve did not start: rc={process.returncode} stderr={err[-2000:]}")


def stop_and_check(served: Served, send: Any) -> str:
    """Deliver the signal with ``send()``, wait, and prove no child is left running."""
    send()
    try:
        _, err = served.process.communicate(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        served.process.kill()
        for child in served.children:
            child.kill()
        raise AssertionError("serve did not stop within 30 s") from None
    gone, alive = psutil.wait_procs(served.children, timeout=10)
    assert not alive, f"children left running: {[p.cmdline() for p in alive]}"
    assert len(gone) == len(served.children)
    return err


@pytest.fixture
def kill_leftovers() -> Iterator[list[Served]]:
    """Whatever a failed test left behind is killed (never a broad pkill: only what we started)."""
    started: list[Served] = []
    yield started
    for served in started:
        for proc in [*served.children, psutil.Process(served.process.pid)] if served.process.poll() is None else []:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        for child in served.children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()


def test_serve_demo_starts_answers_health_and_stops_on_sigint(tmp_path: Path, kill_leftovers: list[Served]) -> None:
    served = start_serve(tmp_path, "--demo")
    kill_leftovers.append(served)
    info = served.info
    names = " ".join(" ".join(child.cmdline()) for child in served.children)
    assert "moto.server" in names and "secantusd" in names

    health = requests.get(f"{info['api']}/health", timeout=30)
    assert health.status_code == 200
    assert health.json() == {"s3": "ok", "mongodb": "ok"}

    # --demo: a user with projects, objects in S3 (legacy and layout keys) and a token for that user.
    import jwt

    claims = jwt.decode(info["token"], Settings().jwt_secret, algorithms=["HS256"])
    assert claims["sub"] == info["demo"]["user_id"]
    assert info["demo"]["projects"]
    s3 = make_s3_client(Settings().with_overrides(s3_endpoint_url=info["s3"]))
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=info["bucket"]).get("Contents", [])]
    assert any(k.startswith(f"users/{claims['sub']}/projects/") for k in keys)
    assert any(not k.startswith("users/") for k in keys)
    cors = s3.get_bucket_cors(Bucket=info["bucket"])["CORSRules"][0]
    assert sorted(cors["AllowedMethods"]) == ["GET", "HEAD", "PUT"]

    err = stop_and_check(served, lambda: served.process.send_signal(signal.SIGINT))
    assert served.process.returncode == 0, err
    assert "stopped" in err
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{info['api']}/health", timeout=5)


def test_serve_stops_on_sigterm(tmp_path: Path, kill_leftovers: list[Served]) -> None:
    served = start_serve(tmp_path)
    kill_leftovers.append(served)
    assert requests.get(f"{served.info['api']}/health", timeout=30).status_code == 200
    err = stop_and_check(served, lambda: served.process.send_signal(signal.SIGTERM))
    assert served.process.returncode == 0, err


def test_ctrl_c_to_the_whole_process_group_stops_everything(tmp_path: Path, kill_leftovers: list[Served]) -> None:
    """A terminal's Ctrl-C reaches every process of the foreground group at once. The servers run in groups of
    their own, so it reaches serve only, which stops them in order (a clean MongoDB shutdown with --data-dir)."""
    served = start_serve(tmp_path, new_session=True)
    kill_leftovers.append(served)
    pgid = os.getpgid(served.process.pid)
    assert all(os.getpgid(child.pid) != pgid for child in served.children)
    stop_and_check(served, lambda: os.killpg(pgid, signal.SIGINT))
    assert served.process.returncode == 0


@pytest.mark.parametrize("flag", ["--s3-port", "--mongo-port", "--api-port"])
def test_a_port_in_use_is_a_clear_error(tmp_path: Path, flag: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        others = {f: str(free_port()) for f in ("--s3-port", "--mongo-port", "--api-port")}
        others[flag] = str(port)
        argv = [SCENESTORE, "serve", *[x for pair in others.items() for x in pair], "--data-dir", str(tmp_path)]
        started = time.monotonic()
        done = subprocess.run(argv, capture_output=True, text=True, env=clean_env(), timeout=60)
        elapsed = time.monotonic() - started
    assert elapsed < 15
    assert done.returncode == 2
    assert f"port {port}" in done.stderr and "already in use" in done.stderr and flag in done.stderr
    assert "Traceback" not in done.stderr


def test_a_port_in_use_exits_2(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        argv = [SCENESTORE, "serve", "--api-port", str(busy.getsockname()[1]), "--data-dir", str(tmp_path)]
        done = subprocess.run(argv, capture_output=True, text=True, env=clean_env(), timeout=60)
    assert done.returncode == 2


def test_ensure_indexes_json_is_idempotent(services: Services, cli_env: dict[str, str]) -> None:
    runs = [
        subprocess.run(
            [SCENESTORE, "ensure-indexes", "--json"], capture_output=True, text=True, env=cli_env, timeout=60
        )
        for _ in range(2)
    ]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    first, second = (json.loads(r.stdout) for r in runs)
    assert first == second
    assert len(first["indexes"]) == 6  # five of contract section 2, the multipart records' TTL
    assert "scenestore_multipart_uploads.expire_at_1" in first["indexes"]
    indexed = {
        (collection, field)
        for collection in ("scenes", "projects")
        for spec in services.db[collection].index_information().values()
        for field, _ in spec["key"]
    }
    assert {
        ("scenes", "project_id"),
        ("scenes", "media.storageKey"),
        ("scenes", "audio.storageKey"),
        ("projects", "user_id"),
        ("projects", "output.storageKey"),
    } <= indexed
