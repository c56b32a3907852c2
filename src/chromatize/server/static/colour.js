// chromatize serve: colour maths for the page's palette and its comparison of results.
"use strict";

const hex2 = (v) => Math.round(v).toString(16).padStart(2, "0");
const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));


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
// a quarter of its diagonal from the point, had its colour moved by more than 30 levels.
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
      if (d > 30) moved += 1;
    }
  }
  return moved / (a.w * a.h) > 0.02;
}
