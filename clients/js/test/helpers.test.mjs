// Pure parts of the client, no server: argument checks, content types, URL shapes, error mapping.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  cacheToken,
  createClient,
  DEFAULT_MULTIPART_THRESHOLD,
  guessContentType,
  kindOfContentType,
  ScenestoreError,
  tokenExpiry,
} from "../scenestore.js";

test("createClient insists on a base URL and a token function", () => {
  assert.throws(() => createClient({ getToken: () => "t" }), TypeError);
  assert.throws(() => createClient({ baseUrl: "http://x" }), TypeError);
});

test("the content type comes from the option, then the file, then the extension", () => {
  assert.equal(guessContentType({ type: "image/png" }, "a.jpg", "image/webp"), "image/webp");
  assert.equal(guessContentType({ type: "Audio/WAV; codecs=1" }, "a.bin"), "audio/wav");
  assert.equal(guessContentType({ type: "" }, "Clip.MOV"), "video/quicktime");
  assert.equal(guessContentType({ type: "" }, "notes.txt"), "");
  assert.equal(kindOfContentType("video/webm"), "video");
  assert.equal(kindOfContentType("application/pdf"), "");
});

test("storage URLs carry the whole key encoded as one path segment, and the media token", async () => {
  const client = createClient({ baseUrl: "http://api.test/", getToken: () => "bearer-t", getMediaToken: () => "m t" });
  const url = await client.storageUrl("media/a b+c.png");
  assert.equal(url, "http://api.test/storage/media%2Fa%20b%2Bc.png?access_token=m%20t");
  const layout = "users/u/projects/p/scenes/s/image/x.png";
  assert.equal(client.storageUrlSync(layout), `http://api.test/storage/${encodeURIComponent(layout)}?access_token=m%20t`);
});

test("constructStorageUrl never rewrites a legacy key into the new layout", () => {
  const client = createClient({ baseUrl: "http://api.test", getToken: () => "t", getMediaToken: () => "m" });
  const url = client.constructStorageUrl("abc123.png", "demo-user", "legacy-project", "legacy-scene-2");
  assert.equal(url, "http://api.test/storage/abc123.png?access_token=m");
  assert.ok(!url.includes("users%2F"));
});

test("the synchronous URL needs a token it can have without waiting", async () => {
  let resolved = false;
  const client = createClient({
    baseUrl: "http://api.test",
    getToken: () => "api-t",
    getMediaToken: async () => {
      resolved = true;
      return "async-t";
    },
  });
  assert.throws(() => client.storageUrlSync("a.png"), (e) => e instanceof ScenestoreError && e.code === "unauthorized");
  assert.match(await client.storageUrl("a.png"), /access_token=async-t$/);
  assert.ok(resolved);
  assert.match(client.constructStorageUrl("a.png", "u", "p"), /access_token=async-t$/);
});

test("a getMediaToken that hands back the API token is refused: the API token never goes into a URL", async () => {
  const apiToken = "api-token";
  const client = createClient({ baseUrl: "http://api.test", getToken: () => apiToken, getMediaToken: () => apiToken });
  for (const attempt of [() => client.storageUrlSync("a.png"), () => client.constructStorageUrl("a.png", "u", "p")]) {
    assert.throws(attempt, (e) => e instanceof ScenestoreError && e.code === "unauthorized" && !String(e.message).includes(apiToken));
  }
  await assert.rejects(client.storageUrl("a.png"), { code: "unauthorized" });
});

test("without getMediaToken nothing falls back to the API token: a failed POST /media-token is an error", async () => {
  // The API is unreachable here (port 9): before, the client would have put getToken's token into the URL.
  const client = createClient({ baseUrl: "http://127.0.0.1:9", getToken: () => "api-token" });
  await assert.rejects(client.storageUrl("a.png"), { code: "network_error" });
  assert.throws(() => client.storageUrlSync("a.png"), { code: "unauthorized" });
});

