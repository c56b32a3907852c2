"""How well ``chromatize restore`` repairs old photos: val photos (their gray) with
synthetic damage (``configs/restore_damage.yaml``'s generator, grain and fading off) at
several strengths, and clean, grainy and faded copies.

    PYTHONPATH=src python benchmarks/restore.py --limit 40 [--no-colorize] [--speed 1,4,16]
        [--sections damage,clean,grain,fade,speed] [--json OUT.json] [--detector PATH]
        [--inpainter PATH [--fill-learned]] [--denoiser PATH] [--skip-morph]

Prints, per damage strength: PSNR / SSIM of the gray against the clean gray, overall and
inside the damage (the true mask grown by 1 px), for doing nothing, for OpenCV
inpainting with the true mask (Telea and Navier-Stokes: the ceiling of any detector),
and for the morphological and learned detectors (Telea); the detectors' mask precision
and recall (each counted with 1 px of tolerance); CIEDE2000 of ``colorize`` on damaged,
repaired and clean gray against the colour original. Then PSNR of ``restore`` (every
step) on clean photos; grain: non-local means against a Gaussian blur of the same
sharpness; fading: the levels step; and seconds per megapixel and peak memory
(in a fresh process per size). ``--detector``, ``--inpainter`` (with the true mask, and
with ``--fill-learned`` in place of Telea after the detector) and ``--denoiser`` measure
trained candidates from their run folders.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import yaml
from PIL import Image
from skimage.metrics import structural_similarity

from chromatize.restore import Repair, restore
from chromatize.restore import damage as dmg
from chromatize.restore import tone
from chromatize.restore.pipeline import detector_for, restore_pixels, to_gray
from chromatize.training.damage import GRAIN_BLUR, DamageConfig, draw_damage

ROOT = Path(__file__).resolve().parents[1]


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    d = (a.astype(np.float64) - b) ** 2
    mse = d[mask].mean() if mask is not None else d.mean()
    return float(10 * np.log10(1 / max(mse, 1e-12)))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(structural_similarity(a, b, data_range=1.0))


def load(photos: Path, limit: int) -> list[tuple[str, np.ndarray]]:
    """``limit`` photos evenly spaced through the sorted folder: (name, RGB uint8)."""
    files = sorted(p for p in photos.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    pick = files[:: max(1, len(files) // limit)][:limit]
    return [(p.name, np.asarray(Image.open(p).convert("RGB"))) for p in pick]


def damage_config() -> DamageConfig:
    raw = yaml.safe_load((ROOT / "configs/restore_damage.yaml").read_text())["damage"]
    return dataclasses.replace(DamageConfig.from_dict(raw), grain=(0.0, 0.0), fade=(0.0, 0.0))


def quantize(g: np.ndarray) -> np.ndarray:
    return (np.clip(g * 255 + 0.5, 0, 255).astype(np.uint8)).astype(np.float32) / 255


#: The learned detector the benchmark measures: the shipped one, or ``--detector PATH``.
LEARNED: dict = {"detector": "learned", "inpaint": "telea", "skip_morph": False}


def repaired(damaged: np.ndarray, detector: str) -> tuple[np.ndarray, np.ndarray]:
    """The damage steps with ``detector`` (``morph`` or ``learned``): (gray, the
    detector's raw mask)."""
    found = LEARNED["detector"] if detector == "learned" else detector
    u8 = (damaged * 255 + 0.5).astype(np.uint8)
    out = restore_pixels(u8, Repair(("cracks", "dust"), detector=found,
                                    inpaint=LEARNED["inpaint"]))
    find = detector_for(Repair(detector=found))
    if getattr(find, "gate", None) is not None:  # the mask at the photo's own thresholds
        logits = find.logits(damaged)
        mask = find.mask(logits, find.seeds(logits) / logits[0].size)
    else:
        mask = find(damaged)
    return out.astype(np.float32) / 255, mask.any(0)


def damage_rows(photos: list, strengths: list[float], colorizer, inpainter=None) -> dict:
    """Per strength: method -> mean metrics (see the module); ``inpainter``: a learned
    one (:class:`chromatize.restore.refine.Refiner`) measured with the true mask too."""
    cfg, results = damage_config(), {}
    for s in strengths:
        rows: dict[str, list[dict]] = {}
        for i, (name, rgb) in enumerate(photos):
            clean = quantize(to_gray(rgb))
            d = draw_damage(clean, np.random.default_rng([i, int(s * 100)]),
                            dataclasses.replace(cfg, strength=s))
            damaged, true = quantize(d.image), d.mask.any(0)
            inside = dmg.grow(true, 1)
            outs = {"none": (damaged, None),
                    "true mask, telea": (dmg.inpaint(damaged, inside, "telea"), None),
                    "true mask, ns": (dmg.inpaint(damaged, inside, "ns"), None),
                    "learned": repaired(damaged, "learned")}
            if not LEARNED["skip_morph"]:
                outs["morph"] = repaired(damaged, "morph")
            if inpainter is not None:
                outs["true mask, learned"] = (inpainter.inpaint(damaged, inside), None)
            for method, (out, pred) in outs.items():
                row = {"psnr": psnr(out, clean), "ssim": ssim(out, clean),
                       "psnr_damage": psnr(out, clean, inside) if inside.any() else np.nan}
                if pred is not None:
                    row["precision"] = (pred & dmg.grow(true, 1)).sum() / max(pred.sum(), 1)
                    row["recall"] = (true & dmg.grow(pred, 1)).sum() / max(true.sum(), 1)
                if colorizer is not None and method in ("none", "learned"):
                    row["ciede2000"] = ciede(colorizer, out, rgb)
                rows.setdefault(method, []).append(row)
            if colorizer is not None:
                rows.setdefault("clean", []).append({"ciede2000": ciede(colorizer, clean, rgb)})
        results[s] = {m: {k: float(np.nanmean([r[k] for r in rs])) for k in rs[0]}
                      for m, rs in rows.items()}
    return results


def ciede(colorizer, gray: np.ndarray, rgb: np.ndarray) -> float:
    from chromatize.evaluation.metrics import ciede2000, to_lab

    out = colorizer.colorize((gray * 255 + 0.5).astype(np.uint8))
    return ciede2000(to_lab(np.asarray(out.convert("RGB"))), to_lab(rgb))


def clean_rows(photos: list) -> dict:
    """PSNR of ``restore`` (every step) against the clean photo itself."""
    values = []
    for _, rgb in photos:
        clean = (to_gray(rgb) * 255 + 0.5).astype(np.uint8)
        repair = Repair(detector=LEARNED["detector"], inpaint=LEARNED["inpaint"])
        out = np.asarray(restore(clean, repair), np.float32) / 255
        values.append(psnr(out, clean.astype(np.float32) / 255))
    v = np.array(values)
    return {"mean": float(np.mean(np.minimum(v, 99))), "min": float(v.min()),
            "at_least_40": int((v >= 40).sum()), "photos": len(v)}


def sharpness(g: np.ndarray) -> float:
    return float(np.mean(cv2.Laplacian(g, cv2.CV_32F) ** 2))


def grain_rows(photos: list, sigmas: list[float], denoiser=None) -> dict:
    """Grain: noisy, non-local means, the Gaussian blur whose sharpness (Laplacian
    energy) matches it, and the grain step as shipped (non-local means only on photos
    :func:`~chromatize.restore.tone.grain_sigma` takes for grainy); with ``denoiser`` (a learned one), its PSNR, SSIM and sharpness,
    beside non-local means' and the clean photo's. Also: how many clean photos, and
    how many grainy ones at each sigma, the grain step takes for grainy."""
    taken = [name for name, rgb in photos if tone.grain_sigma(quantize(to_gray(rgb))) > 0]
    results: dict = {"clean_taken_for_grainy": len(taken), "clean_photos": len(photos),
                     "clean_taken_names": taken}
    for sigma in sigmas:
        rows = []
        for i, (_, rgb) in enumerate(photos):
            clean = quantize(to_gray(rgb))
            rng = np.random.default_rng(i)
            noise = cv2.GaussianBlur(rng.standard_normal(clean.shape).astype(np.float32),
                                     (0, 0), GRAIN_BLUR)
            noisy = quantize(np.clip(clean + noise * sigma / noise.std(), 0, 1))
            est = dmg.noise_sigma(noisy)
            nlm = tone.denoise(noisy, est)
            target = sharpness(nlm)
            blurs = {b: cv2.GaussianBlur(noisy, (0, 0), b) for b in np.arange(0.2, 3.01, 0.05)}
            b = min(blurs, key=lambda k: abs(sharpness(blurs[k]) - target))
            shipped = np.asarray(restore((noisy * 255 + 0.5).astype(np.uint8), "grain"))
            rows.append({"estimated_sigma": est,
                         "taken_for_grainy": float(tone.grain_sigma(noisy) > 0),
                         "noisy": psnr(noisy, clean),
                         "nlm": psnr(nlm, clean), "shipped": psnr(shipped / 255, clean), "gauss_matched": psnr(blurs[b], clean),
                         "gauss_sigma": b, "nlm_ssim": ssim(nlm, clean),
                         "gauss_ssim": ssim(blurs[b], clean), "nlm_sharpness": target,
                         "clean_sharpness": sharpness(clean)})
            if denoiser is not None:
                learned = denoiser.denoise(noisy)
                rows[-1].update(learned=psnr(learned, clean), learned_ssim=ssim(learned, clean),
                                learned_sharpness=sharpness(learned))
                # non-local means as sharp as the learned one (its strength searched)
                u8 = (noisy * 255 + 0.5).astype(np.uint8)
                nlms = [cv2.fastNlMeansDenoising(u8, None, k * est * 255, tone.NLM_TEMPLATE,
                                                 tone.NLM_SEARCH).astype(np.float32) / 255
                        for k in (0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0)]
                best = min(nlms, key=lambda o: abs(sharpness(o) - sharpness(learned)))
                rows[-1].update(nlm_matched_learned=psnr(best, clean),
                                nlm_matched_learned_ssim=ssim(best, clean),
                                nlm_matched_learned_sharpness=sharpness(best))
        results[sigma] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    return results


def fade_rows(photos: list, fades: list[float]) -> dict:
    """Fading: PSNR of the faded and the levelled gray against the clean gray; and how
    many clean photos are taken for faded (the fade step alone changes them)."""
    from chromatize.restore.tone import measure_levels

    cleans = [(name, quantize(to_gray(rgb))) for name, rgb in photos]
    taken = [name for name, clean in cleans if not measure_levels(clean).identity]
    results: dict = {"clean_taken_for_faded": len(taken), "clean_photos": len(photos),
                     "clean_taken_names": taken}
    for f in fades:
        rows = []
        for _, clean in cleans:
            faded = quantize(f * 0.5 + (1 - f) * clean)
            out = np.asarray(restore((faded * 255 + 0.5).astype(np.uint8), "fade"),
                             np.float32) / 255
            rows.append({"faded": psnr(faded, clean), "levelled": psnr(out, clean)})
        results[f] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    return results


def speed(mp: float, photo: Path, inpainter: str | None = None) -> dict:
    """Wall and CPU seconds and memory of ``restore`` (every step, one torch thread) on a
    damaged ``mp``-megapixel photo (a damaged 1 MP copy of ``photo``, tiled), in a fresh
    process: its peak RSS, and the peak's growth over what the process held before the
    call (the photo itself included)."""
    code = f"""
import resource, time, numpy as np, torch
from PIL import Image
from chromatize.restore import Repair, restore
from chromatize.training.damage import draw_damage
torch.set_num_threads(1)
inpainter = {inpainter!r}
if inpainter:
    from chromatize.restore.refine import load_refiner
repair = Repair(inpaint=load_refiner(inpainter).inpaint if inpainter else "telea")
tile = np.asarray(Image.open({str(photo)!r}).convert('L').resize((1000, 1000)), np.float32)
tile = (draw_damage(tile / 255, np.random.default_rng(0)).image * 255 + 0.5).astype(np.uint8)
reps = max(1, round({mp} ** 0.5))
damaged = np.tile(tile, (reps, reps))[: int({mp} * 1e6 / (1000 * reps)) or 1000]
del tile
restore(damaged[:64, :64], repair)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
w, c = time.perf_counter(), time.process_time()
restore(damaged, repair)
w, c = time.perf_counter() - w, time.process_time() - c
print(w, c, damaged.size, base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    wall, cpu, size = float(out[0]), float(out[1]), int(out[2]) / 1e6
    base, peak = int(out[3]) / 1024, int(out[4]) / 1024
    return {"megapixels": size, "wall_s_per_mp": wall / size, "cpu_s_per_mp": cpu / size,
            "peak_rss_mb": peak, "growth_mb": peak - base}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=Path, default=Path("../shared/data/photos/val"))
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--strengths", default="0.5,1,2")
    ap.add_argument("--no-colorize", action="store_true")
    ap.add_argument("--model", default="default")
    ap.add_argument("--speed", default="1,4,16", help="megapixels ('' to skip)")
    ap.add_argument("--sections", default="damage,clean,grain,fade,speed")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--detector", help="a saved detector (PATH of PATH.safetensors) "
                    "measured as 'learned' instead of the shipped one")
    ap.add_argument("--skip-morph", action="store_true", help="leave the morphological "
                    "detector out (its rows take longest)")
    ap.add_argument("--inpainter", help="a learned inpainting (refine_train) to measure")
    ap.add_argument("--fill-learned", action="store_true", help="restore fills the "
                    "detected damage with --inpainter instead of Telea (damage, clean, speed)")
    ap.add_argument("--denoiser", help="a learned denoiser (refine_train) to measure")
    args = ap.parse_args()
    sections = args.sections.split(",")
    photos = load(args.photos, args.limit)
    print(f"{len(photos)} photos of {args.photos}, evenly spaced")
    from chromatize.restore.net import load_detector
    from chromatize.restore.refine import load_refiner

    if args.detector:
        LEARNED["detector"] = load_detector(args.detector)
    LEARNED["skip_morph"] = args.skip_morph
    inpainter = load_refiner(args.inpainter) if args.inpainter else None
    if args.fill_learned and inpainter is not None:
        LEARNED["inpaint"] = inpainter.inpaint
    denoiser = load_refiner(args.denoiser) if args.denoiser else None
    colorizer = None
    if "damage" in sections and not args.no_colorize:
        from chromatize.inference.pipeline import Colorizer

        colorizer = Colorizer.load(args.model)
    t = time.time()
    run = {"damage": lambda: damage_rows(photos, [float(s) for s in args.strengths.split(",")],
                                         colorizer, inpainter),
           "clean": lambda: clean_rows(photos),
           "grain": lambda: grain_rows(photos, [0.02, 0.03, 0.04], denoiser),
           "fade": lambda: fade_rows(photos, [0.1, 0.2, 0.3, 0.5]),
           "speed": lambda: {mp: speed(float(mp), args.photos / photos[0][0],
                                       args.inpainter if args.fill_learned else None)
                             for mp in args.speed.split(",") if mp}}
    report = {"photos": [n for n, _ in photos]}
    for name in sections:
        report[name] = run[name]()
        print(name, json.dumps(report[name], indent=1, default=str), flush=True)
    report["wall_seconds"] = time.time() - t
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
