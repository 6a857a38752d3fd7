// The demo page: everything storage-related goes through the JS client (/static/scenestore.js); the /dev/
// routes stand in for the app's own backend (sign-in, projects and scenes, deleting scene and project documents).
//
// What to copy from here: one client per signed-in user (its media-token cache is that user's), `upload` with
// progress, per-part events, abort and resume, `storageUrl` for previews, `listFiles` for a project's files.
import { createClient, guessContentType, kindOfContentType, ScenestoreError } from "/static/scenestore.js";
import * as simulated from "/static/simulated-drop.js";

const $ = (selector) => document.querySelector(selector);
const TOKEN_KEY = "scenestore-demo-token";
const CLEANUP_TIMEOUT_MS = 60_000;
/** Lower than the client's 64 MiB default, so a video at hand shows its parts. */
const MULTIPART_THRESHOLD = 8 * 1024 * 1024;
/** Short waits between a part's retries, so a simulated drop turns into "interrupted" within seconds. */
const RETRY_DELAYS = [250, 500, 1000];

/** Only a token the API accepted: a token is checked before it is kept (a bad one must not survive a reload). */
let token = "";
let client = null;
let projects = [];
let controller = null;
/** The last multipart upload that a dropped connection interrupted: what "Resume" continues. */
let interrupted = null;
/** The slot a "Replace…" button asked for (`media` or `audio`), while its file chooser is open. */
let replaceSlot = null;
/**
 * The one log line of the current upload's connection trouble: a drop, every part's retries and how it ended
 * update it in place, so one drop is one line however many parts retried (`{ item, retries, parts, dropped }`).
 */
let trouble = null;
window.scenestoreDemo = {};

// -- small helpers -----------------------------------------------------------------------------------------------
function showError(error) {
  const box = $("#error");
  box.hidden = !error;
  box.textContent = !error ? "" : error.code ? `${error.code}: ${error.message}` : String(error.message || error);
}

function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name in node && typeof value !== "string") node[name] = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children);
  return node;
}

/** The `sub` of a JWT, or "" when `candidate` is not shaped like one (nothing is trusted before the API says so). */
function tokenSubject(candidate) {
  const parts = candidate.split(".");
  if (parts.length !== 3 || parts.some((part) => !/^[A-Za-z0-9_-]+$/.test(part))) return "";
  try {
    const payload = JSON.parse(atob(parts[1].replace(/-/g, "+").replace(/_/g, "/")));
    return typeof payload.sub === "string" ? payload.sub : "";
  } catch {
    return "";
  }
}

/** The app backend's stand-in (/dev/...), with the given token (by default the signed-in one). */
async function dev(method, path, body, bearer = token) {
  const response = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${bearer}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new ScenestoreError(data.error || `http_${response.status}`, data.message || response.statusText, response.status);
  }
  return data;
}

function log(text, failed = false) {
  $("#log").prepend(element("li", { class: failed ? "failed" : undefined }, text));
}

/** The trouble line, made on first use. */
function troubleLine() {
  if (!trouble) {
    trouble = { item: element("li", { class: "failed", "data-trouble": "" }), retries: 0, parts: new Set(), dropped: false };
    $("#log").prepend(trouble.item);
  }
  return trouble;
}

/** Rewrite the trouble line: what happened so far, and `ending` once the upload stopped (then the line is done). */
function showTrouble(ending = "", failed = true) {
  if (!trouble) return;
  const parts = [...trouble.parts].sort((a, b) => a - b);
  const retried = trouble.retries
    ? `${trouble.retries} ${trouble.retries === 1 ? "retry" : "retries"} of part${parts.length === 1 ? "" : "s"} ${parts.join(", ")}`
    : "";
  const what = [trouble.dropped ? "simulated drop: the connections to the bucket were cut" : "", retried]
    .filter(Boolean)
    .join("; ");
  trouble.item.textContent = !ending ? `${what}…` : what ? `${what} → ${ending}` : ending;
  trouble.item.classList.toggle("failed", failed);
  if (ending) trouble = null;
}

function setBusy(busy) {
  document.body.dataset.busy = busy ? "yes" : "no";
  renderButtons();
  $("#abort").disabled = !busy;
  if (!busy) $("#drop").disabled = true;
}

function selectedProject() {
  return projects.find((p) => p.id === $("#project").value);
}

function selectedScene() {
  return selectedProject()?.scenes.find((s) => s.id === $("#scene").value);
}

