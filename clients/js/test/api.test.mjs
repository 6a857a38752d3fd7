// The client against the real local stack (moto S3 + SecantusDB + the presign Chalice app), started by
// tests/test_js_client.py, which seeds the demo data and passes:
//   SCENESTORE_API_URL, SCENESTORE_TOKEN (demo-user), SCENESTORE_OTHER_TOKEN (a user with no projects),
//   SCENESTORE_MEDIA_TOKEN (a scope: media token of demo-user), SCENESTORE_FIXTURES (a folder with sample.png
//   and sample.wav), SCENESTORE_PAGED_PROJECT and
//   SCENESTORE_PAGED_COUNT (a demo-user project holding more objects than one listing page),
//   SCENESTORE_PART_SIZE (the API's multipart part size, small so that a 11 MiB file has three parts).
// Run alone, without those variables, every test here is skipped with that reason.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { cacheToken, createClient, ScenestoreError } from "../scenestore.js";

const env = process.env;
const skip = env.SCENESTORE_API_URL && env.SCENESTORE_TOKEN ? false : "needs SCENESTORE_API_URL and SCENESTORE_TOKEN";
const USER = "demo-user";
const PROJECT = "demo-project";
const LEGACY_PROJECT = "legacy-project";

/**
 * A client whose requests are recorded (`requests`: method + path; `urls`: every full URL), to see what it sent;
 * the requests are real. `fault(url, init)` returning true makes that request fail as a dropped connection does
 * (Node's fetch rejects with a TypeError): fault injection only, the API and the bucket are real.
 */
function client(token = env.SCENESTORE_TOKEN, extra = {}, fault = () => false) {
  const requests = [];
  const urls = [];
  const recordingFetch = async (url, init = {}) => {
    const { pathname } = new URL(url);
    requests.push(`${init.method || "GET"} ${pathname}`);
    urls.push(String(url));
    if (fault(new URL(url), init)) throw new TypeError("fetch failed (simulated connection reset)");
    return fetch(url, init);
  };
  const api = createClient({ baseUrl: env.SCENESTORE_API_URL, getToken: () => token, fetch: recordingFetch, ...extra });
  return { ...api, requests, urls };
}

function fixture(name, type) {
  const bytes = readFileSync(join(env.SCENESTORE_FIXTURES || ".", name));
  return new File([bytes], name, { type });
}

async function bytesAt(url) {
  const response = await fetch(url, { redirect: "follow" });
  return { status: response.status, bytes: Buffer.from(await response.arrayBuffer()) };
}

test("upload: presign, PUT with progress, complete; the returned key is recorded and listed", { skip }, async () => {
  const api = client();
  const file = fixture("sample.png", "image/png");
  const progress = [];
  let completed;
  const key = await api.upload(file, {
    projectId: PROJECT,
    sceneId: "scene-2",
    onProgress: (p) => progress.push(p),
    onComplete: (result) => (completed = result),
  });
  assert.equal(key, `users/${USER}/projects/${PROJECT}/scenes/scene-2/image/sample.png`);
  assert.deepEqual(api.requests.slice(0, 1), [`POST /projects/${PROJECT}/uploads`]);
  assert.equal(api.requests.at(-1), `POST /projects/${PROJECT}/uploads/complete`);
  assert.equal(progress[0].loaded, 0);
  assert.deepEqual(progress.at(-1), { loaded: file.size, total: file.size, fraction: 1 });
  assert.equal(completed.key, key);
  assert.equal(completed.size, file.size);
  assert.equal(completed.content_type, "image/png");

  const listed = (await api.listFiles(PROJECT)).find((f) => f.key === key);
  assert.ok(listed, "the uploaded key is in the project's listing");
  assert.equal(listed.size, file.size);
  assert.equal(listed.kind, "image");
  assert.equal(listed.scene_id, "scene-2");

  const download = await bytesAt(await api.downloadUrl(key));
  assert.equal(download.status, 200);
  assert.deepEqual(download.bytes, Buffer.from(await file.arrayBuffer()));
});

