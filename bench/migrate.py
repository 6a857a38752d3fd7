"""Benchmark: migrate legacy keys into the layout, scenestore vs the seed's way and the usual tools.

    .venv/bin/python bench/migrate.py                    # 2,000 scenes with small objects, 3 repetitions
    .venv/bin/python bench/migrate.py --scenes 10000     # the larger data set
    .venv/bin/python bench/migrate.py --big              # also 20 objects of 5 MiB
    .venv/bin/python bench/migrate.py --reps 1 --only scenestore,raw

One local S3 server (moto, a child process over HTTP) and one SecantusDB serve every contender. Before
each run the same data is seeded into a fresh bucket and database: projects of ten scenes, each scene with a
legacy image (``media/<uuid>.jpg``) and, with ``--audio`` (default on), a legacy narration
(``audio/<uuid>.mp3``); small bodies, because the benchmark measures requests, not bandwidth. Every contender
moves the same objects to the same keys (the engine's own mapping). Contenders run interleaved within a
repetition to spread the noise of a shared machine; the table shows medians.

- scenestore: ``run_migration`` in this process (what ``scenestore migrate`` runs), with the MongoDB reference
  checks, journal, run records and conditional document updates included; its disk writes are measured;
- seed's way: the seed's script, one object at a time: download to a temp file, upload, delete, update;
- s5cmd run: ``s5cmd run`` over a file of ``mv`` lines with the exact mapping (no database updates);
- rclone move: skipped with a note when rclone is not installed;
- sequential boto3: ``copy_object`` + ``delete_object`` per object (no database);
- raw ceiling: 8 threads of ``copy_object``, then ``DeleteObjects`` batches (no database, no checks).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scenestore.clients import make_mongo_client, make_s3_client
from scenestore.migration import RunOptions, run_migration
from scenestore.migration.config import MigrationConfig
from scenestore.migration.references import Slot, scene_slots
from scenestore.services import Services
from scenestore.settings import Settings
from scenestore_cli.local.bootstrap import prepare
from scenestore_cli.local.stack import DevStack

BIN = Path(sys.executable).parent
SMALL = 2048
BIG = 5 * 1024 * 1024


@dataclass
class Dataset:
    scenes: int
    audio: bool
    big: int = 0

    def documents(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, int]]:
        """Projects, scenes and legacy objects (key -> size); deterministic for a given shape."""
        rng = uuid.UUID(int=12345)
        projects: list[dict[str, Any]] = []
        scenes: list[dict[str, Any]] = []
        objects: dict[str, int] = {}
        count = self.scenes + self.big
        for i in range(count):
            if i % 10 == 0:
                projects.append({"_id": f"p{i // 10:06d}", "user_id": f"user{i // 100:04d}", "name": "bench"})
            token = uuid.uuid5(rng, str(i)).hex
            size = BIG if i >= self.scenes else SMALL
            scene: dict[str, Any] = {
                "_id": f"s{i:07d}",
                "project_id": projects[-1]["_id"],
                "media": {"storageKey": f"media/{token}.jpg", "type": "image"},
            }
            objects[f"media/{token}.jpg"] = size
            if self.audio and i < self.scenes:
                scene["audio"] = {"storageKey": f"audio/{token}.mp3"}
                objects[f"audio/{token}.mp3"] = SMALL
            scenes.append(scene)
        return projects, scenes, objects


@dataclass
class Arena:
    """A fresh bucket and database on the shared servers, seeded with the data set."""

    services: Services
    scenes: list[dict[str, Any]]
    projects: list[dict[str, Any]]
    objects: dict[str, int]

    def mapping(self) -> list[tuple[str, str, Slot]]:
        """(old key, new key, slot) of every move, as the engine computes it."""
        by_id = {p["_id"]: p for p in self.projects}
        moves = []
        for scene in self.scenes:
            for slot in scene_slots(scene, by_id[scene["project_id"]]):
                if slot.is_legacy and slot.value is not None:
                    moves.append((slot.value, slot.target(slot.value), slot))
        return moves


def seed(stack: DevStack, s3: Any, mongo: Any, data: Dataset) -> Arena:
    name = f"bench-{uuid.uuid4().hex[:10]}"
    settings = stack.settings.with_overrides(bucket=name, mongodb_db=name)
    services = Services(settings=settings, s3=s3, mongo=mongo)
    prepare(services, pre_images=False)
    projects, scenes, objects = data.documents()
    bodies = {SMALL: os.urandom(SMALL), BIG: os.urandom(BIG)}
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kv: s3.put_object(Bucket=name, Key=kv[0], Body=bodies[kv[1]]), objects.items()))
    services.db.projects.insert_many(projects)
    services.db.scenes.insert_many(scenes)
    return Arena(services, scenes, projects, objects)


def drop(arena: Arena) -> None:
    s3, bucket = arena.services.s3, arena.services.settings.bucket
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    s3.delete_bucket(Bucket=bucket)
    arena.services.mongo.drop_database(arena.services.settings.mongodb_db)


# -- contenders ---------------------------------------------------------------------------------------------
def check_moved(arena: Arena, with_db: bool) -> None:
    """Every contender must really have moved everything (and updated the documents, if it claims to)."""
    listed = {
        o["Key"]
        for page in arena.services.s3.get_paginator("list_objects_v2").paginate(Bucket=arena.services.settings.bucket)
        for o in page.get("Contents", [])
    }
    moves = arena.mapping()
    assert listed == {new for _, new, _ in moves}, "bucket does not hold exactly the new keys"
    if with_db:
        legacy = arena.services.db.scenes.count_documents({"media.storageKey": {"$lt": "users/"}})
        assert legacy == 0, f"{legacy} scenes still hold legacy keys"


def scenestore(arena: Arena, shards: int, batch_size: int) -> dict[str, Any]:
    import psutil

    io_before = psutil.Process().io_counters()
    summary = run_migration(arena.services, RunOptions(batch_size=batch_size, shards=shards, config=MigrationConfig()))
    io_after = psutil.Process().io_counters()
    assert summary["failed"] == 0 and summary["done"], summary
    return {"disk_write_bytes": io_after.write_bytes - io_before.write_bytes}


def seed_way(arena: Arena) -> dict[str, Any]:
    """The seed's ``migrate_r2_structure.py``: download to /tmp/<basename>, upload, delete, update."""
    s3, bucket, db = arena.services.s3, arena.services.settings.bucket, arena.services.db
    tmp = tempfile.mkdtemp(prefix="seed-way-")
    written = 0
    try:
        for old, new, slot in arena.mapping():
            path = os.path.join(tmp, os.path.basename(old))
            s3.download_file(bucket, old, path)
            written += os.path.getsize(path)
            s3.upload_file(path, bucket, new)
            s3.delete_object(Bucket=bucket, Key=old)
            db.scenes.update_one({"_id": slot.doc_id}, {"$set": {slot.field: new}})
            os.remove(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"disk_write_bytes": written}


