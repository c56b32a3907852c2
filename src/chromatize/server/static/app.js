// chromatize serve: the page. Plain JavaScript, no libraries, talks only to its own server.
//
// Each opened photo is uploaded once (POST /api/photos -> id); every later request names it
// by id, so changing a point sends a few hundred bytes, not the photo. The server keeps the
// network's output per photo, so a change only re-solves the colours from the points.
// At most one colorize request is in flight: changes made meanwhile are sent together as
// soon as it returns, so dragging a point never queues stale work on the server.
//
// Each photo keeps its own fix: its points and its settings (boost, gain, and the seed of
// an alternative chosen as the starting point), with one undo history for both. The fix
// downloads as JSON that `chromatize colorize PHOTO --marks FIX.json` reproduces.
"use strict";

const $ = (id) => document.getElementById(id);
const el = Object.fromEntries([
  "open", "open-2", "file-input", "status", "strip", "photos", "apply-all", "download-all",
  "drop", "workspace", "viewer", "mode-fix", "mode-keep", "compare-toggle", "input-toggle", "zoom-out",
  "zoom-fit", "zoom-value", "zoom-in", "timing", "guide", "guide-text", "guide-close",
  "input-view", "gray", "viewport", "stage", "before", "result", "points", "divider",
  "alternatives", "close-alternatives", "alternative-list", "boost", "boost-value", "gain",
  "gain-value", "start", "start-seed", "start-reset", "point-panel", "point-title", "palette",
  "likely", "vivid", "common", "picker", "reach-explain", "delete-point", "undo", "redo",
  "clear", "show-alternatives", "k", "download-png", "download-jpeg", "download-fix", "command",
].map((id) => [id.replace(/-(.)/g, (_, c) => c.toUpperCase()), $(id)]));

const DEBOUNCE_MS = 60;     // lets a burst of key presses or picker moves become one request
const EDIT_MERGE_MS = 1000; // repeated edits of one kind make one undo step
const BUSY_SHOWN_MS = 300;  // a busy state shows its progress indicator after this
const MAX_ZOOM = 16;
// Limits of the settings, until /api/health says otherwise (chromatize.decoding.LIMITS).
const LIMITS = { boost: [0, 3], gain: [0, 3] };
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
  spread: () => "That colour also changed other parts of the photo. Set this point's reach to " +
    "“Local”, or choose “Keep a colour” and click what should stay as it is (Ctrl+Z first " +
    "if it has already changed).",
};

const state = {
  photos: [], current: null, mode: "fix", compare: false, split: 0.5, showInput: false,
  info: { boost: 0, gain: 1, can_sample: false, model: "default" },
  limits: { ...LIMITS }, busyTimer: null, statusAt: 0,
};
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

const hex2 = (v) => Math.round(v).toString(16).padStart(2, "0");
const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

// ---------------------------------------------------------------------------- colour maths

// sRGB hex <-> CIE Lab (D65), as chromatize.color computes them.
const WHITE = [0.95047, 1, 1.08883];
const toLinear = (c) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
const toGamma = (c) => (c <= 0.0031308 ? 12.92 * c : 1.055 * c ** (1 / 2.4) - 0.055);

function hexToLab(hex) {
  const [r, g, b] = [1, 3, 5].map((i) => toLinear(parseInt(hex.slice(i, i + 2), 16) / 255));
  const xyz = [0.4124564 * r + 0.3575761 * g + 0.1804375 * b,
    0.2126729 * r + 0.7151522 * g + 0.072175 * b,
    0.0193339 * r + 0.119192 * g + 0.9503041 * b];
  const [fx, fy, fz] = xyz.map((v, i) => {
    const t = v / WHITE[i];
    return t > 216 / 24389 ? Math.cbrt(t) : (24389 / 27 * t + 16) / 116;
  });
  return [116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)];
}

// Lab -> linear-free sRGB in [0, 1] per channel, or null outside the sRGB gamut.
function labToRgb([l, a, b]) {
  const fy = (l + 16) / 116;
  const f = [fy + a / 500, fy, fy - b / 200];
  const [x, y, z] = f.map((v, i) => (v ** 3 > 216 / 24389 ? v ** 3 : (116 * v - 16) / (24389 / 27)) * WHITE[i]);
  const rgb = [3.2404542 * x - 1.5371385 * y - 0.4985314 * z,
    -0.969266 * x + 1.8760108 * y + 0.041556 * z,
    0.0556434 * x - 0.2040259 * y + 1.0572252 * z];
  if (rgb.some((v) => v < -1e-4 || v > 1 + 1e-4)) return null;
  return rgb.map((v) => toGamma(clamp(v, 0, 1)));
}

