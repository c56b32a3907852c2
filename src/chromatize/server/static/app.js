// chromatize serve: the page. Plain JavaScript, no libraries, talks only to its own server.
//
// Each opened photo is uploaded once (POST /api/photos -> id); every later request names it
// by id, so changing a point sends a few hundred bytes, not the photo. The server keeps the
// network's output per photo, so a change only re-solves the colours from the points.
// At most one colorize request is in flight: changes made meanwhile are sent together as
// soon as it returns, so dragging a point never queues stale work on the server.
"use strict";

const $ = (id) => document.getElementById(id);
const el = {
  open: $("open"), open2: $("open-2"), fileInput: $("file-input"), status: $("status"),
  photos: $("photos"), drop: $("drop"), workspace: $("workspace"), gray: $("gray"),
  stage: $("stage"), before: $("before"), result: $("result"), divider: $("divider"),
  points: $("points"), compare: $("compare"), timing: $("timing"), boost: $("boost"),
  boostValue: $("boost-value"), pointPanel: $("point-panel"), palette: $("palette"),
  picker: $("picker"), deletePoint: $("delete-point"), undo: $("undo"), redo: $("redo"),
  clear: $("clear"), showAlternatives: $("show-alternatives"), k: $("k"),
  alternatives: $("alternatives"), downloadPng: $("download-png"),
  downloadJpeg: $("download-jpeg"), downloadPoints: $("download-points"),
};

const DEBOUNCE_MS = 60;     // lets a burst of key presses or picker moves become one request
const EDIT_MERGE_MS = 1000; // repeated edits of one kind to one point make one undo step
const state = { photos: [], current: null, info: { boost: 0, can_sample: false } };
let drag = null; // the point being dragged: {point, startX, startY, moved, snapshot}
// Read by tests and benchmarks: milliseconds from a change to its result on screen.
window.chromatizeStats = { resolves: [], lastResolveMs: null, results: 0 };

// ---------------------------------------------------------------------------- helpers

function setStatus(text, isError = false) {
  el.status.textContent = text;
  el.status.classList.toggle("error", isError);
}

async function api(path, fields, { expect = "json", signal } = {}) {
  const body = new FormData();
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined || value === null) continue;
    if (value instanceof Blob) body.append(key, value, value.name || "image");
    else body.append(key, String(value));
  }
  const response = await fetch(path, { method: "POST", body, signal });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error || message; } catch (_) { /* not JSON */ }
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return expect === "blob" ? response.blob() : response.json();
}

// A request about the current photo; if the server has forgotten it, upload it again.
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

const hex2 = (v) => v.toString(16).padStart(2, "0");

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

// ---------------------------------------------------------------------------- photos

async function upload(file) {
  const info = await api("/api/photos", { image: file });
  let photo = state.photos.find((p) => p.file === file || p.id === info.id);
  if (photo) { photo.id = info.id; return photo; }
  photo = {
    id: info.id, file, name: file.name || info.name, width: info.width, height: info.height,
    points: [], past: [], future: [], lastEdit: null, nextPointId: 1, selected: null,
    boost: state.info.boost, resultUrl: null, resultImage: null, canvas: null,
    pending: false, inFlight: false, changedAt: null, suggestions: new Map(),
  };
  photo.radius = Math.max(2, Math.round(Math.max(photo.width, photo.height) / 150));
  state.photos.push(photo);
  renderPhotoList();
  return photo;
}

async function openFiles(files) {
  const images = [...files].filter((f) => !f.type || f.type.startsWith("image/") || /\.tiff?$/i.test(f.name));
  if (!images.length) { setStatus("No image among the dropped files.", true); return; }
  let first = null;
  for (const [i, file] of images.entries()) {
    setStatus(`Uploading ${file.name} (${i + 1}/${images.length})…`);
    try {
      const photo = await upload(file);
      first = first || photo;
    } catch (error) {
      setStatus(`${file.name}: ${error.message}`, true);
    }
  }
  if (first) await select(first);
  const others = files.length - images.length;
  if (others && !el.status.classList.contains("error")) {
    setStatus(`Skipped ${others} file${others > 1 ? "s" : ""} that ${others > 1 ? "are" : "is"} not an image.`);
  }
}

function renderPhotoList() {
  el.photos.replaceChildren(...state.photos.map((photo) => {
    const button = document.createElement("button");
    button.type = "button";
    button.setAttribute("aria-current", String(photo === state.current));
    const thumb = document.createElement("img");
    thumb.src = `/api/photos/${photo.id}/gray`;
    thumb.alt = "";
    button.append(thumb, document.createTextNode(photo.name));
    button.addEventListener("click", () => select(photo));
    return button;
  }));
}

