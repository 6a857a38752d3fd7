// Types for scenestore.js (the client of the scenestore HTTP API, contract section 4).

/** Where a file belongs: a scene's media (image/video), its audio, or the project's finished video. */
export type Kind = "image" | "video" | "audio" | "output";

/** A token, or a promise of one (e.g. an auth SDK's getAccessTokenSilently). */
export type TokenSource = () => string | Promise<string>;

export interface ClientOptions {
  /** The API's base URL, e.g. `http://127.0.0.1:8000` or the API Gateway stage URL. */
  baseUrl: string;
  /** Called before every API request; its value is sent as `Authorization: Bearer <token>`. */
  getToken: TokenSource;
  /**
   * The media token put into storage URLs (`?access_token=`), which end up in the DOM, in history and in proxy
   * logs. By default the client mints one through `POST /media-token` (a few minutes long, `scope: media`, good
   * for `/storage/{key}` only) and caches it until shortly before it expires. It is never `getToken`'s API
   * token: a storage URL refuses to carry that one.
   */
  getMediaToken?: TokenSource;
  /** A fetch implementation (defaults to the global one). */
  fetch?: typeof fetch;
  /**
   * The XMLHttpRequest constructor used for uploads with progress (defaults to the global one in browsers).
   * Pass `null` to force the fetch upload path, which reports progress only at start and end.
   */
  XMLHttpRequest?: unknown;
  /** Files larger than this many bytes go up in parts (default 64 MiB, `DEFAULT_MULTIPART_THRESHOLD`). */
  multipartThreshold?: number;
  /** Waits (ms) before each retry of a failed part; its length is the number of retries (default 0.5 s .. 8 s, 5). */
  retryDelays?: readonly number[];
  /** Parts in flight at once (default 3). */
  partConcurrency?: number;
}

/** What `onProgress` receives while the bytes go to storage. */
export interface UploadProgress {
  loaded: number;
  total: number;
  /** loaded / total, 0..1 */
  fraction: number;
}

export interface UploadOptions {
  projectId: string;
  /** Required for image, video and audio; not sent for `output`. */
  sceneId?: string;
  /** Defaults to the top-level type of the content type (`image/png` -> `image`). `output` must be explicit. */
  kind?: Kind;
  /** Defaults to `file.name`; needed for a Blob without a name. The server sanitizes it. */
  filename?: string;
  /** Defaults to `file.type`, else a type derived from the extension. */
  contentType?: string;
  /** Bytes in the bucket so far, across all parts of a multipart upload (a retried part starts again at 0). */
  onProgress?: (progress: UploadProgress) => void;
  /** Called with the complete response (slot, replaced, deleted_previous) before `upload` resolves. */
  onComplete?: (result: CompleteResult) => void;
  /**
   * Aborts the presign, the PUT(s) or the complete call; the promise then rejects with `signal.reason`. A multipart
   * upload is aborted in the bucket too (its parts are deleted).
   */
  signal?: AbortSignal;
  /** Overrides the client's `multipartThreshold` for this file. */
  multipartThreshold?: number;
  /** Overrides the client's `retryDelays` for this file's parts. */
  retryDelays?: readonly number[];
  /** Overrides the client's `partConcurrency` for this file. */
  partConcurrency?: number;
  /**
   * Resume an interrupted multipart upload of the same file: the handle from `onUploadStarted` or from the
   * rejected error's `upload`. The client lists the parts the bucket holds and sends only the rest.
   */
  resume?: MultipartHandle;
  /**
   * A multipart upload has started, or resumes (then before its parts are listed): keep the handle (e.g. in
   * localStorage) to resume it after a reload.
   */
  onUploadStarted?: (handle: MultipartHandle) => void;
  /** Each part's state changes (multipart only): for a per-part display. */
  onPart?: (event: PartEvent) => void;
}

