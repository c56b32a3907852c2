// chromatize serve: the page. Plain JavaScript, no libraries, talks only to its own server.
//
// Each opened photo is uploaded once (POST /api/photos -> id); every later request names it
// by id, so changing a point sends a few hundred bytes, not the photo. The server keeps the
// network's output per photo, so a change only re-solves the colours from the points.
// At most one colorize request is in flight: changes made meanwhile are sent together as
// soon as it returns, so dragging a point never queues stale work on the server.
//
// Each photo keeps its own fix: its points and its settings (boost, gain, the colours you
// know, and an alternative or version chosen as the starting point), with one undo history. The fix
// downloads as JSON that `chromatize colorize PHOTO --marks FIX.json` reproduces.
//
// The page's scripts, in the order they load: colour.js (colour maths), zip.js (the zip
// of "download all"), app.js (state, requests, photos, updates, guidance, settings and
// undo), points.js (points and their palette), view.js (zoom, pan, divider, pointer and
// keyboard input), actions.js (the buttons and fields around the photo).
"use strict";

const $ = (id) => document.getElementById(id);
const el = Object.fromEntries([
  "open", "open-2", "file-input", "status", "strip", "photos", "apply-all", "download-all",
  "drop", "workspace", "viewer", "mode-fix", "mode-keep", "compare-toggle", "input-toggle", "zoom-out",
  "zoom-fit", "zoom-value", "zoom-in", "timing", "guide", "guide-text", "guide-close",
  "input-view", "gray", "viewport", "stage", "before", "result", "points", "divider",
  "alternatives", "close-alternatives", "alternative-list", "boost", "boost-value", "gain",
  "gain-value", "repair", "photo-colours", "add-colour", "add-colour-ok", "strength-row",
  "strength", "strength-value", "strength-explain", "reference-drop", "reference-thumb",
  "reference-text", "reference-choose", "reference-remove", "reference-input", "versions-row",
  "show-versions", "alternatives-title", "alternatives-explain", "start", "start-seed", "start-reset", "point-panel", "point-title", "palette",
  "likely", "vivid", "common", "picker", "reach-explain", "delete-point", "undo", "redo",
  "clear", "show-alternatives", "k", "download-png", "download-jpeg", "download-fix", "command",
].map((id) => [id.replace(/-(.)/g, (_, c) => c.toUpperCase()), $(id)]));

const DEBOUNCE_MS = 60;     // lets a burst of key presses or picker moves become one request
const EDIT_MERGE_MS = 1000; // repeated edits of one kind make one undo step
const BUSY_SHOWN_MS = 300;  // a busy state shows its progress indicator after this
const MAX_ZOOM = 16;
const DEFAULT_STRENGTH = 0.5; // chromatize.priors.DEFAULT_STRENGTH
// Limits of the settings, until /api/health says otherwise (chromatize.decoding.LIMITS).
const LIMITS = { boost: [0, 3], gain: [0, 3], strength: [0, 3] };
const VERSIONS_K = 4; // how many versions "Show versions" asks for
const REACH_EXPLAIN = {
  local: "Only this spot and what looks just like it, nearby.",
  object: "The object the point is on (the usual choice).",
  photo: "Everything alike, all over the photo.",
};
// Common colours, named for people; only their hue and saturation are used (the photo
// keeps its own lightness).
const COMMON = [
  ["Light skin", "#e9bfa2"], ["Medium skin", "#c98e68"], ["Dark skin", "#8a5a3e"],
  ["Sky", "#7fa8d8"], ["Foliage", "#55803a"], ["Brick", "#a84a36"], ["Denim", "#3d5f8c"],
  ["Khaki", "#b9a878"],
];
const GUIDE = {
  first: () => `Wrong colour somewhere? Click it on the photo, then choose the right colour ${narrow() ? "below" : "on the right"}.`,
  spread: () => "That colour spread beyond the point. To hold it back, set the point's " +
    "reach to “Local”, or use “Keep a colour” on what should stay (undo first if it changed).",
};

