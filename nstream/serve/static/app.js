// nstream's page: uploads, the style gallery, the job list. Plain JavaScript, no build step; it uses
// only the documented HTTP API (README, "Web app").
"use strict";

const $ = (id) => document.getElementById(id);
const JOBS_KEY = "nstream.jobs";
const TERMINAL = ["done", "failed", "cancelled"];
const page = { file: null, style: null, painting: null, maxUploadMb: null, styles: [], watching: new Map() };

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  if (response.status === 401) showLogin(true);
  return response;
}

async function errorText(response) {
  try { return (await response.json()).error || `${response.status} ${response.statusText}`; }
  catch (_) { return `${response.status} ${response.statusText}`; }
}

function showLogin(show) {
  $("login").hidden = !show;
  $("files-view").hidden = show || $("tab-live").classList.contains("active");
}

// -- styles -------------------------------------------------------------------------------------
async function loadStyles() {
  const response = await api("/api/styles");
  if (!response.ok) { if (response.status !== 401) $("error").textContent = await errorText(response); return; }
  showLogin(false);
  const listing = await response.json();
  page.styles = listing.styles;
  page.maxUploadMb = listing.max_upload_mb;
  const temporal = $("temporal");
  temporal.max = listing.temporal_strength.max;
  temporal.value = listing.temporal_strength.default;
  showValue("temporal");
  $("painting-box").hidden = !listing.style_image;
  const gallery = $("gallery");
  gallery.replaceChildren(...listing.styles.map(styleButton));
  if (listing.styles.length) selectStyle(listing.styles[0].id);
  document.dispatchEvent(new CustomEvent("nstream:styles", { detail: listing }));
}

function styleButton(style) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "style";
  button.dataset.style = style.id;
  button.setAttribute("role", "radio");
  button.title = `${style.name} (${style.kind})`;
  const image = document.createElement("img");
  image.loading = "lazy";
  image.alt = "";
  image.src = style.thumbnail;
  const label = document.createElement("span");
  label.textContent = style.name;
  button.append(image, label);
  button.addEventListener("click", () => selectStyle(style.id));
  return button;
}

function selectStyle(id) {
  page.style = id;
  clearPainting();
  for (const button of $("gallery").children) {
    const on = button.dataset.style === id;
    button.classList.toggle("selected", on);
    button.setAttribute("aria-checked", String(on));
  }
  updateStart();
}

function clearPainting() {
  page.painting = null;
  $("painting").value = "";
  $("painting-clear").hidden = true;
}

// -- the upload ---------------------------------------------------------------------------------
function setFile(file) {
  $("error").textContent = "";
  if (page.maxUploadMb && file.size > page.maxUploadMb * 1024 * 1024) {
    $("error").textContent = `${file.name} is larger than this server's limit of ${page.maxUploadMb} MB`;
    return;
  }
  page.file = file;
  $("chosen").textContent = `${file.name} (${(file.size / 1048576).toFixed(1)} MB)`;
  updateStart();
}

function updateStart() {
  $("start").disabled = !(page.file && (page.style || page.painting));
}

function showValue(id) {
  $(`${id}-out`).textContent = Number($(id).value).toFixed(2);
}

async function start() {
  const form = new FormData();
  form.append("file", page.file, page.file.name);
  if (page.painting) form.append("style_image", page.painting, page.painting.name);
  else form.append("style", page.style);
  form.append("strength", $("strength").value);
  form.append("temporal_strength", $("temporal").value);
  $("start").disabled = true;
  $("error").textContent = "";
  $("start").textContent = "Uploading…";
  try {
    const response = await api("/api/jobs", { method: "POST", body: form });
    if (!response.ok) { $("error").textContent = await errorText(response); return; }
    const job = await response.json();
    remember(job.id);
    render(job);
    watch(job.id);
  } catch (exc) {
    $("error").textContent = `the upload failed: ${exc.message}`;
  } finally {
    $("start").textContent = "Stylize";
    updateStart();
  }
}

// -- jobs ---------------------------------------------------------------------------------------
function remembered() {
  try { return JSON.parse(localStorage.getItem(JOBS_KEY)) || []; } catch (_) { return []; }
}

function remember(id) {
  localStorage.setItem(JOBS_KEY, JSON.stringify([id, ...remembered().filter((x) => x !== id)].slice(0, 50)));
}

function forget(id) {
  localStorage.setItem(JOBS_KEY, JSON.stringify(remembered().filter((x) => x !== id)));
  const item = document.querySelector(`li[data-job="${id}"]`);
  if (item) item.remove();
  const source = page.watching.get(id);
  if (source) { source.close(); page.watching.delete(id); }
  $("no-jobs").hidden = $("jobs").children.length > 0;
}