// The same hue at the same lightness, as saturated as sRGB allows (null for grays).
function vivid(hex) {
  const [l, a, b] = hexToLab(hex);
  if (Math.hypot(a, b) < 6) return null;
  const h = Math.atan2(b, a);
  let lo = 0;
  let hi = 160;
  for (let i = 0; i < 18; i += 1) {
    const c = (lo + hi) / 2;
    if (labToRgb([l, c * Math.cos(h), c * Math.sin(h)])) lo = c; else hi = c;
  }
  const rgb = labToRgb([l, lo * Math.cos(h), lo * Math.sin(h)]);
  return { color: `#${rgb.map((v) => hex2(v * 255)).join("")}`, hue: (h * 180) / Math.PI };
}

// The colour of the shown result at image pixel (x, y), read from a canvas copy.
function resultColorAt(photo, x, y) {
  if (!photo.resultImage) return "#808080";
  if (!photo.canvas) {
    const img = photo.resultImage;
    photo.canvas = document.createElement("canvas");
    photo.canvas.width = img.naturalWidth;
    photo.canvas.height = img.naturalHeight;
    photo.canvas.getContext("2d", { willReadFrequently: true }).drawImage(img, 0, 0);
  }
  const scale = photo.canvas.width / photo.width; // a preview may be smaller than the photo
  const [r, g, b] = photo.canvas.getContext("2d")
    .getImageData(Math.floor(x * scale), Math.floor(y * scale), 1, 1).data;
  return `#${hex2(r)}${hex2(g)}${hex2(b)}`;
}

// An image drawn at 64 px on its long side, as RGBA bytes (to compare two results).
function thumbnailPixels(image) {
  const s = 64 / Math.max(image.naturalWidth, image.naturalHeight);
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(image.naturalWidth * s));
  canvas.height = Math.max(1, Math.round(image.naturalHeight * s));
  const g = canvas.getContext("2d", { willReadFrequently: true });
  g.drawImage(image, 0, 0, canvas.width, canvas.height);
  return { w: canvas.width, h: canvas.height, data: g.getImageData(0, 0, canvas.width, canvas.height).data };
}

// Whether a point's new colour spread far from it: more than 2% of the photo, farther than
// a quarter of its diagonal from the point, had its colour moved by more than 40 levels.
function spreadFar(before, after, point, photo) {
  const a = thumbnailPixels(before);
  const b = thumbnailPixels(after);
  if (a.w !== b.w || a.h !== b.h) return false;
  const px = ((point.x + 0.5) / photo.width) * a.w;
  const py = ((point.y + 0.5) / photo.height) * a.h;
  const far = Math.hypot(a.w, a.h) / 4;
  let moved = 0;
  for (let y = 0; y < a.h; y += 1) {
    for (let x = 0; x < a.w; x += 1) {
      if (Math.hypot(x + 0.5 - px, y + 0.5 - py) < far) continue;
      const i = (y * a.w + x) * 4;
      const d = Math.max(...[0, 1, 2].map((c) => Math.abs(a.data[i + c] - b.data[i + c])));
      if (d > 40) moved += 1;
    }
  }
  return moved / (a.w * a.h) > 0.02;
}

// ---------------------------------------------------------------------------- photos