const state = {
  photos: [], current: null, mode: "fix", compare: false, split: 0.5, showInput: false,
  info: { boost: 0, gain: 1, can_sample: false, model: "default" },
  limits: { ...LIMITS }, busyTimer: null, statusAt: 0,
};
// Reference photos chosen on the page, by id: settings name them ({id, name}) so that
// they stay plain JSON for undo; the file itself is sent with each request.
const references = new Map();
let drag = null; // a point being dragged: {point, startX, startY, moved, snapshot}
let pan = null;  // the photo being panned, or a click about to place a point
// Read by tests and benchmarks: milliseconds from a change to its result on screen.
window.chromatizeStats = { resolves: [], lastResolveMs: null, results: 0 };

// ---------------------------------------------------------------------------- helpers

// A status line stays until the person does something else (the next click or key).
function setStatus(text, isError = false) {
  el.status.textContent = text;
  el.status.classList.toggle("error", isError);
  state.statusAt = performance.now();
}
for (const type of ["pointerdown", "keydown"]) {
  document.addEventListener(type, (event) => {
    if (event.timeStamp > state.statusAt + 50) setStatus("");
  }, true);
}

// One line for an error about a file: its name once, what went wrong, what to do.
function errorText(name, error) {
  let text = error.message.startsWith(`${name}: `) ? error.message.slice(name.length + 2) : error.message;
  const advice = {
    400: "", 404: "Open the photo again.",
    413: "Choose a smaller file, or start the server with a larger --max-upload-mb.",
    415: "Open a JPEG, PNG, TIFF or WebP photo.",
    503: "The computer is busy: try again in a moment.",
  }[error.status];
  if (error.status === undefined) text = "the server does not answer; is `chromatize serve` still running?";
  return `${name}: ${text}${advice ? ` ${advice}` : ""}`;
}

async function api(path, fields, { expect = "json", signal } = {}) {
  const body = new FormData();
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined || value === null) continue;
    if (value instanceof Blob) body.append(key, value, value.name || "image");
    else body.append(key, String(value));
  }
  let response;
  try {
    response = await fetch(path, { method: "POST", body, signal });
  } catch (_) {
    throw new Error("no answer from the server");
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error || message; } catch (_) { /* not JSON */ }
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return expect === "blob" ? response.blob() : response.json();
}

// A request about a photo; if the server has forgotten it, upload it again.
async function photoApi(photo, path, fields, options) {
  try {
    return await api(path, { photo: photo.id, ...fields }, options);
  } catch (error) {
    if (error.status !== 404) throw error;
    await upload(photo.file);
    return api(path, { photo: photo.id, ...fields }, options);
  }
}

function stem(name) { return name.replace(/\.[^.]*$/, "") || "photo"; }

function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}


// ---------------------------------------------------------------------------- photos

async function upload(file) {
  const info = await api("/api/photos", { image: file });
  let photo = state.photos.find((p) => p.file === file || p.id === info.id);
  if (photo) { photo.id = info.id; return photo; }
  photo = {
    id: info.id, file, name: file.name || info.name, width: info.width, height: info.height,
    points: [], settings: {
      boost: state.info.boost, gain: state.info.gain, seed: null, restore: null, palette: [],
      reference: null, strength: null, variant: null, k: null,
    },
    past: [], future: [], lastEdit: null, nextPointId: 1, selected: null,
    resultUrl: null, resultImage: null, canvas: null, stale: false, previewSide: undefined,
    pending: false, inFlight: false, changedAt: null, suggestions: new Map(),
    view: { zoom: 1, x: 0, y: 0 }, guide: null, guideSeen: new Set(), recolored: null,
  };
  photo.radius = Math.max(2, Math.round(Math.max(photo.width, photo.height) / 150));
  state.photos.push(photo);
  renderPhotoList();
  return photo;
}