async function select(photo) {
  state.current = photo;
  renderPhotoList();
  el.drop.hidden = true;
  el.workspace.hidden = false;
  const grayUrl = `/api/photos/${photo.id}/gray`;
  el.gray.src = grayUrl;
  el.before.src = grayUrl;
  el.gray.alt = `${photo.name}, black and white`;
  el.before.width = photo.width;
  el.before.height = photo.height;
  el.result.src = photo.resultUrl || grayUrl;
  el.boost.value = photo.boost;
  el.boostValue.value = Number(photo.boost).toFixed(2);
  el.alternatives.replaceChildren();
  renderPoints();
  if (!photo.resultUrl) requestResolve(photo, performance.now());
}

// ---------------------------------------------------------------------------- re-solving

// Updates are computed at the size the result is shown at (in device pixels, rounded up to
// a few sizes the server keeps), not at the photo's: downloads are at full size.
function previewSide(photo) {
  const rect = el.stage.getBoundingClientRect();
  const long = Math.max(photo.width, photo.height);
  if (rect.width < 16) return undefined; // not laid out yet
  const shown = (rect.width / photo.width) * long * (window.devicePixelRatio || 1);
  const side = Math.ceil(shown / 256) * 256;
  return side < long ? side : undefined;
}

// The boost field only when the user moved the slider: the server's default otherwise.
const boostOf = (photo) => (photo.boost === state.info.boost ? undefined : photo.boost);

function requestResolve(photo, changedAt = performance.now()) {
  photo.pending = true;
  photo.changedAt = photo.changedAt ?? changedAt;
  photo.canvas = null;
  clearTimeout(photo.timer);
  photo.timer = setTimeout(() => resolve(photo), DEBOUNCE_MS);
}

async function resolve(photo) {
  if (photo.inFlight || !photo.pending) return;
  photo.pending = false;
  photo.inFlight = true;
  const changedAt = photo.changedAt;
  photo.changedAt = null;
  if (photo === state.current) el.stage.classList.add("busy");
  try {
    const blob = await photoApi(photo, "/api/colorize", {
      marks: JSON.stringify(marksOf(photo)), boost: boostOf(photo), format: "jpeg",
      preview: previewSide(photo),
    }, { expect: "blob" });
    const url = URL.createObjectURL(blob);
    const image = new Image();
    image.src = url;
    await image.decode();
    if (photo.resultUrl) URL.revokeObjectURL(photo.resultUrl);
    photo.resultUrl = url;
    photo.resultImage = image;
    photo.canvas = null;
    if (photo === state.current) {
      el.result.src = url;
      await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
      const ms = performance.now() - changedAt;
      window.chromatizeStats.resolves.push(ms);
      window.chromatizeStats.lastResolveMs = ms;
      el.timing.textContent = `updated in ${(ms / 1000).toFixed(2)} s`;
      setStatus("");
    }
    window.chromatizeStats.results += 1;
  } catch (error) {
    setStatus(`${photo.name}: ${error.message}`, true);
  } finally {
    photo.inFlight = false;
    if (photo === state.current) el.stage.classList.remove("busy");
    if (photo.pending) resolve(photo);
  }
}

// ---------------------------------------------------------------------------- points

const marksOf = (photo) => photo.points.map(({ x, y, color, radius }) => ({ x, y, color, radius }));

// Record the state before an edit, for undo. Edits of the same kind to the same point in
// quick succession (arrow presses, picker drags) share one undo step.
function beginEdit(photo, key) {
  const now = performance.now();
  if (key && photo.lastEdit && photo.lastEdit.key === key && now - photo.lastEdit.at < EDIT_MERGE_MS) {
    photo.lastEdit.at = now;
    return;
  }
  photo.past.push(JSON.stringify(photo.points));
  if (photo.past.length > 200) photo.past.shift();
  photo.future = [];
  photo.lastEdit = key ? { key, at: now } : null;
}

function changed(photo) {
  renderPoints();
  requestResolve(photo);
}

function restore(photo, from, to) {
  if (!from.length) return;
  to.push(JSON.stringify(photo.points));
  photo.points = JSON.parse(from.pop());
  photo.lastEdit = null;
  if (!photo.points.some((p) => p.id === photo.selected)) photo.selected = null;
  changed(photo);
}
const undo = (photo) => restore(photo, photo.past, photo.future);
const redo = (photo) => restore(photo, photo.future, photo.past);

