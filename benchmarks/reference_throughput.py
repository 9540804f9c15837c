"""Throughput of the numpy NIR reference simulator on the exported TAAF graph, next to the
PyTorch model on the same batch (CPU). Prints a table.

    python -m benchmarks.reference_throughput [--checkpoint runs/demo/model.pt] [--batch 100 300]

Without a checkpoint (default: runs/demo/model.pt when it exists) an untrained network of the
default architecture is used: the simulator's cost is dense numpy and does not depend on the
weights' values or the firing rates.
"""
from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import numpy as np
import torch

from export.nir_export import model_to_nir
from hardware.backends import run_reference, run_torch
from hardware.reference import ReferenceSimulator
from benchmarks.common import median_time, model_or_default
from taaf.data import load_dataset


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: time the NIR reference simulator against the PyTorch model per batch size and
    print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=Path("runs/demo/model.pt"))
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 100, 600])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    model, spec, source = model_or_default(args.checkpoint)
    split = load_dataset(spec).test
    sim = ReferenceSimulator(model_to_nir(model), 1e-4)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), numpy {np.__version__}")
    print(f"model: {source}; T = {model.config.n_steps}; test split of {spec.dataset} ({spec.preset})")
    print()
    print(f"{'batch':>6} {'reference f64 samples/s':>24} {'torch f32 samples/s':>20} {'torch/reference':>16}")
    for batch in args.batch:
        batch = min(batch, len(split))
        audio, image = split.audio[:batch], split.image[:batch]
        t_ref = median_time(lambda: run_reference(model, audio, image, simulator=sim), args.repeats)
        t_torch = median_time(lambda: run_torch(model, audio, image), args.repeats)
        print(f"{batch:>6} {batch / t_ref:>24.1f} {batch / t_torch:>20.1f} {t_ref / t_torch:>15.1f}x")


if __name__ == "__main__":
    main()
