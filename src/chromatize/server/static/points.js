// chromatize serve: colour points and their palette (loaded after app.js).
"use strict";

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
