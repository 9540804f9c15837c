"""Pieces every throughput benchmark needs: the model to time and a robust timer."""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from taaf.config import TrainConfig
from taaf.data import DataSpec, load_dataset
from taaf.model.network import AVSpikingNet
from taaf.training.trainer import model_config_for


def model_or_default(checkpoint: Path | None) -> tuple[AVSpikingNet, DataSpec, str]:
    """The checkpoint's model, or an untrained default-size network when there is none: the
    simulators' cost depends on the architecture, not on the weights' values."""
    if checkpoint and checkpoint.is_file():
        from taaf.checkpoint import load_checkpoint

        ckpt = load_checkpoint(checkpoint)
        return ckpt.model.eval(), ckpt.data_spec, str(checkpoint)
    spec = DataSpec()
    torch.manual_seed(0)
    return AVSpikingNet(model_config_for(load_dataset(spec), TrainConfig())).eval(), spec, "untrained default"


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls after one warm-up call (robust to a busy machine)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))