test("storageUrl serves layout and legacy keys alike (302 to the object)", { skip }, async () => {
  const api = client();
  const layoutKey = `users/${USER}/projects/${PROJECT}/scenes/scene-1/audio/intro.wav`;
  const first = await fetch(await api.storageUrl(layoutKey), { redirect: "manual" });
  assert.equal(first.status, 302);
  const layout = await bytesAt(await api.storageUrl(layoutKey));
  assert.equal(layout.status, 200);
  assert.equal(layout.bytes.subarray(0, 4).toString(), "RIFF");

  const legacy = await bytesAt(await api.storageUrl("media/sunset.png"));
  assert.equal(legacy.status, 200);
  assert.deepEqual([...legacy.bytes.subarray(1, 4)], [...Buffer.from("PNG")]);
});

test("constructStorageUrl keeps an unmigrated legacy key, so the object is found", { skip }, async () => {
  const api = client();
  await api.storageUrl("media/sunset.png"); // the first media token arrives asynchronously; then URLs are synchronous
  const url = api.constructStorageUrl("abc123.png", USER, LEGACY_PROJECT, "legacy-scene-2");
  assert.ok(url.includes("/storage/abc123.png?"), url);
  const got = await bytesAt(url);
  assert.equal(got.status, 200);
  // The seed's version would have asked for this guessed key, which does not exist before migration.
  const guessed = `users/${USER}/projects/${LEGACY_PROJECT}/scenes/legacy-scene-2/image/abc123.png`;
  assert.equal((await bytesAt(await api.storageUrl(guessed))).status, 404);
});

test("replacing a slot's file reports it and deletes the previous object", { skip }, async () => {
  const api = client();
  const wav = readFileSync(join(env.SCENESTORE_FIXTURES || ".", "sample.wav"));
  const first = await api.upload(new File([wav], "take-1.wav", { type: "audio/wav" }), {
    projectId: PROJECT,
    sceneId: "scene-2",
  });
  let result;
  const second = await api.upload(new File([wav], "take 2.wav", { type: "audio/wav" }), {
    projectId: PROJECT,
    sceneId: "scene-2",
    onComplete: (r) => (result = r),
  });
  assert.equal(second, `users/${USER}/projects/${PROJECT}/scenes/scene-2/audio/take-2.wav`);
  assert.equal(result.slot, "scene.audio");
  assert.equal(result.replaced, true);
  assert.equal(result.deleted_previous, true);
  const keys = (await api.listFiles(PROJECT)).map((f) => f.key);
  assert.ok(keys.includes(second));
  assert.ok(!keys.includes(first));
  assert.equal((await bytesAt(await api.downloadUrl(first))).status, 404, "the replaced object is gone");
});

test("an output video goes to the project's output/ folder", { skip }, async () => {
  const api = client();
  const body = new Uint8Array(2048).fill(7);
  const key = await api.upload(new Blob([body], { type: "video/mp4" }), {
    projectId: PROJECT,
    kind: "output",
    filename: "Final Cut.MP4",
  });
  assert.equal(key, `users/${USER}/projects/${PROJECT}/output/Final-Cut.mp4`);
});

test("API errors surface as ScenestoreError with the API's code and status", { skip }, async () => {
  const api = client();
  const png = fixture("sample.png", "image/png");
  const cases = [
    [{ projectId: "no-such-project", sceneId: "scene-1" }, png, "not_found", 404],
    [{ projectId: LEGACY_PROJECT, sceneId: "scene-1" }, png, "not_found", 404], // scene of another project
    [{ projectId: PROJECT, sceneId: "../scene-1" }, png, "invalid_id", 400],
    [{ projectId: PROJECT, sceneId: "scene-2", kind: "image" }, new File(["x"], "a.txt", { type: "text/plain" }), "unsupported_type", 415],
    [{ projectId: PROJECT, sceneId: "scene-2", contentType: "image/png" }, new File(["x"], "a.jpg"), "invalid_filename", 400],
    [{ projectId: PROJECT, sceneId: "scene-2" }, new File([new Uint8Array(20 * 1024 * 1024 + 1)], "big.png", { type: "image/png" }), "too_large", 413],
  ];
  for (const [options, file, code, status] of cases) {
    await assert.rejects(api.upload(file, options), (error) => {
      assert.ok(error instanceof ScenestoreError, String(error));
      assert.equal(error.code, code, `${JSON.stringify(options)}: ${error.message}`);
      assert.equal(error.status, status);
      return true;
    });
  }
  await assert.rejects(client("not-a-jwt").listFiles(PROJECT), { code: "unauthorized", status: 401 });
  await assert.rejects(api.complete(PROJECT, `users/${USER}/projects/${PROJECT}/scenes/scene-2/image/never.png`), {
    code: "not_found",
    status: 404,
  });
});

