"""Training losses.

TAAF's attention-weighted per-step loss:

    CE(z, y) + lambda * sum_t stopgrad(alpha_t) * mean_m CE(z_t^m, y)

The per-step term makes every step's evidence useful on its own (so the temporal attention has
something real to choose from); the stop-gradient keeps the loss from shaping alpha to its own
advantage. It is applied to each modality's evidence z_t^m rather than to the beta-mixed z_t:
with the mixed form, a modality that the modality attention turns down (beta -> 0) also stops
receiving gradient, and the imbalance feeds itself (measured on AV-Digits: the weak modality's
accuracy stalled near chance). Concat/OGM-GE use plain cross-entropy on the fused logits;
the concat-aux baseline uses :func:`taaf_loss` on the concat head, whose alpha is uniform.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from taaf.model.host import HeadOutput


def fused_loss(out: HeadOutput, labels: torch.Tensor) -> torch.Tensor:
    """Plain cross-entropy on the fused logits: the loss of concat fusion and OGM-GE."""
    return F.cross_entropy(out.logits, labels)


def taaf_loss(out: HeadOutput, labels: torch.Tensor, step_weight: float, entropy_weight: float = 0.0) -> torch.Tensor:
    """TAAF's loss: fused cross-entropy plus ``step_weight`` times the alpha-weighted per-step, per-modality
    cross-entropy, minus ``entropy_weight`` times the modality attention's normalised entropy
    (mean over samples and steps of H(beta_t) / log M: 1 when uniform), which keeps beta from
    collapsing onto one modality."""
    loss = F.cross_entropy(out.logits, labels)
    if entropy_weight > 0:
        beta = out.beta
        entropy = -(beta * torch.log(beta.clamp_min(1e-12))).sum(-1).mean() / math.log(beta.shape[-1])
        loss = loss - entropy_weight * entropy
    if step_weight > 0:
        per_step = torch.stack([_per_step_ce(ev, labels) for ev in out.modality_step_logits]).mean(dim=0)
        loss = loss + step_weight * (out.alpha.detach() * per_step).sum(dim=1).mean()
    return loss


def _per_step_ce(step_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """[B, T, C] logits -> [B, T] cross-entropy of every step."""
    batch, steps, classes = step_logits.shape
    return F.cross_entropy(
        step_logits.reshape(batch * steps, classes), labels.repeat_interleave(steps), reduction="none"
    ).reshape(batch, steps)
