// scenestore client: presigned uploads with progress, storage URLs and file listings for the Auto Shorts frontend.
//
// One ES module, no dependencies, no build step: import it in a browser (<script type="module">) or in Node 18+.
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
  }
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
 *           fetch?: typeof fetch, XMLHttpRequest?: unknown }} options
 */
export function createClient(options) {
  const { baseUrl, getToken } = options || {};
  if (typeof baseUrl !== "string" || !baseUrl) throw new TypeError("createClient: baseUrl is required");
  if (typeof getToken !== "function") throw new TypeError("createClient: getToken must be a function");
  const base = baseUrl.replace(/\/+$/, "");
  const getMediaToken = options.getMediaToken || getToken;
  const fetchImpl = options.fetch || globalThis.fetch?.bind(globalThis);
  if (!fetchImpl) throw new TypeError("createClient: no fetch available; pass options.fetch");
  const Xhr = "XMLHttpRequest" in options ? options.XMLHttpRequest : globalThis.XMLHttpRequest;
  let lastMediaToken = "";

  async function bearer() {
    const token = await getToken();
    if (!token) throw new ScenestoreError("unauthorized", "getToken() returned no token", 401);
    return token;
  }

  async function mediaToken() {
    const token = await getMediaToken();
    if (!token) throw new ScenestoreError("unauthorized", "no token for storage URLs", 401);
    lastMediaToken = token;
    return token;
  }

  /** Call the API; JSON in, JSON out; non-2xx becomes a ScenestoreError with the API's `error` code. */
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
      throw new ScenestoreError("network_error", `${method} ${path} failed: ${error && error.message}`, 0);
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
    if (data === undefined) {
      throw new ScenestoreError("invalid_response", `${method} ${path}: expected JSON`, response.status, text);
    }
    return data;
  }

  const projectPath = (projectId) => `/projects/${encodeURIComponent(projectId)}`;

  /** Step 1: ask for a presigned PUT (contract: POST /projects/{id}/uploads). */
  function presign(projectId, { kind, sceneId, filename, contentType, size }, { signal } = {}) {
    const body = { kind, filename, content_type: contentType, size };
    if (sceneId !== undefined && sceneId !== null) body.scene_id = sceneId;
    return api("POST", `${projectPath(projectId)}/uploads`, { body, signal });
  }

  /** Step 3: record the uploaded object on its slot (contract: POST /projects/{id}/uploads/complete). */
  function complete(projectId, key, { signal } = {}) {
    return api("POST", `${projectPath(projectId)}/uploads/complete`, { body: { key }, signal });
  }

  /** Step 2: PUT the bytes to the presigned URL, reporting progress; resolves when the store answers 2xx. */
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

  function putWithXhr(target, file, headers, progress, signal) {
    return new Promise((resolve, reject) => {
      if (signal && signal.aborted) return reject(abortReason(signal));
      const xhr = new Xhr();
      const onAbort = () => xhr.abort();
      const done = () => signal && signal.removeEventListener("abort", onAbort);
      xhr.open(target.method || "PUT", target.url);
      for (const [name, value] of headers) xhr.setRequestHeader(name, value);
      xhr.upload.onprogress = (event) => progress(event.loaded);
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
        reject(new ScenestoreError("network_error", "the upload to storage failed (network or CORS)", 0));
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
      throw new ScenestoreError("network_error", `the upload to storage failed: ${error && error.message}`, 0);
    }
    const text = await response.text();
    if (!response.ok) {
      const detail = s3ErrorText(text) || `status ${response.status}`;
      throw new ScenestoreError("upload_failed", `storage refused the upload: ${detail}`, response.status);
    }
    progress(file.size);
    return { etag: response.headers.get("ETag") };
  }

  /**
   * presign -> PUT (progress, abort) -> complete. Resolves with the key the server recorded.
   * @param {Blob} file a File, or a Blob with options.filename
   */
  async function upload(file, opts = {}) {
    if (!file || typeof file.size !== "number") throw new TypeError("upload: file must be a File or Blob");
    const { projectId, sceneId, signal, onProgress, onComplete } = opts;
    if (!projectId) throw new ScenestoreError("invalid_request", "upload: projectId is required");
    const filename = opts.filename || file.name;
    if (!filename) throw new ScenestoreError("invalid_filename", "upload: a Blob needs options.filename");
    const contentType = guessContentType(file, filename, opts.contentType);
    const kind = opts.kind || kindOfContentType(contentType);
    if (!kind) {
      throw new ScenestoreError("invalid_request", `upload: cannot tell the kind of ${contentType || "this file"}`);
    }
    if (signal && signal.aborted) throw abortReason(signal);
    const target = await presign(
      projectId,
      { kind, sceneId: kind === "output" ? undefined : sceneId, filename, contentType, size: file.size },
      { signal },
    );
    await put(target, file, { onProgress, signal });
    if (signal && signal.aborted) throw abortReason(signal);
    const result = await complete(projectId, target.key, { signal });
    if (onComplete) onComplete(result);
    return result.key;
  }

  /** A presigned GET URL for `key` (contract: GET /files?key=). */
  async function downloadUrl(key, { signal } = {}) {
    requireKey(key, "downloadUrl");
    const result = await api("GET", "/files", { query: { key }, signal });
    return result.url;
  }

  function buildStorageUrl(key, token) {
    return `${base}/storage/${encodeURIComponent(key)}?access_token=${encodeURIComponent(token)}`;
  }

  /** `/storage/{key}?access_token=...` for <img>/<video>/<audio>: the server redirects to a presigned GET. */
  async function storageUrl(key) {
    requireKey(key, "storageUrl");
    return buildStorageUrl(key, await mediaToken());
  }

  /**
   * The same URL, synchronously (for render code): uses the token getMediaToken/getToken returns right away,
   * or else the last one it resolved to. Throws `unauthorized` when neither is available yet.
   */
  function storageUrlSync(key) {
    requireKey(key, "storageUrlSync");
    const token = getMediaToken();
    if (typeof token === "string" && token) {
      lastMediaToken = token;
      return buildStorageUrl(key, token);
    }
    if (token && typeof token.then === "function") {
      token.then(
        (value) => {
          if (value) lastMediaToken = value;
        },
        () => {},
      );
    }
    if (!lastMediaToken) {
      throw new ScenestoreError("unauthorized", "no token yet: await client.storageUrl(key) once first", 401);
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