def s5cmd_run(arena: Arena, endpoint: str) -> dict[str, Any]:
    bucket = arena.services.settings.bucket
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as commands:
        for old, new, _ in arena.mapping():
            commands.write(f"mv s3://{bucket}/{old} s3://{bucket}/{new}\n")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": arena.services.settings.aws_access_key_id}
    env["AWS_SECRET_ACCESS_KEY"] = arena.services.settings.aws_secret_access_key
    env["AWS_REGION"] = "us-east-1"
    try:
        subprocess.run(
            [str(BIN / "s5cmd"), "--endpoint-url", endpoint, "run", commands.name],
            env=env,
            check=True,
            capture_output=True,
        )
    finally:
        os.unlink(commands.name)
    return {}


def rclone_move(arena: Arena, endpoint: str) -> dict[str, Any]:
    raise NotImplementedError  # only reached when rclone exists; see main()


def sequential(arena: Arena) -> dict[str, Any]:
    s3, bucket = arena.services.s3, arena.services.settings.bucket
    for old, new, _ in arena.mapping():
        s3.copy_object(Bucket=bucket, Key=new, CopySource={"Bucket": bucket, "Key": old})
        s3.delete_object(Bucket=bucket, Key=old)
    return {}


def raw_ceiling(arena: Arena) -> dict[str, Any]:
    s3, bucket = arena.services.s3, arena.services.settings.bucket
    moves = arena.mapping()
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda m: s3.copy_object(Bucket=bucket, Key=m[1], CopySource={"Bucket": bucket, "Key": m[0]}), moves
            )
        )
    olds = [old for old, _, _ in moves]
    for start in range(0, len(olds), 1000):
        s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in olds[start : start + 1000]], "Quiet": True}
        )
    return {}


