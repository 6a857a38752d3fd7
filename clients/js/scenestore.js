// scenestore client: presigned uploads with progress, storage URLs and file listings for the Auto Shorts frontend.
//
// One ES module, no dependencies, no build step: import it in a browser (<script type="module">) or in Node 18+.
// Small files go up in one presigned PUT; files above `multipartThreshold` (64 MiB by default) go up in parts
// (presigned UploadPart PUTs), each retried with backoff, so a dropped connection costs one part, not the file,
// and an interrupted upload can be resumed (list the parts the bucket holds, send the rest).
// Storage URLs (`<img src>`) carry a short-lived media token from `POST /media-token`, never the API token.
// Every key the client hands out comes from the server (a presign response or a listing); it never builds or
// guesses a key, because a guessed key is exactly what broke the old frontend when legacy objects had not
// been migrated yet. Types: scenestore.d.ts beside this file.

/** Extension -> MIME type, used only when the browser reports no type for a file (File.type === ""). */
const TYPE_BY_EXTENSION = Object.freeze({
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  png: "image/png",
  webp: "image/webp",
  gif: "image/gif",
  mp4: "video/mp4",
  m4v: "video/mp4",
  webm: "video/webm",
  mov: "video/quicktime",
  mp3: "audio/mpeg",
  wav: "audio/wav",
  ogg: "audio/ogg",
  oga: "audio/ogg",
  m4a: "audio/mp4",
  aac: "audio/aac",
});

const SCENE_KINDS = Object.freeze(["image", "video", "audio"]);

const MiB = 1024 * 1024;
/** Files larger than this go up in parts (R2 and S3 both take multipart uploads; the server picks the part size). */
export const DEFAULT_MULTIPART_THRESHOLD = 64 * MiB;
/** Waits before each retry of a failed part (ms): five retries over about 15 s ride out a short outage. */
export const DEFAULT_RETRY_DELAYS = Object.freeze([500, 1000, 2000, 4000, 8000]);
/** Parts in flight at once: enough to fill a home uplink, few enough that one drop loses little. */
export const DEFAULT_PART_CONCURRENCY = 3;

/** An error from the API (its `error` code and HTTP status), or from the client itself (status 0). */
export class ScenestoreError extends Error {
  /**
   * @param {string} code API error code (`not_found`, `too_large`, ...) or a client one (`network_error`, ...)
   * @param {string} message human-readable text
   * @param {number} status HTTP status, 0 when no response arrived
   * @param {unknown} [body] the parsed response body, when there was one
   */
  constructor(code, message, status = 0, body = undefined) {
    super(message);
    this.name = "ScenestoreError";
    this.code = code;
    this.status = status;
    this.body = body;
    /** For an interrupted multipart upload: the handle to pass as `upload(file, { resume })`. */
    this.upload = undefined;
  }
}

/**
 * Client codes of failures that no retry or resume can fix: the bucket's CORS rule refuses this page's origin
 * (`cors_refused`), or hides the `ETag` a multipart upload needs (`cors_etag_hidden`). The bucket's rule must change.
 */
const CORS_CODES = Object.freeze(["cors_refused", "cors_etag_hidden"]);

/** Failures worth another try: no response at all, a timeout, throttling, or a server-side error. */
function isRetryable(error) {
  if (!(error instanceof ScenestoreError) || CORS_CODES.includes(error.code)) return false;
  return error.status === 0 || error.status === 408 || error.status === 429 || error.status >= 500;
}

/** Node's names for why a connection failed (the `code` of fetch's `cause`), in words. */
const NETWORK_CAUSES = Object.freeze({
  ECONNREFUSED: "connection refused: nothing listens there (is the server running, the port right?)",
  ECONNRESET: "the connection was reset",
  ENOTFOUND: "DNS: no such host",
  EAI_AGAIN: "DNS: the lookup failed for now (no resolver answered)",
  ETIMEDOUT: "timed out connecting",
  UND_ERR_CONNECT_TIMEOUT: "timed out connecting",
  EHOSTUNREACH: "the host is unreachable",
  ENETUNREACH: "the network is unreachable",
  UND_ERR_SOCKET: "the connection closed before the answer",
});

