"""A fair temporal ANN: the SNN's frames, not their average, concat fusion, its own settings.

The ``taaf train --model ann`` baseline averages the audio over time and trains with the SNN's
loop and budget; that is the SNN's twin, not the best ANN one can build for the same data. This
one sees exactly what the SNN sees:

    audio   every frame x[t] -> the SNN's audio layers with ReLU (weights shared over t)
            -> h[t]; evidence z_a = W_a [h[1], ..., h[T]]  (a readout that knows each frame's
            position, as the linear floor's probe on the T x F frames does)
    visual  the static image -> the SNN's conv stack + fc with ReLU, computed once -> z_v
    fusion  concat: logits = z_a + z_v

It is trained on its own (Adam, no balancing): cross-entropy on the fused logits plus
``aux`` x (cross-entropy of z_a + cross-entropy of z_v), the unimodal auxiliary losses that keep a
weak modality's branch learning (without them the network ignores the degraded images: visual
alone 27-30 % where the linear probe reaches 58 %). The learning rate and ``aux`` come from
:data:`LR_GRID` x :data:`AUX_GRID` and the epoch from validation accuracy; the test split is only
scored. Its MACs are counted by :func:`benchmarks.bench_cli.count_ann` (the audio layers' MACs x
T: they run at every frame; the conv stack once) and priced like every other point.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import pairwise, product

import numpy as np
import torch
from torch import nn

from taaf.config import ModelConfig
from taaf.data.base import MultimodalDataset
from taaf.model.encoders import visual_synapses

LR_GRID = (1e-3, 3e-3)  # learning rates tried; validation picks one
AUX_GRID = (0.0, 1.0)  # unimodal auxiliary loss weights tried; validation picks one
EPOCHS = 40  # at most; the best validation epoch is kept
BATCH = 64
WEIGHT_DECAY = 1e-4


class TemporalANN(nn.Module):
    """Per-frame audio MLP with a frame-position-aware readout, static-image CNN, concat fusion."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        sizes = (cfg.audio.in_features, *cfg.audio.hidden)
        self.audio_synapses = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(sizes))
        self.convs, self.fc = visual_synapses(cfg.visual)
        self.audio_evidence = nn.Linear(cfg.n_steps * cfg.audio.hidden[-1], cfg.n_classes)
        self.visual_evidence = nn.Linear(cfg.visual.hidden, cfg.n_classes)

    def evidence(self, audio: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """audio [B, T, F], image [B, C, H, W] -> (z_a [B, classes], z_v [B, classes])."""
        a = audio
        for syn in self.audio_synapses:
            a = torch.relu(syn(a))
        v = image
        for conv in self.convs:
            v = torch.relu(conv(v))
        v = torch.relu(self.fc(v.flatten(1)))
        return self.audio_evidence(a.flatten(1)), self.visual_evidence(v)

    def forward(self, audio: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Fused logits [B, classes]: the audio evidence plus the visual evidence."""
        za, zv = self.evidence(audio, image)
        return za + zv


@dataclass(frozen=True)
class TemporalAnnResult:
    """The kept model, its test accuracies and the settings validation picked."""

    model: TemporalANN
    fused: float
    audio: float
    visual: float
    lr: float
    aux: float
    epoch: int
    seconds: float


def _accuracies(model: TemporalANN, audio: np.ndarray, image: np.ndarray, labels: np.ndarray) -> tuple[float, ...]:
    with torch.no_grad():
        za, zv = model.evidence(torch.as_tensor(audio), torch.as_tensor(image))
        out = (za + zv, za, zv)
    return tuple(float((o.argmax(1).numpy() == labels).mean()) for o in out)


def train_temporal_ann(data: MultimodalDataset, cfg: ModelConfig, seed: int = 0) -> TemporalAnnResult:
    """Train one model per (learning rate, aux weight) of :data:`LR_GRID` x :data:`AUX_GRID`; keep
    the best validation epoch overall (first best on ties)."""
    start = time.perf_counter()
    tr, va = data.train, data.val
    audio, image = torch.as_tensor(tr.audio), torch.as_tensor(tr.image)
    labels = torch.as_tensor(tr.labels, dtype=torch.long)
    best: tuple[float, tuple[float, float], int, dict] | None = None
    for lr, aux in product(LR_GRID, AUX_GRID):
        torch.manual_seed(seed)
        model = TemporalANN(cfg)
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=WEIGHT_DECAY)
        order = torch.Generator().manual_seed(seed)
        for epoch in range(1, EPOCHS + 1):
            model.train()
            for idx in torch.randperm(len(labels), generator=order).split(BATCH):
                opt.zero_grad()
                za, zv = model.evidence(audio[idx], image[idx])
                y = labels[idx]
                loss = nn.functional.cross_entropy(za + zv, y)
                if aux:
                    loss = loss + aux * (nn.functional.cross_entropy(za, y) + nn.functional.cross_entropy(zv, y))
                loss.backward()
                opt.step()
            model.eval()
            val = _accuracies(model, va.audio, va.image, va.labels)[0]
            if best is None or val > best[0]:
                best = (val, (lr, aux), epoch, {k: v.clone() for k, v in model.state_dict().items()})
    _, (lr, aux), epoch, state = best
    model = TemporalANN(cfg)
    model.load_state_dict(state)
    model.eval()
    fused, audio_acc, visual_acc = _accuracies(model, data.test.audio, data.test.image, data.test.labels)
    return TemporalAnnResult(model, fused, audio_acc, visual_acc, lr, aux, epoch, time.perf_counter() - start)
