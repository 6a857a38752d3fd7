// Test page for tests/test_browser_uppy.py: the recipe over the real client, driven from Playwright. Not part of
// the client. The page's own origin is not the API's, as for a real frontend.
import { createClient } from "../scenestore.js";
import { createUploader } from "./recipe.js";

const params = new URLSearchParams(location.search);
const client = createClient({ baseUrl: params.get("api"), getToken: () => params.get("token") });

/** What the test reads back: files that went through, failed, were recorded; progress; errors; parts sent. */
function tracker() {
  const state = { recorded: {}, errors: {}, progress: {}, parts: {} };
  let pending = 0;
  let settle = () => {};
  const settled = () => {
    if (--pending <= 0) settle();
  };
  return {
    onRecorded(file, result, error) {
      if (result) {
        state.recorded[file.name] = result;
        delete state.errors[file.name];
      } else state.errors[file.name] = `${error.code}: ${error.message}`;
      settled();
    },
    attach(uppy) {
      uppy.on("upload-progress", (file, p) => (state.progress[file.name] ||= []).push(p.bytesUploaded));
      uppy.on("s3-multipart:part-uploaded", (file, part) => (state.parts[file.name] ||= []).push(part.PartNumber));
      uppy.on("upload-error", (file, error) => {
        state.errors[file.name] = error.code ? `${error.code}: ${error.message}` : String(error && error.message);
        settled();
      });
    },
    /** Run `start()` (uppy.upload or a retry) and wait until every file is recorded or has failed (15 s at most). */
    async run(count, start) {
      pending = count;
      const allSettled = new Promise((resolve) => (settle = resolve));
      const result = await start();
      await Promise.race([allSettled, new Promise((resolve) => setTimeout(resolve, 15000))]);
      return {
        successful: (result?.successful || []).map((f) => f.name),
        failed: (result?.failed || []).map((f) => f.name),
        ...structuredClone(state),
      };
    },
  };
}

let uppy;
let track;

window.uppyTest = {
  /**
   * Upload files through Uppy: `[{ name, type, base64 }]` or `[{ name, type, size }]` (patterned bytes, see
   * tests/support/browser.py). `multipartThreshold` is the recipe's option.
   */
  async upload(files, { multipartThreshold } = {}) {
    track = tracker();
    uppy = createUploader({
      client,
      projectId: params.get("project"),
      sceneId: params.get("scene"),
      multipartThreshold,
      onRecorded: track.onRecorded,
    });
    track.attach(uppy);
    for (const { name, type, base64, size } of files) {
      const bytes = base64 ? Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)) : window.patternedBytes(size);
      uppy.addFile({ name, type, data: new Blob([bytes], { type }) });
    }
    return track.run(files.length, () => uppy.upload());
  },
  /** Retry every failed file (Uppy resumes a multipart upload: it lists the parts held, then sends the rest). */
  retryAll() {
    const failed = uppy.getFiles().filter((f) => f.error).length;
    return track.run(failed, () => uppy.retryAll());
  },
};
document.body.dataset.ready = "yes";