/** The innermost `cause` of a fetch failure (Node: TypeError "fetch failed" -> Error with a `code`). */
function rootCause(error) {
  let cause = error;
  for (let depth = 0; cause && cause.cause && depth < 5; depth += 1) cause = cause.cause;
  if (cause && !cause.code && Array.isArray(cause.errors) && cause.errors.length) cause = cause.errors[0];
  return cause === error ? undefined : cause;
}

/**
 * Why `url` could not be reached, for a person: its host and the cause when the runtime gives one (Node does:
 * `ECONNREFUSED`, DNS, TLS); a browser says only "Failed to fetch", so its message says what that can mean.
 */
export function describeNetworkError(url, error) {
  let host = String(url);
  try {
    host = new URL(url).host;
  } catch {
    // not a URL: name it as it is
  }
  const cause = rootCause(error);
  const code = cause && typeof cause.code === "string" ? cause.code : "";
  const text = String((cause && cause.message) || "").split("\n")[0].trim();
  let why;
  if (code && NETWORK_CAUSES[code]) why = `${code}: ${NETWORK_CAUSES[code]}`;
  else if (/^(ERR_(SSL|TLS)_|CERT_|DEPTH_ZERO|SELF_SIGNED|UNABLE_TO_|EPROTO)/.test(code) || /SSL|TLS|certificate/i.test(text)) {
    why = `TLS: ${code || "handshake failed"}${text && !text.includes(code) ? ` (${text})` : ""}`;
  } else if (code || text) why = [code, text].filter(Boolean).join(": ");
  else why = `${(error && error.message) || "no response"} (no answer: the network, or a CORS rule that does not allow this page)`;
  return `cannot reach ${host}: ${why}`;
}

/** How long each CORS probe may take (ms): a store that does not answer in time is unreachable, not refusing. */
const CORS_PROBE_MS = 5000;

function timeoutSignal(ms) {
  return typeof AbortSignal !== "undefined" && typeof AbortSignal.timeout === "function" ? AbortSignal.timeout(ms) : undefined;
}

function hostOf(url) {
  try {
    return new URL(url).host;
  } catch {
    return String(url);
  }
}

/** The bucket's CORS rule refused this page's origin (its preflight failed): no retry or resume can help. */
function corsRefused(url) {
  const origin = globalThis.location.origin;
  let store = hostOf(url);
  try {
    store = new URL(url).origin;
  } catch {
    // keep the host
  }
  return new ScenestoreError(
    "cors_refused",
    `the bucket's CORS rule does not allow this page's origin (${origin}) to upload to ${store}: add ${origin} to ` +
      "the rule's AllowedOrigins, with PUT in AllowedMethods and Content-Type in AllowedHeaders",
    0,
  );
}

/** A `network_error` for a request to `url` that got no response; the runtime's error stays as `cause`. */
function networkError(what, url, error) {
  const wrapped = new ScenestoreError("network_error", `${what} failed: ${describeNetworkError(url, error)}`, 0);
  wrapped.cause = error;
  return wrapped;
}