function addPoint(photo, x, y) {
  beginEdit(photo, null);
  const point = { id: photo.nextPointId++, x, y, color: resultColorAt(photo, x, y), radius: photo.radius };
  photo.points.push(point);
  photo.selected = point.id;
  changed(photo);
  focusPoint(point.id);
  return point;
}

function movePoint(photo, point, x, y) {
  point.x = Math.min(photo.width - 1, Math.max(0, Math.round(x)));
  point.y = Math.min(photo.height - 1, Math.max(0, Math.round(y)));
  changed(photo);
}

function recolor(photo, point, color) {
  if (point.color === color) return;
  beginEdit(photo, `color:${point.id}`);
  point.color = color;
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
  if (node) node.focus();
}

// Point nodes are updated in place, not rebuilt, so a dragged point keeps its pointer
// capture and a focused one its focus.
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
      node.className = "point";
      node.dataset.id = point.id;
      el.points.append(node);
    }
    node.style.left = `${((point.x + 0.5) / photo.width) * 100}%`;
    node.style.top = `${((point.y + 0.5) / photo.height) * 100}%`;
    node.style.background = point.color;
    node.setAttribute("aria-pressed", String(point.id === photo.selected));
    node.setAttribute("aria-label", `Colour point ${point.color} at ${point.x}, ${point.y}`);
  }
  el.undo.disabled = !photo.past.length;
  el.redo.disabled = !photo.future.length;
  el.clear.disabled = !photo.points.length;
  renderPointPanel(photo);
}

function renderPointPanel(photo) {
  const point = selectedPoint(photo);
  el.pointPanel.hidden = !point;
  if (!point) return;
  el.picker.value = point.color;
  const key = `${point.x},${point.y}`;
  const suggestions = photo.suggestions.get(key);
  if (!suggestions) {
    el.palette.replaceChildren();
    delete el.palette.dataset.key;
    scheduleSuggestions(photo);
    return;
  }
  if (el.palette.dataset.key !== `${photo.id}:${key}`) {
    el.palette.dataset.key = `${photo.id}:${key}`;
    el.palette.replaceChildren(...suggestions.colors.map((color, i) => {
      const swatch = document.createElement("button");
      swatch.type = "button";
      swatch.className = "swatch";
      swatch.dataset.color = color;
      swatch.style.background = color;
      const pct = Math.round(suggestions.probs[i] * 100);
      swatch.setAttribute("aria-label", `${color}, ${pct} per cent likely`);
      swatch.title = `${color} (${pct} %)`;
      const label = document.createElement("span");
      label.textContent = `${pct}%`;
      swatch.append(label);
      swatch.addEventListener("click", () => {
        const current = selectedPoint(state.current);
        if (current) recolor(state.current, current, color);
      });
      return swatch;
    }));
  }
  for (const swatch of el.palette.children) {
    swatch.setAttribute("aria-pressed", String(swatch.dataset.color === point.color));
  }
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
    setStatus(`Suggestions: ${error.message}`, true);
  }
}

// ---------------------------------------------------------------------------- pointer input

function imageCoords(event) {
  const photo = state.current;
  const rect = el.stage.getBoundingClientRect();
  return [
    Math.min(photo.width - 1, Math.max(0, Math.floor(((event.clientX - rect.left) / rect.width) * photo.width))),
    Math.min(photo.height - 1, Math.max(0, Math.floor(((event.clientY - rect.top) / rect.height) * photo.height))),
  ];
}

el.stage.addEventListener("pointerdown", (event) => {
  const photo = state.current;
  if (!photo || event.button !== 0) return;
  const node = event.target.closest(".point");
  if (node) {
    const point = photo.points.find((p) => p.id === Number(node.dataset.id));
    photo.selected = point.id;
    drag = { point, startX: event.clientX, startY: event.clientY, moved: false, snapshot: JSON.stringify(photo.points) };
    node.setPointerCapture(event.pointerId);
    renderPoints();
    focusPoint(point.id);
    event.preventDefault();
  }
});

el.stage.addEventListener("pointermove", (event) => {
  if (!drag) return;
  const photo = state.current;
  if (!drag.moved && Math.hypot(event.clientX - drag.startX, event.clientY - drag.startY) < 3) return;
  drag.moved = true;
  const [x, y] = imageCoords(event);
  movePoint(photo, drag.point, x, y);
});

function endDrag() {
  if (!drag) return;
  const photo = state.current;
  if (drag.moved) {
    photo.past.push(drag.snapshot);
    photo.future = [];
    photo.lastEdit = null;
    renderPoints();
  }
  drag = null;
}
el.stage.addEventListener("pointerup", endDrag);
el.stage.addEventListener("pointercancel", endDrag);

