// The demo page: everything storage-related goes through the JS client (/static/scenestore.js); the /dev/
// routes stand in for the app's own backend (sign-in, projects and scenes, deleting a scene document).
import { cacheToken, createClient } from "/static/scenestore.js";

const $ = (selector) => document.querySelector(selector);
const TOKEN_KEY = "scenestore-demo-token";
const CLEANUP_TIMEOUT_MS = 60_000;

let token = sessionStorage.getItem(TOKEN_KEY) || "";
let projects = [];
let controller = null;
// Storage URLs carry a 5-minute `scope: media` token (refused by every other route), fetched when needed.
let mediaToken = null;
const client = createClient({ baseUrl: location.origin, getToken: () => token, getMediaToken: () => mediaToken() });
window.scenestoreDemo = { client };

// -- small helpers -----------------------------------------------------------------------------------------------
function showError(error) {
  const box = $("#error");
  if (!error) {
    box.hidden = true;
    box.textContent = "";
    return;
  }
  box.hidden = false;
  box.textContent = error.code ? `${error.code}: ${error.message}` : String(error.message || error);
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

async function dev(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json();
  if (!response.ok) throw Object.assign(new Error(data.message || response.statusText), { code: data.error });
  return data;
}

function log(text, failed = false) {
  $("#log").prepend(element("li", { class: failed ? "failed" : undefined }, text));
}

function setBusy(busy) {
  document.body.dataset.busy = busy ? "yes" : "no";
  $("#upload").disabled = busy;
  $("#abort").disabled = !busy;
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

// -- rendering ---------------------------------------------------------------------------------------------------
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
  $("#delete-scene").disabled = scenes.length === 0;
  $("#upload").disabled = scenes.length === 0;
}

async function renderSlots() {
  const scene = selectedScene();
  const cards = [];
  for (const [slotName, slot] of [
    ["media", scene?.media],
    ["audio", scene?.audio],
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
      input.click();
    });
    card.append(replace);
    cards.push(card);
  }
  $("#slots").replaceChildren(...cards);
}

async function renderFiles() {
  const project = selectedProject();
  if (!project) return;
  const files = await client.listFiles(project.id);
  const rows = [];
  for (const file of files) {
    rows.push(
      element(
        "tr",
        { "data-key": file.key, "data-kind": file.kind, "data-size": String(file.size) },
        element("td", {}, await preview(file.key, file.kind === "output" ? "video" : file.kind)),
        element("td", { class: "key" }, file.key),
        element("td", {}, file.kind || ""),
        element("td", {}, file.scene_id || ""),
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

// -- actions -----------------------------------------------------------------------------------------------------
async function signIn(newToken) {
  token = newToken;
  mediaToken = cacheToken(async () => (await dev("GET", "/dev/media-token")).token);
  sessionStorage.setItem(TOKEN_KEY, token);
  const user = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).sub;
  $("#who").textContent = `signed in as ${user}`;
  for (const id of ["#pick", "#upload-box", "#slots-box", "#files-box"]) $(id).hidden = false;
  await refresh();
  document.body.dataset.ready = "yes";
}

async function uploadFiles(files) {
  const project = selectedProject();
  const scene = selectedScene();
  if (!project || !scene || files.length === 0) return;
  controller = new AbortController();
  setBusy(true);
  try {
    for (const file of files) {
      $("#progress").value = 0;
      const key = await client.upload(file, {
        projectId: project.id,
        sceneId: scene.id,
        signal: controller.signal,
        onProgress: ({ loaded, total, fraction }) => {
          $("#progress").value = fraction;
          $("#progress-text").textContent = `${file.name}: ${formatSize(loaded)} of ${formatSize(total)}`;
        },
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
  } catch (error) {
    if (error.name === "AbortError") log("upload aborted", true);
    else {
      log(`upload failed: ${error.code || ""} ${error.message}`, true);
      showError(error);
    }
  } finally {
    controller = null;
    setBusy(false);
    await refresh();
  }
}

async function deleteScene() {
  const project = selectedProject();
  const scene = selectedScene();
  if (!project || !scene) return;
  const doomed = (await client.listFiles(project.id)).filter((f) => f.scene_id === scene.id);
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
$("#project").addEventListener(
  "change",
  guarded(async () => {
    renderPickers();
    await Promise.all([renderSlots(), renderFiles()]);
  }),
);
$("#scene").addEventListener("change", guarded(renderSlots));
$("#upload").addEventListener("click", guarded(() => uploadFiles([...$("#file").files])));
$("#abort").addEventListener("click", () => controller?.abort());
$("#replace-file").addEventListener(
  "change",
  guarded(async () => {
    await uploadFiles([...$("#replace-file").files]);
    $("#replace-file").value = "";
  }),
);
$("#new-scene").addEventListener(
  "click",
  guarded(async () => {
    const created = await dev("POST", `/dev/projects/${encodeURIComponent(selectedProject().id)}/scenes`, {});
    await refresh();
    $("#scene").value = created.id;
    await renderSlots();
  }),
);
$("#delete-scene").addEventListener("click", guarded(deleteScene));

if (token) guarded(signIn)(token);
