"""Request cost: R2's classes, list prices with their date (overridable), and the estimates the dry runs print."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from scenestore.errors import InvalidRequest
from scenestore.request_cost import (
    LIST_PRICES,
    PRICES_ENV,
    Prices,
    Requests,
    describe,
    estimate_migration,
    estimate_prefix_delete,
    request_class,
)
from scenestore.services import Services

from tests.support.seed import add_project, add_scene, keys_in, layout_keys, put_objects


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        ("ListObjectsV2", "A"),
        ("ListObjects", "A"),
        ("PutObject", "A"),
        ("CopyObject", "A"),
        ("CreateMultipartUpload", "A"),
        ("UploadPart", "A"),
        ("UploadPartCopy", "A"),
        ("CompleteMultipartUpload", "A"),
        ("ListMultipartUploads", "A"),
        ("ListParts", "A"),
        ("HeadObject", "B"),
        ("GetObject", "B"),
        ("HeadBucket", "B"),
        ("GetBucketLocation", "B"),
        ("DeleteObject", "free"),
        ("DeleteObjects", "free"),
        ("AbortMultipartUpload", "free"),
        ("DeleteBucket", "free"),
        ("SomethingNew", "A"),  # unknown: counted as the dearer class
    ],
)
def test_operations_fall_into_r2_classes(operation: str, expected: str) -> None:
    assert request_class(operation) == expected


def test_list_prices_are_r2s_published_ones_with_their_date() -> None:
    assert (LIST_PRICES.class_a, LIST_PRICES.class_b) == (4.50, 0.36)
    assert LIST_PRICES.date  # the date the prices were read is always stated
    assert Prices.from_env({}) is LIST_PRICES


def test_prices_are_overridden_by_the_environment() -> None:
    prices = Prices.from_env({PRICES_ENV: "5.00, 0.40, 2027-03-01"})
    assert (prices.class_a, prices.class_b, prices.date) == (5.00, 0.40, "2027-03-01")
    assert PRICES_ENV in prices.source
    assert Prices.from_env({PRICES_ENV: "5,0.4"}).date == "date not given"


@pytest.mark.parametrize("bad", ["5", "a,b", "1,2,3,4", "-1,0.36", "nan,1"])
def test_a_bad_price_override_is_refused_naming_the_variable(bad: str) -> None:
    with pytest.raises(InvalidRequest, match=PRICES_ENV):
        Prices.from_env({PRICES_ENV: bad})


def test_requests_are_counted_by_class_and_priced() -> None:
    requests = Requests.of({"CopyObject": 1_000_000, "HeadObject": 1_000_000, "DeleteObjects": 1000, "GetObject": 0})
    assert requests.by_class() == {"A": 1_000_000, "B": 1_000_000, "free": 1000}
    assert requests.price() == pytest.approx(4.50 + 0.36)
    assert requests.price(Prices(1.0, 1.0, "x")) == pytest.approx(2.0)
    assert requests.per_object(1_000_000) == {"A": 1.0, "B": 1.0, "free": 0.001}
    data = requests.to_dict()
    assert (data["class_a"], data["class_b"], data["free"]) == (1_000_000, 1_000_000, 1000)
    assert data["price_usd"] == pytest.approx(4.86)
    assert data["prices_date"] == LIST_PRICES.date
    assert "GetObject" not in data["operations"]  # zero counts are dropped
    line = describe(requests)
    assert "1,000,000 Class A" in line and "$4.8600" in line and LIST_PRICES.date in line


def test_prefix_delete_estimate() -> None:
    million = estimate_prefix_delete(1_000_000, listers=4)
    assert million.operations["DeleteObjects"] == 1000
    # a page per 1,000 keys, the tree's two levels, one page past each of the three split points
    assert million.operations["ListObjectsV2"] == 1000 + 2 + 3
    assert million.by_class()["free"] == 1000
    assert million.price() == pytest.approx(1005 * 4.50 / 1e6)
    small = estimate_prefix_delete(10, listers=4, split_early=False)
    assert dict(small.operations) == {"ListObjectsV2": 1, "DeleteObjects": 1}
    empty = estimate_prefix_delete(0, listers=1)
    assert dict(empty.operations) == {"ListObjectsV2": 1}


def test_migration_estimate_stays_within_a_class_a_and_no_class_b_per_object() -> None:
    requests = estimate_migration(100_000, batch_size=100)
    assert requests.operations["CopyObject"] == 100_000
    assert requests.operations["ListObjectsV2"] == 100 + 1000  # the inventory, one target listing a batch
    assert requests.operations["DeleteObjects"] == 1000
    share = requests.per_object(100_000)
    assert share["A"] <= 1.05 and share["B"] == 0


def test_migration_estimate_copies_large_objects_in_parts() -> None:
    six_gib = 6 * 1024**3
    requests = estimate_migration(3, batch_size=100, large=1, large_bytes=six_gib)
    assert requests.operations["CopyObject"] == 2
    assert requests.operations["UploadPartCopy"] == 12  # 512 MiB parts
    assert requests.operations["CreateMultipartUpload"] == requests.operations["CompleteMultipartUpload"] == 1
    assert requests.operations["HeadObject"] == 1
    nothing = estimate_migration(0, batch_size=100, legacy_objects=2500)
    assert dict(nothing.operations) == {"ListObjectsV2": 3}


# -- the dry runs print them -------------------------------------------------------------------------------
def test_clear_bucket_dry_run_prints_the_real_runs_requests_and_price(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scenestore_cli.delete import clear_bucket_command

    put_objects(services, layout_keys(1500))
    done = CliRunner().invoke(
        clear_bucket_command, ["--confirm", services.settings.bucket, "--dry-run", "--json"], catch_exceptions=False
    )
    requests = json.loads(done.output)["requests"]
    assert requests["operations"]["DeleteObjects"] == 2 and requests["free"] == 2
    assert requests["class_a"] == requests["operations"]["ListObjectsV2"] >= 2
    assert requests["price_usd"] == pytest.approx(requests["class_a"] * 4.50 / 1e6)
    assert requests["prices_date"] == LIST_PRICES.date
    monkeypatch.setenv(PRICES_ENV, "9,1,2030-01-01")
    human = CliRunner().invoke(clear_bucket_command, ["--confirm", services.settings.bucket, "--dry-run"]).output
    assert "the real run:" in human and "$9/M A" in human and "2030-01-01" in human
    assert len(keys_in(services)) == 1500


def test_migrate_dry_run_prints_the_real_runs_requests_and_price(services: Services) -> None:
    from scenestore_cli.migrate import migrate_command

    add_project(services, "p", "u")
    keys = [f"media/{i:04}.jpg" for i in range(5)]
    put_objects(services, keys)
    for i, key in enumerate(keys):
        add_scene(services, f"s{i:04}", "p", media=key)
    done = CliRunner().invoke(migrate_command, ["--dry-run", "--json", "--batch-size", "2"], catch_exceptions=False)
    requests = json.loads(done.stdout)["requests"]
    assert requests["operations"] == {"CopyObject": 5, "DeleteObjects": 3, "ListObjectsV2": 1 + 3}
    assert requests["class_b"] == 0
    human = CliRunner().invoke(migrate_command, ["--dry-run", "--batch-size", "2"], catch_exceptions=False).stdout
    assert "the real run: 9 Class A + 0 Class B + 3 free requests" in human