test("another user sees none of demo-user's files, keys or projects", { skip: skip || !env.SCENESTORE_OTHER_TOKEN }, async () => {
  const other = client(env.SCENESTORE_OTHER_TOKEN);
  const key = `users/${USER}/projects/${PROJECT}/scenes/scene-1/image/forest.png`;
  await assert.rejects(other.downloadUrl(key), { code: "not_found", status: 404 });
  await assert.rejects(other.downloadUrl("media/sunset.png"), { code: "not_found", status: 404 });
  await assert.rejects(other.listFiles(PROJECT), { code: "not_found", status: 404 });
  assert.equal((await fetch(await other.storageUrl(key), { redirect: "manual" })).status, 404);
});

test("aborting as the PUT starts rejects with AbortError and never records the upload", { skip }, async () => {
  const api = client();
  const controller = new AbortController();
  const file = new File([new Uint8Array(4 * 1024 * 1024)], "abort-me.png", { type: "image/png" });
  await assert.rejects(
    api.upload(file, {
      projectId: PROJECT,
      sceneId: "scene-2",
      signal: controller.signal,
      onProgress: (p) => p.loaded === 0 && controller.abort(),
    }),
    { name: "AbortError" },
  );
  assert.deepEqual(api.requests.slice(0, 2).map((r) => r.split(" ")[0]), ["POST", "PUT"]);
  assert.ok(!api.requests.includes(`POST /projects/${PROJECT}/uploads/complete`));
});

test("listFiles follows the cursor across pages", { skip: skip || !env.SCENESTORE_PAGED_PROJECT }, async () => {
  const api = client();
  const files = await api.listFiles(env.SCENESTORE_PAGED_PROJECT);
  assert.equal(files.length, Number(env.SCENESTORE_PAGED_COUNT));
  assert.equal(new Set(files.map((f) => f.key)).size, files.length, "no file is listed twice");
  const pages = api.requests.filter((r) => r === `GET /projects/${env.SCENESTORE_PAGED_PROJECT}/files`);
  assert.ok(pages.length >= 2, `expected several pages, got ${pages.length}`);
});

test("a short-lived media token works in storage URLs and nowhere else", { skip: skip || !env.SCENESTORE_MEDIA_TOKEN }, async () => {
  const media = env.SCENESTORE_MEDIA_TOKEN;
  const api = client(env.SCENESTORE_TOKEN, { getMediaToken: cacheToken(() => media) });
  const url = await api.storageUrl("narration-1.wav");
  assert.ok(url.endsWith(`access_token=${encodeURIComponent(media)}`));
  const got = await bytesAt(url);
  assert.equal(got.status, 200);
  assert.equal(got.bytes.subarray(0, 4).toString(), "RIFF");
  assert.equal(api.constructStorageUrl("narration-1.wav", USER, LEGACY_PROJECT, "legacy-scene-1"), url);
  await assert.rejects(client(media).listFiles(PROJECT), { code: "unauthorized", status: 401 });
});

// -- multipart ------------------------------------------------------------------------------------------------------
const PART_SIZE = Number(env.SCENESTORE_PART_SIZE || 0);
const multipartSkip = skip || (PART_SIZE ? false : "needs SCENESTORE_PART_SIZE (the API's multipart part size)");
/** Three parts: two whole ones and a short last one. */
const BIG = 2 * PART_SIZE + 777_777;
const VIDEO_PREFIX = `users/${USER}/projects/${PROJECT}/scenes/scene-2/video/`;

function bigVideo(name) {
  return new File([randomBytes(BIG)], name, { type: "video/mp4" });
}

/** `PUT` requests to the bucket's UploadPart URLs, as part numbers in the order sent. */
function partPuts(api) {
  return api.urls
    .map((url, i) => [new URL(url), api.requests[i]])
    .filter(([url, request]) => request.startsWith("PUT ") && url.searchParams.has("partNumber"))
    .map(([url]) => Number(url.searchParams.get("partNumber")));
}

