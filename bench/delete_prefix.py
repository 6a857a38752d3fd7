"""Benchmark: delete every object under a prefix, scenestore vs the usual tools, near and at R2's distance.

    .venv/bin/python bench/delete_prefix.py                          # 10,000 objects, at 0 and 25 ms, 3 reps
    .venv/bin/python bench/delete_prefix.py --sizes 10000,100000 --only engine --delays 0 --reps 1   # RSS
    .venv/bin/python bench/delete_prefix.py --reps 1 --only cli,s5cmd --delays 25

One moto store (bench/latency_s3.py) answers on one port per distance: every request through the 25 ms port
waits 25 ms before moto sees it, as if the store were R2 tens of milliseconds away; the 0 ms port is plain moto.
Before each run the same objects (same keys, 16-byte bodies, ten per scene) are stored by the server itself
(its seeding endpoint), so every contender at every distance faces the same bucket. Contenders run
interleaved within a repetition to spread the noise of a shared machine; times are medians. Contenders:

- ``cli``: ``scenestore clear-bucket --confirm B --prefix P --json`` as a user runs it: a fresh process, its
  start-up, imports and exit included;
- ``engine``: ``scenestore.prefix_delete.delete_prefix`` alone, in a child process after start-up (its client
  CPU, the in-flight limit it reached, and its peak RSS while deleting: ``VmHWM``, reset after start-up);
- ``s5cmd``: ``s5cmd rm 's3://B/P*'``; ``aws``: ``aws s3 rm s3://B/P --recursive`` (both from .venv/bin, process
  start-up included).

A tool that is missing is skipped with a note; the script never fails because of one contender.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latency_s3 import LatencyS3
from tools import BIN, Timed, load_average, process_cpu, run_timed, tool_env

BUCKET = "bench-delete"
USER = "bench-user"
PROJECT = "bench-project"
PREFIX = f"users/{USER}/projects/{PROJECT}/"
BODY = b"0123456789abcdef"  # tiny bodies: the benchmark measures requests, not bandwidth
SEED_THREADS = 32
#: Targets of issue 12 (same-run ratios: their time / ours), per added latency.
TARGETS = {"s5cmd rm": {0.0: 1.2, 25.0: 1.0}, "aws s3 rm --recursive": {0.0: 10.0, 25.0: 10.0}}


def keys_for(count: int) -> Iterator[str]:
    """Keys shaped like the layout: ten images/audio per scene."""
    for i in range(count):
        kind = "audio" if i % 5 == 4 else "image"
        ext = "mp3" if kind == "audio" else "png"
        yield f"{PREFIX}scenes/s{i // 10:06d}/{kind}/{i:07d}.{ext}"


@dataclass
class Result:
    contender: str
    size: int
    delay: float
    seconds: list[float] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)
    extra: list[dict[str, Any]] = field(default_factory=list)
    skipped: str = ""
    failures: list[str] = field(default_factory=list)

    @property
    def median(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None


class Bench:
    """The store, a seeding client on its 0 ms port, and the environment every tool gets."""

    def __init__(self, store: LatencyS3, work: Path) -> None:
        from scenestore.clients import make_s3_client
        from scenestore.settings import Settings
        from tools import ACCESS_KEY, SECRET_KEY

        self.store = store
        self.work = work
        settings = Settings().with_overrides(
            s3_endpoint_url=store.endpoint(0),
            bucket=BUCKET,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )
        self.client = make_s3_client(settings, max_pool_connections=SEED_THREADS * 2)
        self.client.create_bucket(Bucket=BUCKET)

    def env(self, delay: float) -> dict[str, str]:
        return tool_env(self.store.endpoint(delay), BUCKET, self.work)

    def seed(self, count: int) -> float:
        """The same ``count`` objects, stored through the server's seeding endpoint (see bench/latency_s3.py)."""
        started = time.perf_counter()
        self.store.seed(BUCKET, list(keys_for(count)), len(BODY))
        return time.perf_counter() - started

    def remaining(self) -> int:
        from scenestore.prefix_delete import iter_key_pages

        return sum(len(page) for page in iter_key_pages(self.client, BUCKET, PREFIX))

    def clean(self) -> None:
        from scenestore.prefix_delete import delete_prefix

        delete_prefix(self.client, BUCKET, PREFIX)


# -- contenders: (bench, delay) -> (timed, extra) ----------------------------------------------------------
Contender = Callable[[Bench, float], tuple[Timed, dict[str, Any]]]


def run_cli(bench: Bench, delay: float) -> tuple[Timed, dict[str, Any]]:
    argv = [str(BIN / "scenestore"), "clear-bucket", "--confirm", BUCKET, "--prefix", PREFIX, "--json"]
    timed = run_timed(argv, bench.env(delay))
    report = json.loads(timed.stdout.strip().splitlines()[-1])
    if report["failed_count"]:
        raise RuntimeError(f"clear-bucket reported {report['failed_count']} failures")
    return timed, {"deleted": report["deleted_count"]}


