// Upload a file from disk into a scene from Node 20+ (a script, a worker, a render job), then print its key and
// a download URL:
//   SCENESTORE_API_URL=http://127.0.0.1:8000 SCENESTORE_TOKEN="$(scenestore token demo-user)" \
//     node clients/js/examples/upload.mjs demo-project scene-2 ./shot.png
import { openAsBlob } from "node:fs";
import { basename } from "node:path";

import { createClient } from "../scenestore.js";

const [projectId, sceneId, path] = process.argv.slice(2);
const storage = createClient({
  baseUrl: process.env.SCENESTORE_API_URL,
  // The user's JWT (its `sub` is the user id), as the app's identity provider issues it; locally
  // `scenestore token USER_ID` prints one for the configured secret.
  getToken: () => process.env.SCENESTORE_TOKEN,
});

// A Blob from disk, read as it is sent (a 1 GiB video is not loaded into memory). It has no name, and neither
// has `new Blob([bytes])`: the upload needs `filename`. With no type either, the type comes from the extension.
const file = await openAsBlob(path);
const key = await storage.upload(file, {
  projectId,
  // A scene document's _id (the `scenes` collection), whose project_id is projectId: the app's backend knows it;
  // `scenestore serve --demo` seeds demo-project with scene-1 and scene-2. Not needed for kind: "output".
  sceneId,
  filename: basename(path),
  // Node has no XMLHttpRequest, so progress arrives at 0% and at 100% only (per part above the threshold).
  onProgress: ({ fraction }) => console.log(`${Math.round(fraction * 100)}%`),
});
console.log(key);
console.log(await storage.downloadUrl(key));
