"""Where the ``s3_peer`` tests run (``scenestore_cli.local.peer.target_from_env``), without starting anything: the
default is a LocalStack of the session's own; an existing bucket needs its endpoint and keys, never a silent
fallback to LocalStack."""

from __future__ import annotations

import pytest
from scenestore_cli.local import peer
from scenestore_cli.local.servers import StackError


def test_no_variable_means_localstack_and_a_bucket_of_the_suites_own() -> None:
    target = peer.target_from_env({})
    assert target == peer.PeerTarget()
    assert (target.endpoint, target.existing_bucket, target.origin) == (None, False, "https://app.example.com")


def test_an_existing_bucket_with_its_endpoint_and_keys() -> None:
    target = peer.target_from_env(
        {
            peer.ENDPOINT_VAR: "https://acct.r2.cloudflarestorage.com/",
            peer.BUCKET_VAR: "dev-media",
            peer.REGION_VAR: "auto",
            peer.ACCESS_KEY_VAR: "key-id",
            peer.SECRET_KEY_VAR: "secret",
            peer.ORIGIN_VAR: "https://staging.example.com/",
        }
    )
    assert target == peer.PeerTarget(
        "https://acct.r2.cloudflarestorage.com", "dev-media", "auto", "key-id", "secret", "https://staging.example.com"
    )
    assert target.existing_bucket


@pytest.mark.parametrize(
    ("environ", "says"),
    [
        ({peer.BUCKET_VAR: "dev-media"}, "without SCENESTORE_PEER_S3_ENDPOINT_URL"),
        (
            {peer.BUCKET_VAR: "dev-media", peer.ENDPOINT_VAR: "https://x.example"},
            "needs SCENESTORE_PEER_AWS_ACCESS_KEY_ID",
        ),
    ],
)
def test_a_bucket_without_its_endpoint_or_keys_is_refused(environ: dict[str, str], says: str) -> None:
    with pytest.raises(StackError, match=says):
        peer.target_from_env(environ)
