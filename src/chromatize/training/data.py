"""Training data: photos -> random crops -> (L*, a*b*) tensors.

Sources (``data.train`` / ``data.val``): a folder searched recursively, a ``.txt`` file of
paths (relative ones are taken from the list file's folder), or WebDataset ``.tar``
shards for ImageNet-sized sets. Folder and list sources are scanned once up front: gray
photos (mean chroma below ``min_chroma``) and unreadable files are dropped, logged and
counted, never fatal. With ``cache`` the scan also keeps every photo decoded and
pre-resized in RAM (short side ``crop * (1 + scale_jitter)``), shared with the worker
processes by fork.

A sample is ``(l, ab)``: ``l`` float32 ``(1, crop, crop)`` in [0, 100], ``ab`` float32
``(2, crop, crop)`` in Lab units. Augmentation: the short side is resized to
``crop * U(1, 1 + scale_jitter)`` keeping the aspect ratio, a random ``crop`` square is
cut, and flipped horizontally with probability 1/2.

Reproducibility does not depend on the number of workers: :class:`StreamSampler` yields
``(index, epoch)`` keys, and each sample's augmentation is drawn from a generator seeded
by ``(seed, epoch, index)``.
"""

from __future__ import annotations

import logging
import math
import os
import signal
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import (
    DataLoader,
    Dataset,
    DistributedSampler,
    IterableDataset,
    Sampler,
)

from chromatize import color
from chromatize.training.config import DataConfig
from chromatize.io import list_photos as list_folder
from chromatize.errors import ChromatizeError

log = logging.getLogger(__name__)

_CHROMA_SIDE = 64  # JPEGs are decoded no smaller than this for the colour check


class DataError(ChromatizeError, ValueError):
    """A data source is missing or holds no usable colour photo."""


@dataclass
class PhotoSet:
    """The usable photos of a source, and what the scan dropped."""

    source: str
    paths: list[Path]
    images: list[np.ndarray] | None = None  # cached uint8 (H, W, 3), aligned with paths
    short_sides: list[int] = field(default_factory=list)  # of the files, aligned with paths
    skipped_gray: int = 0
    skipped_unreadable: int = 0
    unreadable: list[str] = field(default_factory=list)  # "path: reason", first few

    def summary(self) -> dict[str, Any]:
        return {"source": self.source, "count": len(self.paths),
                "skipped_gray": self.skipped_gray, "skipped_unreadable": self.skipped_unreadable}

    def take(self, indices: Sequence[int]) -> PhotoSet:
        """These photos, in this order (the scan's counts kept)."""
        return replace(self, paths=[self.paths[i] for i in indices],
                       images=None if self.images is None else [self.images[i] for i in indices],
                       short_sides=[self.short_sides[i] for i in indices])


def nested_subset(photos: PhotoSet, limit: int | None, seed: int | None,
                  ) -> tuple[PhotoSet, PhotoSet]:
    """``(pool, subset)``: all of ``photos`` shuffled by ``seed`` (kept in order when
    None), and the first ``limit`` photos of that pool (all when None). Subsets of one
    seed are nested, and the order depends on the seed and the photos alone. Raises
    :class:`DataError` when ``limit`` exceeds the photos."""
    n = len(photos.paths)
    if limit is not None and limit > n:
        raise DataError(f"{photos.source}: data.limit {limit} exceeds the {n} usable photos")
    pool = photos if seed is None else photos.take(np.random.default_rng(seed).permutation(n))
    return pool, pool if limit is None else pool.take(range(limit))


def is_shards(source: str) -> bool:
    """True when ``source`` names WebDataset shards rather than a folder or list."""
    return ".tar" in Path(source).name


def list_photos(source: str) -> list[Path]:
    """Image files of a folder (recursive, sorted) or of a ``.txt`` list of paths."""
    p = Path(source)
    if p.is_dir():
        return list_folder(p)
    if p.is_file() and p.suffix == ".txt":
        lines = [ln.strip() for ln in p.read_text().splitlines()]
        return [p.parent / ln for ln in lines if ln and not ln.startswith("#")]
    raise DataError(f"{source}: not a folder, a .txt list of photos or .tar shards")


