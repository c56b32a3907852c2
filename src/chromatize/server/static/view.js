// chromatize serve: the view of the photo (zoom, pan, the before/after divider) and the
// pointer and keyboard input on it (loaded after points.js).
"use strict";

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
  let height = window.innerHeight - top - 16; // main's bottom padding, and some air
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
