"""Accuracy of a model on a split: fused, audio-only and visual-only (the modality's own
evidence readout, see :mod:`taaf.model.host`)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from taaf.data.base import MultimodalSplit
from taaf.model.network import AVSpikingNet


@dataclass(frozen=True)
class Accuracies:
    """Fused, audio-only and visual-only accuracy on one split: the numbers that show modality imbalance."""

    fused: float
    audio: float
    visual: float

    def as_dict(self) -> dict[str, float]:
        """The three accuracies as a plain dict, for JSON metrics and reports."""
        return asdict(self)


@dataclass(frozen=True)
class Predictions:
    """Per-sample predicted classes of every readout plus the attention weights, for accuracies and plots."""

    fused: np.ndarray
    audio: np.ndarray
    visual: np.ndarray
    labels: np.ndarray
    alpha: np.ndarray  # [N, T]
    beta: np.ndarray  # [N, T, M]

    def accuracies(self) -> Accuracies:
        """Fraction of correct predictions of each readout."""
        return Accuracies(*(float((p == self.labels).mean()) for p in (self.fused, self.audio, self.visual)))


def split_tensors(split: MultimodalSplit, device: torch.device | str = "cpu"):
    """A split's audio, image and labels as torch tensors on ``device``."""
    return (torch.from_numpy(split.audio).to(device), torch.from_numpy(split.image).to(device),
            torch.from_numpy(split.labels).to(device))


def schedule_tensor(split: MultimodalSplit, device: torch.device | str = "cpu") -> torch.Tensor | None:
    """A visual stream's per-step schedule [N, T, K] on ``device``, or None for static images."""
    return None if split.schedule is None else torch.from_numpy(split.schedule).to(device)


@torch.no_grad()
def predict(model: AVSpikingNet, split: MultimodalSplit, batch_size: int = 256) -> Predictions:
    """Run ``model`` over ``split`` in eval mode in batches and collect predictions and attention (training
    mode restored)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    audio, image, labels = split_tensors(split, device)
    schedule = schedule_tensor(split, device)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("fused", "audio", "visual", "alpha", "beta")}
    for start in range(0, len(split), batch_size):
        window = slice(start, start + batch_size)
        out = model(audio[window], image[window], None if schedule is None else schedule[window])
        parts["fused"].append(out.logits.argmax(-1).cpu().numpy())
        parts["audio"].append(out.audio_logits.argmax(-1).cpu().numpy())
        parts["visual"].append(out.visual_logits.argmax(-1).cpu().numpy())
        parts["alpha"].append(out.alpha.cpu().numpy())
        parts["beta"].append(out.beta.cpu().numpy())
    model.train(was_training)
    cat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}
    return Predictions(labels=split.labels, **cat)


def evaluate(model: AVSpikingNet, split: MultimodalSplit, batch_size: int = 256) -> Accuracies:
    """Fused, audio-only and visual-only accuracy of ``model`` on ``split``."""
    return predict(model, split, batch_size).accuracies()