async function upload(file) {
  const info = await api("/api/photos", { image: file });
  let photo = state.photos.find((p) => p.file === file || p.id === info.id);
  if (photo) { photo.id = info.id; return photo; }
  photo = {
    id: info.id, file, name: file.name || info.name, width: info.width, height: info.height,
    points: [], settings: { boost: state.info.boost, gain: state.info.gain, seed: null },
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

function renderPhotoList() {
  el.strip.hidden = state.photos.length === 0;
  el.applyAll.hidden = el.downloadAll.hidden = state.photos.length < 2;
  el.photos.replaceChildren(...state.photos.map((photo) => {
    const button = document.createElement("button");
    button.type = "button";
    button.setAttribute("aria-current", String(photo === state.current));
    const thumb = document.createElement("img");
    thumb.src = `/api/photos/${photo.id}/gray`;
    thumb.alt = "";
    const count = document.createElement("span");
    count.className = "count";
    const n = photo.points.length;
    count.textContent = n ? `${n} point${n > 1 ? "s" : ""}` : "";
    button.append(thumb, document.createTextNode(photo.name), count);
    button.addEventListener("click", () => select(photo));
    return button;
  }));
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

// ---------------------------------------------------------------------------- view: zoom, pan, divider

// The photo fits the viewport at zoom 1; view.x and view.y place its top left corner.
function fitSize(photo) {
  const vw = el.viewport.clientWidth;
  const vh = el.viewport.clientHeight;
  const fit = Math.min(vw / photo.width, vh / photo.height);
  return { vw, vh, w: photo.width * fit, h: photo.height * fit };
}

// The viewer takes the window's height below the bar; under a narrow layout, where the
// panel follows below, at most 62% of it and no more than the photo needs at full width.
const narrow = () => window.matchMedia("(max-width: 1000px)").matches;

function sizeViewer(photo) {
  const top = el.viewer.getBoundingClientRect().top + window.scrollY;
  let height = window.innerHeight - top - 12;
  if (narrow()) {
    const around = el.viewer.clientHeight - el.viewport.clientHeight; // toolbar, tip, gaps
    const needed = (el.viewport.clientWidth * photo.height) / photo.width + around;
    height = Math.min(window.innerHeight * 0.62, needed);
  }
  el.viewer.style.height = `${Math.max(narrow() ? 200 : 300, Math.round(height))}px`;
}

function layout() {
  const photo = state.current;
  if (!photo) return;
  sizeViewer(photo);
  const { vw, vh, w, h } = fitSize(photo);
  const v = photo.view;
  const [sw, sh] = [w * v.zoom, h * v.zoom];
  v.x = sw <= vw ? (vw - sw) / 2 : clamp(v.x, vw - sw, 0);
  v.y = sh <= vh ? (vh - sh) / 2 : clamp(v.y, vh - sh, 0);
  el.stage.style.width = `${w}px`;
  el.stage.style.height = `${h}px`;
  el.stage.style.transform = `translate(${v.x}px, ${v.y}px) scale(${v.zoom})`;
  el.stage.style.setProperty("--unzoom", String(1 / v.zoom));
  el.zoomValue.textContent = `${Math.round(v.zoom * 100)}%`;
  el.zoomOut.disabled = v.zoom <= 1;
  el.zoomIn.disabled = v.zoom >= MAX_ZOOM;
  renderCompare();
}

// Zoom by ``factor`` keeping the photo's point under (cx, cy) (viewport pixels) in place.
function zoomAt(factor, cx, cy) {
  const photo = state.current;
  if (!photo) return;
  const v = photo.view;
  const zoom = clamp(v.zoom * factor, 1, MAX_ZOOM);
  if (zoom === v.zoom) return;
  if (cx === undefined) [cx, cy] = [el.viewport.clientWidth / 2, el.viewport.clientHeight / 2];
  v.x = cx - ((cx - v.x) / v.zoom) * zoom;
  v.y = cy - ((cy - v.y) / v.zoom) * zoom;
  v.zoom = zoom;
  layout();
  // A closer look deserves a sharper preview: ask for one once the zoom rests.
  clearTimeout(photo.zoomTimer);
  photo.zoomTimer = setTimeout(() => {
    if (photo.previewSide !== undefined && (previewSide(photo) ?? Infinity) > photo.previewSide) {
      requestResolve(photo);
    }
  }, 250);
}

function fitView() {
  const photo = state.current;
  if (!photo) return;
  photo.view = { zoom: 1, x: 0, y: 0 };
  layout();
}

function renderCompare() {
  const photo = state.current;
  el.compareToggle.setAttribute("aria-pressed", String(state.compare));
  el.divider.hidden = !state.compare || !photo;
  el.result.style.clipPath = state.compare ? `inset(0 0 0 ${state.split * 100}%)` : "";
  if (!state.compare || !photo) return;
  const { w } = fitSize(photo);
  const x = photo.view.x + state.split * w * photo.view.zoom;
  el.divider.style.left = `${clamp(x, 0, el.viewport.clientWidth)}px`;
  el.divider.setAttribute("aria-valuenow", String(Math.round(state.split * 100)));
}

function setCompare(on) {
  state.compare = on;
  renderCompare();
}

function toggleInput() {
  state.showInput = !state.showInput;
  el.inputView.hidden = !state.showInput;
  el.inputToggle.setAttribute("aria-pressed", String(state.showInput));
  layout();
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

// The settings a request sends: boost and gain only when they differ from the server's.
function settingsFields(photo) {
  const { boost, gain, seed } = photo.settings;
  return {
    boost: boost === state.info.boost ? undefined : boost,
    gain: gain === state.info.gain ? undefined : gain,
    seed: seed ?? undefined,
  };
}

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
    setStatus(errorText(photo.name, error), true);
  } finally {
    photo.inFlight = false;
    if (photo === state.current) setBusy(false);
    if (photo.pending) resolve(photo);
  }
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
  beginEdit(photo, key === "seed" ? null : `setting:${key}`);
  photo.settings[key] = value;
  changed(photo);
}

function renderSettings(photo) {
  for (const key of ["boost", "gain"]) {
    el[key].value = photo.settings[key];
    el[`${key}Value`].value = Number(photo.settings[key]).toFixed(2);
  }
  el.start.hidden = photo.settings.seed === null;
  el.startSeed.textContent = `#${photo.settings.seed}`;
  el.undo.disabled = !photo.past.length;
  el.redo.disabled = !photo.future.length;
  el.clear.disabled = !photo.points.length;
  el.command.textContent = commandOf(photo);
}

// The fix as the downloaded JSON: the points and everything that decodes them.
function fixOf(photo) {
  const fix = { marks: marksOf(photo), boost: photo.settings.boost, gain: photo.settings.gain };
  if (photo.settings.seed !== null) fix.seed = photo.settings.seed;
  return { ...fix, model: state.info.model, photo: photo.name, version: 1 };
}

const quote = (text) => (/^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, "'\\''")}'`);
const commandOf = (photo) => `chromatize colorize ${quote(photo.name)} --marks ${quote(`${stem(photo.name)}_fix.json`)}`;

// ---------------------------------------------------------------------------- points

// Points as the API and `colorize --marks` take them; "object" is every point's default reach.
const marksOf = (photo) => photo.points.map(({ x, y, color, radius, reach }) => (
  reach && reach !== "object" ? { x, y, color, radius, reach } : { x, y, color, radius }));

// A fix point takes the colour the result has there and opens its palette; a keep point
// pins that colour, so later fixes stop there.
function addPoint(photo, x, y, keep = state.mode === "keep") {
  beginEdit(photo, null);
  const point = {
    id: photo.nextPointId++, x, y, color: resultColorAt(photo, x, y), radius: photo.radius,
    reach: "object", keep,
  };
  photo.points.push(point);
  photo.selected = point.id;
  if (photo.guide === "spread" && keep) dismissGuide(photo);
  changed(photo);
  focusPoint(point.id);
  // Under a narrow layout the palette is below the photo: bring its top into view.
  if (narrow() && !keep) el.pointPanel.scrollIntoView({ block: "nearest", behavior: "smooth" });
  return point;
}

function movePoint(photo, point, x, y) {
  point.x = clamp(Math.round(x), 0, photo.width - 1);
  point.y = clamp(Math.round(y), 0, photo.height - 1);
  changed(photo);
}

function recolor(photo, point, color) {
  if (point.color === color) return;
  beginEdit(photo, `color:${point.id}`);
  point.color = color;
  point.keep = false;
  photo.recolored = point.id;
  changed(photo);
}

function setReach(photo, point, reach) {
  if (point.reach === reach) return;
  beginEdit(photo, null);
  point.reach = reach;
  if (photo.guide === "spread") dismissGuide(photo);
  changed(photo);
}

function deletePoint(photo, point) {
  beginEdit(photo, null);
  photo.points = photo.points.filter((p) => p !== point);
  photo.selected = null;
  changed(photo);
  el.stage.focus();
}

const selectedPoint = (photo) => photo && photo.points.find((p) => p.id === photo.selected);

function focusPoint(id) {
  const node = el.points.querySelector(`[data-id="${id}"]`);
  if (node) node.focus({ preventScroll: true });
}

// Point nodes are updated in place, not rebuilt, so a dragged point keeps its pointer
// capture and a focused one its focus. They sit on the zoomed photo at a constant size.
function renderPoints() {
  const photo = state.current;
  if (!photo) return;
  const nodes = new Map([...el.points.children].map((node) => [Number(node.dataset.id), node]));
  for (const [id, node] of nodes) {
    if (!photo.points.some((p) => p.id === id)) node.remove();
  }
  for (const point of photo.points) {
    let node = nodes.get(point.id);
    if (!node) {
      node = document.createElement("button");
      node.type = "button";
      node.dataset.id = point.id;
      el.points.append(node);
    }
    node.className = point.keep ? "point keep" : "point";
    node.style.left = `${((point.x + 0.5) / photo.width) * 100}%`;
    node.style.top = `${((point.y + 0.5) / photo.height) * 100}%`;
    node.style.background = point.color;
    node.setAttribute("aria-pressed", String(point.id === photo.selected));
    node.setAttribute("aria-label", `${point.keep ? "Keep point" : "Colour point"} ${point.color} at ${point.x}, ${point.y}, reach ${point.reach}`);
  }
  renderSettings(photo);
  renderPointPanel(photo);
}

// ---------------------------------------------------------------------------- palette

function swatch(color, label, onPick) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "swatch";
  button.dataset.color = color;
  button.style.background = color;
  button.setAttribute("aria-label", label);
  button.title = label;
  button.addEventListener("click", () => onPick(color));
  return button;
}

