// Uppy 6 -> scenestore, as in docs/frontend.md: @uppy/core + @uppy/aws-s3 (6.x) over the scenestore JS client.
//
// Uppy 6 dropped the v5 callbacks (getUploadParameters, createMultipartUpload, signPart, ...). It asks one
// function, `signRequest(request)`, for a presigned URL per S3 request and then sends that request itself. The
// byte-carrying requests (the single PUT, each UploadPart PUT) get presigned bucket URLs from our routes, so the
// bytes go straight to the bucket. The four control requests of a multipart upload (create, list parts,
// complete, abort) are our API's job, not the browser's: the API checks limits and tenancy, and its complete
// call records the key on the scene. The recipe makes those calls through the client and hands Uppy the S3
// answer it expects as a `data:` URL, which Uppy then "sends" without leaving the browser.
// Tested in Chromium by tests/test_browser_uppy.py (served from another origin than the API).
import AwsS3 from "@uppy/aws-s3";
import Uppy from "@uppy/core";

/** Files above this go up in parts; below it, in one presigned PUT. Same default as the client. */
const MULTIPART_THRESHOLD = 64 * 1024 * 1024;

const xmlEscape = (text) =>
  String(text).replace(/[<>&'"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&apos;", '"': "&quot;" })[c]);

/** An S3 XML answer that Uppy fetches from the browser itself: `<Root><Name>value</Name>...</Root>`. */
function s3Answer(root, fields, children = "") {
  const body = Object.entries(fields)
    .map(([name, value]) => `<${name}>${xmlEscape(value)}</${name}>`)
    .join("");
  return { url: `data:application/xml;charset=utf-8,${encodeURIComponent(`<${root}>${body}${children}</${root}>`)}` };
}

/** Only the headers a browser may set: Content-Length is signed, and the browser sets it to the same value. */
const settableHeaders = (headers = {}) =>
  Object.fromEntries(Object.entries(headers).filter(([name]) => name.toLowerCase() !== "content-length"));

/**
 * An Uppy instance that uploads into one project through `client` (a scenestore `createClient(...)`).
 * Each file goes to `file.meta.sceneId` or `sceneId`, as `file.meta.kind` or the kind of its type
 * (`output` needs no scene). `onRecorded(file, result, error)` says when the key is on its slot (or why not).
 */
export function createUploader({ client, projectId, sceneId, multipartThreshold = MULTIPART_THRESHOLD, onRecorded }) {
  const uppy = new Uppy({ restrictions: { allowedFileTypes: ["image/*", "video/*", "audio/*"] } });
  const isMultipart = (file) => file.size > multipartThreshold;
  /** Multipart uploads by Uppy file id, created before Uppy cuts the file into parts (it needs our part size). */
  const handles = new Map();
  const partSizeBySize = new Map();

  const uploadRequest = (file) => {
    const kind = file.meta.kind || file.type.split("/")[0]; // image | video | audio | output
    return {
      kind,
      sceneId: kind === "output" ? undefined : file.meta.sceneId || sceneId,
      filename: file.name,
      contentType: file.type,
      size: file.size,
    };
  };
  const handleOf = (uploadId) => [...handles.values()].find((h) => h.uploadId === uploadId);

  // The server picks the part size; Uppy asks for it (getChunkSize) before its first request, so the multipart
  // upload is created here, before Uppy starts. A refusal (too large, wrong type) fails that file, not the batch.
  uppy.addPreProcessor(async (fileIDs) => {
    for (const file of uppy.getFilesByIds(fileIDs).filter(isMultipart)) {
      if (handles.has(file.id)) continue;
      try {
        const handle = await client.createMultipart(projectId, uploadRequest(file));
        handles.set(file.id, handle);
        partSizeBySize.set(file.size, handle.partSize); // the server's part size depends on the size alone
      } catch (error) {
        handles.set(file.id, { error });
      }
    }
  });

  uppy.use(AwsS3, {
    shouldUseMultipart: isMultipart,
    getChunkSize: ({ size }) => partSizeBySize.get(size) ?? size,
    // The key Uppy asks for is only the file's id; every answer below carries the key the server chose.
    generateObjectKey: (file) => file.id,
    async signRequest(request) {
      if (request.uploadId === undefined) {
        const file = uppy.getFile(request.key);
        if (request.method === "PUT") {
          const target = await client.presign(projectId, uploadRequest(file));
          uppy.setFileMeta(file.id, { storageKey: target.key });
          return { url: target.url, key: target.key, headers: settableHeaders(target.headers) };
        }
        if (request.method === "POST") {
          const handle = handles.get(file.id);
          if (handle.error) throw handle.error;
          uppy.setFileMeta(file.id, { storageKey: handle.key });
          const answer = s3Answer("InitiateMultipartUploadResult", { Key: handle.key, UploadId: handle.uploadId });
          return { ...answer, key: handle.key };
        }
        throw new Error(`scenestore: Uppy asked to sign ${request.method} ${request.key}, which the recipe never does`);
      }
      const handle = handleOf(request.uploadId);
      if (request.method === "PUT") {
        const part = await client.signPart(handle, request.partNumber);
        return { url: part.url, headers: settableHeaders(part.headers) };
      }
      if (request.method === "GET") {
        const parts = await client.listParts(handle);
        const xml = parts.map((p) => `<Part><PartNumber>${p.PartNumber}</PartNumber><ETag>${xmlEscape(p.ETag)}</ETag></Part>`);
        return s3Answer("ListPartsResult", { UploadId: handle.uploadId }, xml.join(""));
      }
      if (request.method === "POST") {
        // The parts as the bucket holds them, then our complete: it checks the limits and records the key.
        const recorded = await client.completeMultipart(handle, await client.listParts(handle));
        const file = [...handles].find(([, h]) => h === handle)?.[0];
        if (file) uppy.setFileMeta(file, { recorded });
        return s3Answer("CompleteMultipartUploadResult", {
          Location: `${client.baseUrl}/storage/${encodeURIComponent(recorded.key)}`,
          Key: recorded.key,
        });
      }
      if (request.method === "DELETE") {
        await client.abortMultipart(handle);
        return s3Answer("AbortMultipartUploadResult", {});
      }
      throw new Error(`scenestore: unexpected ${request.method} for upload ${request.uploadId}`);
    },
  });

  // A single PUT is recorded here, once the bytes are in the bucket; a multipart upload already was, by complete.
  uppy.on("upload-success", async (file) => {
    const { storageKey, recorded } = uppy.getFile(file.id).meta;
    handles.delete(file.id);
    try {
      onRecorded?.(file, recorded || (await client.complete(projectId, storageKey)));
    } catch (error) {
      uppy.info(`${file.name}: ${error.message}`, "error");
      onRecorded?.(file, null, error);
    }
  });
  return uppy;
}
