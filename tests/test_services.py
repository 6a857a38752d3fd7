"""Services build each client on first use: a command pays only for the dependencies it really touches."""

from __future__ import annotations

import threading
from typing import Any

from click.testing import CliRunner
from scenestore.services import Services, get_services, set_services
from scenestore.settings import Settings, get_settings
from scenestore_cli.main import _register, cli


def test_no_client_exists_until_it_is_asked_for() -> None:
    services = Services(Settings())
    assert services.built == frozenset()
    assert services.store.bucket == services.settings.bucket
    assert services.built == {"s3"}
    assert services.db.name == services.settings.mongodb_db
    assert services.built == {"s3", "mongo"}
    services.mongo.close()


def test_concurrent_first_use_builds_one_client() -> None:
    services = Services(Settings())
    seen: list[Any] = []
    threads = [threading.Thread(target=lambda: seen.append(services.s3)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(client) for client in seen}) == 1


def test_replace_swaps_one_client_and_shares_the_rest(services: Services) -> None:
    other: Any = object()
    swapped = services.replace(s3=other)
    assert swapped.s3 is other
    assert swapped.mongo is services.mongo
    assert swapped.settings is services.settings


def test_clear_bucket_on_an_empty_prefix_never_builds_a_mongodb_client(services: Services) -> None:
    """GIVEN the CLI's own process-wide services (built from the environment the fixture set)
    WHEN clear-bucket runs on a prefix with no objects THEN only the S3 client was ever created."""
    set_services(None)
    get_settings.cache_clear()
    _register()
    bucket = services.settings.bucket
    result = CliRunner().invoke(cli, ["clear-bucket", "--confirm", bucket, "--prefix", "nothing/here/", "--json"])
    assert result.exit_code == 0, result.output
    assert get_services().built == {"s3"}
