// Compiled (never run) by tests/test_js_client.py with `tsc --noEmit --strict`: the shipped .d.ts must describe
// how the frontend uses the client, and reject what it must not do.
import {
  cacheToken,
  type CompleteResult,
  createClient,
  DEFAULT_MULTIPART_THRESHOLD,
  DEFAULT_RETRY_DELAYS,
  type FileEntry,
  type MultipartHandle,
  type PartEvent,
  type PresignResult,
  ScenestoreError,
  type ScenestoreClient,
  type SignedPart,
  type UploadedPart,
} from "../scenestore.js";

declare const file: File;
declare function getAccessToken(): Promise<string>;

const client: ScenestoreClient = createClient({ baseUrl: "https://api.example.com", getToken: getAccessToken });
const sync = createClient({
  baseUrl: "http://127.0.0.1:8000",
  getToken: () => "token",
  getMediaToken: cacheToken(async () => "media-token", { marginSeconds: 60 }),
  XMLHttpRequest: null,
});

async function flow(): Promise<void> {
  const controller = new AbortController();
  const key: string = await client.upload(file, {
    projectId: "p1",
    sceneId: "s1",
    onProgress: ({ loaded, total, fraction }) => console.log(loaded, total, fraction.toFixed(2)),
    onComplete: (result: CompleteResult) => console.log(result.slot, result.replaced, result.deleted_previous),
    signal: controller.signal,
  });
  await client.upload(new Blob([]), { projectId: "p1", kind: "output", filename: "final.mp4" });
  const src: string = await client.storageUrl(key);
  const now: string = sync.constructStorageUrl("media/abc.jpg", "u", "p1", "s1");
  const download: string = await client.downloadUrl(key);
  const files: FileEntry[] = await client.listFiles("p1");
  for await (const entry of client.iterFiles("p1")) console.log(entry.key, entry.size, entry.scene_id);
  const upload: PresignResult = await client.presign("p1", {
    kind: "image",
    sceneId: "s1",
    filename: "a.png",
    contentType: "image/png",
    size: 3,
  });
  const uppyParams: { method: "PUT"; url: string; headers: Record<string, string> } = upload;
  await client.complete("p1", upload.key);
  console.log(src, now, download, files.length, uppyParams);
  try {
    await client.listFiles("p1");
  } catch (error) {
    if (error instanceof ScenestoreError) console.log(error.code, error.status);
  }
}

// @ts-expect-error kind must be one of the four kinds
client.upload(file, { projectId: "p1", kind: "document" });
// @ts-expect-error projectId is required
client.upload(file, { sceneId: "s1" });
// @ts-expect-error storageUrl resolves asynchronously
const wrong: string = client.storageUrl("k");

void flow;
void wrong;

// Multipart: thresholds and retries per client or per file, resume from a stored handle, per-part events.
const big = createClient({
  baseUrl: "https://api.example.com",
  getToken: getAccessToken,
  multipartThreshold: 16 * 1024 * 1024,
  retryDelays: [250, 1000],
  partConcurrency: 2,
});

async function multipart(): Promise<void> {
  let saved: MultipartHandle | undefined;
  try {
    await big.upload(file, {
      projectId: "p1",
      sceneId: "s1",
      onUploadStarted: (handle) => (saved = handle),
      onPart: ({ partNumber, partCount, state, attempt }: PartEvent) => console.log(partNumber, partCount, state, attempt),
    });
  } catch (error) {
    if (error instanceof ScenestoreError && error.upload) saved = error.upload;
  }
  if (saved) await big.upload(file, { projectId: saved.projectId, resume: saved, multipartThreshold: 0 });
  const handle: MultipartHandle = await big.createMultipart("p1", {
    kind: "video",
    sceneId: "s1",
    filename: "a.mp4",
    contentType: "video/mp4",
    size: 12 * 1024 * 1024,
  });
  const signed: SignedPart = await big.signPart(handle, 1);
  const held: UploadedPart[] = await big.listParts(handle);
  const done: CompleteResult = await big.completeMultipart(handle, held);
  await big.abortMultipart(handle);
  console.log(signed.url, signed.headers, done.key, DEFAULT_MULTIPART_THRESHOLD, DEFAULT_RETRY_DELAYS[0]);
}

// @ts-expect-error a part event's state is one of five
const badState: PartEvent["state"] = "paused";
// @ts-expect-error completeMultipart needs each part's ETag
big.completeMultipart({ projectId: "p", key: "k", uploadId: "u", partSize: 5, partCount: 1 }, [{ PartNumber: 1 }]);

void multipart;
void badState;