/** What identifies a multipart upload: enough to sign, list, complete, abort or resume it. */
export interface MultipartHandle {
  projectId: string;
  key: string;
  uploadId: string;
  /** Bytes of every part but the last (chosen by the server, at least 5 MiB). */
  partSize: number;
  partCount: number;
  /** The file's size; a resume with a file of another size is refused. */
  size?: number;
  expiresAt?: string;
}

/**
 * A part's state: `held` (in the bucket already, on resume), `sending`, `retrying` (with the wait), `done`, or
 * `failed` (its last attempt failed, with the `error`; a part in flight when another failed may end so too).
 */
export interface PartEvent {
  partNumber: number;
  partCount: number;
  size: number;
  state: "held" | "sending" | "retrying" | "done" | "failed";
  attempt?: number;
  delayMs?: number;
  error?: ScenestoreError;
}

/** `GET /projects/{project_id}/multipart/{upload_id}/parts/{n}` -> 200: a presigned UploadPart PUT. */
export interface SignedPart {
  url: string;
  headers: Record<string, string>;
  expires_at: string;
}

/** One entry of `GET /projects/{project_id}/multipart/{upload_id}` (S3's own field names, as Uppy wants them). */
export interface UploadedPart {
  PartNumber: number;
  Size: number;
  ETag: string;
}

export interface PresignRequest {
  kind: Kind;
  sceneId?: string;
  filename: string;
  contentType: string;
  size: number;
}

/** `POST /projects/{project_id}/uploads` -> 201. Fits Uppy's `getUploadParameters` as it is. */
export interface PresignResult {
  key: string;
  method: "PUT";
  url: string;
  headers: { "Content-Type": string; "Content-Length": string };
  expires_at: string;
  max_size: number;
}

/** `POST /projects/{project_id}/uploads/complete` -> 200. */
export interface CompleteResult {
  key: string;
  /** Where the key was recorded: `scene.media`, `scene.audio` or `project.output`. */
  slot: "scene.media" | "scene.audio" | "project.output";
  size: number;
  content_type: string;
  /** The slot held another key before. */
  replaced: boolean;
  /** That previous object was deleted (no document referenced it any more). */
  deleted_previous: boolean;
}

/** One entry of `GET /projects/{project_id}/files`. */
export interface FileEntry {
  key: string;
  size: number;
  last_modified: string;
  kind: Kind | string | null;
  scene_id: string | null;
}

export interface RequestOptions {
  signal?: AbortSignal;
}

export interface ScenestoreClient {
  readonly baseUrl: string;
  /**
   * presign -> PUT with progress and abort -> complete, or in parts above `multipartThreshold` (retried, resumable).
   * Resolves with the key the server recorded. An interrupted multipart upload rejects with a ScenestoreError
   * whose `upload` is the handle to pass as `{ resume }`.
   */
  upload(file: Blob, options: UploadOptions): Promise<string>;
  /** The presign step alone (for uploaders such as Uppy that do their own PUT). */
  presign(projectId: string, request: PresignRequest, options?: RequestOptions): Promise<PresignResult>;
  /** The complete step alone: records an uploaded key on its slot. Idempotent. */
  complete(projectId: string, key: string, options?: RequestOptions): Promise<CompleteResult>;
  /** `POST /projects/{id}/multipart`: starts a multipart upload (same checks as `presign`). */
  createMultipart(projectId: string, request: PresignRequest, options?: RequestOptions): Promise<MultipartHandle>;
  /** A presigned PUT for one part (1-based `partNumber`). */
  signPart(handle: MultipartHandle, partNumber: number, options?: RequestOptions): Promise<SignedPart>;
  /** The parts the bucket holds already. */
  listParts(handle: MultipartHandle, options?: RequestOptions): Promise<UploadedPart[]>;
  /** Assembles the parts and records the object on its slot, as `complete` does. */
  completeMultipart(
    handle: MultipartHandle,
    parts: ReadonlyArray<{ PartNumber: number; ETag: string }>,
    options?: RequestOptions,
  ): Promise<CompleteResult>;
  /** Aborts the upload; the bucket deletes its parts. */
  abortMultipart(handle: MultipartHandle): Promise<void>;
  /** A presigned GET URL (`GET /files?key=`), for downloads and fetches. */
  downloadUrl(key: string, options?: RequestOptions): Promise<string>;
  /**
   * `{baseUrl}/storage/{encodeURIComponent(key)}?access_token=...` for `<img>`, `<video>` and `<audio>`: the
   * server redirects to a presigned GET. Works for legacy and layout keys alike; use the key the document holds.
   */
  storageUrl(key: string): Promise<string>;
  /** `storageUrl` for synchronous render code: uses a cached media token, or the last one resolved. */
  storageUrlSync(key: string): string;
  /**
   * Drop-in for the seed frontend's `constructStorageUrl(key, userId, projectId, sceneId?)`. It never derives a
   * new-layout key from the ids (that object may not exist before migration): it is `storageUrlSync(key)`.
   */
  constructStorageUrl(key: string, userId?: string, projectId?: string, sceneId?: string): string;
  /** Every file of a project, all pages. */
  listFiles(projectId: string, options?: RequestOptions): Promise<FileEntry[]>;
  /** The same, one file at a time, fetching pages as it goes. */
  iterFiles(projectId: string, options?: RequestOptions): AsyncGenerator<FileEntry, void, undefined>;
}