const isImage = (f) => !f.type || f.type.startsWith("image/") || /\.(tiff?|webp)$/i.test(f.name);

async function openFiles(files) {
  const images = [...files].filter(isImage);
  const others = [...files].filter((f) => !isImage(f)).map((f) => f.name);
  if (!images.length) {
    setStatus(`${others.join(", ")}: not ${others.length > 1 ? "images" : "an image"}. ` +
      "Open JPEG, PNG, TIFF or WebP photos.", true);
    return;
  }
  let first = null;
  const failed = [];
  for (const [i, file] of images.entries()) {
    setStatus(`Opening ${file.name} (${i + 1} of ${images.length})…`);
    try {
      const photo = await upload(file);
      first = first || photo;
    } catch (error) {
      failed.push(errorText(file.name, error));
    }
  }
  const notes = [...failed];
  if (others.length) notes.push(`Skipped ${others.join(", ")}: not ${others.length > 1 ? "images" : "an image"}.`);
  setStatus(notes.join(" "), failed.length > 0);
  if (first) await select(first);
}

// The strip's buttons are made once per photo (their thumbnails load once) and updated
// in place: which photo is shown, how many points each has.
function renderPhotoList() {
  el.strip.hidden = state.photos.length === 0;
  el.applyAll.hidden = el.downloadAll.hidden = state.photos.length < 2;
  for (const photo of state.photos) {
    if (!photo.button || photo.button.dataset.id !== photo.id) photo.button = photoButton(photo);
    const n = photo.points.length;
    photo.button.setAttribute("aria-current", String(photo === state.current));
    photo.button.lastChild.textContent = n ? `${n} point${n > 1 ? "s" : ""}` : "";
  }
  const buttons = state.photos.map((photo) => photo.button);
  if (buttons.some((button, i) => el.photos.children[i] !== button)) el.photos.replaceChildren(...buttons);
}

function photoButton(photo) {
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.id = photo.id;
  const thumb = document.createElement("img");
  thumb.src = `/api/photos/${photo.id}/gray`;
  thumb.alt = "";
  const count = document.createElement("span");
  count.className = "count";
  button.append(thumb, document.createTextNode(photo.name), count);
  button.addEventListener("click", () => select(photo));
  return button;
}

async function select(photo) {
  state.current = photo;
  renderPhotoList();
  el.drop.hidden = true;
  el.workspace.hidden = false;
  el.alternatives.hidden = true;
  const grayUrl = `/api/photos/${photo.id}/gray`;
  el.gray.src = grayUrl;
  el.before.src = grayUrl;
  el.gray.alt = `${photo.name}, black and white`;
  el.result.src = photo.resultUrl || grayUrl;
  renderSettings(photo);
  renderPoints();
  layout();
  renderGuide();
  if (!photo.resultUrl || photo.stale) requestResolve(photo, performance.now());
}

// ---------------------------------------------------------------------------- re-solving

// Updates are computed at the size the photo is shown at (in device pixels, zoom included,
// rounded up to a few sizes the server keeps), not at the photo's: downloads are full size.
function previewSide(photo) {
  const { w } = fitSize(photo);
  const long = Math.max(photo.width, photo.height);
  if (w < 16) return undefined; // not laid out yet
  const shown = (w / photo.width) * long * photo.view.zoom * (window.devicePixelRatio || 1);
  const side = Math.ceil(shown / 256) * 256;
  return side < long ? side : undefined;
}

// The settings a request sends: boost and gain only when they differ from the server's;
// the repair, the colours you know (a reference photo, a palette, their pull) or a chosen
// version when set.
function settingsFields(photo) {
  const { boost, gain, seed, restore, palette, reference, strength, variant, k } = photo.settings;
  return {
    boost: boost === state.info.boost ? undefined : boost,
    gain: gain === state.info.gain ? undefined : gain,
    seed: seed ?? undefined,
    restore: restore ?? undefined,
    reference: reference ? references.get(reference.id)?.file : undefined,
    palette: palette.length ? palette.join(",") : undefined,
    strength: steered(photo) ? strength ?? undefined : undefined,
    variant: variant ?? undefined,
    k: variant ? k : undefined,
  };
}

