"""Benchmark: the fixed cost of a scenestore command, against a bare boto3 client making one request.

    .venv/bin/python bench/cli_fixed_cost.py              # 9 runs per contender, at 0 and 25 ms
    .venv/bin/python bench/cli_fixed_cost.py --runs 15 --delays 0,25,50

One moto store (bench/latency_s3.py, one port per distance) holds an empty bucket. Each contender is a fresh
process, timed from start to exit, as a user running it sees it:

- ``scenestore clear-bucket --confirm B --prefix empty/``: settings, imports, one S3 client, one
  ``ListObjectsV2`` that finds nothing, the report; no MongoDB client is built (it never touches the database);
- a bare boto3 client making one request: ``python -c "import boto3; boto3.client('s3', ...).list_objects_v2(...)"``;
- ``python -c pass``: the interpreter alone, for reference.

Runs are interleaved (one of each, then again) so the noise of a shared machine spreads over all of them;
medians are printed with the ratio ``scenestore / boto3`` at each distance. Target (issue 12): <= 1.5x.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import boto3
from latency_s3 import LatencyS3
from tools import ACCESS_KEY, BIN, REGION, SECRET_KEY, Series, load_average, run_timed, tool_env

BUCKET = "bench-fixed-cost"
PREFIX = "users/nobody/projects/empty/"
TARGET = 1.5


def contenders(endpoint: str) -> dict[str, list[str]]:
    one_request = (
        f"import boto3; boto3.client('s3', endpoint_url={endpoint!r}, region_name={REGION!r}, "
        f"aws_access_key_id={ACCESS_KEY!r}, aws_secret_access_key={SECRET_KEY!r})"
        f".list_objects_v2(Bucket={BUCKET!r}, Prefix={PREFIX!r})"
    )
    return {
        "scenestore clear-bucket --prefix (empty)": [
            str(BIN / "scenestore"),
            "clear-bucket",
            "--confirm",
            BUCKET,
            "--prefix",
            PREFIX,
        ],
        "bare boto3, one request": [sys.executable, "-c", one_request],
        "python -c pass": [sys.executable, "-c", "pass"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--delays", default="0,25", help="comma-separated milliseconds added to every request")
    args = parser.parse_args()
    delays = [float(d) for d in args.delays.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-fixed-cost-"))
    print(f"{args.runs} runs per contender per distance; load average {load_average()} (2 shared cores)", flush=True)
    table: dict[float, dict[str, Series]] = {}
    try:
        with LatencyS3(delays, work / "logs") as store:
            seed = boto3.client(
                "s3",
                endpoint_url=store.endpoint(delays[0]),
                region_name=REGION,
                aws_access_key_id=ACCESS_KEY,
                aws_secret_access_key=SECRET_KEY,
            )
            seed.create_bucket(Bucket=BUCKET)
            for delay in delays:
                endpoint = store.endpoint(delay)
                env = tool_env(endpoint, BUCKET, work)
                argvs = contenders(endpoint)
                series = table.setdefault(delay, {name: Series(name) for name in argvs})
                for argv in argvs.values():  # one warm-up each: page cache, .pyc files
                    run_timed(argv, env)
                for _ in range(args.runs):
                    for name, argv in argvs.items():
                        series[name].add(run_timed(argv, env))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print("| added latency | contender | median s | median CPU s | vs bare boto3 |")
    print("| ---: | --- | ---: | ---: | ---: |")
    verdicts = []
    for delay, series in table.items():
        boto = series["bare boto3, one request"].median or 0.0
        for name, s in series.items():
            print(f"| {delay:g} ms | {name} | {s.median:.3f} | {s.median_cpu:.3f} | {(s.median or 0) / boto:.2f}x |")
        ours = series["scenestore clear-bucket --prefix (empty)"].median or 0.0
        verdicts.append(
            f"{delay:g} ms: clear-bucket / bare boto3 = {ours / boto:.2f}x (target <= {TARGET}x) "
            f"{'met' if ours <= TARGET * boto else 'MISSED'}"
        )
    print()
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