export declare function createClient(options: ClientOptions): ScenestoreClient;

/**
 * Every failure: `code` is the API's `error` (`invalid_request`, `invalid_id`, `invalid_filename`,
 * `unauthorized`, `not_found`, `too_large`, `unsupported_type`, `internal`) or a client-side one
 * (`network_error`, `upload_failed`, `cors_refused`, `cors_etag_hidden`, `invalid_response`, `http_<status>`);
 * `status` is 0 without a response. An abort rejects with the signal's reason (an `AbortError`), not with this class.
 * `cors_refused`: the bucket's CORS rule does not allow this page's origin (its preflight failed);
 * `cors_etag_hidden`: the rule does not expose `ETag`. Neither is retried nor resumable: the client aborts the
 * multipart upload it started and leaves `upload` unset.
 */
export declare class ScenestoreError extends Error {
  constructor(code: string, message: string, status?: number, body?: unknown);
  readonly code: string;
  readonly status: number;
  readonly body: unknown;
  /** For a `network_error`: the runtime's own error (Node's fetch: a TypeError whose `cause` has the `code`). */
  cause?: unknown;
  /** Set when a multipart upload was interrupted: pass it as `upload(file, { resume })` to send the rest. */
  upload?: MultipartHandle;
}

/**
 * Why `url` could not be reached, in words: its host and the runtime's cause (`ECONNREFUSED`, DNS, TLS) when it
 * gives one. The message of every `network_error` ends with it.
 */
export declare function describeNetworkError(url: string, error: unknown): string;

/** 64 MiB: files above it go up in parts unless `multipartThreshold` says otherwise. */
export declare const DEFAULT_MULTIPART_THRESHOLD: number;
/** Waits (ms) before each retry of a failed part. */
export declare const DEFAULT_RETRY_DELAYS: readonly number[];
/** Parts in flight at once. */
export declare const DEFAULT_PART_CONCURRENCY: number;

/** The `exp` claim of a JWT in milliseconds since the epoch, or 0 when there is none. */
export declare function tokenExpiry(token: string): number;

/**
 * Cache a token source by its JWT `exp`: the source is called again only within `marginSeconds` (default 30) of
 * expiry; a fresh token is returned synchronously. The client's default `getMediaToken` is this over
 * `POST /media-token`; use it for a media token source of your own, e.g.
 * `getMediaToken: cacheToken(() => backend.mediaToken())`.
 */
export declare function cacheToken(
  source: TokenSource,
  options?: { marginSeconds?: number; now?: () => number },
): () => string | Promise<string>;

export declare function guessContentType(
  file: { type?: string } | null | undefined,
  filename: string,
  explicit?: string,
): string;

export declare function kindOfContentType(contentType: string): "image" | "video" | "audio" | "";
