"""Colorize many photo files on a Ray cluster, by the local batch's rules.

A Ray Data pipeline: the photos are listed and their outputs planned exactly as the
local batch plans them (:func:`chromatize.batch.plan_jobs`), as rows that each hold
a chunk of ``GROUP_PHOTOS`` absolute ``(source, output)`` paths; ``map_batches`` hands
the chunks to a pool of actors, each holding one :class:`~chromatize.Colorizer`, which run them through the local batch's own
:func:`~chromatize.batch.colorize_jobs` (skip existing outputs and colour photos, read,
colorize, write atomically); the driver streams back one outcome row per photo (or per
written sample) and assembles the same :class:`~chromatize.batch.BatchSummary`.

Every node must see the input and output paths (shared storage: NFS, a parallel file
system, or an object store mounted with a FUSE client); see ``docs/scale.md``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chromatize.batch import (
    GROUP_PHOTOS,
    BatchOptions,
    BatchSummary,
    Job,
    Progress,
    check_options,
    colorize_jobs,
    plan_jobs,
)
from chromatize.checkpoint import resolve_model, shipped_model_path
from chromatize.errors import ChromatizeError
from chromatize.extras import require
from chromatize.inference.pipeline import Colorizer

DONE, SKIPPED, FAILED = "done", "skipped", "failed"


class RayBatchError(ChromatizeError):
    """The Ray run itself failed (cluster unreachable, a worker could not start)."""


class PhotoWorker:
    """A Ray Data actor: one :class:`Colorizer`, loaded once, for all its batches."""

    def __init__(self, model: str, device: str, backend: str, options: BatchOptions) -> None:
        self.colorizer = Colorizer.load(model, device=device, backend=backend)
        self.options = options

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Rows of chunks, ``sources`` and ``outputs`` (lists of absolute paths) ->
        outcome rows ``source``, ``status`` (done, skipped, failed) and ``detail`` (the
        written file or the reason)."""
        summary = BatchSummary()
        jobs: list[Job] = []
        for sources, outputs in zip(batch["sources"], batch["outputs"]):
            chunk = [Job(Path(s), Path(o)) for s, o in zip(sources, outputs)]
            colorize_jobs(chunk, self.colorizer, self.options, summary)
            jobs += chunk
        source_of = {p: job.source for job in jobs for p in self.options.outputs(job)}
        rows = ([(source_of[p], DONE, p) for p in summary.done]
                + [(s, SKIPPED, why) for s, why in summary.skipped]
                + [(s, FAILED, why) for s, why in summary.failed])
        return {"source": np.array([str(r[0]) for r in rows], dtype=object),
                "status": np.array([r[1] for r in rows], dtype=object),
                "detail": np.array([str(r[2]) for r in rows], dtype=object)}


def _connect(ray: Any, address: str | None) -> bool:
    """Join the cluster at ``address`` (``auto``: the one ``ray start`` runs on this
    machine), or start a local instance; reuse a running connection. Returns whether
    this call connected (and so should disconnect)."""
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING,
                 configure_logging=True)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise RayBatchError(f"cannot connect to {where}: {str(e).splitlines()[0]}") from None
    return True


def colorize_files_ray(inputs: Sequence[str | os.PathLike[str]],
                       model: str | os.PathLike[str] | None = None,
                       options: BatchOptions = BatchOptions(), device: str = "cpu",
                       backend: str = "auto", address: str | None = None,
                       workers: int | None = None, progress: Progress | None = None,
                       ) -> BatchSummary:
    """:func:`chromatize.batch.colorize_files` on Ray: the same inputs, options, outputs
    and summary, the photos spread over ``workers`` actors (default: one per CPU of the
    cluster), each loading ``model`` itself (``device`` and ``backend`` as in
    :meth:`Colorizer.load`; the decoding travels in ``options``). ``address``: a Ray cluster (``auto`` or ``HOST:PORT``);
    None starts a local instance unless this process is connected already. Raises
    :class:`~chromatize.errors.UsageError` for options the model does not allow,
    :class:`~chromatize.extras.MissingExtraError` without Ray, and
    :class:`RayBatchError` when the cluster fails."""
    ray = require("ray", "--engine ray")
    require("ray.data", "--engine ray")
    if options.marks is not None:
        raise RayBatchError("marks colour a single photo; use the local engine")
    # Check the model and options here, once, before any worker starts.
    path = resolve_model(model)
    check_options(Colorizer.load(path, device=device, backend="torch"), options)
    # A shipped model is found by name on every node; a file by its absolute path.
    name = os.fspath(model or "default")
    model_ref = name if path == shipped_model_path(name) else str(path.absolute())
    out = options.out_dir
    jobs, failed = plan_jobs(inputs, out, options.fmt)
    summary = BatchSummary(failed=failed)
    total = len(jobs) + len(failed)
    if progress is not None:
        progress(summary.total, total)
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            reason = f"cannot create output folder {out} ({e.strerror or e})"
            summary.failed.extend((job.source, reason) for job in jobs)
            return summary
    if not jobs:
        return summary

    # Workers get absolute paths (their working folder is not ours); the summary gets
    # the paths as planned, so it reads as the local run's.
    by_source = {str(job.source.absolute()): (i, job) for i, job in enumerate(jobs)}
    planned = {str(p.absolute()): (i, k, p) for i, job in enumerate(jobs)
               for k, p in enumerate(options.outputs(job))}
    connected = _connect(ray, address)
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the caller shows its own progress
        context.print_on_execution_start = False
        n_workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        # One row per chunk of GROUP_PHOTOS jobs, one chunk per call: a worker groups
        # photos for the network exactly as the local engine does (see colorize_jobs).
        paths = [(s, str(job.output.absolute())) for s, (_, job) in by_source.items()]
        chunks = [paths[i:i + GROUP_PHOTOS] for i in range(0, len(paths), GROUP_PHOTOS)]
        dataset = ray.data.from_items(
            [{"sources": [s for s, _ in c], "outputs": [o for _, o in c]} for c in chunks],
            override_num_blocks=max(1, min(len(chunks), 4 * n_workers)))
        results = dataset.map_batches(
            PhotoWorker, batch_size=1, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=min(n_workers, len(chunks))), num_cpus=1,
            fn_constructor_kwargs={"model": model_ref, "device": device,
                                   "backend": backend, "options": options})
        outcomes: list[tuple[tuple[int, int], str, Path, str]] = []
        finished: set[str] = set()
        for row in results.iter_rows():
            i, job = by_source[row["source"]]
            if row["status"] == DONE:
                i, k, path = planned[row["detail"]]
                outcomes.append(((i, k), DONE, path, ""))
            else:
                outcomes.append(((i, 0), row["status"], job.source, row["detail"]))
            finished.add(row["source"])
            if progress is not None:
                progress(len(failed) + len(finished), total)
    except ray.exceptions.RayError as e:
        raise RayBatchError(f"the Ray run failed: {str(e).splitlines()[0]}") from None
    finally:
        if connected:
            ray.shutdown()
    # In plan order, as the local engine reports them.
    for _, status, path, detail in sorted(outcomes, key=lambda o: o[0]):
        if status == DONE:
            summary.done.append(path)
        else:
            (summary.skipped if status == SKIPPED else summary.failed).append((path, detail))
    return summary