// Whether the photo's colours are steered: by a reference, a palette or a version.
const steered = (photo) => {
  const { palette, reference, variant } = photo.settings;
  return palette.length > 0 || reference !== null || variant !== null;
};

function requestResolve(photo, changedAt = performance.now()) {
  photo.pending = true;
  photo.changedAt = photo.changedAt ?? changedAt;
  clearTimeout(photo.timer);
  photo.timer = setTimeout(() => resolve(photo), DEBOUNCE_MS);
}

function setBusy(on) {
  clearTimeout(state.busyTimer);
  el.viewport.classList.toggle("busy", on);
  if (!on) el.viewport.classList.remove("busy-visible");
  else state.busyTimer = setTimeout(() => el.viewport.classList.add("busy-visible"), BUSY_SHOWN_MS);
}

async function resolve(photo) {
  if (photo.inFlight || !photo.pending) return;
  photo.pending = false;
  photo.inFlight = true;
  const changedAt = photo.changedAt;
  photo.changedAt = null;
  const recolored = photo.recolored;
  photo.recolored = null;
  const side = previewSide(photo);
  if (photo === state.current) setBusy(true);
  try {
    const blob = await photoApi(photo, "/api/colorize", {
      marks: JSON.stringify(marksOf(photo)), ...settingsFields(photo), format: "jpeg", preview: side,
    }, { expect: "blob" });
    const url = URL.createObjectURL(blob);
    const image = new Image();
    image.src = url;
    await image.decode();
    const previous = photo.resultImage;
    if (photo.resultUrl) URL.revokeObjectURL(photo.resultUrl);
    Object.assign(photo, { resultUrl: url, resultImage: image, canvas: null, stale: false, previewSide: side });
    if (photo === state.current) {
      el.result.src = url;
      await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
      const ms = performance.now() - changedAt;
      window.chromatizeStats.resolves.push(ms);
      window.chromatizeStats.lastResolveMs = ms;
      el.timing.textContent = `updated in ${(ms / 1000).toFixed(2)} s`;
    }
    const point = recolored && photo.points.find((p) => p.id === recolored);
    if (point && point.reach !== "local" && previous && spreadFar(previous, image, point, photo)) {
      showGuide(photo, "spread");
    }
    window.chromatizeStats.results += 1;
    if (photo === state.current) renderGuide();
  } catch (error) {
    if (!refusedReference(photo, error)) setStatus(errorText(photo.name, error), true);
  } finally {
    photo.inFlight = false;
    if (photo === state.current) setBusy(false);
    if (photo.pending) resolve(photo);
  }
}

// A reference photo the server cannot use (not an image, not in colour...): say so once
// with the server's words and take it away again, so the page goes on working.
function refusedReference(photo, error) {
  const ref = photo.settings.reference;
  if (!ref || ![400, 413, 415].includes(error.status)) return false;
  if (!error.message.includes(ref.name) && !/reference/i.test(error.message)) return false;
  photo.settings.reference = null;
  setStatus(`Reference photo ${errorText(ref.name, error)} It was removed.`, true);
  if (photo === state.current) renderSettings(photo);
  requestResolve(photo);
  return true;
}

// ---------------------------------------------------------------------------- guidance

// The tip above the photo: how to start, until the first point; a warning after a point
// whose colour spread far. Each is shown once per photo, until dismissed or acted on.
function showGuide(photo, kind) {
  if (photo.guideSeen.has(kind)) return;
  photo.guide = kind;
  renderGuide();
}

function renderGuide() {
  const photo = state.current;
  if (photo && !photo.guide && photo.resultImage && !photo.points.length && !photo.guideSeen.has("first")) {
    photo.guide = "first";
  }
  if (photo && photo.guide === "first" && photo.points.length) dismissGuide(photo);
  const kind = photo && photo.guide;
  el.guide.hidden = !kind;
  if (kind) el.guideText.textContent = GUIDE[kind]();
}