async function assertStored(api, key, file) {
  const stored = await bytesAt(await api.downloadUrl(key));
  assert.equal(stored.status, 200);
  assert.ok(stored.bytes.equals(Buffer.from(await file.arrayBuffer())), "the bucket's bytes differ from the file's");
}

test("above the threshold a file goes up in parts; progress counts bytes across parts", { skip: multipartSkip }, async () => {
  const api = client(env.SCENESTORE_TOKEN, { multipartThreshold: PART_SIZE });
  const file = bigVideo("long take.mp4");
  const progress = [];
  const parts = [];
  let started;
  let completed;
  const key = await api.upload(file, {
    projectId: PROJECT,
    sceneId: "scene-2",
    onProgress: (p) => progress.push(p.loaded),
    onUploadStarted: (handle) => (started = handle),
    onPart: (event) => parts.push(`${event.partNumber}:${event.state}`),
    onComplete: (result) => (completed = result),
  });
  assert.equal(key, `${VIDEO_PREFIX}long-take.mp4`);
  assert.equal(started.partCount, 3);
  assert.equal(started.partSize, PART_SIZE);
  assert.deepEqual(partPuts(api).sort(), [1, 2, 3]);
  assert.equal(api.requests[0], `POST /projects/${PROJECT}/multipart`);
  assert.equal(api.requests.at(-1), `POST /projects/${PROJECT}/multipart/${encodeURIComponent(started.uploadId)}/complete`);
  assert.ok(!api.requests.some((r) => r.endsWith("/uploads")), "no single presigned PUT for a large file");
  assert.deepEqual(parts.filter((p) => p.endsWith(":done")).sort(), ["1:done", "2:done", "3:done"]);
  assert.equal(progress[0], 0);
  assert.equal(progress.at(-1), BIG);
  assert.deepEqual(progress, [...progress].sort((a, b) => a - b), "progress never goes backwards here");
  assert.equal(completed.size, BIG);
  assert.equal(completed.slot, "scene.media");
  await assertStored(api, key, file);
});

test("a part whose connection drops is retried with backoff, and only that part is sent again", { skip: multipartSkip }, async () => {
  let dropped = 0;
  const dropPartTwoOnce = (url, init) =>
    init.method === "PUT" && url.searchParams.get("partNumber") === "2" && dropped++ === 0;
  const api = client(env.SCENESTORE_TOKEN, { multipartThreshold: PART_SIZE, retryDelays: [20] }, dropPartTwoOnce);
  const file = bigVideo("retried.mp4");
  const retries = [];
  const key = await api.upload(file, {
    projectId: PROJECT,
    sceneId: "scene-2",
    onPart: (event) => event.state === "retrying" && retries.push([event.partNumber, event.attempt, event.error.code]),
  });
  assert.deepEqual(retries, [[2, 1, "network_error"]]);
  assert.deepEqual(partPuts(api).sort(), [1, 2, 2, 3]);
  await assertStored(api, key, file);
});

test("an interrupted upload resumes: the client lists the parts and sends only the rest", { skip: multipartSkip }, async () => {
  const partThreeIsDown = (url, init) => init.method === "PUT" && url.searchParams.get("partNumber") === "3";
  const flaky = client(env.SCENESTORE_TOKEN, { multipartThreshold: PART_SIZE, retryDelays: [10, 10] }, partThreeIsDown);
  const file = bigVideo("resumed.mp4");
  let interrupted;
  await assert.rejects(flaky.upload(file, { projectId: PROJECT, sceneId: "scene-2", partConcurrency: 1 }), (error) => {
    assert.ok(error instanceof ScenestoreError);
    assert.equal(error.code, "network_error");
    interrupted = error.upload;
    return true;
  });
  assert.equal(interrupted.partCount, 3);
  assert.deepEqual(partPuts(flaky), [1, 2, 3, 3, 3], "parts 1 and 2 went up; part 3 was tried three times");
  const held = await flaky.listParts(interrupted);
  assert.deepEqual(held.map((p) => [p.PartNumber, p.Size]), [[1, PART_SIZE], [2, PART_SIZE]]);

  const api = client();
  let progressStart;
  const key = await api.upload(file, {
    projectId: PROJECT,
    sceneId: "scene-2",
    resume: interrupted,
    onProgress: (p) => (progressStart ??= p.loaded),
  });
  assert.equal(key, `${VIDEO_PREFIX}resumed.mp4`);
  assert.equal(api.requests[0], `GET /projects/${PROJECT}/multipart/${encodeURIComponent(interrupted.uploadId)}`);
  assert.deepEqual(partPuts(api), [3], "the resume sent a part the bucket already held");
  assert.equal(progressStart, 2 * PART_SIZE, "progress starts from the bytes already held");
  await assertStored(api, key, file);
});

