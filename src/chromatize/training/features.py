"""Cached encoder features for the frozen-encoder phase of training.

While the encoder is frozen (``model.freeze_encoder_steps``), its features are a pure
function of the crop's L*, yet on a CPU the encoder's forward pass is most of a training
step. So the cache runs it once: for every photo of the training set, ``views`` random
crops (the training augmentation: scale jitter, random window, flip), their feature maps
stored in float16 and the target ab area-pooled to the model's chroma stride. The decoder
then trains on batches drawn from the cache (:class:`FeatureBatches`), several times
faster per image than the whole network (``benchmarks/train_speed.py``).

The cache is a folder of ``.npy`` files read as memory maps (about 150 kB a view at a
160-px crop), plus ``cache.json`` naming what it holds: the photos, the crop settings and
a digest of the encoder weights. A cache that does not match is rebuilt; one whose build
was interrupted continues where it stopped. Keep it outside the repository (e.g.
``/work/cache``); it is derived data and can be deleted at any time.

Models opt in with two methods: ``encode(l) -> list[Tensor]`` (the maps the decoder
reads) and ``decode(feats) -> dict`` (the model contract's output).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from chromatize.io import atomic_write_bytes

log = logging.getLogger(__name__)

CACHE_JSON = "cache.json"
_CHUNK = 64  # photos' views encoded per forward pass


def _digest(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.encoder_module().state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class FeatureCache:
    """The arrays of a built cache: ``feats[k]`` ``(N, C_k, h_k, w_k)`` float16 memory maps
    and ``ab`` ``(N, 2, h, w)`` float16 in Lab units (area means over each chroma cell),
    ``N = photos * views``; entry ``i * views + v`` is view ``v`` of photo ``i``.
    ``photos``: use only the first ones (a prefix of the cache, for a subset of the data)."""

    def __init__(self, folder: Path, meta: dict[str, Any], photos: int | None = None) -> None:
        self.folder, self.meta = folder, meta
        self.feats = [np.load(folder / f"f{k}.npy", mmap_mode="r") for k in range(meta["maps"])]
        self.ab = np.load(folder / "ab.npy", mmap_mode="r")
        self.size = int(self.ab.shape[0]) if photos is None else photos * meta["views"]

    def __len__(self) -> int:
        return self.size

    def take(self, idx: np.ndarray, maps: int | None = None,
             ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Entries ``idx`` as float32 tensors (sorted reads: the memory map is on disk);
        only the first ``maps`` feature maps when given."""
        order = np.sort(idx)
        feats = [torch.from_numpy(np.asarray(f[order], dtype=np.float32))
                 for f in self.feats[:maps]]
        return feats, torch.from_numpy(np.asarray(self.ab[order], dtype=np.float32))


def build(model: torch.nn.Module, photos: Any, folder: str | Path, crop: int,
          scale_jitter: float, flip: bool, views: int, seed: int, bf16: bool = False,
          progress: Any = None, need: int | None = None) -> FeatureCache:
    """Encode ``views`` random crops of every photo of ``photos`` (a
    :class:`chromatize.training.data.PhotoSet`) with ``model``'s frozen encoder, or reuse a
    matching cache in ``folder``. Crops are drawn as in training, from a generator seeded
    by ``(seed, photo index, view)``, so a rebuilt cache is the same. ``bf16``: encode
    under bfloat16 autocast (as training with ``precision: bf16`` would).
    ``progress(done, total)`` is called as photos are encoded. ``need``: encode (and
    return) only the first ``need`` photos for now; a later call continues the cache."""
    from chromatize.training import data as datamod  # the loader's augmentation, one home

    folder = Path(folder).expanduser()
    key = {"photos": [str(p) for p in photos.paths], "crop": crop, "scale_jitter": scale_jitter,
           "flip": flip, "views": views, "seed": seed, "encoder": _digest(model), "bf16": bf16}
    key_hash = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    meta_path = folder / CACHE_JSON
    meta: dict[str, Any] | None = None
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            meta = None
        if meta is not None and meta.get("key") != key_hash:
            log.warning("%s: cache built for other photos or settings; rebuilding", folder)
            meta = None
    n_photos = len(photos.paths)
    target = n_photos if need is None else min(need, n_photos)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        probe = model.encode(torch.zeros(1, 1, crop, crop))
        ab_side = crop // model.ab_stride
        if meta is None:
            folder.mkdir(parents=True, exist_ok=True)
            n = n_photos * views
            for k, f in enumerate(probe):
                np.lib.format.open_memmap(folder / f"f{k}.npy", "w+", np.float16, (n, *f.shape[1:]))
            np.lib.format.open_memmap(folder / "ab.npy", "w+", np.float16, (n, 2, ab_side, ab_side))
            meta = {"key": key_hash, "maps": len(probe), "photos": n_photos, "views": views,
                    "done": 0, "crop": crop, "sources": photos.source}
            atomic_write_bytes(meta_path, json.dumps(meta).encode())
        feats = [np.load(folder / f"f{k}.npy", mmap_mode="r+") for k in range(meta["maps"])]
        abs_ = np.load(folder / "ab.npy", mmap_mode="r+")
        crops_ds = datamod.PhotoCrops(photos, crop, scale_jitter, flip, seed)
        while meta["done"] < target:
            lo = meta["done"]
            hi = min(target, lo + max(1, _CHUNK // views))
            ls, ab_t = [], []
            for i in range(lo, hi):
                im = crops_ds.image(i)
                for v in range(views):
                    rng = np.random.default_rng([seed, i, v])
                    l, ab = datamod.to_lab(datamod.random_crop(im, crop, scale_jitter, flip, rng))
                    ls.append(l)
                    ab_t.append(ab)
            device = next(model.parameters()).device
            batch = torch.stack(ls).to(device).contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                out = model.encode(batch)
            rows = slice(lo * views, hi * views)
            for arr, f in zip(feats, out):
                arr[rows] = f.to(torch.float16).cpu().numpy()
            abs_[rows] = F.adaptive_avg_pool2d(torch.stack(ab_t), ab_side).to(torch.float16).numpy()
            for arr in (*feats, abs_):
                arr.flush()
            meta["done"] = hi
            # atomic: a run reading a prefix of the cache may open it meanwhile
            atomic_write_bytes(meta_path, json.dumps(meta).encode())
            if progress is not None:
                progress(hi, target)
    model.train(was_training)
    return FeatureCache(folder, meta, target)


class FeatureBatches:
    """Endless batches ``(feats, ab)`` from a :class:`FeatureCache`: each pass over the
    entries a fresh permutation seeded by ``(seed, pass)``, starting ``start`` entries
    into the stream, so a resumed run draws exactly the batches it would have drawn.
    ``maps``: read only the first feature maps (for a partly trainable encoder)."""

    def __init__(self, cache: FeatureCache, batch_size: int, seed: int, start: int = 0,
                 maps: int | None = None) -> None:
        self.cache, self.batch_size, self.seed, self.pos = cache, batch_size, seed, start
        self.maps = maps

    def _perm(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.cache))

    def __iter__(self) -> Iterator[tuple[list[torch.Tensor], torch.Tensor]]:
        n = len(self.cache)
        while True:
            idx = []
            need = self.batch_size
            while need:
                epoch, offset = divmod(self.pos, n)
                part = self._perm(epoch)[offset:offset + need]
                idx.append(part)
                need -= len(part)
                self.pos += len(part)
            yield self.cache.take(np.concatenate(idx), self.maps)


__all__ = ["FeatureBatches", "FeatureCache", "build"]
