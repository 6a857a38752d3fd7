"""Session-wide local stack (moto's S3 server + SecantusDB, real processes on free ports).

Every test that asks for ``services`` gets its own bucket and its own database on those servers, so
tests never see each other's data and never collide with a running ``scenestore serve``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from scenestore.clients import make_mongo_client, make_s3_client
from scenestore.services import Services, set_services, use_services
from scenestore.settings import Settings, get_settings
from scenestore_cli.local.bootstrap import prepare
from scenestore_cli.local.stack import DevStack

from tests.support.lambda_context import FakeLambdaContext

#: Fixture modules, registered once for every test module (no re-exports).
pytest_plugins = ["tests.support.presign"]

os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "scenestore-test")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")


@pytest.fixture(scope="session")
def stack() -> Iterator[DevStack]:
    local = DevStack.create(Settings()).start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="session")
def s3_client(stack: DevStack) -> Any:
    return make_s3_client(stack.settings)


@pytest.fixture(scope="session")
def mongo_client(stack: DevStack) -> Iterator[Any]:
    client = make_mongo_client(stack.settings)
    yield client
    client.close()


def unique_name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def fresh_services(
    base: Settings, s3_client: Any, mongo_client: Any, monkeypatch: pytest.MonkeyPatch, prefix: str = "t"
) -> Iterator[Services]:
    """A fresh bucket + database on ``base``'s servers, installed as the process's services and in the
    environment for the test; the database is dropped afterwards."""
    name = unique_name(prefix)
    settings = base.with_overrides(bucket=name, mongodb_db=name)
    svc = Services(settings=settings, s3=s3_client, mongo=mongo_client)
    prepare(svc)
    for key, value in settings.to_env().items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    with use_services(svc):
        yield svc
    get_settings.cache_clear()
    set_services(None)
    mongo_client.drop_database(name)


@pytest.fixture
def services(stack: DevStack, s3_client: Any, mongo_client: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    """Fresh bucket + database for one test, installed as the process's services and in the environment."""
    yield from fresh_services(stack.settings, s3_client, mongo_client, monkeypatch)


@pytest.fixture
def settings(services: Services) -> Settings:
    return services.settings


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def cli_env(services: Services) -> dict[str, str]:
    """Environment for running ``scenestore`` in a subprocess against this test's bucket and database."""
    env = dict(os.environ)
    env.update(services.settings.to_env())
    env["POWERTOOLS_METRICS_DISABLED"] = "true"
    return env


#: The longest tests (measured under four xdist workers: 15-65 s each), started first so that no worker is left
#: running one of them alone at the end of the suite. Matched against the test's node id, parameters included.
LONGEST_FIRST = (
    "test_migration_faults.py::test_kill_9_at_the_highest_concurrency",
    "test_engine_migration.py::test_the_largest_shard_count_with_the_most_errors",
    "test_presign_fuzz.py::test_no_input_makes_the_api_fail",
    "test_migration_cli.py::test_kill_9_mid_run",
    "test_migration_stateful.py::test_random_batches_crashes_resumes",
    "test_migration_cli.py::test_shards_rollback_and_usage_errors",
    "test_prefix_delete.py::test_thousands_of_objects_in_batches_of_1000",
    "test_migration_helpers.py::test_delete_unreferenced_sends_chunks_of_at_most_1000_keys",
    "test_js_client.py::test_node_client_tests_pass_against_the_local_api",
    "test_engine_deletion.py::",
    "test_prefix_split.py::test_a_deadline_across_ranges",
    "test_request_cost.py::test_clear_bucket_dry_run",
    "test_migration_faults.py::test_a_slowdown_storm",
    "test_cleanup_faults.py::test_a_key_refused_in_the_first_of_three_rounds",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests go first, in ``LONGEST_FIRST``'s order, then those marked ``slow``; the rest keep their
    order."""

    def rank(item: pytest.Item) -> int:
        for position, name in enumerate(LONGEST_FIRST):
            if name in item.nodeid:
                return position
        return len(LONGEST_FIRST) + (0 if item.get_closest_marker("slow") else 1)

    items.sort(key=rank)
