// The client against the real local stack (moto S3 + SecantusDB + the presign Chalice app), started by
// tests/test_js_client.py, which seeds the demo data and passes:
//   SCENESTORE_API_URL, SCENESTORE_TOKEN (demo-user), SCENESTORE_OTHER_TOKEN (a user with no projects),
//   SCENESTORE_MEDIA_TOKEN (a scope: media token of demo-user), SCENESTORE_FIXTURES (a folder with sample.png
//   and sample.wav), SCENESTORE_PAGED_PROJECT and
//   SCENESTORE_PAGED_COUNT (a demo-user project holding more objects than one listing page).
// Run alone, without those variables, every test here is skipped with that reason.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { cacheToken, createClient, ScenestoreError } from "../scenestore.js";

const env = process.env;
const skip = env.SCENESTORE_API_URL && env.SCENESTORE_TOKEN ? false : "needs SCENESTORE_API_URL and SCENESTORE_TOKEN";
const USER = "demo-user";
const PROJECT = "demo-project";
const LEGACY_PROJECT = "legacy-project";

/** A client whose requests are recorded (method + path), to see what it sent; the requests are real. */
function client(token = env.SCENESTORE_TOKEN, extra = {}) {
  const requests = [];
  const recordingFetch = (url, init = {}) => {
    const { pathname } = new URL(url);
    requests.push(`${init.method || "GET"} ${pathname}`);
    return fetch(url, init);
  };
  const api = createClient({ baseUrl: env.SCENESTORE_API_URL, getToken: () => token, fetch: recordingFetch, ...extra });
  return { ...api, requests };
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