test("aborting an upload in parts aborts it in the bucket (DELETE): its parts are gone", { skip: multipartSkip }, async () => {
  const api = client(env.SCENESTORE_TOKEN, { multipartThreshold: PART_SIZE });
  const controller = new AbortController();
  let handle;
  await assert.rejects(
    api.upload(bigVideo("aborted.mp4"), {
      projectId: PROJECT,
      sceneId: "scene-2",
      signal: controller.signal,
      partConcurrency: 1,
      onUploadStarted: (h) => (handle = h),
      onPart: (event) => event.state === "done" && controller.abort(),
    }),
    { name: "AbortError" },
  );
  const uploadPath = `/projects/${PROJECT}/multipart/${encodeURIComponent(handle.uploadId)}`;
  assert.ok(api.requests.includes(`DELETE ${uploadPath}`), api.requests.join("\n"));
  assert.ok(!api.requests.includes(`POST ${uploadPath}/complete`));
  await assert.rejects(api.listParts(handle), { code: "not_found", status: 404 });
  assert.equal((await bytesAt(await api.downloadUrl(`${VIDEO_PREFIX}aborted.mp4`))).status, 404, "no object either");
});

test("another user gets 404 on every multipart route", { skip: multipartSkip || !env.SCENESTORE_OTHER_TOKEN }, async () => {
  const owner = client();
  const other = client(env.SCENESTORE_OTHER_TOKEN);
  const request = { kind: "video", sceneId: "scene-2", filename: "mine.mp4", contentType: "video/mp4", size: BIG };
  const handle = await owner.createMultipart(PROJECT, request);
  const notFound = { code: "not_found", status: 404 };
  await assert.rejects(other.createMultipart(PROJECT, request), notFound);
  await assert.rejects(other.signPart(handle, 1), notFound);
  await assert.rejects(other.listParts(handle), notFound);
  await assert.rejects(other.completeMultipart(handle, [{ PartNumber: 1, ETag: '"0"' }]), notFound);
  await assert.rejects(other.abortMultipart(handle), notFound);
  assert.deepEqual(await owner.listParts(handle), [], "the other user's calls changed nothing");
  await owner.abortMultipart(handle);
});

// -- media tokens -----------------------------------------------------------------------------------------------------
function claimsOf(jwt) {
  return JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString());
}

test("by default storage URLs carry a media token from POST /media-token; the API token is in no URL", { skip }, async () => {
  const apiToken = env.SCENESTORE_TOKEN;
  const api = client(apiToken);
  const key = await api.upload(fixture("sample.png", "image/png"), { projectId: PROJECT, sceneId: "scene-2" });
  const first = await api.storageUrl(key);
  const again = api.storageUrlSync("media/sunset.png");
  const legacy = api.constructStorageUrl("abc123.png", USER, LEGACY_PROJECT, "legacy-scene-2");
  await api.listFiles(PROJECT);
  await api.downloadUrl(key);

  assert.equal(api.requests.filter((r) => r === "POST /media-token").length, 1, "the media token is cached");
  const token = new URL(first).searchParams.get("access_token");
  assert.notEqual(token, apiToken);
  assert.equal(claimsOf(token).sub, USER);
  assert.equal(claimsOf(token).scope, "media");
  assert.ok(claimsOf(token).exp - Date.now() / 1000 <= 900, "a media token lives 15 minutes at most");
  for (const url of [...api.urls, first, again, legacy]) {
    assert.ok(!url.includes(apiToken) && !url.includes(encodeURIComponent(apiToken)), `API token in ${url}`);
  }
  assert.equal((await bytesAt(first)).status, 200);
  assert.equal((await bytesAt(again)).status, 200);
  // And the server agrees: the API token itself is refused in a URL.
  const withApiToken = `${env.SCENESTORE_API_URL}/storage/${encodeURIComponent(key)}?access_token=${apiToken}`;
  assert.equal((await fetch(withApiToken, { redirect: "manual" })).status, 401);
});
