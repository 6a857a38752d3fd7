"""Multipart uploads over real HTTP against the local stack (contract section 4, "Multipart uploads").

create -> sign each part -> PUT -> complete ends exactly like ``uploads/complete``; list parts lets a resumed
upload send only the rest; abort leaves nothing behind; the single PUT's checks, limits and tenancy apply; every
route answers 404 for another user's upload. moto accepts any signature, so what the signatures bind is checked
here by reading the signed headers, and by a real check against the signature-validating peer (``tests/peer``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from scenestore import multipart
from scenestore.services import Services, use_services
from scenestore.settings import KindLimits

from tests.support import multipart as mp
from tests.support.multipart import MiB, video_bytes
from tests.support.presign import ALICE, BOB, Api, seed_two_tenants
from tests.support.seed import add_project, add_scene

pytestmark = pytest.mark.filterwarnings("ignore:The HMAC key")

PART = 5 * MiB
#: Three parts: two of 5 MiB and a last one of 1 MiB + 17 bytes.
SIZE = 2 * PART + MiB + 17


@pytest.fixture
def small_parts(services: Services) -> Iterator[Services]:
    """The services with 5 MiB parts (the minimum), so a three-part upload is 11 MiB, not 33."""
    settings = services.settings.with_overrides(multipart_part_size=PART)
    with use_services(Services(settings, services.s3, services.mongo)) as installed:
        yield installed


@pytest.fixture
def project(small_parts: Services) -> str:
    add_project(small_parts, "p1", ALICE)
    add_scene(small_parts, "s1", "p1")
    return "p1"


def test_a_three_part_upload_goes_through_and_reads_back_byte_for_byte(api: Api, project: str) -> None:
    data = video_bytes(SIZE)
    result = mp.upload(api, project, data)
    created, completed = result["created"], result["completed"]
    assert created["key"] == "users/alice/projects/p1/scenes/s1/video/big.mp4"
    assert (created["part_size"], created["part_count"]) == (PART, 3)
    assert completed == {
        "key": created["key"],
        "slot": "scene.media",
        "size": SIZE,
        "content_type": "video/mp4",
        "replaced": False,
        "deleted_previous": False,
    }
    scene = api.services.db.scenes.find_one({"_id": "s1"})
    assert scene is not None
    assert scene["media"] == {"storageKey": created["key"], "type": "video", "contentType": "video/mp4", "size": SIZE}
    download = api.get("/files", params={"key": created["key"]})
    assert download.status_code == 200
    assert api.session.get(download.json()["url"], timeout=60).content == data


def test_create_answers_the_contract_fields(api: Api, project: str) -> None:
    response = mp.create(api, project, SIZE)
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"key", "upload_id", "part_size", "part_count", "expires_at"}
    assert body["expires_at"].endswith("Z")
    assert response.headers["Cache-Control"] == "no-store"


def test_an_output_goes_into_the_project_slot(api: Api, project: str) -> None:
    data = video_bytes(PART + 1)
    result = mp.upload(api, project, data, kind="output", filename="final.mp4", scene_id=None)
    assert result["created"]["key"] == "users/alice/projects/p1/output/final.mp4"
    assert result["completed"]["slot"] == "project.output"
    project_doc = api.services.db.projects.find_one({"_id": "p1"})
    assert project_doc is not None and project_doc["output"]["storageKey"] == result["created"]["key"]


def test_a_file_smaller_than_one_part_is_one_part(api: Api, project: str) -> None:
    data = video_bytes(1000)
    result = mp.upload(api, project, data)
    assert result["created"]["part_count"] == 1
    assert result["completed"]["size"] == 1000


# -- the part plan -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("size", "preferred", "part_size", "part_count"),
    [
        (1, 16 * MiB, 16 * MiB, 1),
        (16 * MiB, 16 * MiB, 16 * MiB, 1),
        (16 * MiB + 1, 16 * MiB, 16 * MiB, 2),
        (1024 * MiB, 16 * MiB, 16 * MiB, 64),
        (11 * MiB, 1 * MiB, 5 * MiB, 3),  # never under R2's 5 MiB
        (11 * MiB, 5 * MiB + 1, 6 * MiB, 2),  # rounded up to a whole MiB
        (200_000 * MiB, 5 * MiB, 20 * MiB, 10_000),  # raised so that 10,000 parts suffice
        (200_000 * MiB + 1, 5 * MiB, 21 * MiB, 9524),
    ],
)
def test_the_part_plan(size: int, preferred: int, part_size: int, part_count: int) -> None:
    plan = multipart.plan_parts(size, preferred)
    assert (plan.part_size, plan.part_count) == (part_size, part_count)
    assert plan.part_count <= multipart.MAX_PARTS
    assert plan.part_size % MiB == 0 and plan.part_size >= 5 * MiB
    assert sum(plan.length_of(n) for n in range(1, plan.part_count + 1)) == size
    assert 0 < plan.length_of(plan.part_count) <= plan.part_size


def test_the_default_part_size_is_16_mib(api: Api, services: Services) -> None:
    add_project(services, "p1", ALICE)
    add_scene(services, "s1", "p1")
    body = mp.create(api, "p1", 100 * MiB).json()
    assert (body["part_size"], body["part_count"]) == (16 * MiB, 7)


# -- each part's URL signs its exact length ----------------------------------------------------------------------
def test_each_part_url_is_an_upload_part_put_signing_its_exact_length(api: Api, project: str) -> None:
    created = mp.create(api, project, SIZE).json()
    for number, length in ((1, PART), (2, PART), (3, MiB + 17)):
        response = mp.sign(api, project, created["upload_id"], created["key"], number)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"url", "headers", "expires_at"}
        assert body["headers"] == {"Content-Length": str(length)}
        url = urlsplit(body["url"])
        query = parse_qs(url.query)
        assert url.path.endswith("/" + created["key"])
        assert query["partNumber"] == [str(number)]
        assert query["uploadId"] == [created["upload_id"]]
        assert query["X-Amz-SignedHeaders"] == ["content-length;host"]


@pytest.mark.parametrize("part_number", ["0", "4", "10001", "-1", "01", "1.0", "+1", "abc", "1e3", "99999999999"])
def test_a_bad_part_number_is_400(api: Api, project: str, part_number: str) -> None:
    created = mp.create(api, project, SIZE).json()
    response = mp.sign(api, project, created["upload_id"], created["key"], part_number)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"


# -- the single PUT's checks ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"content_type": "video/x-msvideo", "filename": "a.avi"}, 415, "unsupported_type"),
        ({"size": 1024 * MiB + 1}, 413, "too_large"),
        ({"size": 0}, 400, "invalid_request"),
        ({"size": "11"}, 400, "invalid_request"),
        ({"filename": "clip.webm"}, 400, "invalid_filename"),
        ({"filename": "..."}, 400, "invalid_filename"),
        ({"scene_id": "nope"}, 404, "not_found"),
        ({"scene_id": {"$ne": None}}, 400, "invalid_id"),
        ({"kind": "document"}, 400, "invalid_request"),
    ],
)
def test_create_runs_the_single_put_checks(
    api: Api, project: str, overrides: dict[str, Any], status: int, code: str
) -> None:
    rest = {name: value for name, value in overrides.items() if name != "size"}
    response = mp.create(api, project, overrides.get("size", SIZE), **rest)
    assert response.status_code == status, response.text
    assert response.json()["error"] == code
    assert not list(api.services.db[multipart.COLLECTION].find())


def test_an_output_with_a_scene_id_is_refused(api: Api, project: str) -> None:
    body = {"kind": "output", "scene_id": "s1", "filename": "final.mp4", "content_type": "video/mp4", "size": SIZE}
    response = api.post(mp.multipart_path(project), body)
    assert response.status_code == 400
    assert "leave scene_id out" in response.json()["message"]


def test_create_needs_a_token(api: Api, project: str) -> None:
    response = api.post(mp.multipart_path(project), {"kind": "video"}, user=None)
    assert response.status_code == 401


# -- tenancy -----------------------------------------------------------------------------------------------
def every_route(api: Api, project_id: str, upload_id: str, key: str, user: str) -> dict[str, int]:
    parts = [{"PartNumber": 1, "ETag": '"x"'}]
    return {
        "create": mp.create(api, project_id, SIZE, scene_id="sa", user=user).status_code,
        "sign": mp.sign(api, project_id, upload_id, key, 1, user=user).status_code,
        "list": mp.list_parts(api, project_id, upload_id, key, user=user).status_code,
        "complete": mp.complete(api, project_id, upload_id, key, parts, user=user).status_code,
        "abort": mp.abort(api, project_id, upload_id, key, user=user).status_code,
    }


def test_another_user_gets_404_on_every_route(api: Api, small_parts: Services) -> None:
    seed_two_tenants(small_parts)
    data = video_bytes(SIZE)
    created = mp.create(api, "pa", SIZE, scene_id="sa").json()
    sent = mp.send_parts(api, "pa", created, data, [1])
    upload_id, key = created["upload_id"], created["key"]

    assert every_route(api, "pa", upload_id, key, BOB) == dict.fromkeys(
        ("create", "sign", "list", "complete", "abort"), 404
    )
    # bob's own project, alice's upload id: the key must lie under the caller's project
    bobs_key = key.replace("users/alice/projects/pa/scenes/sa", "users/bob/projects/pb/scenes/sb")
    for name, status in every_route(api, "pb", upload_id, bobs_key, BOB).items():
        if name != "create":
            assert status == 404, name
    # alice's upload still stands, untouched
    listed = mp.list_parts(api, "pa", upload_id, key)
    assert listed.status_code == 200
    assert [p["PartNumber"] for p in listed.json()["parts"]] == [sent[0]["PartNumber"]]


def test_an_upload_id_with_another_key_is_404(api: Api, project: str) -> None:
    first = mp.create(api, project, SIZE).json()
    second = mp.create(api, project, SIZE, filename="other.mp4").json()
    for response in (
        mp.sign(api, project, first["upload_id"], second["key"], 1),
        mp.list_parts(api, project, first["upload_id"], second["key"]),
        mp.complete(api, project, first["upload_id"], second["key"], [{"PartNumber": 1, "ETag": '"x"'}]),
        mp.abort(api, project, first["upload_id"], second["key"]),
        mp.sign(api, project, "no-such-upload", first["key"], 1),
    ):
        assert response.status_code == 404, response.text
        assert response.json() == {"error": "not_found", "message": "upload not found"}


def test_a_key_outside_the_layout_or_missing_is_400(api: Api, project: str) -> None:
    created = mp.create(api, project, SIZE).json()
    assert mp.sign(api, project, created["upload_id"], "media/legacy.mp4", 1).status_code == 400
    no_key = api.get(mp.multipart_path(project, created["upload_id"]))
    assert no_key.status_code == 400


# -- list parts, resume -------------------------------------------------------------------------------------
def test_a_resumed_upload_lists_what_the_bucket_holds_and_sends_only_the_rest(api: Api, project: str) -> None:
    data = video_bytes(SIZE)
    created = mp.create(api, project, SIZE).json()
    assert mp.list_parts(api, project, created["upload_id"], created["key"]).json() == {"parts": []}
    first = mp.send_parts(api, project, created, data, [2])  # a browser sends parts in any order

    # ... the tab closes; a new one asks what is there
    listed = mp.list_parts(api, project, created["upload_id"], created["key"]).json()["parts"]
    assert listed == [{"PartNumber": 2, "Size": PART, "ETag": first[0]["ETag"]}]
    rest = mp.send_parts(api, project, created, data, [1, 3])
    parts = [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in listed] + rest
    done = mp.complete(api, project, created["upload_id"], created["key"], parts)
    assert done.status_code == 200, done.text
    assert api.services.store.get_bytes(created["key"]) == data


# -- complete -----------------------------------------------------------------------------------------------
def test_completing_again_answers_what_uploads_complete_answers(api: Api, project: str) -> None:
    data = video_bytes(SIZE)
    created = mp.create(api, project, SIZE).json()
    parts = mp.send_parts(api, project, created, data, [1, 2, 3])
    first = mp.complete(api, project, created["upload_id"], created["key"], parts)
    again = mp.complete(api, project, created["upload_id"], created["key"], parts)
    single = api.complete(project, created["key"])
    assert first.status_code == again.status_code == single.status_code == 200
    assert again.json() == single.json() == {**first.json(), "replaced": False, "deleted_previous": False}
    assert api.services.store.multipart_upload_ids(created["key"]) == []


def test_a_complete_the_bucket_already_assembled_is_finished_not_refused(api: Api, project: str) -> None:
    """A crash (or a concurrent duplicate) between the bucket's assembly and our record: the repeat finishes."""
    data = video_bytes(SIZE)
    created = mp.create(api, project, SIZE).json()
    parts = mp.send_parts(api, project, created, data, [1, 2, 3])
    api.services.store.complete_multipart(
        created["key"], created["upload_id"], [(p["PartNumber"], p["ETag"]) for p in parts]
    )
    done = mp.complete(api, project, created["upload_id"], created["key"], parts)
    assert done.status_code == 200, done.text
    assert done.json()["size"] == SIZE