function pick(color) {
  const point = selectedPoint(state.current);
  if (point) recolor(state.current, point, color);
}

function renderPointPanel(photo) {
  const point = selectedPoint(photo);
  el.pointPanel.hidden = !point;
  if (!point) return;
  el.pointTitle.textContent = point.keep ? "Keep point: this colour stays" : "Colour point";
  el.picker.value = point.color;
  for (const radio of document.querySelectorAll('input[name="reach"]')) radio.checked = radio.value === point.reach;
  el.reachExplain.textContent = REACH_EXPLAIN[point.reach];
  if (!el.common.children.length) {
    el.common.replaceChildren(...COMMON.map(([name, color]) => {
      const button = swatch(color, name, pick);
      const text = document.createElement("span");
      text.textContent = name;
      button.append(text);
      return button;
    }));
  }
  const key = `${point.x},${point.y}`;
  const suggestions = photo.suggestions.get(key);
  if (!suggestions) {
    el.likely.replaceChildren();
    el.vivid.replaceChildren();
    delete el.palette.dataset.key;
    scheduleSuggestions(photo);
  } else if (el.palette.dataset.key !== `${photo.id}:${key}`) {
    el.palette.dataset.key = `${photo.id}:${key}`;
    renderSuggestions(suggestions);
  }
  for (const node of el.palette.querySelectorAll(".swatch")) {
    node.setAttribute("aria-pressed", String(node.dataset.color === point.color));
  }
}

