"""Markdown table of the ablation: one row per run, from each run's eval/metrics.json.

    python scripts/ablation_table.py runs/ablation
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from chromatize.evaluation.metrics import SUMMARY_METRICS

COLUMNS = ["psnr", "ab_rmse", "ciede2000", "colorfulness_ratio", "hist_intersection",
           "inconsistency", "bleeding", "edge_pollution"]


def main(root: Path) -> None:
    rows: dict[str, dict] = {}
    baselines: dict[str, dict] = {}
    for path in sorted(root.glob("*/eval/metrics.json")):
        doc = json.loads(path.read_text())
        run = path.parent.parent
        model_key = doc["models"][0]
        state = json.loads((run / "model.json").read_text())
        rows[run.name] = {"step": state.get("step"), **doc["metrics"][model_key]}
        for b in doc["baselines"]:
            baselines.setdefault(b, doc["metrics"][b])
        evaluated = doc["evaluated"]
    if not rows:
        sys.exit(f"{root}: no */eval/metrics.json found")
    head = ["run", "steps"] + [SUMMARY_METRICS[c][0] + (" ↑" if SUMMARY_METRICS[c][1] else " ↓")
                               for c in COLUMNS]
    print(f"Mean over {evaluated} validation photos.\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, m in {**rows, **{f"*{b}*": {"step": "", **v} for b, v in baselines.items()}}.items():
        cells = [name, str(m["step"])] + [f"{m[c]['mean']:.3f}" for c in COLUMNS]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/ablation"))
