"""Benchmark: ``POST /projects/{id}/uploads`` latency and throughput, and the cold import of the presign app.

    .venv/bin/python bench/presign.py                  # 600 warm requests per contender, 7 import runs
    .venv/bin/python bench/presign.py --requests 3000 --import-runs 15
    .venv/bin/python bench/presign.py --json           # one JSON document on stdout

It starts its own local stack (moto's S3 server and SecantusDB as child processes, on free ports) and seeds
one user, project and scene. Three contenders then presign the same upload, one request at a time from one
client, interleaved in rounds of 50 so the noise of a shared machine spreads over all of them:

- floor: what any presign endpoint must do at least: boto3 ``generate_presigned_url`` plus one MongoDB
  ``find_one`` round trip (the scene look-up), with no HTTP, no token, no validation;
- in-process: the Chalice app through ``chalice.test.Client`` (token verification, body validation, two
  indexed look-ups for project and scene, presign, JSON), i.e. what one warm Lambda invocation does;
- local HTTP: the same app behind the local server ``scenestore serve`` runs, over one keep-alive connection
  and with a new connection per request; plus, while the local server does not set TCP_NODELAY, a third
  HTTP row with it set on a second server (see ``_nodelay_server``).

Cold import: ``python -c "import functions.presign.app"`` against ``python -c "import boto3"`` (and a bare
``python -c pass`` for reference), each a fresh interpreter, runs interleaved, median wall time.

Targets (issue 4): in-process p50 within 3x the floor's; cold import within 1.5x ``import boto3``.
Timings on a shared 2-core machine are noisy; compare ratios from one run, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
USER = "bench-user"
PROJECT = "bench-project"
SCENE = "bench-scene"
BODY = {"kind": "image", "scene_id": SCENE, "filename": "photo.png", "content_type": "image/png", "size": 123456}
ROUND = 50
WARMUP = 50
P50_TARGET = 3.0
IMPORT_TARGET = 1.5


@dataclass
class Series:
    name: str
    latencies: list[float] = field(default_factory=list)
    busy: float = 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[index]

    def summary(self) -> dict[str, Any]:
        return {
            "requests": len(self.latencies),
            "p50_ms": round(self.percentile(50) * 1000, 3),
            "p99_ms": round(self.percentile(99) * 1000, 3),
            "req_per_s": round(len(self.latencies) / self.busy, 1) if self.busy else None,
        }


@contextlib.contextmanager
def quiet_stderr(log: Path) -> Iterator[None]:
    """Send fd 2 (request logs of the app and of the local server) to a file while measuring."""
    sys.stderr.flush()
    saved = os.dup(2)
    with log.open("ab") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def measure(contenders: dict[str, Callable[[], None]], requests: int) -> dict[str, Series]:
    series = {name: Series(name) for name in contenders}
    for call in contenders.values():
        for _ in range(WARMUP):
            call()
    done = 0
    while done < requests:
        batch = min(ROUND, requests - done)
        for name, call in contenders.items():
            record = series[name]
            started = time.perf_counter()
            for _ in range(batch):
                t0 = time.perf_counter()
                call()
                record.latencies.append(time.perf_counter() - t0)
            record.busy += time.perf_counter() - started
        done += batch
    return series


def warm_benchmark(requests: int, work: Path) -> dict[str, Series]:
    import requests as http
    from chalice.test import Client
    from scenestore.services import Services, set_services
    from scenestore.settings import Settings
    from scenestore.tokens import issue_token
    from scenestore_cli.local.api import ApiServer, load_presign_app
    from scenestore_cli.local.bootstrap import prepare
    from scenestore_cli.local.servers import free_port
    from scenestore_cli.local.stack import DevStack

    with DevStack.create(Settings(bucket="bench-presign", mongodb_db="bench_presign")) as stack:
        services = Services.from_settings(stack.settings)
        set_services(services)
        prepare(services, pre_images=False)
        services.db.projects.replace_one({"_id": PROJECT}, {"_id": PROJECT, "user_id": USER}, upsert=True)
        services.db.scenes.replace_one({"_id": SCENE}, {"_id": SCENE, "project_id": PROJECT}, upsert=True)
        token = issue_token(services.settings, USER, ttl=24 * 3600)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        body = json.dumps(BODY).encode()
        path = f"/projects/{PROJECT}/uploads"
        app = load_presign_app()
        server = ApiServer(app, free_port()).start()
        nodelay = _nodelay_server(ApiServer(app, free_port()))
        s3, db, bucket = services.s3, services.db, services.settings.bucket
        key = f"users/{USER}/projects/{PROJECT}/scenes/{SCENE}/image/photo.png"

        def floor() -> None:
            db.scenes.find_one({"_id": SCENE})
            s3.generate_presigned_url(
                "put_object",
                Params={"Bucket": bucket, "Key": key, "ContentType": "image/png", "ContentLength": 123456},
                ExpiresIn=900,
                HttpMethod="PUT",
            )

        try:
            with Client(app) as client, http.Session() as session:

                def in_process() -> None:
                    response = client.http.post(path, headers=headers, body=body)
                    assert response.status_code == 201, response.body

                def over_http() -> None:
                    response = session.post(server.url + path, data=body, headers=headers, timeout=30)
                    assert response.status_code == 201, response.text

                def new_connection() -> None:
                    response = http.post(server.url + path, data=body, headers=headers, timeout=30)
                    assert response.status_code == 201, response.text

                contenders: dict[str, Callable[[], None]] = {
                    "floor (boto3 presign + 1 find_one)": floor,
                    "in-process (chalice.test.Client)": in_process,
                    "local HTTP, keep-alive": over_http,
                    "local HTTP, new connection each": new_connection,
                }
                if nodelay is not None:
                    nodelay_url = nodelay.url + path

                    def over_http_nodelay() -> None:
                        response = session.post(nodelay_url, data=body, headers=headers, timeout=30)
                        assert response.status_code == 201, response.text

                    contenders["local HTTP, keep-alive, TCP_NODELAY"] = over_http_nodelay
                with quiet_stderr(work / "requests.log"):
                    return measure(contenders, requests)
        finally:
            server.stop()
            if nodelay is not None:
                nodelay.stop()
            set_services(None)
            services.mongo.close()


def _nodelay_server(server: Any) -> Any:
    """A second local server whose handler sets TCP_NODELAY, or ``None`` if the local server already does.

    ``http.server`` writes a response's headers and body in two ``send`` calls; on a keep-alive connection
    Nagle's algorithm holds the body until the client ACKs the headers, which Linux delays by up to 40 ms.
    This contender shows what ``disable_nagle_algorithm = True`` on the local handler would give.
    """
    local = getattr(server, "_server", None)
    handler_class = getattr(getattr(local, "_wrapped_handler", None), "func", None)
    if handler_class is None or getattr(handler_class, "disable_nagle_algorithm", False):
        local.server.server_close() if local is not None else None  # never started: just free the port
        return None
    handler_class.disable_nagle_algorithm = True  # this server's own handler class only (ApiServer makes one each)
    return server.start()


def cold_imports(runs: int) -> dict[str, list[float]]:
    statements = {
        "python -c pass": "pass",
        "import boto3": "import boto3",
        "import functions.presign.app": "import functions.presign.app",
    }
    env = {**os.environ, "POWERTOOLS_LOG_LEVEL": "WARNING"}
    times: dict[str, list[float]] = {name: [] for name in statements}
    for statement in statements.values():  # one untimed run each: bytecode caches, disk cache
        subprocess.run([sys.executable, "-c", statement], check=True, cwd=ROOT, env=env)
    for _ in range(runs):
        for name, statement in statements.items():
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", statement], check=True, cwd=ROOT, env=env)
            times[name].append(time.perf_counter() - started)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=600, help="measured requests per contender (default 600)")
    parser.add_argument("--import-runs", type=int, default=7, help="cold-import runs per statement (default 7)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-presign-") as tmp:
        series = warm_benchmark(args.requests, Path(tmp))
    imports = cold_imports(args.import_runs)

    warm = {name: s.summary() for name, s in series.items()}
    names = list(warm)
    floor_p50, in_process_p50 = warm[names[0]]["p50_ms"], warm[names[1]]["p50_ms"]
    medians = {name: round(statistics.median(t) * 1000, 1) for name, t in imports.items()}
    result = {
        "warm": warm,
        "in_process_p50_vs_floor": round(in_process_p50 / floor_p50, 2),
        "cold_import_ms": medians,
        "cold_import_vs_boto3": round(medians["import functions.presign.app"] / medians["import boto3"], 2),
        "targets": {"in_process_p50_vs_floor": P50_TARGET, "cold_import_vs_boto3": IMPORT_TARGET},
    }
    result["met"] = {
        "in_process_p50": result["in_process_p50_vs_floor"] <= P50_TARGET,
        "cold_import": result["cold_import_vs_boto3"] <= IMPORT_TARGET,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"POST /projects/{{id}}/uploads, warm, one client, {args.requests} requests each (after {WARMUP} warm-up)")
    print(f"{'contender':<40} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    for name, row in warm.items():
        print(f"{name:<40} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} {row['req_per_s']:>8.1f}")
    met = "met" if result["met"]["in_process_p50"] else "NOT met"
    print(f"in-process p50 / floor p50 = {result['in_process_p50_vs_floor']}x (target <= {P50_TARGET}x: {met})")
    print()
    print(f"cold import, median of {args.import_runs} fresh interpreters (wall time, interpreter start included)")
    for name, ms in medians.items():
        print(f"{name:<40} {ms:>8.1f} ms")
    met = "met" if result["met"]["cold_import"] else "NOT met"
    print(f"presign app / import boto3 = {result['cold_import_vs_boto3']}x (target <= {IMPORT_TARGET}x: {met})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
