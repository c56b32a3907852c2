"""Colorize many photo files on a Ray cluster, by the local batch's rules.

A Ray Data pipeline: the photos are listed and their outputs planned exactly as the
local batch plans them (:func:`chromatize.batch.plan_jobs`), as rows that each hold
a chunk of ``GROUP_PHOTOS`` absolute ``(source, output)`` paths; ``map_batches`` hands
the chunks to a pool of actors, each holding one :class:`~chromatize.Colorizer`, which
run them through the local batch's own
:func:`~chromatize.batch.colorize_jobs` (skip existing outputs and colour photos, read,
colorize, write atomically); the driver streams back one outcome row per photo (or per
written sample) and assembles the same :class:`~chromatize.batch.BatchSummary`.

Every node must see the input and output paths (shared storage: NFS, a parallel file
system, or an object store mounted with a FUSE client); see ``docs/scale.md``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
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
    run_batch,
)
from chromatize.checkpoint import read_capabilities, resolve_model, shipped_model_path
from chromatize.inference.variants import shipped_index
from chromatize.errors import ChromatizeError
from chromatize.extras import require
from chromatize.inference.pipeline import Colorizer

DONE, SKIPPED, FAILED = "done", "skipped", "failed"
#: Seconds to wait for a Ray cluster at an ``--address`` to answer (``--connect-timeout``).
CONNECT_TIMEOUT = 30.0


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


def _connect(ray: Any, address: str | None, timeout: float = CONNECT_TIMEOUT) -> bool:
    """Join the cluster at ``address`` (``auto``: the one ``ray start`` runs on this
    machine), or start a local instance; reuse a running connection. Returns whether
    this call connected (and so should disconnect). A cluster that does not answer
    within ``timeout`` seconds is a :class:`RayBatchError`: Ray itself would retry for
    ever, logging a GCS time-out every 30 s."""
    if ray.is_initialized():
        return False
    where = f"the Ray cluster at {address}" if address else "a local Ray instance"
    if address is None:  # started here: nothing to wait for but Ray's own start-up
        _init(ray, address, where)
        return True
    if address != "auto" and "://" not in address:
        _probe(address, timeout, where)
    # ray.init cannot be interrupted: it runs in a daemon thread, which is left behind
    # (and ends with the process) if the cluster never answers.
    done: list[BaseException | None] = []
    thread = threading.Thread(target=lambda: done.append(_try_init(ray, address, where)),
                              name="chromatize-ray-connect", daemon=True)
    with _quiet_thread_warning():
        thread.start()
        thread.join(timeout)
    if not done:
        raise RayBatchError(f"cannot connect to {where}: no answer within {timeout:g} s "
                            "(--connect-timeout)")
    if done[0] is not None:
        raise done[0]
    return True


def _init(ray: Any, address: str | None, where: str) -> None:
    try:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING,
                 configure_logging=True)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise RayBatchError(f"cannot connect to {where}: {str(e).splitlines()[0]}") from None


def _try_init(ray: Any, address: str | None, where: str) -> BaseException | None:
    """:func:`_init`, its exception returned (from a thread) instead of raised."""
    try:
        _init(ray, address, where)
    except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
        return e
    return None


def _probe(address: str, timeout: float, where: str) -> None:
    """Fail at once when nothing listens at ``HOST:PORT`` (a refused connection), or
    after ``timeout`` seconds when the host does not answer at all."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise RayBatchError(f"--address must be auto or HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        reason = "no answer" if isinstance(e, TimeoutError) else (e.strerror or str(e))
        raise RayBatchError(f"cannot connect to {where}: {reason} "
                            "(is `ray start --head` running there?)") from None


@contextlib.contextmanager
def _quiet_thread_warning() -> Iterator[None]:
    """Ray warns that it sets no SIGTERM handler outside the main thread: true, and
    harmless for a driver (SIGTERM then ends it as any program), so not shown."""
    worker_log = logging.getLogger("ray._private.worker")

    def keep(record: logging.LogRecord) -> bool:
        return "SIGTERM handler is not set" not in record.getMessage()

    worker_log.addFilter(keep)
    try:
        yield
    finally:
        worker_log.removeFilter(keep)


