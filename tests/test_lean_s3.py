"""The prefix delete's cheap side of botocore: listing pages read by a scan, ``DeleteObjects`` bodies written
by a join, and botocore's own 200-error check left with a small body (against moto's server where it counts).
"""

from __future__ import annotations

from typing import Any

import botocore.handlers
import pytest
from scenestore.prefix_delete import (
    _delete_objects,
    _delete_xml,
    _lean_list_hook,
    _parse_entries,
    _scan_entries,
    delete_keys,
    iter_key_pages,
)
from scenestore.services import Services
from scenestore.storage import ObjectInfo

from tests.support.seed import P1, keys_in, layout_keys, put_objects, varied

NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


def page(entries: str, tail: str = "", encoding: str = "url") -> bytes:
    head = f"<ListBucketResult {NS}><Name>b</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>"
    if encoding:
        head += f"<EncodingType>{encoding}</EncodingType>"
    return f"{head}<IsTruncated>true</IsTruncated>{entries}{tail}</ListBucketResult>".encode()


def entry(key: str, size: int) -> str:
    return (
        f"<Contents><Key>{key}</Key><LastModified>2026-12-07T00:00:00.000Z</LastModified>"
        f"<ETag>&quot;e&quot;</ETag><Size>{size}</Size><StorageClass>STANDARD</StorageClass></Contents>"
    )


def test_a_page_is_scanned_like_it_is_parsed() -> None:
    body = page(
        entry("p/a%20b%2Bc.png", 3) + entry("p/caf%C3%A9&amp;x.png", 5),
        "<NextContinuationToken>t</NextContinuationToken>",
    )
    scanned, parsed = _scan_entries(body), _parse_entries(body)
    assert scanned is not None and parsed is not None
    assert scanned[0] == parsed[0] == [("p/a b+c.png", 3), ("p/café&x.png", 5)]
    assert b"<Contents>" not in scanned[1] and b"<NextContinuationToken>t</NextContinuationToken>" in scanned[1]
    plain = page(entry("p/a b&amp;c.png", 1), encoding="")
    assert _scan_entries(plain) == ([("p/a b&c.png", 1)], page("", encoding=""))


@pytest.mark.parametrize(
    "body",
    [
        page(entry("p/a", 1) + "<CommonPrefixes><Prefix>p/x/</Prefix></CommonPrefixes>" + entry("p/b", 2)),
        page(entry("p/a", 1) + "<NextContinuationToken>t</NextContinuationToken>" + entry("p/b", 2)),
        page(""),  # no entries: nothing to scan
        b"<s3:ListBucketResult xmlns:s3='x'><s3:Contents><s3:Key>k</s3:Key><s3:Size>1</s3:Size></s3:Contents>"
        b"</s3:ListBucketResult>",
    ],
)
def test_a_page_laid_out_otherwise_is_left_to_the_parse(body: bytes) -> None:
    """Anything between entries (or no plain ``Contents``) would be cut out with them: the scan declines."""
    assert _scan_entries(body) is None


def test_an_error_inside_a_200_answer_is_left_whole() -> None:
    body = b"<Error><Code>InternalError</Code><Message>x</Message></Error>"
    response: dict[str, Any] = {"status_code": 200, "body": body}
    from scenestore.prefix_delete import _LEAN

    token = _LEAN.set(True)
    try:
        _lean_list_hook(response, {})
    finally:
        _LEAN.reset(token)
    assert b"<Code>InternalError</Code>" in response["body"]
    assert botocore.handlers._looks_like_special_case_error(200, response["body"])


def test_a_delete_body_escapes_keys() -> None:
    xml = _delete_xml(["a&b<c>.png", "plain"])
    assert b"<Key>a&amp;b&lt;c&gt;.png</Key>" in xml and xml.endswith(b"<Quiet>true</Quiet></Delete>")


def test_botocores_200_check_sees_the_page_without_its_entries(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_objects(services, layout_keys(1200), varied)
    seen: list[int] = []
    check = botocore.handlers._looks_like_special_case_error

    def spy(status: int, body: bytes) -> bool:
        seen.append(len(body))
        return bool(check(status, body))

    monkeypatch.setattr(botocore.handlers, "_looks_like_special_case_error", spy)
    pages = list(iter_key_pages(services.s3, services.settings.bucket, P1))
    assert [len(p) for p in pages] == [1000, 200]
    assert seen and max(seen) < 2000  # the 1,000 entries (about 200 KB) were cut out before it ran


def test_every_key_is_deleted_through_the_written_body(services: Services) -> None:
    keys = [*layout_keys(1000)[:-2], f"{P1}odd/a&b<c>.png", f"{P1}odd/caf\u00e9 x+y.png"]
    total = put_objects(services, keys, varied)
    result = delete_keys(services.s3, services.settings.bucket, [ObjectInfo(k, 0, "") for k in keys])
    assert (result.deleted, result.errors) == (1000, [])
    assert keys_in(services, P1) == set()
    assert total


def test_without_the_hook_every_key_is_still_sent(services: Services) -> None:
    """A client on which the body hook was never installed: the first key goes in the call, the rest after."""
    from scenestore.clients import make_s3_client

    keys = layout_keys(5)
    put_objects(services, keys, varied)
    bare = make_s3_client(services.settings)  # _delete_objects itself installs nothing
    response = _delete_objects(bare, services.settings.bucket, keys)
    assert response.get("Errors", []) == []
    assert keys_in(services, P1) == set()