@pytest.mark.parametrize(
    "numbers",
    [[1, 2], [1, 3], [1, 2, 3, 3], [1, 2, 3, 4], [0, 1, 2, 3]],
    ids=["missing-last", "missing-middle", "duplicate", "extra", "zero"],
)
def test_complete_needs_every_part_exactly_once(api: Api, project: str, numbers: list[int]) -> None:
    data = video_bytes(SIZE)
    created = mp.create(api, project, SIZE).json()
    sent = {p["PartNumber"]: p["ETag"] for p in mp.send_parts(api, project, created, data, [1, 2, 3])}
    parts = [{"PartNumber": n, "ETag": sent.get(n, '"0"')} for n in numbers]
    response = mp.complete(api, project, created["upload_id"], created["key"], parts)
    assert response.status_code == 400, response.text
    # nothing was assembled: the upload is still there to complete properly
    assert api.services.store.head(created["key"]) is None
    retry = mp.complete(
        api, project, created["upload_id"], created["key"], [{"PartNumber": n, "ETag": e} for n, e in sent.items()]
    )
    assert retry.status_code == 200, retry.text


def test_a_wrong_etag_is_400_and_the_upload_stays(api: Api, project: str) -> None:
    data = video_bytes(SIZE)
    created = mp.create(api, project, SIZE).json()
    sent = mp.send_parts(api, project, created, data, [1, 2, 3])
    wrong = [{**sent[0], "ETag": '"00000000000000000000000000000000"'}, *sent[1:]]
    response = mp.complete(api, project, created["upload_id"], created["key"], wrong)
    assert response.status_code == 400, response.text
    assert mp.complete(api, project, created["upload_id"], created["key"], sent).status_code == 200


