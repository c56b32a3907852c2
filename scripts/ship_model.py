"""Copy a trained checkpoint into the package as a shipped model, in float16.

    PYTHONPATH=src python scripts/ship_model.py RUN_DIR/model NAME --boost 0.3 \
        --trained-on "..." --terms "..." [--metrics report/metrics.json] [--chosen-by "..."] \
        [--as-model effnet_lite0_cls]

Writes ``src/chromatize/weights/NAME.safetensors`` + ``NAME.json``: the run's own
metadata (config, data, step, git revision) plus the decoding chosen on val (``boost``,
stored in the model's kwargs so ``Colorizer.load(NAME)`` uses it), where and how it was
trained, its terms, and, if given, the val metrics of ``chromatize evaluate``. Weights are
stored in float16 (half the size; the model loads them into float32).

``--as-model``: ship a training-time wrapper as the plain model it wraps, e.g. a GAN
fine-tune (``effnet_lite0_cls_gan``) without its critic: the parts the wrapper adds
(``added_inputs``) and its own settings (``own_kwargs``) are left out, and the rest must
fit the plain model exactly.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from chromatize.checkpoint import load_checkpoint, save_checkpoint
from chromatize.models import create_model
from chromatize.io import atomic_write_bytes

WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "chromatize" / "weights"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("name")
    parser.add_argument("--boost", type=float, required=True)
    parser.add_argument("--trained-on", required=True)
    parser.add_argument("--terms", required=True)
    parser.add_argument("--metrics", type=Path, default=None)
    parser.add_argument("--chosen-by", default="scripts/tune_decoding.py on ../shared/data/photos/val",
                        help="how the boost was chosen (written to the metadata)")
    parser.add_argument("--as-model", default=None,
                        help="ship as this registered model, without the wrapper's parts")
    args = parser.parse_args()
    model, info = load_checkpoint(args.checkpoint)
    kwargs = {**info["model"]["kwargs"], "boost": args.boost}
    name = info["model"]["name"]
    if args.as_model:
        own, added = tuple(getattr(model, "own_kwargs", ())), tuple(getattr(model, "added_inputs", ()))
        kwargs = {k: v for k, v in kwargs.items() if k not in own}
        try:
            plain = create_model(args.as_model, **kwargs)
            plain.load_state_dict({k: v for k, v in model.state_dict().items()
                                   if not k.startswith(added)}, strict=True)
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()] or [repr(e)]
            reason = " ".join(lines[:2])[:300]  # a state-dict error says what differs on line 2
            raise SystemExit(f"error: --as-model {args.as_model}: {reason}") from None
        model, name = plain, args.as_model
    model.head.boost = args.boost
    model = model.half()
    extra = {k: v for k, v in info.items()
             if k not in ("format", "format_version", "model", "chromatize_version", "git_revision")}
    extra.update(trained_on=args.trained_on, terms=args.terms,
                 decoding={"boost": args.boost, "temperature": model.head.temperature,
                           "chosen_by": args.chosen_by})
    if args.metrics:
        extra["metrics"] = json.loads(args.metrics.read_text())["metrics"]
    if args.as_model:
        extra["trained_as"] = info["model"]["name"]
    out = save_checkpoint(WEIGHTS / args.name, model, name, kwargs, **extra)
    # the run's revision, not the one shipping it
    meta = json.loads(out.read_text())
    meta["git_revision"] = info.get("git_revision")
    atomic_write_bytes(out, json.dumps(meta, indent=2, default=str).encode())
    size = (WEIGHTS / f"{args.name}.safetensors").stat().st_size / 1e6
    print(f"wrote {out} ({size:.1f} MB of weights, dtype {next(model.parameters()).dtype})")
    assert next(load_checkpoint(out)[0].parameters()).dtype == torch.float32


if __name__ == "__main__":
    main()