def run_engine(bench: Bench, delay: float) -> tuple[Timed, dict[str, Any]]:
    """In a child process, so its peak RSS and CPU are its own; the time is the deletion's alone."""
    timed = run_timed([sys.executable, __file__, "--child-engine"], bench.env(delay))
    out = json.loads(timed.stdout.strip().splitlines()[-1])
    if out["failed_count"]:
        raise RuntimeError(f"delete_prefix reported {out['failed_count']} failures")
    return Timed(out["seconds"], out["client_cpu"], ""), {"deleted": out["deleted_count"], **out}


def child_engine() -> None:
    from scenestore.prefix_delete import adaptive_limit, delete_prefix
    from scenestore.services import get_services

    services = get_services()
    client = services.s3
    client.head_bucket(Bucket=BUCKET)  # warm the connection like every other contender's first call
    base, startup_peak = _proc_status_kb("VmRSS:"), _proc_status_kb("VmHWM:")
    # Imports and client creation peak above what the deletion needs; reset the high-water mark (Linux) so
    # the figure is the deletion's own. Where that is impossible the start-up peak is included (and said so).
    peak_reset = _reset_peak_rss()
    limit = adaptive_limit()
    cpu = _cpu_seconds()
    started = time.perf_counter()
    report = delete_prefix(client, BUCKET, PREFIX, limit=limit)
    seconds = time.perf_counter() - started
    out = {
        **report.to_dict(),
        "seconds": seconds,
        "client_cpu": _cpu_seconds() - cpu,
        "rss_kb": _proc_status_kb("VmHWM:"),
        "rss_base_kb": base,
        "rss_startup_kb": startup_peak,
        "peak_reset": peak_reset,
        "limit_peak": limit.peak,
        "limit_end": limit.limit,
    }
    print(json.dumps(out))


def run_s5cmd(bench: Bench, delay: float) -> tuple[Timed, dict[str, Any]]:
    argv = [str(BIN / "s5cmd"), "--endpoint-url", bench.store.endpoint(delay), "rm", f"s3://{BUCKET}/{PREFIX}*"]
    return run_timed(argv, bench.env(delay)), {}


def run_aws(bench: Bench, delay: float) -> tuple[Timed, dict[str, Any]]:
    argv = [str(BIN / "aws"), "s3", "rm", f"s3://{BUCKET}/{PREFIX}", "--recursive", "--only-show-errors"]
    return run_timed([*argv, "--endpoint-url", bench.store.endpoint(delay)], bench.env(delay), timeout=7200), {}


CONTENDERS: dict[str, tuple[str, Contender]] = {
    "cli": ("scenestore clear-bucket --prefix", run_cli),
    "engine": ("scenestore delete_prefix (engine, in a child)", run_engine),
    "s5cmd": ("s5cmd rm", run_s5cmd),
    "aws": ("aws s3 rm --recursive", run_aws),
}


def unavailable(short: str) -> str:
    tool = {"s5cmd": "s5cmd", "aws": "aws", "cli": "scenestore"}.get(short)
    if tool and not (BIN / tool).exists():
        return f"{tool} is not installed in {BIN}"
    return ""


