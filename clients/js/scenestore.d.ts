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
   * The token put into storage URLs (`?access_token=`), which end up in the DOM and in server logs. Defaults to
   * `getToken`; pass a narrower, shorter-lived token here if your identity provider can mint one.
   */
  getMediaToken?: TokenSource;
  /** A fetch implementation (defaults to the global one). */
  fetch?: typeof fetch;
  /**
   * The XMLHttpRequest constructor used for uploads with progress (defaults to the global one in browsers).
   * Pass `null` to force the fetch upload path, which reports progress only at start and end.
   */
  XMLHttpRequest?: unknown;
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
  onProgress?: (progress: UploadProgress) => void;
  /** Called with the complete response (slot, replaced, deleted_previous) before `upload` resolves. */
  onComplete?: (result: CompleteResult) => void;
  /** Aborts the presign, the PUT or the complete call; the promise then rejects with `signal.reason`. */
  signal?: AbortSignal;
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
  /** presign -> PUT with progress and abort -> complete. Resolves with the key the server recorded. */
  upload(file: Blob, options: UploadOptions): Promise<string>;
  /** The presign step alone (for uploaders such as Uppy that do their own PUT). */
  presign(projectId: string, request: PresignRequest, options?: RequestOptions): Promise<PresignResult>;
  /** The complete step alone: records an uploaded key on its slot. Idempotent. */
  complete(projectId: string, key: string, options?: RequestOptions): Promise<CompleteResult>;
  /** A presigned GET URL (`GET /files?key=`), for downloads and fetches. */
  downloadUrl(key: string, options?: RequestOptions): Promise<string>;
  /**
   * `{baseUrl}/storage/{encodeURIComponent(key)}?access_token=...` for `<img>`, `<video>` and `<audio>`: the
   * server redirects to a presigned GET. Works for legacy and layout keys alike; use the key the document holds.
   */
  storageUrl(key: string): Promise<string>;
  /** `storageUrl` for synchronous render code: uses a synchronous token or the last one resolved. */
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
 * (`network_error`, `upload_failed`, `invalid_response`, `http_<status>`); `status` is 0 without a response.
 * An abort rejects with the signal's reason (an `AbortError`), not with this class.
 */
export declare class ScenestoreError extends Error {
  constructor(code: string, message: string, status?: number, body?: unknown);
  readonly code: string;
  readonly status: number;
  readonly body: unknown;
}

/** The `exp` claim of a JWT in milliseconds since the epoch, or 0 when there is none. */
export declare function tokenExpiry(token: string): number;

/**
 * Cache a token source by its JWT `exp`: the source is called again only within `marginSeconds` (default 30) of
 * expiry; a fresh token is returned synchronously. Made for `getMediaToken`, e.g.
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