def colorize_files_ray(inputs: Sequence[str | os.PathLike[str]],
                       model: str | os.PathLike[str] | None = None,
                       options: BatchOptions = BatchOptions(), device: str = "cpu",
                       backend: str = "auto", address: str | None = None,
                       workers: int | None = None, progress: Progress | None = None,
                       connect_timeout: float = CONNECT_TIMEOUT) -> BatchSummary:
    """:func:`chromatize.batch.colorize_files` on Ray: the same planner
    (:func:`~chromatize.batch.run_batch`), inputs, options, outputs and summary, the
    photos spread over ``workers`` actors (default: one per CPU of the cluster), each
    loading ``model`` itself (``device`` and ``backend`` as in :meth:`Colorizer.load`; the
    decoding travels in ``options``). ``address``: a Ray cluster (``auto`` or
    ``HOST:PORT``); None starts a local instance unless this process is connected
    already; a cluster that does not answer within ``connect_timeout`` seconds is given
    up. The options are checked against the checkpoint's recorded capabilities before
    anything starts, without loading the model. Raises
    :class:`~chromatize.errors.UsageError` for options the model does not allow,
    :class:`~chromatize.extras.MissingExtraError` without Ray, and
    :class:`RayBatchError` when the cluster fails."""
    ray = require("ray", "--engine ray")
    require("ray.data", "--engine ray")
    if options.marks is not None:
        raise RayBatchError("marks colour a single photo; use the local engine")
    path = resolve_model(model)
    check_options(options, read_capabilities(path)["classification"], shipped_index(path))
    # A shipped model is found by name on every node; a file by its absolute path.
    name = os.fspath(model or "default")
    model_ref = name if path == shipped_model_path(name) else str(path.absolute())
    worker = {"model": model_ref, "device": device, "backend": backend, "options": options}

    def engine(jobs: list[Job], summary: BatchSummary, done: Callable[[int], None]) -> None:
        connected = _connect(ray, address, connect_timeout)
        try:
            _run_on_ray(ray, jobs, summary, done, worker, workers)
        except ray.exceptions.RayError as e:
            raise RayBatchError(f"the Ray run failed: {str(e).splitlines()[0]}") from None
        finally:
            if connected:
                ray.shutdown()

    return run_batch(inputs, options, engine, progress)


def _run_on_ray(ray: Any, jobs: list[Job], summary: BatchSummary, done: Callable[[int], None],
                worker: dict[str, Any], workers: int | None) -> None:
    """Run ``jobs`` on :class:`PhotoWorker` actors (made with ``worker``'s arguments) and
    add their outcomes to ``summary`` in plan order, as the local engine reports them."""
    options: BatchOptions = worker["options"]
    # Workers get absolute paths (their working folder is not ours); the summary gets
    # the paths as planned, so it reads as the local run's.
    by_source = {str(job.source.absolute()): (i, job) for i, job in enumerate(jobs)}
    planned = {str(p.absolute()): (i, k, p) for i, job in enumerate(jobs)
               for k, p in enumerate(options.outputs(job))}
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the caller shows its own progress
    context.print_on_execution_start = False
    n_workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    # One row per chunk of GROUP_PHOTOS jobs, one chunk per call: a worker groups photos
    # for the network exactly as the local engine does (see colorize_jobs).
    paths = [(s, str(job.output.absolute())) for s, (_, job) in by_source.items()]
    chunks = [paths[i:i + GROUP_PHOTOS] for i in range(0, len(paths), GROUP_PHOTOS)]
    dataset = ray.data.from_items(
        [{"sources": [s for s, _ in c], "outputs": [o for _, o in c]} for c in chunks],
        override_num_blocks=max(1, min(len(chunks), 4 * n_workers)))
    results = dataset.map_batches(
        PhotoWorker, batch_size=1, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=min(n_workers, len(chunks))), num_cpus=1,
        fn_constructor_kwargs=worker)
    outcomes: list[tuple[tuple[int, int], str, Path, str]] = []
    finished: set[str] = set()
    already = summary.total
    for row in results.iter_rows():
        i, job = by_source[row["source"]]
        if row["status"] == DONE:
            i, k, path = planned[row["detail"]]
            outcomes.append(((i, k), DONE, path, ""))
        else:
            outcomes.append(((i, 0), row["status"], job.source, row["detail"]))
        finished.add(row["source"])
        done(already + len(finished))
    for _, status, path, detail in sorted(outcomes, key=lambda o: o[0]):
        if status == DONE:
            summary.done.append(path)
        else:
            (summary.skipped if status == SKIPPED else summary.failed).append((path, detail))
