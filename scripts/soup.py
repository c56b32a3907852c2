"""Interpolate the weights of two checkpoints of one model (WiSE-FT, Wortsman et al. 2022):
``(1 - alpha) * A + alpha * B``, typically A the model before a fine-tune and B after it.

    PYTHONPATH=src python scripts/soup.py src/chromatize/weights/default RUN/model \
        --alpha 0.5 -o runs/soup/model

Floating-point weights and batch-norm statistics are interpolated; counters and the
classification head's class weights (the decoding prior) are A's. The output is a
chromatize checkpoint with A's metadata and a ``soup`` entry naming both inputs and alpha;
ship it with ``scripts/ship_model.py`` after choosing alpha and the boost on val
(``scripts/tune_decoding.py``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from chromatize.checkpoint import load_checkpoint, save_checkpoint
from chromatize.errors import ChromatizeError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", help="checkpoint A (alpha 0)")
    parser.add_argument("b", help="checkpoint B (alpha 1), the same model and kwargs")
    parser.add_argument("--alpha", type=float, required=True)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    if not 0 <= args.alpha <= 1:
        parser.error(f"--alpha must be in [0, 1], got {args.alpha}")
    try:
        model_a, info_a = load_checkpoint(args.a)
        model_b, info_b = load_checkpoint(args.b)
    except ChromatizeError as e:
        parser.error(str(e))
    if info_a["model"]["name"] != info_b["model"]["name"]:
        parser.error(f"{args.a} is {info_a['model']['name']}, {args.b} is {info_b['model']['name']}")
    sb = model_b.state_dict()
    mixed = {}
    for key, va in model_a.state_dict().items():
        keep = not va.is_floating_point() or key.endswith("class_weights")
        mixed[key] = va if keep else (1 - args.alpha) * va + args.alpha * sb[key].to(va.dtype)
    model_a.load_state_dict(mixed)
    extra = {k: v for k, v in info_a.items()
             if k not in ("format", "format_version", "model", "chromatize_version", "git_revision")}
    extra["soup"] = {"alpha": args.alpha, "a": str(args.a), "b": str(args.b),
                     "b_config": info_b.get("config"), "b_step": info_b.get("step"),
                     "b_trained_on": info_b.get("trained_on")}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    out = save_checkpoint(args.output, model_a, info_a["model"]["name"], info_a["model"]["kwargs"],
                          **extra)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