@pytest.mark.parametrize(
    "etag",
    ["\u0000", "a\u000bb", '"d41d8cd98f00b204e9800998ecf8427e\u0000"', "<Part/>", '"' + "e" * 31 + '\u00e9"', '"abc'],
    ids=["nul", "vertical-tab", "nul-after-digest", "xml", "non-ascii", "unbalanced-quote"],
)
def test_an_etag_that_is_not_a_hex_digest_is_400_before_any_store_call(api: Api, project: str, etag: str) -> None:
    """Such an ETag went into the XML sent to the store, which botocore retried for seconds before a 500."""
    import time

    created = mp.create(api, project, MiB).json()  # one part
    sent = mp.send_parts(api, project, created, video_bytes(MiB), [1])
    calls: list[str] = []

    def count(model: Any, **_kwargs: Any) -> None:
        calls.append(model.name)

    s3 = api.services.s3
    s3.meta.events.register("before-call.s3", count)  # botocore's own hook: every S3 operation of this client
    try:
        started = time.monotonic()
        response = mp.complete(api, project, created["upload_id"], created["key"], [{"PartNumber": 1, "ETag": etag}])
        elapsed = time.monotonic() - started
    finally:
        s3.meta.events.unregister("before-call.s3", count)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    assert "ETag of part 1" in response.json()["message"]
    assert calls == [] and elapsed < 2.0
    # the store is untouched: nothing assembled, the upload still open and completable
    assert api.services.store.head(created["key"]) is None
    assert api.services.store.multipart_upload_ids(created["key"]) == [created["upload_id"]]
    assert mp.complete(api, project, created["upload_id"], created["key"], sent).status_code == 200