/** Resolve after `ms`, or reject with the signal's reason as soon as it aborts. */
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) return reject(abortReason(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal));
    };
    const timer = setTimeout(() => {
      if (signal) signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    if (signal) signal.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * The MIME type to send for `file`: an explicit one, else the browser's, else one from the extension.
 * @param {{ type?: string } | null | undefined} file
 * @param {string} filename
 * @param {string | undefined} explicit
 */
export function guessContentType(file, filename, explicit) {
  if (explicit) return explicit;
  if (file && typeof file.type === "string" && file.type) return file.type.split(";")[0].trim().toLowerCase();
  const dot = filename.lastIndexOf(".");
  const ext = dot >= 0 ? filename.slice(dot + 1).toLowerCase() : "";
  return TYPE_BY_EXTENSION[ext] || "";
}

/** `image` | `video` | `audio` from a MIME type, or "" (then the caller must say which kind). */
export function kindOfContentType(contentType) {
  const top = String(contentType || "").split("/")[0];
  return SCENE_KINDS.includes(top) ? top : "";
}

function abortReason(signal) {
  if (signal && signal.reason !== undefined) return signal.reason;
  return typeof DOMException === "function"
    ? new DOMException("The upload was aborted.", "AbortError")
    : Object.assign(new Error("The upload was aborted."), { name: "AbortError" });
}

function isAbort(error) {
  return Boolean(error) && typeof error === "object" && error.name === "AbortError";
}

/** Pull `<Code>` and `<Message>` out of an S3/R2 XML error body (no XML parser needed for two fields). */
function s3ErrorText(text) {
  const code = /<Code>([^<]*)<\/Code>/.exec(text || "");
  const message = /<Message>([^<]*)<\/Message>/.exec(text || "");
  return [code && code[1], message && message[1]].filter(Boolean).join(": ");
}

/** The `exp` of a JWT in milliseconds, or 0 when `token` is not a JWT with an `exp` (nothing is decoded beyond). */
export function tokenExpiry(token) {
  try {
    const payload = String(token).split(".")[1];
    const base64 = payload.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(payload.length / 4) * 4, "=");
    const exp = JSON.parse(atob(base64)).exp;
    return typeof exp === "number" ? exp * 1000 : 0;
  } catch {
    return 0;
  }
}

/**
 * Wrap a token source (e.g. a call to your backend for a short-lived media token) so that it is only called
 * when the last token is within `marginSeconds` of its JWT `exp`. A fresh token is returned synchronously,
 * which is what `storageUrlSync` and `constructStorageUrl` need; concurrent refreshes share one call.
 */
export function cacheToken(source, { marginSeconds = 30, now = () => Date.now() } = {}) {
  let token = "";
  let expiresAt = 0;
  let pending = null;
  return function cachedToken() {
    if (token && now() < expiresAt - marginSeconds * 1000) return token;
    if (!pending) {
      pending = Promise.resolve()
        .then(source)
        .then(
          (value) => {
            token = value;
            expiresAt = tokenExpiry(value);
            pending = null;
            return value;
          },
          (error) => {
            pending = null;
            throw error;
          },
        );
    }
    return pending;
  };
}


/**
 * Create a client for one API base URL.
 * @param {{ baseUrl: string, getToken: () => string | Promise<string>, getMediaToken?: () => string | Promise<string>,
 *           fetch?: typeof fetch, XMLHttpRequest?: unknown, multipartThreshold?: number, retryDelays?: number[],
 *           partConcurrency?: number }} options
 */
export function createClient(options) {
  const { baseUrl, getToken } = options || {};
  if (typeof baseUrl !== "string" || !baseUrl) throw new TypeError("createClient: baseUrl is required");
  if (typeof getToken !== "function") throw new TypeError("createClient: getToken must be a function");
  const base = baseUrl.replace(/\/+$/, "");
  const fetchImpl = options.fetch || globalThis.fetch?.bind(globalThis);
  if (!fetchImpl) throw new TypeError("createClient: no fetch available; pass options.fetch");
  const Xhr = "XMLHttpRequest" in options ? options.XMLHttpRequest : globalThis.XMLHttpRequest;
  const defaults = {
    multipartThreshold: options.multipartThreshold ?? DEFAULT_MULTIPART_THRESHOLD,
    retryDelays: options.retryDelays ?? DEFAULT_RETRY_DELAYS,
    partConcurrency: options.partConcurrency ?? DEFAULT_PART_CONCURRENCY,
  };
  // Storage URLs end up in the DOM, in history and in proxy logs, so they never carry the API token: without a
  // getMediaToken of the app's own, the client mints short-lived media tokens through POST /media-token.
  const getMediaToken = options.getMediaToken || cacheToken(fetchMediaToken);
  let lastMediaToken = "";
  let lastBearer = "";

  async function bearer() {
    const token = await getToken();
    if (!token) throw new ScenestoreError("unauthorized", "getToken() returned no token", 401);
    lastBearer = token;
    return token;
  }

  async function fetchMediaToken() {
    return (await api("POST", "/media-token")).token;
  }

  /** A token fit for a URL: a media token, and never the API token itself, whatever getMediaToken returned. */
  function urlToken(token) {
    if (!token) throw new ScenestoreError("unauthorized", "no media token for storage URLs", 401);
    const current = getToken();
    if (token === lastBearer || (typeof current === "string" && token === current)) {
      throw new ScenestoreError("unauthorized", "getMediaToken returned the API token; it must not go into a URL", 401);
    }
    lastMediaToken = token;
    return token;
  }

  /** Call the API; JSON in, JSON out (204: nothing); non-2xx becomes a ScenestoreError with the API's `error` code. */
  async function api(method, path, { body, query, signal } = {}) {
    const url = new URL(base + path);
    for (const [name, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null) url.searchParams.set(name, String(value));
    }
    const headers = { Authorization: `Bearer ${await bearer()}`, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetchImpl(url.toString(), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (error) {
      if (isAbort(error)) throw error;
      throw networkError(`${method} ${path}`, url, error);
    }
    const text = await response.text();
    let data;
    try {
      data = text ? JSON.parse(text) : undefined;
    } catch {
      data = undefined;
    }
    if (!response.ok) {
      const code = data && typeof data.error === "string" ? data.error : `http_${response.status}`;
      const message = (data && (data.message || data.Message)) || text.slice(0, 200) || response.statusText;
      throw new ScenestoreError(code, message, response.status, data);
    }
    if (response.status === 204) return undefined;
    if (data === undefined) {
      throw new ScenestoreError("invalid_response", `${method} ${path}: expected JSON`, response.status, text);
    }
    return data;
  }

  const projectPath = (projectId) => `/projects/${encodeURIComponent(projectId)}`;
  const uploadPath = (handle) => `${projectPath(handle.projectId)}/multipart/${encodeURIComponent(handle.uploadId)}`;

  function uploadBody({ kind, sceneId, filename, contentType, size }) {
    const body = { kind, filename, content_type: contentType, size };
    if (sceneId !== undefined && sceneId !== null && kind !== "output") body.scene_id = sceneId;
    return body;
  }

  /** Step 1: ask for a presigned PUT (contract: POST /projects/{id}/uploads). */
  function presign(projectId, request, { signal } = {}) {
    return api("POST", `${projectPath(projectId)}/uploads`, { body: uploadBody(request), signal });
  }

  /** Step 3: record the uploaded object on its slot (contract: POST /projects/{id}/uploads/complete). */
  function complete(projectId, key, { signal } = {}) {
    return api("POST", `${projectPath(projectId)}/uploads/complete`, { body: { key }, signal });
  }

  // -- multipart routes, one call each (contract section 4; the Uppy recipe maps its callbacks onto these) -------
  /** Start a multipart upload; resolves with the handle to sign, list, complete or abort it (and to resume it). */
  async function createMultipart(projectId, request, { signal } = {}) {
    const created = await api("POST", `${projectPath(projectId)}/multipart`, { body: uploadBody(request), signal });
    return {
      projectId,
      key: created.key,
      uploadId: created.upload_id,
      partSize: created.part_size,
      partCount: created.part_count,
      size: request.size,
      expiresAt: created.expires_at,
    };
  }

  /** A presigned UploadPart PUT for part `partNumber` (1-based): `{ url, headers, expires_at }`. */
  function signPart(handle, partNumber, { signal } = {}) {
    return api("GET", `${uploadPath(handle)}/parts/${partNumber}`, { query: { key: handle.key }, signal });
  }

  /** The parts the bucket already holds: `[{ PartNumber, Size, ETag }]`. */
  async function listParts(handle, { signal } = {}) {
    return (await api("GET", uploadPath(handle), { query: { key: handle.key }, signal })).parts || [];
  }

  /** Assemble the parts (`[{ PartNumber, ETag }]`) and record the object on its slot, as `complete` does. */
  function completeMultipart(handle, parts, { signal } = {}) {
    const body = { key: handle.key, parts: parts.map(({ PartNumber, ETag }) => ({ PartNumber, ETag })) };
    return api("POST", `${uploadPath(handle)}/complete`, { body, signal });
  }

  /** Abort the multipart upload: the bucket drops its parts. */
  async function abortMultipart(handle) {
    await api("DELETE", uploadPath(handle), { query: { key: handle.key } });
  }

  // -- the bytes --------------------------------------------------------------------------------------------------
  /** Step 2: PUT the bytes to a presigned URL, reporting progress; resolves with the ETag when the store says 2xx. */
  function put(target, file, { onProgress, signal } = {}) {
    // Content-Length is signed, but browsers refuse to set it by hand (they derive it from the body, which
    // yields the same value); every other signed header is sent as given.
    const headers = Object.entries(target.headers || {}).filter(([name]) => name.toLowerCase() !== "content-length");
    const total = file.size;
    const progress = (loaded) => {
      if (onProgress) onProgress({ loaded, total, fraction: total ? Math.min(1, loaded / total) : 1 });
    };
    if (typeof Xhr === "function") return putWithXhr(target, file, headers, progress, signal);
    return putWithFetch(target, file, headers, progress, signal);
  }

  /**
   * After a PUT to the bucket that got no answer and sent no byte: did the bucket's CORS rule refuse it (a failed
   * preflight) rather than the network lose it? A browser tells the two apart to nobody (both are a bare network
   * error), so ask the store again with two read-only GETs of the same URL: `no-cors` gets an opaque answer
   * whenever the store is reachable, `cors` is refused when the rule does not allow this page's origin.
   * Reachable but refused is the CORS rule. Outside a browser (no `location`), or same-origin, there is no CORS.
   */
  async function refusedByCors(url) {
    const here = globalThis.location && globalThis.location.origin;
    if (!here || here === "null") return false;
    let there;
    try {
      there = new URL(url, here).origin;
    } catch {
      return false;
    }
    if (there === here) return false;
    const probe = (mode) =>
      fetchImpl(url, { method: "GET", mode, cache: "no-store", credentials: "omit", signal: timeoutSignal(CORS_PROBE_MS) });
    try {
      await probe("no-cors");
    } catch {
      return false; // the store is unreachable: a network failure, not a CORS one
    }
    try {
      await probe("cors");
      return false;
    } catch {
      return true;
    }
  }

  /** The error for a PUT that got no answer: `cors_refused` when the probe says so, else `network_error`. */
  async function storageFailure(url, sentBytes, error) {
    if (sentBytes === 0 && (await refusedByCors(url))) return corsRefused(url);
    if (error) return networkError(`the upload to storage (${hostOf(url)})`, url, error);
    const lost = sentBytes > 0 ? `the connection was lost after ${sentBytes} bytes` : "no answer (the network)";
    return new ScenestoreError("network_error", `the upload to storage failed: ${hostOf(url)}: ${lost}`, 0);
  }

  function putWithXhr(target, file, headers, progress, signal) {
    return new Promise((resolve, reject) => {
      if (signal && signal.aborted) return reject(abortReason(signal));
      const xhr = new Xhr();
      const onAbort = () => xhr.abort();
      const done = () => signal && signal.removeEventListener("abort", onAbort);
      /** The most bytes the browser reported sent: 0 when the request never left (a failed CORS preflight). */
      let sentBytes = 0;
      xhr.open(target.method || "PUT", target.url);
      for (const [name, value] of headers) xhr.setRequestHeader(name, value);
      xhr.upload.onprogress = (event) => {
        sentBytes = Math.max(sentBytes, event.loaded);
        progress(event.loaded);
      };
      xhr.onload = () => {
        done();
        if (xhr.status >= 200 && xhr.status < 300) {
          progress(file.size);
          resolve({ etag: xhr.getResponseHeader("ETag") });
        } else {
          const detail = s3ErrorText(xhr.responseText) || `status ${xhr.status}`;
          reject(new ScenestoreError("upload_failed", `storage refused the upload: ${detail}`, xhr.status));
        }
      };
      xhr.onerror = () => {
        done();
        storageFailure(target.url, sentBytes).then(reject, reject);
      };
      xhr.onabort = () => {
        done();
        reject(abortReason(signal));
      };
      if (signal) signal.addEventListener("abort", onAbort, { once: true });
      progress(0);
      // An abort from inside that first progress callback comes before send(), where xhr.abort() fires nothing.
      if (signal && signal.aborted) {
        done();
        return reject(abortReason(signal));
      }
      xhr.send(file);
    });
  }

  async function putWithFetch(target, file, headers, progress, signal) {
    progress(0);
    let response;
    try {
      response = await fetchImpl(target.url, {
        method: target.method || "PUT",
        headers: Object.fromEntries(headers),
        body: file,
        signal,
      });
    } catch (error) {
      if (isAbort(error)) throw error;
      throw await storageFailure(target.url, 0, error); // fetch reports no upload progress: a probe decides
    }
    const text = await response.text();
    if (!response.ok) {
      const detail = s3ErrorText(text) || `status ${response.status}`;
      throw new ScenestoreError("upload_failed", `storage refused the upload: ${detail}`, response.status);
    }
    progress(file.size);
    return { etag: response.headers.get("ETag") };
  }

  /** Call `attempt()` until it succeeds, waiting `delays[i]` before retry i; only retryable failures are retried. */
  async function withRetries(attempt, { delays, signal, onRetry }) {
    for (let tries = 0; ; tries += 1) {
      try {
        return await attempt(tries);
      } catch (error) {
        if (isAbort(error) || (signal && signal.aborted)) throw isAbort(error) ? error : abortReason(signal);
        if (!isRetryable(error) || tries >= delays.length) throw error;
        if (onRetry) onRetry({ attempt: tries + 1, delayMs: delays[tries], error });
        await sleep(delays[tries], signal);
      }
    }
  }

  // -- upload: one PUT, or parts -------------------------------------------------------------------------------
  /**
   * presign -> PUT (progress, abort) -> complete, or the multipart flow above the threshold. Resolves with the
   * key the server recorded.
   * @param {Blob} file a File, or a Blob with options.filename
   */
  async function upload(file, opts = {}) {
    if (!file || typeof file.size !== "number") throw new TypeError("upload: file must be a File or Blob");
    const { projectId, sceneId, signal } = opts;
    if (!projectId && !opts.resume) throw new ScenestoreError("invalid_request", "upload: projectId is required");
    const filename = opts.filename || file.name;
    if (!filename) throw new ScenestoreError("invalid_filename", "upload: a Blob needs options.filename");
    const contentType = guessContentType(file, filename, opts.contentType);
    const kind = opts.kind || kindOfContentType(contentType);
    if (!kind) {
      throw new ScenestoreError("invalid_request", `upload: cannot tell the kind of ${contentType || "this file"}`);
    }
    if (signal && signal.aborted) throw abortReason(signal);
    const request = { kind, sceneId, filename, contentType, size: file.size };
    const threshold = opts.multipartThreshold ?? defaults.multipartThreshold;
    const result =
      opts.resume || file.size > threshold
        ? await uploadInParts(file, request, opts)
        : await uploadInOnePut(file, request, opts);
    if (opts.onComplete) opts.onComplete(result);
    return result.key;
  }

  async function uploadInOnePut(file, request, { projectId, signal, onProgress }) {
    const target = await presign(projectId, request, { signal });
    await put(target, file, { onProgress, signal });
    if (signal && signal.aborted) throw abortReason(signal);
    return complete(projectId, target.key, { signal });
  }

  /**
   * The multipart flow: create (or resume: list what the bucket holds), send the missing parts a few at a time,
   * each retried with backoff, then complete. An abort through `signal` aborts the upload in the bucket too; any
   * other failure leaves it there and rejects with `error.upload`, the handle that `{ resume }` takes.
   */
  async function uploadInParts(file, request, opts) {
    const { signal, onProgress, onPart } = opts;
    const delays = opts.retryDelays ?? defaults.retryDelays;
    const concurrency = Math.max(1, opts.partConcurrency ?? defaults.partConcurrency);
    let handle = opts.resume;
    if (handle) {
      if (handle.size !== undefined && handle.size !== file.size) {
        throw new ScenestoreError("invalid_request", `resume: the upload was for ${handle.size} bytes, not ${file.size}`);
      }
    } else {
      // No signal here: had the create gone through unseen, its upload id would be lost and the parts orphaned.
      handle = await createMultipart(opts.projectId, request);
    }
    if (opts.onUploadStarted) opts.onUploadStarted(handle);
    const partBytes = (n) => Math.min(handle.partSize, file.size - (n - 1) * handle.partSize);
    const etags = new Map();
    const loaded = new Map();
    const report = () => {
      if (!onProgress) return;
      let sum = 0;
      for (const value of loaded.values()) sum += value;
      onProgress({ loaded: sum, total: file.size, fraction: file.size ? Math.min(1, sum / file.size) : 1 });
    };
    const partEvent = (partNumber, state, extra = {}) => {
      if (onPart) onPart({ partNumber, partCount: handle.partCount, size: partBytes(partNumber), state, ...extra });
    };
    try {
      if (opts.resume) {
        for (const part of await withRetries(() => listParts(handle, { signal }), { delays, signal })) {
          if (part.Size !== partBytes(part.PartNumber) || !part.ETag) continue;
          etags.set(part.PartNumber, part.ETag);
          loaded.set(part.PartNumber, part.Size);
          partEvent(part.PartNumber, "held");
        }
      }
      report();
      const queue = [];
      for (let n = 1; n <= handle.partCount; n += 1) if (!etags.has(n)) queue.push(n);
      let failure = null;
      const sendPart = async (n) => {
        const start = (n - 1) * handle.partSize;
        const blob = file.slice(start, start + partBytes(n));
        const onRetry = ({ attempt, delayMs, error }) => {
          loaded.set(n, 0);
          report();
          partEvent(n, "retrying", { attempt, delayMs, error });
        };
        const { etag } = await withRetries(
          async () => {
            partEvent(n, "sending");
            const target = await signPart(handle, n, { signal });
            return put(target, blob, {
              signal,
              onProgress: (p) => {
                loaded.set(n, p.loaded);
                report();
              },
            });
          },
          { delays, signal, onRetry },
        );
        if (!etag) {
          throw new ScenestoreError(
            "cors_etag_hidden",
            "the bucket's CORS rule does not expose the ETag header (ExposeHeaders: [\"ETag\"]): the part went up, " +
              "but the browser may not read its ETag, and a multipart upload cannot complete without it",
            0,
          );
        }
        etags.set(n, etag);
        partEvent(n, "done");
      };
      const worker = async () => {
        while (queue.length && !failure) {
          const n = queue.shift();
          try {
            await sendPart(n);
          } catch (error) {
            if (!isAbort(error)) partEvent(n, "failed", { error });
            failure ||= error;
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, worker));
      if (signal && signal.aborted) throw abortReason(signal);
      if (failure) throw failure;
      const parts = [...etags].sort(([a], [b]) => a - b).map(([PartNumber, ETag]) => ({ PartNumber, ETag }));
      return await completeMultipart(handle, parts, { signal });
    } catch (error) {
      if (isAbort(error) || (signal && signal.aborted)) {
        // Best effort, retried: what still escapes (the API unreachable) the bucket's lifecycle rule removes.
        await withRetries(() => abortMultipart(handle), { delays }).catch(() => {});
        throw isAbort(error) ? error : abortReason(signal);
      }
      if (error instanceof ScenestoreError && CORS_CODES.includes(error.code)) {
        // No resume can work until the bucket's rule changes: abort now rather than leave an upload open.
        await withRetries(() => abortMultipart(handle), { delays }).catch(() => {});
        throw error;
      }
      if (error instanceof ScenestoreError) error.upload = handle;
      throw error;
    }
  }

  // -- reading ---------------------------------------------------------------------------------------------------
  /** A presigned GET URL for `key` (contract: GET /files?key=). */
  async function downloadUrl(key, { signal } = {}) {
    requireKey(key, "downloadUrl");
    const result = await api("GET", "/files", { query: { key }, signal });
    return result.url;
  }

  function buildStorageUrl(key, token) {
    return `${base}/storage/${encodeURIComponent(key)}?access_token=${encodeURIComponent(urlToken(token))}`;
  }

  /** `/storage/{key}?access_token=<media token>` for <img>/<video>/<audio>: the server redirects to a presigned GET. */
  async function storageUrl(key) {
    requireKey(key, "storageUrl");
    return buildStorageUrl(key, await getMediaToken());
  }

  /**
   * The same URL, synchronously (for render code): uses the media token getMediaToken returns right away (the
   * default cache does once its first token arrived), or else the last one it resolved to. Throws `unauthorized`
   * when neither is available yet: `await client.storageUrl(key)` once first.
   */
  function storageUrlSync(key) {
    requireKey(key, "storageUrlSync");
    const token = getMediaToken();
    if (typeof token === "string" && token) return buildStorageUrl(key, token);
    if (token && typeof token.then === "function") {
      token.then(
        (value) => {
          if (value && value !== lastBearer) lastMediaToken = value;
        },
        () => {},
      );
    }
    if (!lastMediaToken) {
      throw new ScenestoreError("unauthorized", "no media token yet: await client.storageUrl(key) once first", 401);
    }
    return buildStorageUrl(key, lastMediaToken);
  }

  /**
   * The seed frontend's `constructStorageUrl(key, userId, projectId, sceneId?)`, kept as a drop-in.
   *
   * The old version rebuilt a new-layout key from the ids for any key not under `users/`, which points at an
   * object that does not exist until the migration has moved it. This one always asks for the key stored in
   * the document, legacy or not; the server resolves both (and checks that the caller may read it). The ids
   * are accepted for signature compatibility only.
   */
  function constructStorageUrl(key, _userId, _projectId, _sceneId) {
    return storageUrlSync(key);
  }

  /** Every file of a project, following the listing's cursors (contract: GET /projects/{id}/files). */
  async function* iterFiles(projectId, { signal } = {}) {
    let cursor;
    do {
      const page = await api("GET", `${projectPath(projectId)}/files`, { query: { cursor }, signal });
      for (const file of page.files || []) yield file;
      cursor = page.cursor || undefined;
    } while (cursor);
  }

  async function listFiles(projectId, opts = {}) {
    const files = [];
    for await (const file of iterFiles(projectId, opts)) files.push(file);
    return files;
  }

  return Object.freeze({
    baseUrl: base,
    upload,
    presign,
    complete,
    createMultipart,
    signPart,
    listParts,
    completeMultipart,
    abortMultipart,
    downloadUrl,
    storageUrl,
    storageUrlSync,
    constructStorageUrl,
    listFiles,
    iterFiles,
  });
}

function requireKey(key, where) {
  if (typeof key !== "string" || !key) throw new ScenestoreError("invalid_request", `${where}: key is required`);
}
