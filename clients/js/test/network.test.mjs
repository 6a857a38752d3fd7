// Network failures in Node, for real and offline: a closed port, a name that does not resolve, TLS spoken to a
// plain-HTTP server. Node's fetch says only "fetch failed"; the client's error must name the host and the cause.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { createServer as createTcpServer } from "node:net";
import { test } from "node:test";

import { createClient, describeNetworkError, ScenestoreError } from "../scenestore.js";

/** A loopback port that was free a moment ago and has nothing listening now: a connect is refused. */
async function closedPort() {
  const server = createTcpServer().listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A plain-HTTP server: an `https://` request to it fails in the TLS handshake. */
async function plainHttpServer() {
  const server = createServer((_request, response) => response.end("plain http")).listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  return server;
}

const client = (baseUrl, extra = {}) => createClient({ baseUrl, getToken: () => "t", ...extra });

async function failure(promise) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("the call succeeded");
}

test("a refused connection names the host and ECONNREFUSED", async () => {
  const port = await closedPort();
  const error = await failure(client(`http://127.0.0.1:${port}`).listFiles("p"));
  assert.ok(error instanceof ScenestoreError);
  assert.equal(error.code, "network_error");
  assert.equal(error.status, 0);
  assert.match(error.message, new RegExp(`^GET /projects/p/files failed: cannot reach 127\\.0\\.0\\.1:${port}: ECONNREFUSED`));
  assert.doesNotMatch(error.message, /fetch failed$/);
  assert.equal(error.cause?.message, "fetch failed", "the runtime's own error stays as the cause");
});

test("a host that does not resolve names the host and says DNS", async () => {
  const error = await failure(client("http://no-such-host.invalid").listFiles("p"));
  assert.equal(error.code, "network_error");
  assert.match(error.message, /cannot reach no-such-host\.invalid: (ENOTFOUND|EAI_AGAIN): DNS/);
});

test("a TLS failure names the host and says TLS", async () => {
  const server = await plainHttpServer();
  try {
    const host = `127.0.0.1:${server.address().port}`;
    const error = await failure(client(`https://${host}`).listFiles("p"));
    assert.equal(error.code, "network_error");
    assert.ok(error.message.includes(`cannot reach ${host}: TLS: `), error.message);
  } finally {
    server.close();
  }
});

test("the upload's PUT to the bucket names the bucket's host and the cause", async () => {
  // Fault injection only for the API: it answers the presign with a URL to a port where nothing listens; the
  // PUT's failure is real.
  const port = await closedPort();
  const api = async (url, init) => {
    if (String(url).startsWith("http://api.test/")) {
      const body = { key: "users/u/projects/p/scenes/s/image/a.png", url: `http://127.0.0.1:${port}/bucket/a.png`, headers: {} };
      return new Response(JSON.stringify(body), { status: 201, headers: { "Content-Type": "application/json" } });
    }
    return fetch(url, init);
  };
  const error = await failure(
    client("http://api.test", { fetch: api }).upload(new Blob(["png"], { type: "image/png" }), {
      projectId: "p",
      sceneId: "s",
      filename: "a.png",
    }),
  );
  assert.equal(error.code, "network_error");
  assert.match(error.message, new RegExp(`storage \\(127\\.0\\.0\\.1:${port}\\) failed: cannot reach 127\\.0\\.0\\.1:${port}: ECONNREFUSED`));
});

test("describeNetworkError: a browser's bare TypeError still names the host and what it can mean", () => {
  const text = describeNetworkError("https://api.example.com/projects", new TypeError("Failed to fetch"));
  assert.equal(text, "cannot reach api.example.com: Failed to fetch (no answer: the network, or a CORS rule that does not allow this page)");
  const refused = Object.assign(new TypeError("fetch failed"), {
    cause: new AggregateError([Object.assign(new Error("connect ECONNREFUSED ::1:8000"), { code: "ECONNREFUSED" })]),
  });
  assert.match(describeNetworkError("http://localhost:8000/x", refused), /^cannot reach localhost:8000: ECONNREFUSED: /);
});