@pytest.mark.parametrize("quoted", [True, False])
def test_a_hex_etag_is_accepted_quoted_or_bare(api: Api, project: str, quoted: bool) -> None:
    created = mp.create(api, project, MiB).json()
    (sent,) = mp.send_parts(api, project, created, video_bytes(MiB), [1])
    etag = sent["ETag"] if quoted else sent["ETag"].strip('"')
    response = mp.complete(api, project, created["upload_id"], created["key"], [{"PartNumber": 1, "ETag": etag}])
    assert response.status_code == 200, response.text


def test_a_complete_of_10000_parts_is_read_past_the_16_kib_body_cap(api: Api, project: str) -> None:
    created = mp.create(api, project, SIZE).json()
    parts = [{"PartNumber": n, "ETag": f'"{n:032x}"'} for n in range(1, 10_001)]
    response = mp.complete(api, project, created["upload_id"], created["key"], parts)
    assert response.status_code == 400, response.text  # parsed, then refused: this upload has 3 parts
    assert "exactly once" in response.json()["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"parts": [{"PartNumber": 1, "ETag": "x"}]},
        {"key": "k", "parts": []},
        {"key": "k", "parts": [{"PartNumber": "1", "ETag": "x"}]},
        {"key": "k", "parts": [{"PartNumber": 1}]},
        {"key": "k", "parts": [{"PartNumber": 1, "ETag": ""}]},
        {"key": "k", "parts": "1"},
    ],
)
def test_a_malformed_complete_body_is_400(api: Api, project: str, body: dict[str, Any]) -> None:
    created = mp.create(api, project, SIZE).json()
    body = {**body, "key": created["key"]} if "key" in body else body
    response = api.post(mp.multipart_path(project, created["upload_id"], "/complete"), body)
    assert response.status_code == 400, response.text