function dismissGuide(photo) {
  if (photo.guide) photo.guideSeen.add(photo.guide);
  photo.guide = null;
}

// ---------------------------------------------------------------------------- settings and undo

// The colours you know: the reference photo's thumbnail, a chip per colour (a click
// removes it) and their pull (the server's default until moved).
function renderPhotoColours(photo) {
  const { palette, strength, reference } = photo.settings;
  const ref = reference && references.get(reference.id);
  el.referenceThumb.hidden = el.referenceRemove.hidden = !ref;
  if (ref) {
    if (el.referenceThumb.src !== ref.url) el.referenceThumb.src = ref.url;
    el.referenceThumb.alt = `Reference photo ${reference.name}`;
    el.referenceText.textContent = `Reference: ${reference.name}`;
  } else if (!el.referenceText.contains(el.referenceChoose)) {
    el.referenceText.replaceChildren("A colour photo of the same scene, place or people: drop it here, or ", el.referenceChoose);
  }
  el.photoColours.replaceChildren(...palette.map((color) => {
    const chip = document.createElement("button");
    chip.type = "button";
    chip.style.setProperty("--chip", color);
    chip.textContent = `${color} ×`;
    chip.setAttribute("aria-label", `Remove ${color} from the photo's colours`);
    chip.addEventListener("click", () => setSetting(photo, "palette", palette.filter((c) => c !== color)));
    return chip;
  }));
  el.strengthRow.hidden = el.strengthExplain.hidden = !steered(photo);
  el.strengthExplain.textContent = photo.settings.variant !== null
    ? `How strongly version ${photo.settings.variant}'s colours steer the result (0: not at all).`
    : "How strongly these colours steer the result (0: not at all).";
  el.strength.value = strength ?? DEFAULT_STRENGTH;
  el.strengthValue.value = strength === null ? "auto" : Number(strength).toFixed(1);
  el.strengthValue.title = strength === null ? "The server's default" : "";
}

const snapshot = (photo) => JSON.stringify({ points: photo.points, settings: photo.settings });

// Record the state before an edit, for undo. Edits of the same kind in quick succession
// (arrow presses, picker or slider drags) share one undo step.
function beginEdit(photo, key) {
  const now = performance.now();
  if (key && photo.lastEdit && photo.lastEdit.key === key && now - photo.lastEdit.at < EDIT_MERGE_MS) {
    photo.lastEdit.at = now;
    return;
  }
  photo.past.push(snapshot(photo));
  if (photo.past.length > 200) photo.past.shift();
  photo.future = [];
  photo.lastEdit = key ? { key, at: now } : null;
}

function changed(photo) {
  if (photo === state.current) {
    renderPoints();
    renderSettings(photo);
    renderGuide();
  }
  renderPhotoList();
  requestResolve(photo);
}

function restore(photo, from, to) {
  if (!from.length) return;
  to.push(snapshot(photo));
  const { points, settings } = JSON.parse(from.pop());
  Object.assign(photo, { points, settings, lastEdit: null });
  if (!photo.points.some((p) => p.id === photo.selected)) photo.selected = null;
  changed(photo);
}
const undo = (photo) => restore(photo, photo.past, photo.future);
const redo = (photo) => restore(photo, photo.future, photo.past);

function setSetting(photo, key, value) {
  if (photo.settings[key] === value) return;
  setSettings(photo, { [key]: value });
}

