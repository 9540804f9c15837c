"""The linear late-fusion floor: what a linear model per modality reaches, and what it costs.

A baseline is only worth beating if it beats the simplest model on the same data. The floor
is one multinomial logistic regression per modality, on the raw inputs the SNN sees (audio: all
T frames flattened, T x F; image: its pixels), fused late as a product of experts (the sum of
the two log-probabilities). Each probe's inverse regularisation C is chosen on the validation
split (grid :data:`C_GRID`); the test split is only scored.

:class:`LinearLateFusion` holds the two probes as ``nn.Linear`` layers named like the ANN's
evidence readouts, so :func:`benchmarks.bench_cli.count_ann` counts its MACs both NeuroBench
ways with the same code as the ANN's, and :mod:`benchmarks.energy` prices them the same way.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from taaf.config import ModelConfig
from taaf.data.base import MultimodalDataset, MultimodalSplit

C_GRID = (0.01, 0.1, 1.0, 10.0)  # inverse regularisation strengths tried on validation
MAX_ITER = 2000  # lbfgs iterations per fit (the data are small; it converges well before)


class LinearLateFusion(nn.Module):
    """Two linear probes (``audio_evidence`` on T x F, ``visual_evidence`` on the pixels) whose
    log-softmaxes are summed. ``config`` says concat fusion, so the host head is counted as the
    ANN's concat head (the sum of the two evidence vectors)."""

    def __init__(self, audio: nn.Linear, visual: nn.Linear, config: ModelConfig):
        super().__init__()
        self.audio_evidence, self.visual_evidence = audio, visual
        self.config = config

    def forward(self, audio: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """audio [B, T, F], image [B, C, H, W] -> fused log-probabilities [B, classes]."""
        za = self.audio_evidence(audio.flatten(1))
        zv = self.visual_evidence(image.flatten(1))
        return torch.log_softmax(za, dim=1) + torch.log_softmax(zv, dim=1)


@dataclass(frozen=True)
class FloorResult:
    """The fitted floor, its test accuracies and the C validation picked for each probe."""

    model: LinearLateFusion
    fused: float
    audio: float
    visual: float
    audio_c: float
    visual_c: float


def _fit(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray):
    """The probe with the best validation accuracy over :data:`C_GRID` (first best on ties)."""
    from sklearn.linear_model import LogisticRegression

    best, best_acc = None, -1.0
    for c in C_GRID:
        probe = LogisticRegression(C=c, max_iter=MAX_ITER).fit(x_train, y_train)
        acc = float((probe.predict(x_val) == y_val).mean())
        if acc > best_acc:
            best, best_acc = (probe, c), acc
    return best


def _linear(probe) -> nn.Linear:
    layer = nn.Linear(probe.coef_.shape[1], probe.coef_.shape[0])
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(probe.coef_, dtype=torch.float32))
        layer.bias.copy_(torch.as_tensor(probe.intercept_, dtype=torch.float32))
    return layer


def _flat(split: MultimodalSplit) -> tuple[np.ndarray, np.ndarray]:
    n = len(split.labels)
    return split.audio.reshape(n, -1).astype(np.float64), split.image.reshape(n, -1).astype(np.float64)


def time_averaged(split: MultimodalSplit) -> MultimodalSplit:
    """``split`` with its audio averaged over time ([N, 1, F]): what the ``--model ann`` twin sees."""
    return replace(split, audio=split.audio.mean(axis=1, keepdims=True))


def fit_floor(data: MultimodalDataset, config: ModelConfig, average_audio: bool = False) -> FloorResult:
    """Fit both probes on ``data.train`` (C on ``data.val``) and score the fusion on ``data.test``;
    ``average_audio``: on the time-averaged audio (:func:`time_averaged`), the twin ANN's floor."""
    if average_audio:
        data = replace(data, train=time_averaged(data.train), val=time_averaged(data.val),
                       test=time_averaged(data.test))
    (a_tr, v_tr), (a_va, v_va) = _flat(data.train), _flat(data.val)
    audio_probe, audio_c = _fit(a_tr, data.train.labels, a_va, data.val.labels)
    visual_probe, visual_c = _fit(v_tr, data.train.labels, v_va, data.val.labels)
    model = LinearLateFusion(_linear(audio_probe), _linear(visual_probe),
                             replace(config, fusion="concat", model="ann")).eval()
    test = data.test
    with torch.no_grad():
        a, i = torch.as_tensor(test.audio), torch.as_tensor(test.image)
        fused = model(a, i).argmax(1).numpy()
        audio = model.audio_evidence(a.flatten(1)).argmax(1).numpy()
        visual = model.visual_evidence(i.flatten(1)).argmax(1).numpy()
    y = test.labels
    return FloorResult(model, float((fused == y).mean()), float((audio == y).mean()), float((visual == y).mean()),
                       audio_c, visual_c)
