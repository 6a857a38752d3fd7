"""The benchmark store (bench/s3store.py) speaks enough S3 for boto3 and s5cmd, and counts what it is asked.

Benchmark-only code, but every figure in docs/benchmarks.md depends on it answering like S3: listings with
prefix, delimiter, start-after and continuation, copies, multipart, batch deletes, and exact counts.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

from s3store import BenchS3  # noqa: E402


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BenchS3]:
    with BenchS3([0], tmp_path_factory.mktemp("s3store")) as running:
        yield running


@pytest.fixture
def s3(store: BenchS3) -> Any:
    client = boto3.client(
        "s3",
        endpoint_url=store.endpoint(0),
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )
    client.create_bucket(Bucket="bench")
    store.reset()
    return client


def test_listing_with_prefix_delimiter_start_after_and_continuation(store: BenchS3, s3: Any) -> None:
    keys = [f"p/s{i:03d}/k{j}" for i in range(30) for j in range(4)] + ["p/top", "q/other"]
    store.seed("bench", keys, 3)
    pages = list(
        s3.get_paginator("list_objects_v2").paginate(Bucket="bench", Prefix="p/", PaginationConfig={"PageSize": 7})
    )
    listed = [o["Key"] for page in pages for o in page.get("Contents", [])]
    assert listed == sorted(k for k in keys if k.startswith("p/")) and len(pages) == 18
    tree = s3.list_objects_v2(Bucket="bench", Prefix="p/", Delimiter="/", MaxKeys=20)
    assert [c["Prefix"] for c in tree["CommonPrefixes"]] == [f"p/s{i:03d}/" for i in range(20)]
    rest = s3.list_objects_v2(
        Bucket="bench", Prefix="p/", Delimiter="/", ContinuationToken=tree["NextContinuationToken"]
    )
    assert rest["CommonPrefixes"][0]["Prefix"] == "p/s020/" and rest["Contents"][0]["Key"] == "p/top"
    after = s3.list_objects_v2(Bucket="bench", Prefix="p/", StartAfter="p/s029/k2")
    assert [o["Key"] for o in after["Contents"]] == ["p/s029/k3", "p/top"]
    assert store.counts()["ListObjectsV2"] == 18 + 3


def test_objects_copies_multipart_and_batch_deletes(store: BenchS3, s3: Any) -> None:
    s3.put_object(Bucket="bench", Key="a b+c&.txt", Body=b"hello", ContentType="text/plain")
    head = s3.head_object(Bucket="bench", Key="a b+c&.txt")
    assert (head["ContentLength"], head["ContentType"]) == (5, "text/plain")
    s3.copy_object(Bucket="bench", Key="copy.txt", CopySource={"Bucket": "bench", "Key": "a b+c&.txt"})
    assert s3.get_object(Bucket="bench", Key="copy.txt")["Body"].read() == b"hello"
    assert s3.get_object(Bucket="bench", Key="copy.txt", Range="bytes=1-3")["Body"].read() == b"ell"
    big = b"z" * (11 * 1024 * 1024)
    s3.upload_fileobj(io.BytesIO(big), "bench", "big", Config=TransferConfig(multipart_threshold=5 * 1024**2))
    assert s3.head_object(Bucket="bench", Key="big")["ETag"].endswith('-2"')
    upload = s3.create_multipart_upload(Bucket="bench", Key="left")
    assert [u["Key"] for u in s3.list_multipart_uploads(Bucket="bench", Prefix="le")["Uploads"]] == ["left"]
    s3.abort_multipart_upload(Bucket="bench", Key="left", UploadId=upload["UploadId"])
    done = s3.delete_objects(
        Bucket="bench", Delete={"Objects": [{"Key": k} for k in ("a b+c&.txt", "copy.txt", "big")], "Quiet": True}
    )
    assert done.get("Errors", []) == []
    with pytest.raises(ClientError) as missing:
        s3.head_object(Bucket="bench", Key="copy.txt")
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    counts = store.counts()
    assert counts["CopyObject"] == 1 and counts["DeleteObjects"] == 1 and counts["AbortMultipartUpload"] == 1
    assert counts["UploadPart"] == 2 and counts["CompleteMultipartUpload"] == 1


def test_snapshot_and_restore(store: BenchS3, s3: Any) -> None:
    store.seed("bench", [f"r/{i}" for i in range(50)], 1)
    store.snapshot("bench", "t")
    s3.delete_objects(Bucket="bench", Delete={"Objects": [{"Key": f"r/{i}"} for i in range(50)]})
    assert s3.list_objects_v2(Bucket="bench", Prefix="r/")["KeyCount"] == 0
    assert store.restore("bench", "t") >= 50
    assert s3.list_objects_v2(Bucket="bench", Prefix="r/")["KeyCount"] == 50


@pytest.mark.skipif(not (Path(sys.executable).parent / "s5cmd").exists(), reason="s5cmd is not installed")
def test_s5cmd_lists_and_deletes(store: BenchS3, s3: Any) -> None:
    store.seed("bench", [f"s5/{i:04d}" for i in range(1500)], 2)
    env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1")
    s5cmd = [str(Path(sys.executable).parent / "s5cmd"), "--endpoint-url", store.endpoint(0)]
    done = subprocess.run([*s5cmd, "rm", "s3://bench/s5/*"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert s3.list_objects_v2(Bucket="bench", Prefix="s5/")["KeyCount"] == 0