/** An <img>, <video> or <audio> for a key, its src from the client's storage URL (legacy or layout key). */
async function preview(key, kind) {
  const src = await client.storageUrl(key);
  const attributes = { src, "data-key": key, title: key };
  if (kind === "image") return element("img", { ...attributes, alt: key.split("/").pop() });
  if (kind === "audio") return element("audio", { ...attributes, controls: true, preload: "metadata" });
  return element("video", { ...attributes, controls: true, muted: true, preload: "metadata" });
}

// -- progress ----------------------------------------------------------------------------------------------------
function resetProgress(text = "") {
  $("#progress").value = 0;
  $("#progress-text").textContent = text;
  $("#parts-box").hidden = true;
  $("#parts").replaceChildren();
}

function showParts(handle) {
  const items = Array.from({ length: handle.partCount }, (_, i) =>
    element("li", { "data-part": String(i + 1), "data-state": "waiting", title: `part ${i + 1}` }, String(i + 1)),
  );
  $("#parts").replaceChildren(...items);
  $("#parts-caption").textContent = `${handle.partCount} parts of ${formatSize(handle.partSize)}:`;
  $("#parts-box").hidden = false;
}

function showPart({ partNumber, state, attempt, delayMs, error }) {
  const item = $(`#parts [data-part="${partNumber}"]`);
  if (item) {
    item.dataset.state = state;
    item.title = state === "retrying" ? `part ${partNumber}: ${error.code}, retry ${attempt} in ${(delayMs / 1000).toFixed(2)} s`
      : state === "failed" ? `part ${partNumber}: ${error.code}: ${error.message}`
      : `part ${partNumber}: ${state}`;
  }
  if (state === "retrying") {
    const line = troubleLine();
    line.retries += 1;
    line.parts.add(partNumber);
    showTrouble();
  }
}

/** After an upload that failed for good: no part stays "sending"; what is not refused is deleted with the upload. */
function showPartsAbandoned() {
  for (const item of $("#parts").querySelectorAll("li")) {
    if (item.dataset.state !== "failed") item.dataset.state = "discarded";
  }
}

// -- rendering ---------------------------------------------------------------------------------------------------
/** Buttons that need a project or a scene are off without one, and say why. */
function renderButtons() {
  const busy = document.body.dataset.busy === "yes";
  const project = selectedProject();
  const scene = selectedScene();
  const why = !project ? "no project to put it in" : !scene ? "create a scene first" : "";
  for (const id of ["#upload", "#delete-scene"]) {
    $(id).disabled = busy || !scene;
    $(id).title = why;
  }
  $("#new-scene").disabled = busy || !project;
  $("#delete-project").disabled = busy || !project;
  $("#resume").hidden = !interrupted;
  $("#resume").disabled = busy;
}

function renderPickers() {
  const project = $("#project");
  const keepProject = project.value;
  project.replaceChildren(...projects.map((p) => element("option", { value: p.id }, p.title)));
  if (projects.some((p) => p.id === keepProject)) project.value = keepProject;
  const scene = $("#scene");
  const keepScene = scene.value;
  const scenes = selectedProject()?.scenes || [];
  scene.replaceChildren(...scenes.map((s) => element("option", { value: s.id }, `${s.id} (#${s.order ?? "?"})`)));
  if (scenes.some((s) => s.id === keepScene)) scene.value = keepScene;
  $("#no-projects").hidden = projects.length > 0;
  for (const id of ["#upload-box", "#slots-box", "#files-box"]) $(id).hidden = projects.length === 0;
  renderButtons();
}

async function renderSlots() {
  const scene = selectedScene();
  if (!scene) {
    $("#slots").replaceChildren(element("div", { class: "muted" }, "No scene selected."));
    return;
  }
  const cards = [];
  for (const [slotName, slot] of [
    ["media", scene.media],
    ["audio", scene.audio],
  ]) {
    const card = element("div", { class: "card", "data-slot": slotName }, element("strong", {}, slotName));
    if (slot) {
      const legacy = !slot.storageKey.startsWith("users/");
      card.append(
        " ",
        element("span", { class: legacy ? "badge legacy" : "badge" }, legacy ? "legacy key" : "layout key"),
        await preview(slot.storageKey, slotName === "audio" ? "audio" : slot.type || "image"),
        element("code", {}, slot.storageKey),
        element("div", { class: "muted" }, `${slot.contentType || "?"}, ${formatSize(slot.size || 0)}`),
      );
    } else {
      card.append(element("div", { class: "muted" }, "empty"));
    }
    const replace = element("button", { type: "button", "data-replace": slotName }, slot ? "Replace…" : "Upload…");
    replace.addEventListener("click", () => {
      const input = $("#replace-file");
      input.accept = slotName === "audio" ? "audio/*" : "image/*,video/*";
      replaceSlot = slotName;
      input.click();
    });
    card.append(replace);
    cards.push(card);
  }
  $("#slots").replaceChildren(...cards);
}