# -- measuring the child ---------------------------------------------------------------------------------
def _reset_peak_rss() -> bool:
    """Reset this process's ``VmHWM`` via /proc/self/clear_refs (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _proc_status_kb(field_name: str) -> int:
    """``VmRSS``/``VmHWM`` of this process image (not ``ru_maxrss``, which after fork+exec still carries the
    parent's size at fork time: the benchmark process, big after seeding 100,000 objects)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# -- the run -------------------------------------------------------------------------------------------
def run(sizes: list[int], delays: list[float], reps: int, only: list[str]) -> list[Result]:
    work = Path(tempfile.mkdtemp(prefix="scenestore-bench-delete-"))
    results: dict[tuple[int, float, str], Result] = {}
    for size, delay, short in itertools.product(sizes, delays, only):
        results[size, delay, short] = Result(CONTENDERS[short][0], size, delay, skipped=unavailable(short))
    try:
        with LatencyS3([0.0, *delays], work / "logs") as store:
            bench = Bench(store, work)
            print(f"moto at {', '.join(f'{d:g} ms' for d in delays)}; load average {load_average()}", flush=True)
            for size, rep in itertools.product(sizes, range(1, reps + 1)):
                for delay, short in itertools.product(delays, only):
                    result = results[size, delay, short]
                    if result.skipped:
                        continue
                    seeded = bench.seed(size)
                    before = process_cpu(store.pid)
                    try:
                        timed, extra = CONTENDERS[short][1](bench, delay)
                    except Exception as exc:  # a broken contender is reported, never fatal
                        result.failures.append(f"{type(exc).__name__}: {exc}"[:300])
                        print(f"  {result.contender} failed: {result.failures[-1]}", flush=True)
                        bench.clean()
                        continue
                    left = bench.remaining()
                    if left or extra.get("deleted", size) != size:
                        result.failures.append(f"{left} objects left, reported {extra.get('deleted')} deleted")
                        bench.clean()
                        continue
                    result.seconds.append(timed.seconds)
                    result.client_cpu.append(timed.cpu)
                    result.server_cpu.append(process_cpu(store.pid) - before)
                    result.extra.append(extra)
                    print(
                        f"  {size:>7,} objects  {delay:>4g} ms  rep {rep}/{reps}  {result.contender:<46} "
                        f"{timed.seconds:7.2f}s  (seeded in {seeded:.1f}s)",
                        flush=True,
                    )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return list(results.values())


def render(results: list[Result], reps: int) -> str:
    lines = [
        f"| objects | added latency | contender | median s ({reps} runs) | objects/s | clear-bucket is x faster "
        "| client CPU s | S3 server CPU s | note |",
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        head = f"| {r.size:,} | {r.delay:g} ms | {r.contender} "
        if r.skipped or r.median is None:
            why = f"skipped: {r.skipped}" if r.skipped else f"failed: {'; '.join(r.failures)[:120]}"
            lines.append(head + f"| - | - | - | - | - | {why} |")
            continue
        cli = _find(results, r.size, r.delay, CONTENDERS["cli"][0])
        faster = f"{r.median / cli:.2f}x" if cli else "-"
        note = ""
        if r.extra and "limit_peak" in r.extra[0]:
            note = f"in-flight limit peak {max(e['limit_peak'] for e in r.extra)}"
        if r.failures:
            note = f"{note}; {len(r.failures)} failed run(s)".strip("; ")
        lines.append(
            head + f"| {r.median:.2f} | {r.size / r.median:,.0f} | {faster} | {statistics.median(r.client_cpu):.2f} "
            f"| {statistics.median(r.server_cpu):.2f} | {note} |"
        )
    rss = [r for r in results if r.extra and "rss_kb" in r.extra[0]]
    if rss:
        lines += ["", "| objects | added latency | peak RSS while deleting (MB) | RSS before deleting (MB) |"]
        lines.append("| ---: | ---: | ---: | ---: |")
        for r in rss:
            peak = max(e["rss_kb"] for e in r.extra) / 1024
            base = statistics.median(e["rss_base_kb"] for e in r.extra) / 1024
            lines.append(f"| {r.size:,} | {r.delay:g} ms | {peak:.1f} | {base:.1f} |")
    return "\n".join(lines)


def _find(results: list[Result], size: int, delay: float, contender: str) -> float | None:
    return next((r.median for r in results if (r.size, r.delay, r.contender) == (size, delay, contender)), None)


def targets(results: list[Result]) -> str:
    out = []
    for r in results:
        if r.contender != CONTENDERS["cli"][0] or r.median is None:
            continue
        for other, wants in TARGETS.items():
            theirs, want = _find(results, r.size, r.delay, other), wants.get(r.delay)
            if theirs and want:
                verdict = "met" if theirs / r.median >= want else "MISSED"
                out.append(
                    f"{r.size:,} objects at {r.delay:g} ms: clear-bucket vs {other}: {theirs / r.median:.2f}x "
                    f"(target >= {want:g}x) {verdict}"
                )
    engine = sorted((r for r in results if r.extra and "rss_kb" in r.extra[0]), key=lambda r: r.size)
    if len(engine) >= 2 and engine[0].size < engine[-1].size:
        small, large = (max(e["rss_kb"] for e in r.extra) for r in (engine[0], engine[-1]))
        growth = large / small - 1
        out.append(
            f"peak RSS {engine[-1].size:,} vs {engine[0].size:,}: {growth:+.1%} (target within 10%) "
            f"{'met' if abs(growth) <= 0.10 else 'MISSED'}"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10000", help="comma-separated object counts (default 10000)")
    parser.add_argument("--delays", default="0,25", help="comma-separated ms added to every request (default 0,25)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per contender (default 3)")
    parser.add_argument("--only", default=",".join(CONTENDERS), help=f"among {', '.join(CONTENDERS)}")
    parser.add_argument("--json", dest="json_out", type=Path, default=None, help="also write raw results here")
    parser.add_argument("--child-engine", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_engine:
        child_engine()
        return 0
    only = [s for s in args.only.split(",") if s]
    unknown = [s for s in only if s not in CONTENDERS]
    if unknown:
        parser.error(f"unknown contender(s): {', '.join(unknown)}")
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",")]
    delays = [float(d) for d in args.delays.split(",")]
    reps = max(1, args.reps)
    results = run(sizes, delays, reps, only)
    print()
    print(render(results, reps))
    print()
    print(targets(results))
    if args.json_out:
        args.json_out.write_text(json.dumps([vars(r) for r in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