el.stage.addEventListener("click", (event) => {
  const photo = state.current;
  if (!photo || event.target.closest(".point")) return;
  const [x, y] = imageCoords(event);
  addPoint(photo, x, y);
});

// ---------------------------------------------------------------------------- keyboard

el.stage.addEventListener("keydown", (event) => {
  const photo = state.current;
  if (!photo) return;
  const node = event.target.closest(".point");
  const point = node && photo.points.find((p) => p.id === Number(node.dataset.id));
  if (!point) {
    if ((event.key === "Enter" || event.key === " ") && event.target === el.stage) {
      // Without a pointer: a point at the centre, to be moved with the arrow keys.
      addPoint(photo, Math.floor(photo.width / 2), Math.floor(photo.height / 2));
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

document.addEventListener("keydown", (event) => {
  const photo = state.current;
  if (!photo || !(event.ctrlKey || event.metaKey)) {
    if (event.key === "Escape" && photo && photo.selected !== null) {
      photo.selected = null;
      renderPoints();
      el.stage.focus();
    }
    return;
  }
  const key = event.key.toLowerCase();
  if (event.target.matches?.("input[type=number]")) return; // their own undo
  if (key === "z" && !event.shiftKey) { undo(photo); event.preventDefault(); }
  else if ((key === "z" && event.shiftKey) || key === "y") { redo(photo); event.preventDefault(); }
});

// ---------------------------------------------------------------------------- controls

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

el.compare.addEventListener("input", () => {
  const v = Number(el.compare.value);
  el.result.style.clipPath = v > 0 ? `inset(0 0 0 ${v}%)` : "";
  el.divider.hidden = v === 0 || v === 100;
  el.divider.style.left = `${v}%`;
});

el.boost.addEventListener("input", () => {
  const photo = state.current;
  if (!photo) return;
  photo.boost = Number(el.boost.value);
  el.boostValue.value = photo.boost.toFixed(2);
  requestResolve(photo);
});

el.picker.addEventListener("input", () => {
  const photo = state.current;
  const point = selectedPoint(photo);
  if (point) recolor(photo, point, el.picker.value);
});
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

el.showAlternatives.addEventListener("click", async () => {
  const photo = state.current;
  if (!photo) return;
  const k = Math.min(8, Math.max(2, Number(el.k.value) || 4));
  el.showAlternatives.disabled = true;
  setStatus(`Computing ${k} alternatives…`);
  try {
    const { images } = await photoApi(photo, "/api/alternatives", {
      k, seed: Math.floor(Math.random() * 1e6), boost: boostOf(photo),
      marks: JSON.stringify(marksOf(photo)),
    });
    el.alternatives.replaceChildren(...images.map((src, i) => {
      const figure = document.createElement("figure");
      const img = document.createElement("img");
      img.src = src;
      img.alt = `Alternative ${i + 1}`;
      const link = document.createElement("a");
      link.href = src;
      link.download = `${stem(photo.name)}_alternative_${i + 1}.jpg`;
      link.textContent = `Download ${i + 1}`;
      figure.append(img, link);
      return figure;
    }));
    setStatus("");
  } catch (error) {
    setStatus(`Alternatives: ${error.message}`, true);
  } finally {
    el.showAlternatives.disabled = false;
  }
});

async function download(format) {
  const photo = state.current;
  if (!photo) return;
  setStatus(`Preparing the ${format.toUpperCase()} at full resolution…`);
  try {
    const blob = await photoApi(photo, "/api/colorize", {
      marks: JSON.stringify(marksOf(photo)), boost: boostOf(photo), format,
    }, { expect: "blob" });
    saveBlob(blob, `${stem(photo.name)}_colorized.${format === "jpeg" ? "jpg" : "png"}`);
    setStatus(`Saved ${stem(photo.name)}_colorized.${format === "jpeg" ? "jpg" : "png"}`);
  } catch (error) {
    setStatus(`Download: ${error.message}`, true);
  }
}
el.downloadPng.addEventListener("click", () => download("png"));
el.downloadJpeg.addEventListener("click", () => download("jpeg"));
el.downloadPoints.addEventListener("click", () => {
  const photo = state.current;
  if (!photo) return;
  const json = JSON.stringify(marksOf(photo), null, 2) + "\n";
  saveBlob(new Blob([json], { type: "application/json" }), `${stem(photo.name)}_points.json`);
});

fetch("/api/info").then((r) => r.json()).then((info) => {
  state.info = info;
  el.boost.value = info.boost;
  el.boostValue.value = Number(info.boost).toFixed(2);
  el.showAlternatives.disabled = !info.can_sample;
}).catch(() => setStatus("The server does not answer.", true));