@dataclass
class Contender:
    name: str
    run: Callable[[Arena], dict[str, Any]]
    with_db: bool
    times: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=2000)
    parser.add_argument("--no-audio", action="store_true", help="one object per scene instead of two")
    parser.add_argument("--big", action="store_true", help="add 20 scenes whose image is 5 MiB")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--shards", type=int, default=2, help="scenestore --shards")
    parser.add_argument("--batch-size", type=int, default=250, help="scenestore --batch-size")
    parser.add_argument("--only", default="", help="comma-separated contender names")
    args = parser.parse_args()
    data = Dataset(scenes=args.scenes, audio=not args.no_audio, big=20 if args.big else 0)

    with DevStack.create(Settings()) as stack:
        endpoint = stack.settings.s3_endpoint_url or ""
        s3 = make_s3_client(stack.settings)
        mongo = make_mongo_client(stack.settings)
        contenders = [
            Contender(
                f"scenestore migrate (--shards {args.shards} --batch-size {args.batch_size})",
                lambda a: scenestore(a, args.shards, args.batch_size),
                True,
            ),
            Contender("seed's way (download, upload, delete, update)", seed_way, True),
            Contender("s5cmd run (mv lines, no DB)", lambda a: s5cmd_run(a, endpoint), False),
            Contender("rclone move (no DB)", lambda a: rclone_move(a, endpoint), False),
            Contender("sequential boto3 copy+delete (no DB)", sequential, False),
            Contender("raw ceiling: 8 threads copy, DeleteObjects (no DB)", raw_ceiling, False),
        ]
        keys = ["scenestore", "seed", "s5cmd", "rclone", "sequential", "raw"]
        wanted = set(filter(None, args.only.split(",")))
        chosen = [c for key, c in zip(keys, contenders, strict=True) if not wanted or key in wanted]
        if shutil.which("rclone") is None:
            for c in chosen:
                if c.name.startswith("rclone"):
                    c.note = "skipped: rclone is not installed"
        objects = len(data.documents()[2])
        print(f"{data.scenes} scenes, {objects} legacy objects, {args.reps} repetition(s), 2-core shared machine")
        for rep in range(args.reps):
            for contender in chosen:
                if contender.note:
                    continue
                arena = seed(stack, s3, mongo, data)
                started = time.perf_counter()
                contender.extra = contender.run(arena)
                elapsed = time.perf_counter() - started
                check_moved(arena, contender.with_db)
                drop(arena)
                contender.times.append(elapsed)
                print(f"  rep {rep + 1}: {contender.name}: {elapsed:.2f}s ({objects / elapsed:.0f} obj/s)", flush=True)
        mongo.close()
    report(chosen, objects)


def report(contenders: list[Contender], objects: int) -> None:
    rate = {c.name: objects / statistics.median(c.times) for c in contenders if c.times}

    def find(prefix: str) -> float | None:
        return next((v for k, v in rate.items() if k.startswith(prefix)), None)

    ours, seed_rate, s5, raw = find("scenestore"), find("seed"), find("s5cmd"), find("raw")
    print()
    print("| contender | median s | obj/s | vs seed's way | vs s5cmd run | vs raw ceiling | disk written |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for c in contenders:
        if not c.times:
            print(f"| {c.name} | - | - | - | - | - | {c.note} |")
            continue
        r = rate[c.name]
        ratios = [f"{r / base:.2f}x" if base else "-" for base in (seed_rate, s5, raw)]
        disk = c.extra.get("disk_write_bytes")
        disk_text = "-" if disk is None else f"{disk / 1024:.0f} KiB"
        print(f"| {c.name} | {statistics.median(c.times):.2f} | {r:.0f} | {' | '.join(ratios)} | {disk_text} |")
    if ours and seed_rate and s5 and raw:
        print()
        print(
            f"targets: >= 4x seed's way: {ours / seed_rate:.2f}x {'ok' if ours >= 4 * seed_rate else 'MISSED'}; "
            f">= 1.3x s5cmd run: {ours / s5:.2f}x {'ok' if ours >= 1.3 * s5 else 'MISSED'}; "
            f">= 0.8x raw ceiling: {ours / raw:.2f}x {'ok' if ours >= 0.8 * raw else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