// The model's likeliest colours (a bar shows how likely), then the same hues made vivid.
function renderSuggestions({ colors, probs }) {
  const top = Math.max(...probs, 1e-9);
  el.likely.replaceChildren(...colors.map((color, i) => {
    const word = probs[i] >= 0.5 * top ? "likely" : "possible";
    const button = swatch(color, `${color}, ${word}`, pick);
    const bar = document.createElement("span");
    bar.className = "likelihood";
    bar.style.width = `${Math.max(8, (probs[i] / top) * 100)}%`;
    button.append(bar);
    return button;
  }));
  const hues = [];
  el.vivid.replaceChildren(...colors.map(vivid).filter((v) => {
    if (!v || hues.some((h) => Math.abs(((v.hue - h + 540) % 360) - 180) < 12)) return false;
    hues.push(v.hue);
    return true;
  }).map((v) => swatch(v.color, `${v.color}, vivid`, pick)));
  el.vivid.previousElementSibling.hidden = el.vivid.hidden = !el.vivid.children.length;
}

// Suggestions for the selected point once it rests: not for every step of a drag.
let suggestTimer = null;
function scheduleSuggestions(photo) {
  clearTimeout(suggestTimer);
  suggestTimer = setTimeout(() => {
    const point = selectedPoint(photo);
    if (drag || !point || photo !== state.current) return;
    fetchSuggestions(photo, point, `${point.x},${point.y}`);
  }, 150);
}

async function fetchSuggestions(photo, point, key) {
  if (photo.suggestions.has(key)) return;
  photo.suggestions.set(key, null); // one request per position
  try {
    const result = await photoApi(photo, "/api/suggest", { x: point.x, y: point.y, k: 6 });
    photo.suggestions.set(key, result);
    const current = selectedPoint(photo);
    if (photo === state.current && current && `${current.x},${current.y}` === key) renderPointPanel(photo);
  } catch (error) {
    photo.suggestions.delete(key);
    setStatus(`Suggested colours: ${errorText(photo.name, error)}`, true);
  }
}

// Arrow keys move between swatches: left and right in reading order, up and down to the
// nearest swatch in the row above or below.
el.palette.addEventListener("keydown", (event) => {
  const from = event.target.closest(".swatch");
  if (!from || !event.key.startsWith("Arrow")) return;
  const all = [...el.palette.querySelectorAll(".swatch")].filter((n) => n.offsetParent);
  const i = all.indexOf(from);
  let to = null;
  if (event.key === "ArrowRight") to = all[i + 1];
  else if (event.key === "ArrowLeft") to = all[i - 1];
  else {
    const r = from.getBoundingClientRect();
    const down = event.key === "ArrowDown";
    const rows = all.filter((n) => {
      const q = n.getBoundingClientRect();
      return down ? q.top >= r.bottom - 2 : q.bottom <= r.top + 2;
    });
    const rowY = rows.length ? (down ? Math.min : Math.max)(...rows.map((n) => n.getBoundingClientRect().top)) : null;
    const row = rows.filter((n) => n.getBoundingClientRect().top === rowY);
    to = row.sort((a, b) => Math.abs(a.getBoundingClientRect().left - r.left) - Math.abs(b.getBoundingClientRect().left - r.left))[0];
  }
  if (to) to.focus();
  event.preventDefault();
});

// ---------------------------------------------------------------------------- pointer input

function imageCoords(event) {
  const photo = state.current;
  const rect = el.stage.getBoundingClientRect();
  return [
    clamp(Math.floor(((event.clientX - rect.left) / rect.width) * photo.width), 0, photo.width - 1),
    clamp(Math.floor(((event.clientY - rect.top) / rect.height) * photo.height), 0, photo.height - 1),
  ];
}