def decode(path: Path, min_short: int) -> Image.Image:
    """Decode ``path`` upright; JPEGs are decoded at a reduced scale when the short side
    stays >= ``min_short``. Returns mode ``RGB``, or ``L`` for gray files."""
    with Image.open(path) as im:
        w, h = im.size
        f = min_short / max(1, min(w, h))
        if f < 1:
            im.draft("RGB", (math.ceil(w * f), math.ceil(h * f)))
        im = ImageOps.exif_transpose(im)
        im.load()
    if im.mode in ("L", "I;16", "I", "1"):
        return im.convert("L")
    return im.convert("RGB")


def resize_short(im: Image.Image, short: int) -> Image.Image:
    """Shrink ``im`` so its short side is ``short`` (never enlarges), keeping the aspect."""
    w, h = im.size
    f = short / min(w, h)
    if f >= 1:
        return im
    return im.resize((max(1, round(w * f)), max(1, round(h * f))), Image.BILINEAR)


def scan_photos(source: str, min_chroma: float, cache_short: int | None = None,
                threads: int | None = None) -> PhotoSet:
    """Decode every photo of ``source`` once, drop gray and unreadable ones.

    ``cache_short``: keep the photos in RAM, shrunk to this short side. Raises
    :class:`DataError` when nothing usable is left.
    """
    paths = list_photos(source)

    def inspect(path: Path) -> tuple[str, np.ndarray | None, int]:
        try:
            with Image.open(path) as header:  # the file's own size, before any draft
                short = min(header.size)
            im = decode(path, cache_short or _CHROMA_SIDE)
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            return f"unreadable: {e}", None, 0
        if not color.is_color(im, min_chroma=min_chroma):
            return "gray", None, short
        return "ok", np.asarray(resize_short(im, cache_short)) if cache_short else None, short

    # Pillow releases the GIL while decoding, so threads scale over the cores.
    with ThreadPoolExecutor(threads or os.cpu_count() or 1) as pool:
        results = list(pool.map(inspect, paths))
    out = PhotoSet(source, [], [] if cache_short else None)
    for path, (status, array, short) in zip(paths, results):
        if status == "ok":
            out.paths.append(path)
            out.short_sides.append(short)
            if out.images is not None:
                out.images.append(array)  # type: ignore[arg-type]
        elif status == "gray":
            out.skipped_gray += 1
        else:
            out.skipped_unreadable += 1
            log.warning("skipping %s: %s", path, status)
            if len(out.unreadable) < 5:
                out.unreadable.append(f"{path}: {status}")
    if out.skipped_gray:
        log.warning("%s: skipped %d gray photos (mean chroma < %g)", source, out.skipped_gray,
                     min_chroma)
    if not out.paths:
        raise DataError(f"{source}: no usable colour photo ({len(paths)} files, "
                        f"{out.skipped_gray} gray, {out.skipped_unreadable} unreadable)")
    return out


