// Test page for tests/test_browser_uppy.py: the recipe, driven from Playwright. Not part of the client.
import { createUploader } from "./recipe.js";

const params = new URLSearchParams(location.search);

window.uppyTest = {
  /** Upload [{ name, type, base64 }] through Uppy; resolve once every file is recorded or has failed. */
  async upload(files) {
    const recorded = {};
    const progress = {};
    const errors = {};
    let pending = 0;
    let settle;
    const allSettled = new Promise((resolve) => (settle = resolve));
    const uppy = createUploader({
      apiUrl: params.get("api"),
      getToken: () => params.get("token"),
      projectId: params.get("project"),
      sceneId: params.get("scene"),
      onRecorded: (file, result, error) => {
        if (result) recorded[file.name] = result;
        else errors[file.name] = String(error && error.message);
        if (--pending === 0) settle();
      },
    });
    uppy.on("upload-progress", (file, p) => (progress[file.name] ||= []).push(p.bytesUploaded));
    uppy.on("upload-error", (file, error) => {
      errors[file.name] = String(error && error.message);
      if (--pending === 0) settle();
    });
    for (const { name, type, base64 } of files) {
      const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      uppy.addFile({ name, type, data: new Blob([bytes], { type }) });
      pending += 1;
    }
    const result = await uppy.upload();
    await Promise.race([allSettled, new Promise((resolve) => setTimeout(resolve, 15000))]);
    return {
      successful: (result?.successful || []).map((f) => f.name),
      failed: (result?.failed || []).map((f) => f.name),
      recorded,
      progress,
      errors,
    };
  },
};
document.body.dataset.ready = "yes";
