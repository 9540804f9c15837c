"""What counting costs: plain inference vs inference + operation counting, AV-Digits test split
(CPU, PyTorch model). Prints a table.

    python -m benchmarks.counting_overhead [--checkpoint model.pt] [--batch 100 600] [--repeats 9]

Counting reads the recorded spikes once: a count of non-zeros per synapse group (fan-outs are
precomputed per topology) and a T-step boolean recurrence per population for membrane updates.
It must stay a small fraction of the forward pass it accompanies.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from benchmarks.metrics import Activity, Counter, activity_from_chip, activity_from_torch, taaf_topology
from taaf.data import DataSpec, load_dataset


def _model(checkpoint: Path | None):
    if checkpoint is not None:
        from taaf.checkpoint import load_checkpoint

        ckpt = load_checkpoint(checkpoint)
        return ckpt.model.eval(), ckpt.data_spec, str(checkpoint)
    from taaf.config import TrainConfig
    from taaf.model.network import AVSpikingNet
    from taaf.training.trainer import model_config_for

    spec = DataSpec()
    torch.manual_seed(0)
    return AVSpikingNet(model_config_for(load_dataset(spec), TrainConfig())).eval(), spec, "untrained default TAAF"


def _interleaved_median_s(fns: list[Callable[[], object]], repeats: int) -> list[float]:
    """Median wall time of each function, run round-robin so that load from other processes
    on a shared machine hits all of them alike."""
    for fn in fns:
        fn()  # warm-up
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return [float(np.median(ts)) for ts in times]


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: time plain inference against inference plus operation counting and print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.counting_overhead", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--batch", type=int, nargs="+", default=[100, 600])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, spec, what = _model(args.checkpoint)
    split = load_dataset(spec).test
    counter = Counter(taaf_topology(model))
    print(f"model: {what}; {spec.dataset} test split, T = {split.n_steps}; torch {torch.__version__}, "
          f"{args.threads} thread(s), {platform.processor() or platform.machine()}, {os.cpu_count()} cpus; "
          f"median of {args.repeats}")
    print(f"{'batch':>6}{'inference ms':>14}{'record+count ms':>17}{'count only ms':>15}{'overhead':>10}")
    for n in args.batch:
        n = min(n, len(split.labels))
        audio, image = torch.as_tensor(split.audio[:n]), torch.as_tensor(split.image[:n])

        @torch.no_grad()
        def plain():
            return model(audio, image)

        @torch.no_grad()
        def counted():
            out = model.chip(audio, image, record=True)
            model.head(out.readouts)
            return counter(activity_from_chip(model, out, audio, image))

        activity = activity_from_torch(model, audio, image)
        t_plain, t_counted, t_count = _interleaved_median_s(
            [plain, counted, lambda: counter(Activity(activity.arrays))], args.repeats)  # fresh: no cached passes
        print(f"{n:>6}{t_plain * 1e3:>14.1f}{t_counted * 1e3:>17.1f}{t_count * 1e3:>15.1f}"
              f"{(t_counted / t_plain - 1) * 100:>9.0f}%")


if __name__ == "__main__":
    main()