def test_complete_replaces_the_previous_object_and_deletes_it_when_unreferenced(api: Api, project: str) -> None:
    old = api.upload(project, "video", scene_id="s1")
    data = video_bytes(SIZE)
    result = mp.upload(api, project, data)["completed"]
    assert (result["replaced"], result["deleted_previous"]) == (True, True)
    assert api.services.store.head(old["key"]) is None


def test_complete_keeps_a_previous_object_another_document_references(api: Api, project: str) -> None:
    old = api.upload(project, "video", scene_id="s1")
    add_scene(api.services, "s2", "p1", media={"storageKey": old["key"], "type": "video"})
    result = mp.upload(api, project, video_bytes(PART + 3))["completed"]
    assert (result["replaced"], result["deleted_previous"]) == (True, False)
    assert api.services.store.head(old["key"]) is not None


def test_complete_rechecks_the_limits_on_the_real_object(api: Api, small_parts: Services) -> None:
    """moto ignores the signed length, so the parts can add up to more than the limit; complete catches it."""
    limits = dict(small_parts.settings.limits)
    limits["video"] = KindLimits(limits["video"].content_types, SIZE)
    limited = Services(small_parts.settings.with_overrides(limits=limits), small_parts.s3, small_parts.mongo)
    add_project(limited, "p1", ALICE)
    add_scene(limited, "s1", "p1")
    with use_services(limited):
        created = mp.create(api, "p1", SIZE).json()
        parts = []
        for number, extra in ((1, 0), (2, 0), (3, 5)):
            signed = mp.sign(api, "p1", created["upload_id"], created["key"], number).json()
            body = mp.chunk(video_bytes(SIZE + 5), PART, number) if extra == 0 else video_bytes(MiB + 17 + extra)
            put = mp.requests.put(signed["url"], data=body, timeout=60)  # no signed length: moto takes it
            parts.append({"PartNumber": number, "ETag": put.headers["ETag"]})
        response = mp.complete(api, "p1", created["upload_id"], created["key"], parts)
    assert response.status_code == 413, response.text
    assert limited.store.head(created["key"]) is None  # deleted, and the slot left alone
    scene = limited.db.scenes.find_one({"_id": "s1"})
    assert scene is not None and "media" not in scene


# -- abort --------------------------------------------------------------------------------------------------
def test_abort_leaves_no_upload_behind_and_every_later_call_is_404(api: Api, project: str) -> None:
    data = video_bytes(SIZE)
    created = mp.create(api, project, SIZE).json()
    parts = mp.send_parts(api, project, created, data, [1, 2])
    upload_id, key = created["upload_id"], created["key"]
    assert api.services.store.multipart_upload_ids(key) == [upload_id]

    response = mp.abort(api, project, upload_id, key)
    assert response.status_code == 204
    assert response.content == b""
    assert api.services.store.multipart_upload_ids(key) == []
    assert mp.abort(api, project, upload_id, key).status_code == 204  # repeatable
    assert mp.sign(api, project, upload_id, key, 3).status_code == 404
    assert mp.list_parts(api, project, upload_id, key).status_code == 404
    assert mp.complete(api, project, upload_id, key, parts).status_code == 404
    assert api.services.store.head(key) is None


def test_abort_after_complete_is_404_and_keeps_the_object(api: Api, project: str) -> None:
    result = mp.upload(api, project, video_bytes(PART + 1))
    created = result["created"]
    assert mp.abort(api, project, created["upload_id"], created["key"]).status_code == 404
    assert api.services.store.head(created["key"]) is not None


# -- HTTP details --------------------------------------------------------------------------------------------
def test_the_upload_path_preflight_announces_get_and_delete(api: Api, project: str) -> None:
    response = api.request(
        "OPTIONS",
        mp.multipart_path(project, "some-id"),
        user=None,
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "DELETE"},
    )
    assert response.status_code == 204
    methods = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
    assert {"GET", "DELETE", "OPTIONS"} <= methods


