"""The evaluation report: one self-contained HTML page (images embedded as data URIs).

It shows the summary table, a grid of random examples and, for each failure mode, the
photos where the models fail worst; every row is gray input | each model | truth, so
several models line up side by side.
"""

from __future__ import annotations

import base64
import html
import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from chromatize.evaluation.metrics import SUMMARY_METRICS

#: Failure mode -> (score key, True if low scores are the failures, what the score measures).
FAILURE_MODES: dict[str, tuple[str, bool, str]] = {
    "Desaturated": ("colorfulness_ratio", True,
                    "lowest colourfulness of the output relative to the truth"),
    "Inconsistent colours": ("inconsistency", False,
                             "most patchy colour error inside flat regions"),
    "Colour bleeding": ("bleeding", False,
                        "highest colour error near strong luminance edges, "
                        "relative to flat regions"),
    "Edge pollution": ("edge_pollution", False,
                       "highest colour error in the border band, relative to the interior"),
}

_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:12px 0}
td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}
th:first-child,td:first-child{text-align:left}
thead th{background:#f0f0f0}
.grid{display:grid;gap:6px;margin-bottom:14px;align-items:start}
.grid figure{margin:0}
.grid img{width:100%;display:block;border-radius:2px}
.grid figcaption,.head{font-size:12px;color:#555;padding:2px 0;overflow-wrap:anywhere}
.head{font-weight:600;color:#222}
.note{color:#555;font-size:14px}
"""


def _img(jpeg: bytes, alt: str) -> str:
    data = base64.b64encode(jpeg).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/jpeg;base64,{data}">'


def _fmt(x: float | None) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x:.3f}" if abs(x) < 10 else f"{x:.2f}"


def _table(result: dict[str, Any]) -> str:
    methods = list(result["metrics"])
    head = "".join(f"<th>{html.escape(m)}</th>" for m in methods)
    body = []
    for key, (label, higher) in SUMMARY_METRICS.items():
        cells = "".join(
            f"<td>{_fmt(result['metrics'][m][key]['mean'])} / "
            f"{_fmt(result['metrics'][m][key]['median'])}</td>" for m in methods)
        body.append(f"<tr><td>{html.escape(label)} {'&uarr;' if higher else '&darr;'}</td>"
                    f"{cells}</tr>")
    return (f"<table><thead><tr><th>metric (mean / median)</th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _grid(names: Sequence[str], thumbs: dict[str, dict[str, bytes]], models: Sequence[str],
          caption: dict[str, dict[str, str]]) -> str:
    """Rows of gray | each model | truth for ``names``; ``caption[name][model]`` under each."""
    columns = ["input", *models, "truth"]
    headers = ["gray input", *models, "truth"]
    style = f"grid-template-columns:repeat({len(columns)},minmax(0,240px))"
    parts = [f'<div class="grid" style="{style}">']
    parts += [f'<div class="head">{html.escape(h)}</div>' for h in headers]
    for name in names:
        for col in columns:
            text = caption.get(name, {}).get(col, name if col == "input" else "")
            parts.append(f"<figure>{_img(thumbs[name][col], f'{name} {col}')}"
                         f"<figcaption>{html.escape(text)}</figcaption></figure>")
    parts.append("</div>")
    return "".join(parts)


def _scores(rows: Sequence[dict[str, Any]], models: Sequence[str], key: str,
            ) -> dict[str, dict[str, float]]:
    """``{image: {model: rows' key value}}`` for the models only (not the baselines)."""
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        if r["model"] in models:
            out.setdefault(r["image"], {})[r["model"]] = r[key]
    return out


def worst_images(rows: Sequence[dict[str, Any]], models: Sequence[str], key: str,
                 low_is_bad: bool, k: int) -> list[str]:
    """The ``k`` images whose ``key`` score, averaged over ``models``, is worst."""
    scores = _scores(rows, models, key)
    ranked = sorted(scores, key=lambda name: float(np.mean(list(scores[name].values()))),
                    reverse=not low_is_bad)
    return ranked[:k]


def _captions(rows: Sequence[dict[str, Any]], models: Sequence[str], key: str,
              label: str) -> dict[str, dict[str, str]]:
    return {name: {m: f"{label} {_fmt(v)}" for m, v in per.items()}
            for name, per in _scores(rows, models, key).items()}


def render_report(result: dict[str, Any], rows: Sequence[dict[str, Any]],
                  thumbs: dict[str, dict[str, bytes]], models: Sequence[str], seed: int = 0,
                  n_examples: int = 8, n_worst: int = 5) -> str:
    """The HTML page for an evaluation.

    ``result`` is the ``metrics.json`` content, ``rows`` the per-image metrics,
    ``thumbs[image]`` JPEG bytes under ``"input"``, ``"truth"`` and each model's name.
    """
    names = sorted(thumbs)
    examples = sorted(random.Random(seed).sample(names, min(n_examples, len(names))))
    skipped = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in result["skipped"].items())
    settings = (f"size {result['size'] or 'full'}, limit {result['limit'] or 'none'}, "
                f"seed {result['seed']}")
    sections = [
        f"<h1>chromatize evaluation</h1><p class='note'>{html.escape(result['data_dir'])}: "
        f"{result['evaluated']} colour photos evaluated, skipped: {html.escape(skipped)}; "
        f"{html.escape(settings)}.</p>",
        "<h2>Summary</h2>", _table(result),
        "<p class='note'>Baselines: <b>gray</b> = the gray input; <b>mean-colour</b> = the "
        f"input's L* with the evaluated photos' mean ab {result['mean_colour_ab']}.</p>",
        "<h2>Random examples</h2>",
        _grid(examples, thumbs, models, _captions(rows, models, "psnr", "PSNR")),
        "<h2>Failure modes</h2>",
    ]
    for mode, (key, low_is_bad, what) in FAILURE_MODES.items():
        worst = worst_images(rows, models, key, low_is_bad, n_worst)
        sections += [f"<h3>{html.escape(mode)}</h3><p class='note'>{html.escape(what)} "
                     f"(score <code>{key}</code>, averaged over the models).</p>",
                     _grid(worst, thumbs, models, _captions(rows, models, key, key))]
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>chromatize evaluation"
            f"</title><style>{_CSS}</style></head><body>{''.join(sections)}</body></html>")
