// chromatize serve: the buttons and fields around the photo: opening photos, settings,
// alternatives, downloads, several photos (loaded last).
"use strict";

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
el.repair.addEventListener("change", () => {
  if (state.current) setSetting(state.current, "restore", el.repair.checked ? "all" : null);
});
el.addColourOk.addEventListener("click", () => {
  const photo = state.current;
  const color = el.addColour.value;
  if (photo && !photo.settings.palette.includes(color)) {
    setSetting(photo, "palette", [...photo.settings.palette, color]);
  }
});
el.strength.addEventListener("input", () => {
  if (state.current) setSetting(state.current, "strength", Number(el.strength.value));
});
el.startReset.addEventListener("click", () => {
  if (state.current) setSettings(state.current, { seed: null, variant: null, k: null });
});

// A reference photo: chosen, or dropped onto its own area (the rest of the page opens
// photos). It belongs to the current photo's settings, like its palette.
let nextReferenceId = 1;
function setReference(file) {
  const photo = state.current;
  if (!photo || !file) return;
  const id = nextReferenceId++;
  references.set(id, { file, url: URL.createObjectURL(file) });
  setSetting(photo, "reference", { id, name: file.name || "reference" });
}
el.referenceChoose.addEventListener("click", () => el.referenceInput.click());
el.referenceInput.addEventListener("change", () => {
  setReference(el.referenceInput.files[0]);
  el.referenceInput.value = "";
});
el.referenceRemove.addEventListener("click", () => {
  if (state.current) setSetting(state.current, "reference", null);
});
el.referenceDrop.addEventListener("dragover", (event) => {
  event.preventDefault();
  event.stopPropagation();
  el.referenceDrop.classList.add("over");
});
el.referenceDrop.addEventListener("dragleave", () => el.referenceDrop.classList.remove("over"));
el.referenceDrop.addEventListener("drop", (event) => {
  event.preventDefault();
  event.stopPropagation();
  document.body.classList.remove("dragging");
  el.referenceDrop.classList.remove("over");
  setReference(event.dataTransfer?.files?.[0]);
});

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
    showChoices("Other plausible colourings", "Pick one as the new starting point; your colour points then correct it.");
    el.alternativeList.querySelector("button")?.focus();
    setStatus("");
  } catch (error) {
    setStatus(`Alternatives: ${errorText(photo.name, error)}`, true);
  } finally {
    el.showAlternatives.disabled = !state.info.can_sample;
    setBusy(false);
  }
});

function showChoices(title, explain) {
  el.alternativesTitle.textContent = title;
  el.alternativesExplain.textContent = explain;
  el.alternatives.hidden = false;
}

// Versions: the colours of the indexed colour photos most like this one, shown large like
// the alternatives; "Use this one" makes one the working result (variant and k travel in
// every later request and in the fix), which the points then correct.
el.showVersions.addEventListener("click", async () => {
  const photo = state.current;
  if (!photo) return;
  const k = VERSIONS_K;
  const { boost, strength } = settingsFields(photo);
  el.showVersions.disabled = true;
  setStatus(`Computing ${k} versions…`);
  setBusy(true);
  try {
    const { images } = await photoApi(photo, "/api/variants", {
      k, boost, strength, marks: JSON.stringify(marksOf(photo)), preview: previewSide(photo),
    });
    el.alternativeList.replaceChildren(...images.map((src, i) => choiceFigure(photo, src, i === 0 ? "Version 1: the model's own" : `Version ${i + 1}`,
      `${stem(photo.name)}_version_${i + 1}.jpg`, () => {
        setStatus(`Version ${i + 1} is now the starting point; your points correct it.`);
        // Replacing a reference or palette: setSettings says so instead.
        setSettings(photo, { variant: i + 1, k, seed: null });
      })));
    showChoices(`${k} versions to choose from`, "The first is the model's own colours; each other takes its colours from a group of colour photos most like this one. Pick one as the starting point; your colour points then correct it.");
    el.alternativeList.querySelector("button")?.focus();
    setStatus("");
  } catch (error) {
    setStatus(`Versions: ${errorText(photo.name, error)}`, true);
  } finally {
    el.showVersions.disabled = false;
    setBusy(false);
  }
});

function alternativeFigure(photo, src, seed, i) {
  return choiceFigure(photo, src, `Alternative ${i + 1}`, `${stem(photo.name)}_alternative_${i + 1}.jpg`, () => {
    setSettings(photo, { seed, variant: null, k: null });
    setStatus(`Alternative ${i + 1} is now the starting point; your points correct it.`);
  });
}

function choiceFigure(photo, src, label, filename, onUse) {
  const figure = document.createElement("figure");
  const img = document.createElement("img");
  img.src = src;
  img.alt = label;
  const caption = document.createElement("figcaption");
  const use = document.createElement("button");
  use.type = "button";
  use.className = "primary";
  use.textContent = "Use this one";
  use.setAttribute("aria-label", `Use ${label.toLowerCase()}`);
  use.addEventListener("click", () => {
    el.alternatives.hidden = true;
    onUse();
  });
  const link = document.createElement("a");
  link.href = src;
  link.download = filename;
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

// The settings of the whole photo (not its points, nor its chosen alternative or version)
// go to all; colours you know replace another photo's version.
const SHARED = ["boost", "gain", "restore", "palette", "reference", "strength"];

el.applyAll.addEventListener("click", () => {
  const source = state.current;
  if (!source) return;
  const same = (photo) => SHARED.every((key) => JSON.stringify(photo.settings[key]) === JSON.stringify(source.settings[key]));
  for (const photo of state.photos) {
    if (photo === source || same(photo)) continue;
    beginEdit(photo, null);
    for (const key of SHARED) photo.settings[key] = structuredClone(source.settings[key]);
    if (photo.settings.reference || photo.settings.palette.length) Object.assign(photo.settings, { variant: null, k: null });
    photo.stale = true;
  }
  renderPhotoList();
  const { boost, gain, restore, palette, reference } = source.settings;
  setStatus(`This photo's settings (boost ${boost.toFixed(2)}, gain ${gain.toFixed(2)}` +
    `${restore ? ", repair" : ""}${palette.length || reference ? ", its colours" : ""}) now apply to all ` +
    `${state.photos.length} photos.`);
});