async function renderFiles() {
  const project = selectedProject();
  if (!project) return [];
  const files = await client.listFiles(project.id);
  const rows = [];
  for (const file of files) {
    rows.push(
      element(
        "tr",
        { "data-key": file.key, "data-kind": file.kind, "data-size": String(file.size) },
        element("td", { class: "preview" }, await preview(file.key, file.kind === "output" ? "video" : file.kind)),
        element("td", { class: "key" }, file.key),
        element("td", { class: "kind" }, file.kind || ""),
        element("td", { class: "scene" }, file.scene_id || ""),
        element("td", { class: "size", title: `${file.size} bytes` }, formatSize(file.size)),
      ),
    );
  }
  $("#files tbody").replaceChildren(...rows);
  $("#files-empty").hidden = files.length > 0;
  const total = files.reduce((sum, f) => sum + f.size, 0);
  $("#total").textContent = `${files.length} files, ${formatSize(total)}`;
  return files;
}

async function refresh() {
  projects = (await dev("GET", "/dev/projects")).projects;
  renderPickers();
  await Promise.all([renderSlots(), renderFiles()]);
}

// -- signing in --------------------------------------------------------------------------------------------------
/** Check the token with the API first; only a token it accepted is shown as signed in and kept for a reload. */
async function signIn(candidate) {
  let listed;
  const user = tokenSubject(candidate);
  try {
    if (!user) {
      throw new ScenestoreError("invalid_token", "that is not a token: a JWT is three base64url parts joined by dots");
    }
    listed = await dev("GET", "/dev/projects", undefined, candidate);
  } catch (error) {
    signOut(); // a failed sign-in leaves the page signed out, never half signed in
    throw error;
  }
  token = candidate;
  sessionStorage.setItem(TOKEN_KEY, token);
  projects = listed.projects;
  // A new user gets a new client: its media tokens (for storage URLs) are minted for this user only.
  client = createClient({
    baseUrl: location.origin,
    getToken: () => token,
    XMLHttpRequest: simulated.DroppableXhr,
    multipartThreshold: MULTIPART_THRESHOLD,
    retryDelays: RETRY_DELAYS,
  });
  window.scenestoreDemo.client = client;
  interrupted = null;
  $("#who").textContent = `signed in as ${user}`;
  $("#sign-in-controls").hidden = true;
  $("#sign-out").hidden = false;
  $("#pick").hidden = false;
  document.body.dataset.auth = "signed-in";
  renderPickers();
  await Promise.all([renderSlots(), renderFiles()]);
  document.body.dataset.ready = "yes";
}

function signOut() {
  token = "";
  client = null;
  projects = [];
  interrupted = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $("#who").textContent = "not signed in";
  $("#sign-in-controls").hidden = false;
  $("#sign-out").hidden = true;
  for (const id of ["#pick", "#no-projects", "#upload-box", "#slots-box", "#files-box"]) $(id).hidden = true;
  document.body.dataset.auth = "signed-out";
}

// -- uploading ---------------------------------------------------------------------------------------------------
/**
 * The kind to upload `file` as: its type's (image, video, audio), else the slot's it is meant for. A file of no
 * media type (a .txt) then goes to the API like any other, which refuses it with 415 and says which types that
 * slot takes: clearer than the client's "cannot tell the kind of text/plain".
 */
function uploadKind(file, slot) {
  return kindOfContentType(guessContentType(file, file.name)) || (slot === "audio" ? "audio" : "image");
}

/** Upload one file (or resume its interrupted upload) into the selected scene, showing progress and parts. */
async function uploadOne(file, projectId, sceneId, resume, slot) {
  resetProgress();
  const key = await client.upload(file, {
    projectId,
    sceneId,
    kind: uploadKind(file, slot),
    resume,
    signal: controller.signal,
    onProgress: ({ loaded, total, fraction }) => {
      $("#progress").value = fraction;
      $("#progress-text").textContent = `${file.name}: ${formatSize(loaded)} of ${formatSize(total)}`;
    },
    onUploadStarted: (handle) => {
      showParts(handle);
      $("#drop").disabled = false;
    },
    onPart: showPart,
    onComplete: (result) => {
      const replaced = result.replaced
        ? `, replaced the slot's file${result.deleted_previous ? " and deleted the previous object" : ""}`
        : "";
      log(`${file.name} → ${result.key} (${result.slot}, ${formatSize(result.size)}${replaced})`);
    },
  });
  $("#progress-text").textContent = `${file.name}: done`;
  document.body.dataset.lastKey = key;
}

