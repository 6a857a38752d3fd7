// Uppy -> scenestore, as in docs/frontend.md: @uppy/aws-s3 with one presigned PUT per file, no multipart.
// The presign response is handed to Uppy unchanged ({ method: "PUT", url, headers }); once a file is in the
// bucket, the complete call records its key on the scene. Tested in Chromium by tests/test_browser_uppy.py.
import AwsS3 from "@uppy/aws-s3";
import Uppy from "@uppy/core";

export function createUploader({ apiUrl, getToken, projectId, sceneId, onRecorded }) {
  async function post(path, body) {
    const response = await fetch(`${apiUrl}/projects/${encodeURIComponent(projectId)}${path}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${await getToken()}`, "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const data = await response.json();
    if (!response.ok) throw Object.assign(new Error(`${data.error}: ${data.message}`), { code: data.error });
    return data;
  }

  const uppy = new Uppy({ restrictions: { allowedFileTypes: ["image/*", "video/*", "audio/*"] } });
  uppy.use(AwsS3, {
    shouldUseMultipart: false,
    async getUploadParameters(file) {
      const upload = await post("/uploads", {
        kind: file.type.split("/")[0], // image | video | audio
        scene_id: sceneId,
        filename: file.name,
        content_type: file.type,
        size: file.size,
      });
      uppy.setFileMeta(file.id, { storageKey: upload.key });
      return upload; // { method: "PUT", url, headers, ... }: what getUploadParameters returns, as it is
    },
  });
  uppy.on("upload-success", async (file) => {
    const { storageKey } = uppy.getFile(file.id).meta;
    try {
      const recorded = await post("/uploads/complete", { key: storageKey });
      onRecorded?.(file, recorded);
    } catch (error) {
      uppy.info(`${file.name}: ${error.message}`, "error");
      onRecorded?.(file, null, error);
    }
  });
  return uppy;
}