// On the photo: a press on a point drags it; anywhere else, a drag pans the zoomed photo
// and a click (no movement) places a point.
el.viewport.addEventListener("pointerdown", (event) => {
  const photo = state.current;
  if (!photo || event.button !== 0 || event.target.closest(".divider")) return;
  const node = event.target.closest(".point");
  if (node) {
    const point = photo.points.find((p) => p.id === Number(node.dataset.id));
    photo.selected = point.id;
    drag = { point, startX: event.clientX, startY: event.clientY, moved: false, snapshot: snapshot(photo) };
    node.setPointerCapture(event.pointerId);
    renderPoints();
    focusPoint(point.id);
  } else {
    pan = { startX: event.clientX, startY: event.clientY, x0: photo.view.x, y0: photo.view.y, moved: false, onStage: !!event.target.closest(".stage") };
    el.viewport.setPointerCapture(event.pointerId);
  }
  event.preventDefault();
});

el.viewport.addEventListener("pointermove", (event) => {
  const photo = state.current;
  if (drag) {
    if (!drag.moved && Math.hypot(event.clientX - drag.startX, event.clientY - drag.startY) < 3) return;
    drag.moved = true;
    const [x, y] = imageCoords(event);
    movePoint(photo, drag.point, x, y);
  } else if (pan) {
    if (!pan.moved && Math.hypot(event.clientX - pan.startX, event.clientY - pan.startY) < 5) return;
    pan.moved = true;
    el.viewport.classList.add("panning");
    photo.view.x = pan.x0 + event.clientX - pan.startX;
    photo.view.y = pan.y0 + event.clientY - pan.startY;
    layout();
  }
});

function endPointer(event) {
  const photo = state.current;
  if (drag && drag.moved) {
    photo.past.push(drag.snapshot);
    photo.future = [];
    photo.lastEdit = null;
    renderPoints();
  }
  if (pan && !pan.moved && pan.onStage && event.type === "pointerup") {
    const [x, y] = imageCoords(event);
    addPoint(photo, x, y);
  }
  drag = null;
  pan = null;
  el.viewport.classList.remove("panning");
}
el.viewport.addEventListener("pointerup", endPointer);
el.viewport.addEventListener("pointercancel", endPointer);

el.viewport.addEventListener("wheel", (event) => {
  if (!state.current) return;
  const rect = el.viewport.getBoundingClientRect();
  zoomAt(Math.exp(-event.deltaY * 0.002), event.clientX - rect.left, event.clientY - rect.top);
  event.preventDefault();
}, { passive: false });

// The before/after divider: dragged on the photo, or moved with the arrow keys.
function moveDivider(clientX) {
  const rect = el.stage.getBoundingClientRect();
  state.split = clamp((clientX - rect.left) / rect.width, 0, 1);
  renderCompare();
}
el.divider.addEventListener("pointerdown", (event) => {
  el.divider.setPointerCapture(event.pointerId);
  el.divider.dataset.dragging = "1";
  event.preventDefault();
});
el.divider.addEventListener("pointermove", (event) => {
  if (el.divider.dataset.dragging) moveDivider(event.clientX);
});
for (const type of ["pointerup", "pointercancel"]) {
  el.divider.addEventListener(type, () => delete el.divider.dataset.dragging);
}
el.divider.addEventListener("keydown", (event) => {
  const step = { ArrowLeft: -0.02, ArrowRight: 0.02, Home: -1, End: 1 }[event.key];
  if (step === undefined) return;
  state.split = clamp(state.split + step * (event.shiftKey ? 5 : 1), 0, 1);
  renderCompare();
  event.preventDefault();
});

// ---------------------------------------------------------------------------- keyboard

el.stage.addEventListener("keydown", (event) => {
  const photo = state.current;
  if (!photo) return;
  const node = event.target.closest(".point");
  const point = node && photo.points.find((p) => p.id === Number(node.dataset.id));
  if (!point) {
    if ((event.key === "Enter" || event.key === " ") && event.target === el.stage) {
      // Without a pointer: a point in the middle of what is shown, to move with the arrows.
      const { vw, vh, w } = fitSize(photo);
      const scale = (w * photo.view.zoom) / photo.width;
      addPoint(photo, clamp(Math.floor((vw / 2 - photo.view.x) / scale), 0, photo.width - 1),
        clamp(Math.floor((vh / 2 - photo.view.y) / scale), 0, photo.height - 1));
      event.preventDefault();
    }
    return;
  }
  const rect = el.stage.getBoundingClientRect();
  const step = Math.max(1, Math.round(photo.width / rect.width)) * (event.shiftKey ? 10 : 1);
  const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
  if (moves[event.key]) {
    photo.selected = point.id;
    beginEdit(photo, `move:${point.id}`);
    movePoint(photo, point, point.x + moves[event.key][0], point.y + moves[event.key][1]);
    event.preventDefault();
  } else if (event.key === "Delete" || event.key === "Backspace") {
    deletePoint(photo, point);
    event.preventDefault();
  } else if (event.key === "Enter" || event.key === " ") {
    photo.selected = point.id;
    renderPoints();
    (el.palette.querySelector(".swatch") || el.picker).focus();
    event.preventDefault();
  }
});

