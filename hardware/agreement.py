"""Accuracy of a backend on a data split, and how exactly it agrees with the PyTorch model.

Two references, for two questions:
* predictions: the trained PyTorch model as it is (float32) — does deployment change answers?
* spikes and readouts: the *exported twin* (float64, exported time constants; see
  :func:`hardware.backends.exported_twin`) — does the backend compute the same network?
Predictions go through the exported host head (ONNX, onnxruntime), as in deployment.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch

from export.host_onnx import host_head_onnx, run_host_head
from export.nir_export import model_to_nir
from hardware.backends import ChipRun, exported_twin, run_torch
from hardware.registry import get_backend
from taaf.checkpoint import Checkpoint
from taaf.data.base import MultimodalSplit
from taaf.dynamics import DEFAULT_DT
from taaf.errors import TaafError
from taaf.progress import progress as progress_bar

ChipRunner = Callable[[np.ndarray, np.ndarray], ChipRun]


@dataclass(frozen=True)
class AgreementReport:
    """What ``taaf simulate model.pt`` measures for one backend on one split."""
    backend: str
    split: str
    samples: int
    accuracy: dict[str, float]  # fused (via the ONNX host head), audio, visual
    prediction_agreement: float  # fraction of fused predictions equal to the trained model's
    spike_agreement: dict[str, float]  # per spiking layer: fraction of identical spike entries
    spikes_identical: bool
    max_readout_difference: float  # vs the exported twin
    seconds: float
    samples_per_second: float

    def as_dict(self) -> dict:
        """The report as JSON-ready data."""
        return asdict(self)


def backend_runner(name: str, ckpt: Checkpoint, dt: float = DEFAULT_DT) -> ChipRunner:
    """The registered backend's runner for the checkpoint's chip part (mapping done once)."""
    return get_backend(name).model_runner(ckpt.model, dt)


def measure_agreement(ckpt: Checkpoint, split: MultimodalSplit, backend: str, batch_size: int = 100,
                      dt: float = DEFAULT_DT, progress: bool = True) -> AgreementReport:
    """Accuracy of ``backend`` on ``split`` and its agreement with the trained model (predictions)
    and with the exported float64 twin (spikes, readouts)."""
    if ckpt.model_config.model != "snn":
        raise TaafError(f"an {ckpt.model_config.model.upper()} checkpoint has no spiking part to simulate "
                        f"(use 'taaf eval', or 'taaf-export --target onnx')")
    model = ckpt.model.eval()
    twin = exported_twin(model, model_to_nir(model, dt))
    run = backend_runner(backend, ckpt, dt)
    head = host_head_onnx(ckpt.model_config.fusion, ckpt.model_config.n_classes)
    preds = {k: [] for k in ("fused", "audio", "visual", "trained")}
    same = {}
    total = {}
    max_diff, seconds = 0.0, 0.0
    for start in progress_bar(range(0, len(split), batch_size), f"simulate [{backend}]", progress):
        batch = split.subset(slice(start, start + batch_size))
        audio, image = batch.audio, batch.chip_visual()
        t0 = time.perf_counter()
        got = run(audio, image)
        seconds += time.perf_counter() - t0
        expected = run_torch(twin, audio, image, torch.float64)
        trained = run_torch(model, audio, image)
        preds["fused"].append(run_host_head(head, got.readouts)["logits"].argmax(-1))
        preds["trained"].append(run_host_head(head, trained.readouts)["logits"].argmax(-1))
        preds["audio"].append(got.readouts["z_audio"].mean(1).argmax(-1))
        preds["visual"].append(got.readouts["z_visual"].mean(1).argmax(-1))
        for layer, spikes in got.spikes.items():
            same[layer] = same.get(layer, 0) + int((spikes == expected.spikes[layer]).sum())
            total[layer] = total.get(layer, 0) + spikes.size
        for key, value in got.readouts.items():
            max_diff = max(max_diff, float(np.abs(value - expected.readouts[key]).max()))
    cat = {k: np.concatenate(v) for k, v in preds.items()}
    labels = split.labels
    spike_agreement = {layer: same[layer] / total[layer] for layer in same}
    return AgreementReport(
        backend=backend, split=split.name, samples=len(labels),
        accuracy={k: float((cat[k] == labels).mean()) for k in ("fused", "audio", "visual")},
        prediction_agreement=float((cat["fused"] == cat["trained"]).mean()),
        spike_agreement=spike_agreement,
        spikes_identical=all(v == 1.0 for v in spike_agreement.values()),
        max_readout_difference=max_diff,
        seconds=seconds,
        samples_per_second=len(labels) / seconds if seconds > 0 else float("inf"),
    )