/** Run `uploads` (a function doing the uploads) with the Abort button live; report how it ended. */
async function runUploads(uploads) {
  controller = new AbortController();
  setBusy(true);
  document.body.dataset.upload = "running";
  try {
    await uploads();
    showTrouble("the upload went through", false);
    document.body.dataset.upload = "done";
  } catch (error) {
    if (error.name === "AbortError") {
      interrupted = null;
      resetProgress("upload aborted: nothing was recorded, the parts sent so far are deleted");
      showTrouble("aborted");
      log("upload aborted", true);
      document.body.dataset.upload = "aborted";
    } else if (error.upload && error.code === "network_error") {
      for (const item of $("#parts").querySelectorAll('[data-state="sending"], [data-state="retrying"], [data-state="failed"]')) {
        item.dataset.state = "lost";
      }
      const held = $("#parts").querySelectorAll('[data-state="done"], [data-state="held"]').length;
      $("#progress-text").textContent = `interrupted: ${held} of ${error.upload.partCount} parts are in the bucket`;
      // One line for the whole episode: the drop, the parts' retries, and this ending.
      troubleLine();
      showTrouble(`connection lost (${error.code}); “Resume” sends the parts the bucket does not hold`);
      document.body.dataset.upload = "interrupted";
    } else {
      // Refused for good (too large, wrong type, the bucket's CORS rule): no Resume. A multipart upload the API
      // had started is of no more use (the client has already aborted it after a CORS refusal).
      if (error.upload) await client.abortMultipart(error.upload).catch(() => {});
      interrupted = null;
      showPartsAbandoned();
      $("#progress").value = 0;
      const multipart = $("#parts").children.length > 0;
      $("#progress-text").textContent =
        `upload failed: nothing was recorded${multipart ? ", the multipart upload is aborted (its parts deleted)" : ""}`;
      showTrouble("failed");
      log(`upload failed: ${error.code ? `${error.code}: ` : ""}${error.message}`, true);
      showError(error);
      document.body.dataset.upload = "failed";
    }
  } finally {
    controller = null;
    setBusy(false);
    await refresh();
  }
}

function uploadFiles(files, slot) {
  const project = selectedProject();
  const scene = selectedScene();
  if (!project || !scene || files.length === 0) return;
  return runUploads(async () => {
    for (const file of files) {
      try {
        await uploadOne(file, project.id, scene.id, undefined, slot);
      } catch (error) {
        if (error.upload) interrupted = { file, projectId: project.id, sceneId: scene.id, handle: error.upload, slot };
        throw error;
      }
    }
  });
}

function resumeUpload() {
  const { file, projectId, sceneId, handle, slot } = interrupted;
  simulated.restore();
  log(`resuming ${file.name}: listing the parts the bucket holds`);
  return runUploads(async () => {
    await uploadOne(file, projectId, sceneId, handle, slot);
    interrupted = null;
  });
}

function simulateDrop() {
  simulated.drop();
  $("#drop").disabled = true;
  troubleLine().dropped = true;
  showTrouble();
}

// -- scenes ------------------------------------------------------------------------------------------------------
async function newScene() {
  const project = selectedProject();
  if (!project) return;
  const created = await dev("POST", `/dev/projects/${encodeURIComponent(project.id)}/scenes`, {});
  await refresh();
  $("#scene").value = created.id;
  renderButtons();
  await renderSlots();
}