test("an upload without a name or a kind fails before any request", async () => {
  let calls = 0;
  const client = createClient({
    baseUrl: "http://api.test",
    getToken: () => "t",
    fetch: async () => {
      calls += 1;
      throw new Error("no request expected");
    },
  });
  await assert.rejects(client.upload(new Blob(["x"]), { projectId: "p", sceneId: "s" }), { code: "invalid_filename" });
  await assert.rejects(
    client.upload(new Blob(["x"], { type: "text/plain" }), { projectId: "p", sceneId: "s", filename: "a.txt" }),
    { code: "invalid_request" },
  );
  const aborted = AbortSignal.abort();
  await assert.rejects(
    client.upload(new Blob(["x"], { type: "image/png" }), { projectId: "p", filename: "a.png", signal: aborted }),
    { name: "AbortError" },
  );
  assert.equal(calls, 0);
});

test("a request that cannot reach the API is a network_error with status 0", async () => {
  const client = createClient({ baseUrl: "http://127.0.0.1:9", getToken: () => "t" });
  await assert.rejects(client.listFiles("p"), (e) => e instanceof ScenestoreError && e.code === "network_error" && e.status === 0);
});

function jwt(claims) {
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${encode({ alg: "HS256" })}.${encode(claims)}.signature`;
}

test("tokenExpiry reads a JWT's exp, and gives 0 for anything else", () => {
  assert.equal(tokenExpiry(jwt({ sub: "u", exp: 1700000000 })), 1700000000 * 1000);
  assert.equal(tokenExpiry(jwt({ sub: "u" })), 0);
  assert.equal(tokenExpiry("not-a-jwt"), 0);
});

test("cacheToken calls its source again only near expiry, and shares a pending refresh", async () => {
  let clock = 1_000_000_000_000;
  let calls = 0;
  const source = async () => {
    calls += 1;
    return jwt({ sub: "u", n: calls, exp: Math.floor(clock / 1000) + 300 });
  };
  const get = cacheToken(source, { marginSeconds: 30, now: () => clock });
  const [a, b] = await Promise.all([get(), get()]);
  assert.equal(calls, 1);
  assert.equal(a, b);
  assert.equal(get(), a, "a fresh token comes back synchronously");
  clock += 269_000;
  assert.equal(get(), a);
  clock += 2_000; // now within 30 s of exp
  const renewed = await get();
  assert.equal(calls, 2);
  assert.notEqual(renewed, a);
  const client = createClient({ baseUrl: "http://api.test", getToken: () => "t", getMediaToken: get });
  assert.ok(client.storageUrlSync("a.png").endsWith(`access_token=${renewed}`));
});

test("cacheToken does not cache a failure or a token without exp", async () => {
  let calls = 0;
  const failing = cacheToken(async () => {
    calls += 1;
    throw new Error("backend down");
  });
  await assert.rejects(failing(), /backend down/);
  await assert.rejects(failing(), /backend down/);
  assert.equal(calls, 2);
  const opaque = cacheToken(() => "opaque");
  assert.equal(await opaque(), "opaque");
  assert.ok(opaque() instanceof Promise, "no exp, no caching");
});

test("the default threshold: 64 MiB goes in one PUT, a byte more in parts (and a per-upload threshold wins)", async () => {
  // Fault injection only: every request fails as an unreachable network would, after its path is noted.
  const paths = [];
  const client = createClient({
    baseUrl: "http://api.test",
    getToken: () => "t",
    fetch: async (url) => {
      paths.push(new URL(url).pathname);
      throw new TypeError("fetch failed");
    },
  });
  assert.equal(DEFAULT_MULTIPART_THRESHOLD, 64 * 1024 * 1024);
  const upload = (size, extra = {}) =>
    client.upload(new Blob([new Uint8Array(size)], { type: "video/mp4" }), { projectId: "p", sceneId: "s", filename: "v.mp4", ...extra });
  await assert.rejects(upload(DEFAULT_MULTIPART_THRESHOLD), { code: "network_error" });
  await assert.rejects(upload(DEFAULT_MULTIPART_THRESHOLD + 1), { code: "network_error" });
  await assert.rejects(upload(1024, { multipartThreshold: 1000 }), { code: "network_error" });
  assert.deepEqual(paths, ["/projects/p/uploads", "/projects/p/multipart", "/projects/p/multipart"]);
});
