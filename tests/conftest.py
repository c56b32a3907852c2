"""Shared fixtures: tiny generated photos and a tiny saved checkpoint."""

from __future__ import annotations

import errno
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from chromatize.checkpoint import save_checkpoint
from chromatize.models import create_model


def make_color_photo(h: int = 48, w: int = 64, seed: int = 0) -> Image.Image:
    """A smooth colourful RGB test picture: gradients plus a few coloured blocks."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    rgb = np.stack([x, y, 1 - x * y], -1)
    for _ in range(3):
        r0, c0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
        rgb[r0:r0 + h // 3, c0:c0 + w // 3] = rng.random(3)
    return Image.fromarray((rgb * 255).astype(np.uint8), "RGB")


@pytest.fixture(autouse=True, scope="session")
def _onnx_cache(tmp_path_factory: pytest.TempPathFactory):
    """Graphs that ``Colorizer.load`` exports for its ONNX Runtime backend (``auto``, with
    the scale extra installed) are cached in the session's temporary folder, not in the
    user's ``~/.cache``."""
    patch = pytest.MonkeyPatch()
    patch.setenv("CHROMATIZE_CACHE", str(tmp_path_factory.mktemp("onnx_cache")))
    yield
    patch.undo()


@pytest.fixture
def read_only(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    """``read_only(folder)`` makes ``folder`` behave as on a read-only mount, for root too:
    every call that would change something in it fails with EROFS (even removing a file
    that is not there), and ``os.access`` says it is not writable; reading still works."""
    frozen: list[Path] = []

    def inside(path: object) -> bool:
        p = Path(os.fsdecode(path)).absolute()  # type: ignore[arg-type]
        return any(p == f or f in p.parents for f in frozen)

    def refuse(path: object) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))  # type: ignore[arg-type]

    def guard(name: str, writes: Callable[..., bool] = lambda *a, **k: True) -> None:
        real = getattr(os, name)

        def call(path: object, *args: object, **kwargs: object) -> object:
            if inside(path) and writes(*args, **kwargs):
                refuse(path)
            return real(path, *args, **kwargs)

        monkeypatch.setattr(os, name, call)

    writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT
    guard("open", lambda flags, *a, **k: bool(flags & writing))
    for name in ("unlink", "mkdir", "rmdir", "chmod"):
        guard(name)
    real_replace, real_access = os.replace, os.access
    monkeypatch.setattr(os, "replace", lambda src, dst, **kw: refuse(dst) if inside(dst)
                        else real_replace(src, dst, **kw))
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if inside(path)
                        and mode & os.W_OK else real_access(path, mode, **kw))
    return lambda folder: frozen.append(Path(folder).absolute())


@pytest.fixture
def color_photo() -> Image.Image:
    return make_color_photo()


@pytest.fixture
def tiny_checkpoint(tmp_path: Path) -> Path:
    """A randomly initialised ``unet_tiny`` saved as a checkpoint; returns its path stem."""
    torch.manual_seed(0)
    model = create_model("unet_tiny")
    path = tmp_path / "ckpt" / "tiny"
    save_checkpoint(path, model.eval(), "unet_tiny", {}, working_size=64, step=0)
    return path


@pytest.fixture
def photo_tree(tmp_path: Path) -> Path:
    """``photos/`` with 6 colour photos in two sub-folders, one gray photo and one corrupt
    file: 6 usable, 1 gray, 1 unreadable."""
    root = tmp_path / "photos"
    for i in range(6):
        sub = root / ("a" if i % 2 else "b/deep")
        sub.mkdir(parents=True, exist_ok=True)
        make_color_photo(40 + 4 * i, 64 - 4 * i, seed=i).save(sub / f"p{i}.png")
    make_color_photo(48, 48, seed=9).convert("L").convert("RGB").save(root / "gray.jpg")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root

def gray_photo(h: int = 48, w: int = 64) -> Image.Image:
    """The test picture in 8-bit gray."""
    return make_color_photo(h, w).convert("L")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def write_huge_png(path: Path, side: int) -> None:
    """A real, valid 1-bit ``side`` x ``side`` PNG of a few hundred kB, written row by
    row so that it never needs the pixels in memory."""
    z = zlib.compressobj(9)
    row = b"\0" * (1 + (side + 7) // 8)  # filter byte + packed bits
    data = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
                     + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b""))


def save_tiny_model(folder: Path, name: str, **kw: object) -> Path:
    """A registered model ``name`` built with ``kw`` (e.g. ``width=8``) and saved as a
    checkpoint in ``folder``; zero-initialised weights (hint inputs) are randomised so that
    every input matters, as after training. Returns the checkpoint's path stem."""
    torch.manual_seed(0)
    model = create_model(name, **kw).eval()
    for p in model.parameters():
        if p.dim() > 1 and p.abs().sum() == 0:
            torch.nn.init.normal_(p, std=0.5)
    save_checkpoint(folder / name, model, name, kw, working_size=64)
    return folder / name