async function deleteScene() {
  const project = selectedProject();
  const scene = selectedScene();
  if (!project || !scene) return;
  const doomed = (await client.listFiles(project.id)).filter((f) => f.scene_id === scene.id);
  const question = `Delete scene ${scene.id}? Its document goes, and with it its ${doomed.length} file(s) in the bucket.`;
  if (!window.confirm(question)) {
    log(`scene ${scene.id} kept`);
    return;
  }
  await dev("DELETE", `/dev/projects/${encodeURIComponent(project.id)}/scenes/${encodeURIComponent(scene.id)}`);
  log(`scene ${scene.id} deleted; waiting for the event runner to delete its ${doomed.length} object(s)…`);
  document.body.dataset.cleanup = "waiting";
  const started = Date.now();
  let left = doomed.length;
  while (left > 0 && Date.now() - started < CLEANUP_TIMEOUT_MS) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    left = (await client.listFiles(project.id)).filter((f) => f.scene_id === scene.id).length;
  }
  log(left === 0 ? `scene ${scene.id}: all objects deleted` : `scene ${scene.id}: ${left} object(s) still there`, left > 0);
  await refresh();
  document.body.dataset.cleanup = left === 0 ? "done" : "timeout";
}

// -- projects ----------------------------------------------------------------------------------------------------
/** "3 objects, 1 upload in progress and 2 legacy objects", for the non-zero counts of a leftovers answer. */
function describeLeftovers({ objects, uploads, legacy }) {
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  const parts = [];
  if (objects) parts.push(plural(objects, "object"));
  if (uploads) parts.push(`${plural(uploads, "upload")} in progress`);
  if (legacy) parts.push(plural(legacy, "legacy object"));
  return parts.join(", ") || "nothing";
}

/**
 * Delete the selected project as the app does: its document and its scenes' documents (the app's backend; here
 * a dev route). The event runner then deletes its objects, aborts its uploads in progress and deletes the legacy
 * objects only these documents held; the page watches that through `GET /dev/projects/{p}/leftovers`.
 */
async function deleteProject() {
  const project = selectedProject();
  if (!project) return;
  const files = await client.listFiles(project.id);
  const question =
    `Delete project “${project.title}”? Its document and its ${project.scenes.length} scene document(s) go, ` +
    `and with them its ${files.length} file(s) in the bucket and any upload in progress.`;
  if (!window.confirm(question)) {
    log(`project ${project.id} kept`);
    return;
  }
  const path = `/dev/projects/${encodeURIComponent(project.id)}`;
  const deleted = await dev("DELETE", path);
  log(`project ${project.id} deleted with ${deleted.scenes} scene document(s); waiting for the event runner…`);
  document.body.dataset.projectCleanup = "waiting";
  await refresh();
  const started = Date.now();
  let left = await dev("GET", `${path}/leftovers`);
  while (describeLeftovers(left) !== "nothing" && Date.now() - started < CLEANUP_TIMEOUT_MS) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    left = await dev("GET", `${path}/leftovers`);
  }
  const clean = describeLeftovers(left) === "nothing";
  log(
    clean
      ? `project ${project.id}: its objects are deleted and no upload is left in progress`
      : `project ${project.id}: ${describeLeftovers(left)} still there`,
    !clean,
  );
  await refresh();
  document.body.dataset.projectCleanup = clean ? "done" : "timeout";
}

// -- wiring ------------------------------------------------------------------------------------------------------
function guarded(action) {
  return async (...args) => {
    showError(null);
    try {
      await action(...args);
    } catch (error) {
      showError(error);
    }
  };
}

$("#sign-in").addEventListener(
  "click",
  guarded(async () => signIn((await (await fetch("/dev/token")).json()).token)),
);
$("#use-token").addEventListener(
  "click",
  guarded(() => signIn($("#token-input").value.trim())),
);
$("#sign-out").addEventListener("click", () => {
  showError(null);
  signOut();
});
$("#project").addEventListener(
  "change",
  guarded(async () => {
    renderPickers();
    await Promise.all([renderSlots(), renderFiles()]);
  }),
);
$("#scene").addEventListener(
  "change",
  guarded(async () => {
    renderButtons();
    await renderSlots();
  }),
);
$("#upload").addEventListener("click", guarded(() => uploadFiles([...$("#file").files], "media")));
$("#abort").addEventListener("click", () => controller?.abort());
$("#drop").addEventListener("click", simulateDrop);
$("#resume").addEventListener("click", guarded(resumeUpload));
$("#replace-file").addEventListener(
  "change",
  guarded(async () => {
    await uploadFiles([...$("#replace-file").files], replaceSlot);
    $("#replace-file").value = "";
  }),
);
$("#new-scene").addEventListener("click", guarded(newScene));
$("#delete-scene").addEventListener("click", guarded(deleteScene));
$("#delete-project").addEventListener("click", guarded(deleteProject));

$("#threshold").textContent = formatSize(MULTIPART_THRESHOLD);
const stored = sessionStorage.getItem(TOKEN_KEY);
if (stored) guarded(signIn)(stored);