function jobItem(job) {
  let item = document.querySelector(`li[data-job="${job.id}"]`);
  if (item) return item;
  item = document.createElement("li");
  item.className = "job";
  item.dataset.job = job.id;
  item.innerHTML = `<div><strong class="title"></strong> <span class="state"></span>
      <progress max="1" value="0"></progress><div class="meta"></div><p class="error"></p></div>
    <div class="actions"><a class="download" hidden>Download</a>
      <button type="button" class="cancel small">Cancel</button><button type="button" class="delete small">Delete</button></div>
    <div class="preview"></div>`;
  item.querySelector(".title").textContent = `${job.filename} → ${job.style}`;
  item.querySelector(".cancel").addEventListener("click", () => api(`/api/jobs/${job.id}/cancel`, { method: "POST" }));
  item.querySelector(".delete").addEventListener("click", async () => {
    await api(`/api/jobs/${job.id}`, { method: "DELETE" });
    forget(job.id);
  });
  $("jobs").prepend(item);
  $("no-jobs").hidden = true;
  return item;
}

function timeLeft(seconds) {
  if (seconds == null) return "";
  if (seconds < 60) return `, about ${Math.ceil(seconds)} s left`;
  return `, about ${Math.ceil(seconds / 60)} min left`;
}

function render(job) {
  const item = jobItem(job);
  item.dataset.state = job.state;
  const state = item.querySelector(".state");
  state.textContent = job.state;
  state.className = `state state-${job.state}`;
  item.querySelector("progress").value = job.progress;
  const frames = job.frames_total ? `${job.frames_done} / ${job.frames_total} frames` : `${job.frames_done} frames`;
  item.querySelector(".meta").textContent = job.state === "queued" ? "waiting for a free worker" : frames + timeLeft(job.eta_s);
  item.querySelector(".error").textContent = job.error || "";
  item.querySelector(".cancel").hidden = TERMINAL.includes(job.state);
  if (job.state === "done" && job.result && !item.querySelector(".preview").children.length) showResult(item, job);
}

function showResult(item, job) {
  const link = item.querySelector(".download");
  link.href = job.result;
  link.hidden = false;
  const preview = document.createElement(job.kind === "video" ? "video" : "img");
  preview.src = `${job.result}?inline=1`;
  if (job.kind === "video") { preview.controls = true; preview.muted = true; preview.preload = "metadata"; }
  else preview.alt = `${job.filename} in ${job.style}`;
  item.querySelector(".preview").append(preview);
}

function watch(id) {
  if (page.watching.has(id)) return;
  const source = new EventSource(`/api/jobs/${id}/events`);
  page.watching.set(id, source);
  source.addEventListener("state", (event) => {
    const job = JSON.parse(event.data);
    if (job.state === "deleted") { forget(id); return; }
    render(job);
    if (TERMINAL.includes(job.state)) { source.close(); page.watching.delete(id); }
  });
  source.addEventListener("error", () => { source.close(); page.watching.delete(id); refresh(id); });
}

async function refresh(id) {
  const response = await api(`/api/jobs/${id}`);
  if (response.status === 404) { forget(id); return; }
  if (!response.ok) return;
  const job = await response.json();
  render(job);
  if (!TERMINAL.includes(job.state)) setTimeout(() => watch(id), 1000);
}

// -- wiring -------------------------------------------------------------------------------------
function wireDrop() {
  const drop = $("drop");
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) drop.addEventListener(name, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    if (event.dataTransfer.files.length) setFile(event.dataTransfer.files[0]);
  });
  $("file").addEventListener("change", () => { if ($("file").files.length) setFile($("file").files[0]); });
}

function wireTabs() {
  for (const [tab, view] of [["tab-files", "files-view"], ["tab-live", "live-view"]]) {
    $(tab).addEventListener("click", () => {
      for (const other of ["tab-files", "tab-live"]) {
        $(other).classList.toggle("active", other === tab);
        $(other).setAttribute("aria-pressed", String(other === tab));
      }
      $("files-view").hidden = view !== "files-view" || !$("login").hidden;
      $("live-view").hidden = view !== "live-view" || !$("login").hidden;
    });
  }
}

function wire() {
  wireDrop();
  wireTabs();
  $("painting").addEventListener("change", () => {
    if (!$("painting").files.length) return;
    page.painting = $("painting").files[0];
    page.style = null;
    for (const button of $("gallery").children) button.classList.remove("selected");
    $("painting-clear").hidden = false;
    updateStart();
  });
  $("painting-clear").addEventListener("click", () => selectStyle(page.styles[0].id));
  for (const id of ["strength", "temporal"]) $(id).addEventListener("input", () => showValue(id));
  $("start").addEventListener("click", start);
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const response = await fetch("/api/login", { method: "POST", credentials: "same-origin",
      headers: { "content-type": "application/json" }, body: JSON.stringify({ token: $("token").value }) });
    if (!response.ok) { $("login-error").textContent = await errorText(response); return; }
    $("login-error").textContent = "";
    showLogin(false);
    await boot();
  });
}

async function boot() {
  await loadStyles();
  if (!$("login").hidden) return;
  for (const id of remembered().reverse()) refresh(id);
}

wire();
boot();