el.stage.addEventListener("focusin", (event) => {
  const node = event.target.closest(".point");
  const photo = state.current;
  if (node && photo && photo.selected !== Number(node.dataset.id)) {
    photo.selected = Number(node.dataset.id);
    renderPoints();
  }
});

// Single keys for the view, unless typing in a field.
const VIEW_KEYS = {
  "+": () => zoomAt(1.25), "=": () => zoomAt(1.25), "-": () => zoomAt(0.8), 0: fitView,
  b: () => setCompare(!state.compare), i: toggleInput, f: () => setMode("fix"), k: () => setMode("keep"),
};

document.addEventListener("keydown", (event) => {
  const photo = state.current;
  if (!photo) return;
  const typing = event.target.matches?.("input:not([type=range]):not([type=radio]), textarea");
  if (!(event.ctrlKey || event.metaKey || event.altKey)) {
    if (event.key === "Escape" && photo.selected !== null) {
      photo.selected = null;
      renderPoints();
      el.stage.focus();
    } else if (!typing && VIEW_KEYS[event.key.toLowerCase()]) {
      VIEW_KEYS[event.key.toLowerCase()]();
      event.preventDefault();
    }
    return;
  }
  const key = event.key.toLowerCase();
  if (event.target.matches?.("input[type=number]")) return; // their own undo
  if (key === "z" && !event.shiftKey) { undo(photo); event.preventDefault(); }
  else if ((key === "z" && event.shiftKey) || key === "y") { redo(photo); event.preventDefault(); }
});

// ---------------------------------------------------------------------------- controls

function setMode(mode) {
  state.mode = mode;
  el.modeFix.setAttribute("aria-pressed", String(mode === "fix"));
  el.modeKeep.setAttribute("aria-pressed", String(mode === "keep"));
  el.viewport.classList.toggle("keep", mode === "keep");
}
el.modeFix.addEventListener("click", () => setMode("fix"));
el.modeKeep.addEventListener("click", () => setMode("keep"));
el.compareToggle.addEventListener("click", () => setCompare(!state.compare));
el.inputToggle.addEventListener("click", toggleInput);
el.zoomIn.addEventListener("click", () => zoomAt(1.5));
el.zoomOut.addEventListener("click", () => zoomAt(1 / 1.5));
el.zoomFit.addEventListener("click", fitView);
el.guideClose.addEventListener("click", () => {
  if (state.current) dismissGuide(state.current);
  renderGuide();
});
window.addEventListener("resize", layout);
// The tip, the input panel or the window can change the photo's room: fit it again.
new ResizeObserver(() => layout()).observe(el.viewport);

el.open.addEventListener("click", () => el.fileInput.click());
el.open2.addEventListener("click", () => el.fileInput.click());
el.fileInput.addEventListener("change", () => {
  openFiles(el.fileInput.files);
  el.fileInput.value = "";
});

document.addEventListener("dragover", (event) => {
  event.preventDefault();
  document.body.classList.add("dragging");
});
document.addEventListener("dragleave", (event) => {
  if (!event.relatedTarget) document.body.classList.remove("dragging");
});
document.addEventListener("drop", (event) => {
  event.preventDefault();
  document.body.classList.remove("dragging");
  if (event.dataTransfer?.files?.length) openFiles(event.dataTransfer.files);
});

for (const key of ["boost", "gain"]) {
  el[key].addEventListener("input", () => {
    if (state.current) setSetting(state.current, key, Number(el[key].value));
  });
}
el.startReset.addEventListener("click", () => state.current && setSetting(state.current, "seed", null));

el.picker.addEventListener("input", () => pick(el.picker.value));
for (const radio of document.querySelectorAll('input[name="reach"]')) {
  radio.addEventListener("change", () => {
    const point = selectedPoint(state.current);
    if (point && radio.checked) setReach(state.current, point, radio.value);
  });
}
el.deletePoint.addEventListener("click", () => {
  const point = selectedPoint(state.current);
  if (point) deletePoint(state.current, point);
});
el.undo.addEventListener("click", () => state.current && undo(state.current));
el.redo.addEventListener("click", () => state.current && redo(state.current));
el.clear.addEventListener("click", () => {
  const photo = state.current;
  if (!photo || !photo.points.length) return;
  beginEdit(photo, null);
  photo.points = [];
  photo.selected = null;
  changed(photo);
});