# -- the bucket and the records -------------------------------------------------------------------------------
def test_serve_sets_the_lifecycle_rule_that_aborts_incomplete_uploads(services: Services) -> None:
    assert services.store.abort_multipart_days() == 7
    rules = services.s3.get_bucket_lifecycle_configuration(Bucket=services.settings.bucket)["Rules"]
    [rule] = rules
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert rule["Status"] == "Enabled"


def test_the_lifecycle_rule_keeps_the_buckets_other_rules(services: Services) -> None:
    other = {"ID": "expire-tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 1}}
    services.s3.put_bucket_lifecycle_configuration(
        Bucket=services.settings.bucket, LifecycleConfiguration={"Rules": [other]}
    )
    services.store.ensure_abort_multipart_rule(3)
    services.store.ensure_abort_multipart_rule(3)  # idempotent: still one rule of ours
    rules = services.s3.get_bucket_lifecycle_configuration(Bucket=services.settings.bucket)["Rules"]
    assert sorted(rule["ID"] for rule in rules) == ["expire-tmp", "scenestore-abort-incomplete-multipart"]
    assert services.store.abort_multipart_days() == 3


def test_records_expire_a_day_after_the_lifecycle_abort(api: Api, project: str) -> None:
    created = mp.create(api, project, SIZE).json()
    record = api.services.db[multipart.COLLECTION].find_one({"_id": created["upload_id"]})
    assert record is not None
    assert record["state"] == "open" and record["user_id"] == ALICE and record["size"] == SIZE
    assert (record["expire_at"] - record["created_at"]).days == 7 + 1
    indexes = api.services.db[multipart.COLLECTION].index_information()
    assert any(info.get("expireAfterSeconds") == 0 for info in indexes.values())


def test_the_abort_days_setting_drives_the_rule_and_expires_at(api: Api, small_parts: Services) -> None:
    from datetime import UTC, datetime, timedelta

    from scenestore_cli.local.bootstrap import prepare

    three = Services(small_parts.settings.with_overrides(multipart_abort_days=3), small_parts.s3, small_parts.mongo)
    prepare(three, set_rules=True)  # the bucket exists: its rules change only when asked
    assert three.store.abort_multipart_days() == 3
    add_project(three, "p1", ALICE)
    add_scene(three, "s1", "p1")
    with use_services(three):
        before = datetime.now(tz=UTC).replace(microsecond=0)
        body = mp.create(api, "p1", SIZE).json()
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert before + timedelta(days=3) <= expires <= before + timedelta(days=3, seconds=5)


def test_concurrent_completes_both_answer_200_with_one_assembly(api: Api, project: str) -> None:
    """Uppy retries a complete whose answer was slow: the duplicates race; both must end like uploads/complete."""
    from concurrent.futures import ThreadPoolExecutor

    data = video_bytes(SIZE)
    created = mp.create(api, project, SIZE).json()
    parts = mp.send_parts(api, project, created, data, [1, 2, 3])
    with ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(lambda _i: mp.complete(api, project, created["upload_id"], created["key"], parts), range(4))
        )
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    assert {a.json()["key"] for a in answers} == {created["key"]}
    assert api.services.store.get_bytes(created["key"]) == data
    scene = api.services.db.scenes.find_one({"_id": "s1"})
    assert scene is not None and scene["media"]["storageKey"] == created["key"]


def test_an_upload_whose_record_cannot_be_written_is_aborted_in_the_bucket(
    api: Api, project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injected with a stand-in collection (the only mock here): without its record nobody could use the
    upload, so create frees it at once instead of leaving its parts to the lifecycle rule."""
    from pymongo.errors import AutoReconnect

    real = multipart.records

    class FailingInsert:
        def __init__(self, collection: Any) -> None:
            self.collection = collection

        def insert_one(self, _doc: Any) -> None:
            raise AutoReconnect("injected: the database went away")

        def __getattr__(self, name: str) -> Any:
            return getattr(self.collection, name)

    monkeypatch.setattr(multipart, "records", lambda db: FailingInsert(real(db)))
    response = mp.create(api, project, SIZE)
    assert response.status_code == 500
    assert response.json() == {"error": "internal", "message": "internal error"}
    key = "users/alice/projects/p1/scenes/s1/video/big.mp4"
    assert api.services.store.multipart_upload_ids(key) == []