def to_lab(rgb: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 ``(H, W, 3)`` -> ``(l (1, H, W) in [0, 100], ab (2, H, W))`` float32."""
    t = torch.from_numpy(np.array(rgb)).permute(2, 0, 1).float().div_(255)  # a writable copy
    lab = color.rgb_to_lab(t)
    return lab[:1], lab[1:]


def random_crop(im: Image.Image, crop: int, scale_jitter: float, flip: bool,
                rng: np.random.Generator) -> np.ndarray:
    """Resize (short side ``crop * U(1, 1 + scale_jitter)``), cut a random square, maybe
    flip: uint8 ``(crop, crop, 3)``. Resize and cut are one resampling of the source."""
    x0, y0, side, mirror = crop_window(*im.size, crop, scale_jitter, flip, rng)
    out = im.resize((crop, crop), Image.BILINEAR, box=(x0, y0, x0 + side, y0 + side))
    rgb = np.asarray(out)
    return rgb[:, ::-1] if mirror else rgb


def crop_window(w: int, h: int, crop: int, scale_jitter: float, flip: bool,
                rng: np.random.Generator) -> tuple[float, float, float, bool]:
    """The random window of a training crop of a ``w`` x ``h`` photo: its top-left corner
    and side in source pixels, and whether it is mirrored (the draws, in this order, that
    make a crop; shared by :func:`random_crop` and :class:`DeviceCrops`)."""
    scale = crop * (1 + rng.uniform(0, scale_jitter)) / min(w, h)
    side = min(crop / scale, w, h)  # the window's side in source pixels (min: rounding)
    x0, y0 = rng.uniform(0, w - side), rng.uniform(0, h - side)
    return x0, y0, side, bool(flip and rng.random() < 0.5)


class PhotoCrops(Dataset):
    """Random training crops of a :class:`PhotoSet`, indexed by ``(index, epoch)`` keys."""

    def __init__(self, photos: PhotoSet, crop: int, scale_jitter: float = 0.0,
                 flip: bool = True, seed: int = 0) -> None:
        self.photos, self.crop, self.jitter, self.flip, self.seed = photos, crop, scale_jitter, flip, seed

    def __len__(self) -> int:
        return len(self.photos.paths)

    def image(self, index: int) -> Image.Image:
        if self.photos.images is not None:
            return Image.fromarray(self.photos.images[index])
        return decode(self.photos.paths[index], math.ceil(self.crop * (1 + self.jitter))).convert("RGB")

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, epoch = key
        rng = np.random.default_rng([self.seed, epoch, index])
        return to_lab(random_crop(self.image(index), self.crop, self.jitter, self.flip, rng))


class StreamSampler(Sampler[tuple[int, int]]):
    """Endless ``(index, epoch)`` keys: each epoch a :class:`DistributedSampler` shuffle
    (seeded by ``seed`` and the epoch; this rank's share), starting ``start`` keys in."""

    def __init__(self, n: int, seed: int, rank: int = 0, world: int = 1, start: int = 0) -> None:
        self.sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True,
                                          seed=seed, drop_last=world > 1)
        if len(self.sampler) == 0:
            raise DataError(f"{n} photos cannot be shared among {world} processes")
        self.start = start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, skip = divmod(self.start, len(self.sampler))
        while True:
            self.sampler.set_epoch(epoch)
            for i, index in enumerate(self.sampler):
                if i >= skip:
                    yield index, epoch
            epoch, skip = epoch + 1, 0

    def __len__(self) -> int:  # per epoch; the stream itself never ends
        return len(self.sampler)


class ShardCrops(IterableDataset):
    """Random crops streamed from WebDataset shards; gray or broken samples are skipped.

    Shards are split over processes and workers and shuffled per pass, so order is
    seeded but a resumed run restarts the stream rather than continuing it exactly.
    """

    def __init__(self, urls: str | list[str], cfg: DataConfig, seed: int, start: int = 0) -> None:
        self.urls, self.cfg, self.seed, self.start = urls, cfg, seed, start

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        import webdataset as wds

        info = torch.utils.data.get_worker_info()
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        # one seed per (run seed, resume point, process, worker): streams differ, yet repeat
        seed = int(np.random.SeedSequence([self.seed, self.start, rank, info.id if info else 0])
                   .generate_state(1)[0])
        rng = np.random.default_rng(seed)
        stream = wds.WebDataset(self.urls, resampled=True, shardshuffle=False, seed=seed,
                                handler=wds.warn_and_continue, nodesplitter=wds.split_by_node)
        stream = stream.shuffle(1000, seed=seed)
        stream = stream.decode("pil", handler=wds.warn_and_continue).to_tuple("jpg;jpeg;png;webp")
        for (im,) in stream:
            im = im.convert("RGB")
            if color.is_color(im, min_chroma=self.cfg.min_chroma):
                yield to_lab(random_crop(im, self.cfg.crop, self.cfg.scale_jitter, self.cfg.flip, rng))


class DeviceCrops:
    """Endless ``(l (B, 1, c, c), ab (B, 2, c, c))`` batches cut on the training device
    from cached photos kept there (``data.device_cache``): for a GPU whose loader workers
    cannot keep up (one H200 trains the default at several thousand crops a second, about
    ten loader processes' worth).

    The photos (``PhotoSet.images``) are copied once into one zero-padded uint8 tensor
    ``(N, 3, Hmax, Wmax)``; a photo whose long side exceeds twice its short side keeps its
    centre part of that shape. Each batch takes the same ``(index, epoch)`` keys and the
    same per-sample random draws as :class:`PhotoCrops` (so it resumes exactly, and crops
    the same windows) and cuts every window with one bilinear ``grid_sample``; Lab is then
    computed on the device. Bilinear without antialiasing: the crops are resized by at
    most ``1 + scale_jitter``, so nothing is shrunk enough to alias.
    """

    def __init__(self, photos: PhotoSet, crop: int, scale_jitter: float, flip: bool,
                 batch_size: int, seed: int, device: torch.device, rank: int = 0,
                 world: int = 1, start: int = 0) -> None:
        if photos.images is None:
            raise DataError("data.device_cache needs data.cache: true (photos kept decoded)")
        arrays = [_centre_part(a) for a in photos.images]
        self.sizes = np.array([a.shape[:2] for a in arrays])  # (N, 2): h, w
        hmax, wmax = self.sizes.max(0)
        store = torch.zeros(len(arrays), 3, int(hmax), int(wmax), dtype=torch.uint8)
        for i, a in enumerate(arrays):
            store[i, :, :a.shape[0], :a.shape[1]] = torch.tensor(a).permute(2, 0, 1)
        self.store = store.to(device)
        self.crop, self.jitter, self.flip, self.seed = crop, scale_jitter, flip, seed
        self.batch_size, self.device = batch_size, device
        self.keys = iter(StreamSampler(len(arrays), seed, rank, world, start))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        keys = [next(self.keys) for _ in range(self.batch_size)]
        index = np.array([k[0] for k in keys])
        theta = np.zeros((len(keys), 2, 3), np.float32)
        hmax, wmax = self.store.shape[-2:]
        for j, (i, epoch) in enumerate(keys):
            h, w = self.sizes[i]
            x0, y0, side, mirror = crop_window(int(w), int(h), self.crop, self.jitter, self.flip,
                                               np.random.default_rng([self.seed, epoch, i]))
            # Output coordinate u in [-1, 1] -> source x0 + (u + 1) / 2 * side, normalised.
            theta[j, 0] = [(-1 if mirror else 1) * side / wmax, 0, (2 * x0 + side) / wmax - 1]
            theta[j, 1] = [0, side / hmax, (2 * y0 + side) / hmax - 1]
        src = self.store[torch.from_numpy(index).to(self.device)].float().div_(255)
        grid = torch.nn.functional.affine_grid(torch.from_numpy(theta).to(self.device),
                                               [len(keys), 3, self.crop, self.crop],
                                               align_corners=False)
        rgb = torch.nn.functional.grid_sample(src, grid, mode="bilinear", padding_mode="border",
                                              align_corners=False).clamp_(0, 1)
        lab = color.rgb_to_lab(rgb)
        return lab[:, :1].contiguous(), lab[:, 1:].contiguous()


def _centre_part(a: np.ndarray, max_aspect: float = 2.0) -> np.ndarray:
    """The centre of ``a`` ``(H, W, 3)`` with its long side at most ``max_aspect`` x the
    short one."""
    h, w = a.shape[:2]
    if w > max_aspect * h:
        keep = int(max_aspect * h)
        return a[:, (w - keep) // 2:(w - keep) // 2 + keep]
    if h > max_aspect * w:
        keep = int(max_aspect * w)
        return a[(h - keep) // 2:(h - keep) // 2 + keep]
    return a


def center_crops(photos: PhotoSet, crop: int, limit: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``limit`` photos, short side resized to ``crop``, centre square:
    ``(l (N, 1, crop, crop), ab (N, 2, crop, crop))``."""
    ls, abs_ = [], []
    for i in range(min(limit, len(photos.paths))):
        im = (Image.fromarray(photos.images[i]) if photos.images is not None
              else decode(photos.paths[i], crop).convert("RGB"))
        im = ImageOps.fit(im, (crop, crop), Image.BILINEAR)
        l, ab = to_lab(np.asarray(im))
        ls.append(l)
        abs_.append(ab)
    return torch.stack(ls), torch.stack(abs_)


def leave_signals_to_trainer(worker_id: int) -> None:
    """Workers ignore Ctrl-C and SIGTERM, which reach the whole process group (a terminal,
    `timeout`, a job scheduler); the trainer stops cleanly after the current step instead
    of dying on a killed worker. Workers still exit when the trainer does."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def train_loader(photos: PhotoSet | str | list[str], cfg: DataConfig, batch_size: int, seed: int,
                 rank: int = 0, world: int = 1, start: int = 0) -> DataLoader:
    """An endless loader of ``(l (B, 1, c, c), ab (B, 2, c, c))`` batches for this rank,
    beginning after ``start`` samples (so a resumed run sees the same batches)."""
    common: dict[str, Any] = {"batch_size": batch_size, "num_workers": cfg.workers,
                              "pin_memory": torch.cuda.is_available(), "drop_last": True,
                              # own generator: creating the iterator must not draw from
                              # the global RNG, or resumed runs would diverge
                              "generator": torch.Generator().manual_seed(seed),
                              "worker_init_fn": leave_signals_to_trainer}
    if cfg.workers:
        common["prefetch_factor"] = 4
    if not isinstance(photos, PhotoSet):
        return DataLoader(ShardCrops(photos, cfg, seed, start), **common)
    dataset = PhotoCrops(photos, cfg.crop, cfg.scale_jitter, cfg.flip, seed)
    sampler = StreamSampler(len(dataset), seed, rank, world, start)
    return DataLoader(dataset, sampler=sampler, **common)


def open_source(source: str | list[str], cfg: DataConfig) -> PhotoSet | str | list[str]:
    """Scan a folder or list, or several (see :func:`scan_photos`), into one
    :class:`PhotoSet`; shard patterns pass through (a list of them as a list)."""
    sources = [source] if isinstance(source, str) else list(source)
    if not sources:
        raise DataError("no source given")
    shards = [is_shards(s) for s in sources]
    if any(shards):
        if not all(shards):
            raise DataError(f"{', '.join(sources)}: mix of shards and folders; use one kind")
        return source
    cache = math.ceil(cfg.crop * (1 + cfg.scale_jitter)) if cfg.cache else None
    sets = [scan_photos(s, cfg.min_chroma, cache) for s in sources]
    if len(sets) == 1:
        check_crop(sets[0], cfg.crop)
        return sets[0]
    out = PhotoSet(", ".join(sources), [], [] if cache else None)
    for part in sets:
        out.paths += part.paths
        out.short_sides += part.short_sides
        if out.images is not None:
            out.images += part.images  # type: ignore[operator]
        out.skipped_gray += part.skipped_gray
        out.skipped_unreadable += part.skipped_unreadable
        out.unreadable += part.unreadable
    check_crop(out, cfg.crop)
    return out


def check_crop(photos: PhotoSet, crop: int) -> None:
    """Refuse a crop larger than most photos: each crop would be enlarged to ``crop`` x
    ``crop`` pixels, so memory grows with crop squared for no new detail (a 4992 crop
    of small photos filled 21.8 GB). Raises :class:`DataError`."""
    small = sum(s < crop for s in photos.short_sides)
    if 2 * small > len(photos.short_sides):
        median = int(np.median(photos.short_sides))
        raise DataError(f"{photos.source}: data.crop {crop} is larger than the short side "
                        f"of {small} of {len(photos.short_sides)} photos (median {median} px); "
                        f"choose data.crop <= {median}")
    if small:
        log.warning("%s: %d photos are smaller than data.crop %d and will be enlarged",
                    photos.source, small, crop)


def source_summary(photos: PhotoSet | str | list[str]) -> dict[str, Any]:
    """What the checkpoint records about the data."""
    if isinstance(photos, PhotoSet):
        return photos.summary()
    return {"source": photos, "count": None}

