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