// Several settings in one undo step. The colours you know (reference, palette) and a
// version exclude each other (the server refuses both): setting one clears the other,
// and the status line says so.
function setSettings(photo, changes) {
  const key = Object.keys(changes).length === 1 ? Object.keys(changes)[0] : null;
  // Sliders merge a drag into one undo step; a switch, a colour or an alternative does not.
  beginEdit(photo, ["boost", "gain", "strength"].includes(key) ? `setting:${key}` : null);
  const had = { ...photo.settings };
  Object.assign(photo.settings, changes);
  const s = photo.settings;
  if (s.variant !== null && (s.reference || s.palette.length)) {
    if ("variant" in changes) {
      Object.assign(s, { reference: null, palette: [] });
      setStatus(`Version ${s.variant} now sets the colours: the reference photo and colours you gave are cleared (Undo brings them back).`);
    } else {
      Object.assign(s, { variant: null, k: null });
      setStatus(`Your colours now steer the photo instead of version ${had.variant} (Undo brings it back).`);
    }
  }
  changed(photo);
}

function renderSettings(photo) {
  for (const key of ["boost", "gain"]) {
    el[key].value = photo.settings[key];
    el[`${key}Value`].value = Number(photo.settings[key]).toFixed(2);
  }
  el.repair.checked = photo.settings.restore !== null;
  renderPhotoColours(photo);
  const { seed, variant, k } = photo.settings;
  el.start.hidden = seed === null && variant === null;
  el.startSeed.textContent = variant !== null ? `version ${variant} of ${k}` : `alternative #${seed}`;
  el.undo.disabled = !photo.past.length;
  el.redo.disabled = !photo.future.length;
  el.clear.disabled = !photo.points.length;
  // Wrapped only between its parts, never inside "--marks".
  el.command.replaceChildren(...commandParts(photo).flatMap((part, i) => {
    const span = document.createElement("span");
    span.textContent = part;
    return i ? [" ", span] : [span];
  }));
}

// The fix as the downloaded JSON: the points and everything that decodes them.
// A reference photo is recorded by its file name (the command line is given the file).
function fixOf(photo) {
  const { boost, gain, seed, restore, palette, reference, strength, variant, k } = photo.settings;
  const fix = { marks: marksOf(photo), boost, gain };
  if (seed !== null) fix.seed = seed;
  if (restore !== null) fix.restore = restore;
  if (palette.length) fix.palette = palette.join(",");
  if (reference) fix.reference = reference.name;
  if (variant !== null) Object.assign(fix, { variant, k });
  if (strength !== null && steered(photo)) fix.strength = strength;
  return { ...fix, model: state.info.model, photo: photo.name, version: 1 };
}

const quote = (text) => (/^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, "'\\''")}'`);
const commandParts = (photo) => {
  const { reference } = photo.settings;
  return ["chromatize colorize", quote(photo.name), `--marks ${quote(`${stem(photo.name)}_fix.json`)}`,
    ...(reference ? [`--reference ${quote(reference.name)}`] : [])];
};
const commandOf = (photo) => commandParts(photo).join(" ");

// ---------------------------------------------------------------------------- start

async function start() {
  try {
    const info = await (await fetch("/api/info")).json();
    Object.assign(state.info, info);
    const health = await (await fetch("/api/health")).json();
    for (const key of ["boost", "gain", "strength"]) {
      const range = health.limits?.[key];
      if (Array.isArray(range) && range.length === 2) state.limits[key] = range;
    }
  } catch (_) {
    setStatus("The server does not answer: is `chromatize serve` still running?", true);
  }
  el.boost.min = state.limits.boost[0];
  el.boost.max = state.limits.boost[1];
  // Gain 0 would remove every colour: the slider starts one step above it.
  el.gain.min = Math.max(state.limits.gain[0], 0.05);
  el.gain.max = state.limits.gain[1];
  el.strength.min = state.limits.strength[0];
  el.strength.max = state.limits.strength[1];
  el.showAlternatives.disabled = !state.info.can_sample;
  el.versionsRow.hidden = !state.info.variants;
  el.boost.value = state.info.boost;
  el.gain.value = state.info.gain;
}
// Every script of the page has run by then (they are deferred, in order).
document.addEventListener("DOMContentLoaded", start);
