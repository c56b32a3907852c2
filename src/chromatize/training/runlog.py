"""What a run writes while it trains: ``log.csv``, TensorBoard events in ``tb/`` and
picture grids in ``grids/``. Only the logging process (rank 0) creates one."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from chromatize import color
from chromatize.errors import ChromatizeError
from chromatize.io import atomic_write_bytes

COLUMNS = ["step", "train_loss", "lr", "images_per_s", "val_loss", "val_ab_rmse"]


class RunLog:
    """Scalars to CSV and TensorBoard, grids to PNG. ``resume_step``: a resumed run drops
    the rows a crash left after its last checkpoint, so the log matches the weights."""

    def __init__(self, run_dir: Path, resume_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.run_dir = run_dir
        self.csv_path = run_dir / "log.csv"
        rows: list[dict[str, str]] = []
        if resume_step is not None and self.csv_path.is_file():
            rows = _rows_until(self.csv_path, resume_step)
        with self.csv_path.open("w", newline="") as f:
            # An older or hand-edited log may have other columns: only ours are kept.
            writer = csv.DictWriter(f, COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        self.tb = SummaryWriter(str(run_dir / "tb"),
                                purge_step=None if resume_step is None else resume_step + 1)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Append one CSV row (unknown columns are an error) and the TensorBoard scalars."""
        with self.csv_path.open("a", newline="") as f:
            csv.DictWriter(f, COLUMNS).writerow({"step": step, **values})
        for name, v in values.items():
            self.tb.add_scalar(name.replace("_", "/", 1), v, step)

    def grid(self, step: int, l: torch.Tensor, pred_ab: torch.Tensor, ab: torch.Tensor) -> Path:
        """Save ``grids/step_XXXXXX.png``: one row per photo, gray | prediction | truth.

        ``l`` ``(N, 1, H, W)``, ``ab`` ``(N, 2, H, W)``; ``pred_ab`` ``(N, 2, h, w)`` is
        upsampled bilinearly to ``H x W``.
        """
        pred_ab = F.interpolate(pred_ab.float(), size=l.shape[-2:], mode="bilinear",
                                align_corners=False)
        gray = torch.cat([l, torch.zeros_like(ab)], 1)
        panels = [color.lab_to_rgb(torch.cat([l, a], 1)) for a in (pred_ab, ab)]
        rows = torch.cat([color.lab_to_rgb(gray), *panels], dim=3)  # (N, 3, H, 3W)
        picture = torch.cat(list(rows), dim=1)  # (3, N*H, 3W)
        array = (picture.permute(1, 2, 0) * 255).round().byte().cpu().numpy()
        buf = io.BytesIO()
        Image.fromarray(array).save(buf, format="PNG")
        path = self.run_dir / "grids" / f"step_{step:06d}.png"
        atomic_write_bytes(path, buf.getvalue())
        self.tb.add_image("val/grid", picture, step)
        return path

    def close(self) -> None:
        self.tb.close()


class RunLogError(ChromatizeError):
    """A run's ``log.csv`` that a resumed run cannot continue; the message says which."""


def _rows_until(path: Path, step: int) -> list[dict[str, str]]:
    """The rows of ``path`` up to ``step``. A row whose step is not a whole number is
    what a killed run cut short, and is dropped; a file that is not such a log at all is
    a :class:`RunLogError`, since rewriting it would lose what it holds."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or "step" not in reader.fieldnames:
                raise RunLogError(f"{path}: not a training log (no step column); move it "
                                  "away to resume")
            return [r for r in reader if (r["step"] or "").isdigit()
                    and len(r["step"]) <= 18 and int(r["step"]) <= step]
    except (UnicodeDecodeError, csv.Error) as e:
        reason = "not UTF-8 text" if isinstance(e, UnicodeDecodeError) else str(e)
        raise RunLogError(f"{path}: not a training log ({reason}); move it away to "
                          "resume") from None