// Alternatives: other plausible colourings, shown large over the photo; "Use this one"
// makes one the starting point (its seed travels in the fix), which the points correct.
el.showAlternatives.addEventListener("click", async () => {
  const photo = state.current;
  if (!photo) return;
  const k = clamp(Number(el.k.value) || 4, 2, 8);
  el.showAlternatives.disabled = true;
  setStatus(`Computing ${k} alternatives…`);
  setBusy(true);
  try {
    const { images, seeds } = await photoApi(photo, "/api/alternatives", {
      k, ...settingsFields(photo), seed: Math.floor(Math.random() * 1e6),
      marks: JSON.stringify(marksOf(photo)),
    });
    el.alternativeList.replaceChildren(...images.map((src, i) => alternativeFigure(photo, src, seeds[i], i)));
    el.alternatives.hidden = false;
    el.alternativeList.querySelector("button")?.focus();
    setStatus("");
  } catch (error) {
    setStatus(`Alternatives: ${errorText(photo.name, error)}`, true);
  } finally {
    el.showAlternatives.disabled = !state.info.can_sample;
    setBusy(false);
  }
});

function alternativeFigure(photo, src, seed, i) {
  const figure = document.createElement("figure");
  const img = document.createElement("img");
  img.src = src;
  img.alt = `Alternative ${i + 1}`;
  const caption = document.createElement("figcaption");
  const use = document.createElement("button");
  use.type = "button";
  use.className = "primary";
  use.textContent = "Use this one";
  use.addEventListener("click", () => {
    setSetting(photo, "seed", seed);
    el.alternatives.hidden = true;
    setStatus(`Alternative ${i + 1} is now the starting point; your points correct it.`);
  });
  const link = document.createElement("a");
  link.href = src;
  link.download = `${stem(photo.name)}_alternative_${i + 1}.jpg`;
  link.textContent = "Download";
  caption.append(use, link);
  figure.append(img, caption);
  return figure;
}
el.closeAlternatives.addEventListener("click", () => { el.alternatives.hidden = true; });

const resultName = (photo, format) => `${stem(photo.name)}_colorized.${format === "jpeg" ? "jpg" : "png"}`;

const fullSize = (photo, format) => photoApi(photo, "/api/colorize", {
  marks: JSON.stringify(marksOf(photo)), ...settingsFields(photo), format,
}, { expect: "blob" });

async function download(format) {
  const photo = state.current;
  if (!photo) return;
  setStatus(`Preparing ${resultName(photo, format)} at full size…`);
  try {
    saveBlob(await fullSize(photo, format), resultName(photo, format));
    setStatus(`Saved ${resultName(photo, format)}.`);
  } catch (error) {
    setStatus(`Download: ${errorText(photo.name, error)}`, true);
  }
}
el.downloadPng.addEventListener("click", () => download("png"));
el.downloadJpeg.addEventListener("click", () => download("jpeg"));

const fixBlob = (photo) => new Blob([JSON.stringify(fixOf(photo), null, 2) + "\n"], { type: "application/json" });

el.downloadFix.addEventListener("click", () => {
  const photo = state.current;
  if (!photo) return;
  saveBlob(fixBlob(photo), `${stem(photo.name)}_fix.json`);
  setStatus(`Saved ${stem(photo.name)}_fix.json: ${commandOf(photo)} gives this result.`);
});

// Several photos: one zip of every photo at full size with its fix; one set of settings.
el.downloadAll.addEventListener("click", async () => {
  const files = [];
  try {
    for (const [i, photo] of state.photos.entries()) {
      setStatus(`Preparing ${i + 1} of ${state.photos.length}: ${photo.name}…`);
      const png = await fullSize(photo, "png");
      files.push({ name: resultName(photo, "png"), bytes: new Uint8Array(await png.arrayBuffer()) },
        { name: `${stem(photo.name)}_fix.json`, bytes: new Uint8Array(await fixBlob(photo).arrayBuffer()) });
    }
    saveBlob(window.makeZip(files), "chromatize_photos.zip");
    setStatus(`Saved chromatize_photos.zip: ${state.photos.length} photos and their fixes.`);
  } catch (error) {
    setStatus(`Download all: ${error.message}`, true);
  }
});

el.applyAll.addEventListener("click", () => {
  const source = state.current;
  if (!source) return;
  for (const photo of state.photos) {
    if (photo === source) continue;
    const { boost, gain } = source.settings;
    if (photo.settings.boost === boost && photo.settings.gain === gain) continue;
    beginEdit(photo, null);
    Object.assign(photo.settings, { boost, gain });
    photo.stale = true;
  }
  renderPhotoList();
  setStatus(`Boost ${source.settings.boost.toFixed(2)} and gain ${source.settings.gain.toFixed(2)} now apply to all ${state.photos.length} photos.`);
});

// ---------------------------------------------------------------------------- start

async function start() {
  try {
    const info = await (await fetch("/api/info")).json();
    Object.assign(state.info, info);
    const health = await (await fetch("/api/health")).json();
    for (const key of ["boost", "gain"]) {
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
  el.showAlternatives.disabled = !state.info.can_sample;
  el.boost.value = state.info.boost;
  el.gain.value = state.info.gain;
}
start();
