"""Execute a study's jobs: worker processes, one result file per job, resumable.

Each finished job is written to ``OUT/runs/<job key>.json`` (atomically) the moment it ends,
so an interrupted study resumes where it stopped and a finished one is re-summarised without
training anything. A job that fails is reported and the others go on: one diverged run must not
throw away the hours of runs queued behind it; the study then stops with the failures listed
(nothing is summarised from an incomplete grid) and a rerun retries only them.

On a CPU machine every worker is one process with one torch thread: small SNN batches do not
scale across threads, so on 2 cores two single-threaded runs side by side finish about twice as
many jobs per minute as one run with two threads.
"""
from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from benchmarks.study.job import RunResult, run_job
from benchmarks.study.protocol import Job, StudyConfig
from taaf.data.cache import atomic_write_bytes
from taaf.errors import TaafError
from taaf.paths import signals_as_exit


@dataclass(frozen=True)
class Execution:
    """Where and how the jobs ran: recorded in the results file."""

    device: str
    workers: int
    threads_per_worker: int
    wall_seconds: float
    jobs_run: int
    jobs_reused: int


def run_path(out: Path, job: Job) -> Path:
    """Where ``job``'s result file lives under ``out``."""
    return out / "runs" / f"{job.key}.json"


def load_run(path: Path) -> RunResult | None:
    """A finished job's result, or None when the file is missing or unreadable (then it reruns)."""
    try:
        return RunResult.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def reusable(cfg: StudyConfig, out: Path, job: Job) -> RunResult | None:
    """``job``'s finished result in ``out``: its own file, or, for a study run, the tuning trial
    that trained the same variant, setting, seed and T at the learning rate the study now uses
    (the same run: no need to train it twice)."""
    r = load_run(run_path(out, job))
    if r is not None and r.job == job and (job.lr is not None or r.lr == cfg.lr_of(job.variant)):
        return r  # a study run trained at another rate than the study now gives it is not reused
    if job.lr is None:
        trial = replace(job, lr=cfg.lr_of(job.variant))
        r = load_run(run_path(out, trial))
        if r is not None and r.job == trial:
            return replace(r, trial=False)
    return None


@dataclass(frozen=True)
class JobFailure:
    """A job that ended without a result. ``diverged``: its training diverged in the first epoch
    (:class:`~taaf.training.trainer.TrainingDiverged`), which a tuning trial at too high a rate
    may do; tuning records that as the trial's outcome instead of stopping on it."""

    key: str
    reason: str  # one line
    diverged: bool = False


def run_study(cfg: StudyConfig, out: Path, device: str = "cpu", workers: int | None = None,
              log: Callable[[str], None] = print, jobs: list[Job] | None = None,
              diverged_ok: bool = False) -> tuple[list[RunResult | None], Execution]:
    """Run every job of ``cfg`` (or ``jobs``: the tuning trials) not already in ``out/runs``;
    return all results in job order. With ``diverged_ok`` a job that diverged in its first epoch
    gives None (nothing is saved: a rerun tries it again) instead of failing the study."""
    jobs = cfg.jobs() if jobs is None else jobs
    done = {job.key: r for job in jobs if (r := reusable(cfg, out, job)) is not None}
    pending = [job for job in jobs if job.key not in done]
    workers = workers or (1 if device.startswith("cuda") else max(1, os.cpu_count() or 1))
    workers = max(1, min(workers, len(pending) or 1))
    log(f"study: {len(jobs)} runs ({len(done)} already done), {workers} worker(s) on {device}")
    start = time.perf_counter()
    failures: list[str] = []
    # closing(): an exception in this loop (a signal's SystemExit included) closes the generator at
    # once, which leaves its pool block and terminates the workers.
    with contextlib.closing(_execute(cfg, pending, device, workers)) as finished:
        for i, result in enumerate(finished, start=1):
            if isinstance(result, JobFailure):
                if not (result.diverged and diverged_ok):  # a tolerated divergence stays None below
                    failures.append(f"{result.key}: {result.reason}")
                log(f"[{i}/{len(pending)}] {'DIVERGED' if result.diverged else 'FAILED'} {result.key}: {result.reason}")
                continue
            atomic_write_bytes(run_path(out, result.job), json.dumps(result.as_dict()).encode())
            done[result.job.key] = result
            stop = "" if result.diverged_epoch is None else f", diverged in epoch {result.diverged_epoch}"
            log(f"[{i}/{len(pending)}] {result.job.key}: test fused {result.test['fused']:.3f} audio "
                f"{result.test['audio']:.3f} visual {result.test['visual']:.3f}, {result.synops / 1e3:.0f}k SynOps, "
                f"{result.train_seconds:.0f} s{stop}")
    wall = time.perf_counter() - start
    if failures:
        raise TaafError(f"{len(failures)} of {len(pending)} runs failed (the other runs are saved in {out}/runs; "
                        f"rerunning retries only the failed ones): " + "; ".join(failures))
    execution = Execution(device=device, workers=workers, threads_per_worker=1 if workers > 1 else _threads(),
                          wall_seconds=wall, jobs_run=len(pending), jobs_reused=len(jobs) - len(pending))
    return [done.get(job.key) for job in jobs], execution  # None only for a tolerated divergence


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _execute(cfg: StudyConfig, jobs: list[Job], device: str, workers: int):
    """Each job's :class:`RunResult`, or its :class:`JobFailure`."""
    if not jobs:
        return
    if workers == 1:
        for job in jobs:
            yield _worker((cfg, job, device))
        return
    # spawn: a fresh interpreter per worker (fork after torch has started threads can deadlock).
    # SIGTERM / SIGHUP become SystemExit here, so leaving the block terminates the pool; a worker
    # also dies with this process (SIGKILL included), and the resource tracker then unlinks the
    # pool's semaphores: a stopped study leaves no process and no /dev/shm entry behind.
    ctx = mp.get_context("spawn")
    with signals_as_exit(), ctx.Pool(workers, initializer=_init_worker, initargs=(os.getpid(),)) as pool:
        yield from pool.imap_unordered(_worker, [(cfg, job, device) for job in jobs])
        # Let the workers exit on their own: terminate() (the context's exit) kills them holding
        # their queues' semaphores, and the resource tracker then warns about leaked ones.
        pool.close()
        pool.join()


def _init_worker(parent_pid: int) -> None:
    import warnings

    import torch

    from hardware.isolation import die_with_parent

    # PDEATHSIG follows the parent *thread*: the pool's first workers are started by the main
    # thread; a worker the pool respawns later (after one died) would die with the pool's
    # handler thread instead, i.e. when the pool closes, which is also when it is no longer needed.
    die_with_parent(parent_pid)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def _worker(args: tuple[StudyConfig, Job, str]) -> RunResult | JobFailure:
    """Run one job; a failure comes back as a :class:`JobFailure` (never raised: see the module doc)."""
    from taaf.training.trainer import TrainingDiverged

    cfg, job, device = args
    try:
        return run_job(cfg, job, device)
    except TrainingDiverged as exc:
        return JobFailure(job.key, str(exc), diverged=True)
    except TaafError as exc:
        return JobFailure(job.key, str(exc))
    except Exception as exc:  # a bug, not a user error: keep the trace for the report
        traceback.print_exc(file=sys.stderr)
        return JobFailure(job.key, f"{type(exc).__name__}: {exc}")
