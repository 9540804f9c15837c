"""The host-side head: the only part of the network that does not run on the chip.

Everything before it is synapses and neurons. What is left is O(T * M * C) arithmetic on the
readouts the chip streams out: two softmaxes and a weighted sum. Keeping it in one small
module (no parameters) is what lets the exporter cut the network into chip and host parts.

TAAF (hierarchical: modality level, then temporal level; every score comes from the fused
spiking features h[t] on chip):
         beta[t, m] = softmax_m(s[t, m])                   modality importance
         alpha[t]   = softmax_t(e[t])                      temporal importance
         z[t]       = z_f[t] + sum_m beta[t, m] * z_m[t]   fused evidence + weighted unimodal evidence
         logits     = sum_t alpha[t] * z[t]
z_f is there for fusion ``taaf-fused`` (the default); fusion ``taaf`` (gate-only) has z_f = 0: the fused
layer only gates the unimodal evidence.
concat:  z[t] = z_audio[t] + z_visual[t], logits = mean_t z[t]
Unimodal logits (both heads): mean_t z_m[t], the modality's own evidence (OGM-GE's convention
of reading a modality's share of the fused classifier).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from taaf.config import ATTENTION_FUSIONS


@dataclass
class Readouts:
    """What the chip streams to the host, per step. Shapes [B, T, ...]."""

    audio: torch.Tensor  # z_audio [B, T, C]
    visual: torch.Tensor  # z_visual [B, T, C]
    modality_scores: torch.Tensor | None = None  # s [B, T, M]  (TAAF only)
    temporal_scores: torch.Tensor | None = None  # e [B, T]     (TAAF only)
    fused: torch.Tensor | None = None  # z_f [B, T, C] fused class evidence (fusion "taaf-fused" only)


@dataclass
class HeadOutput:
    """Everything the host head computes: fused and unimodal logits plus the attention weights behind them."""

    logits: torch.Tensor  # [B, C]
    step_logits: torch.Tensor  # [B, T, C]
    audio_logits: torch.Tensor  # [B, C]
    visual_logits: torch.Tensor  # [B, C]
    alpha: torch.Tensor  # [B, T]     temporal attention (uniform for concat)
    beta: torch.Tensor  # [B, T, M]  modality attention (0.5 / 0.5 for concat)
    modality_step_logits: tuple[torch.Tensor, ...]  # z_m [B, T, C] per modality, chip readouts
    spike_rate: torch.Tensor | None = None  # [] mean firing rate of the chip's spiking layers (SNN only)


class HostHead(nn.Module):
    """The parameter-free host part (softmaxes and weighted sums); kept separate so the exporter can cut chip
    from host."""

    def __init__(self, fusion: str):
        super().__init__()
        self.fusion = fusion

    def forward(self, r: Readouts) -> HeadOutput:
        """Chip readouts -> fused logits (TAAF attention or concat sum), unimodal logits and attention weights."""
        evidence = torch.stack([r.audio, r.visual], dim=2)  # [B, T, M, C]
        if self.fusion in ATTENTION_FUSIONS:
            beta = torch.softmax(r.modality_scores, dim=-1)
            alpha = torch.softmax(r.temporal_scores, dim=1)
            step_logits = (beta.unsqueeze(-1) * evidence).sum(dim=2)
            if self.fusion == "taaf-fused":
                step_logits = step_logits + r.fused
            logits = (alpha.unsqueeze(-1) * step_logits).sum(dim=1)
        else:
            step_logits = evidence.sum(dim=2)
            logits = step_logits.mean(dim=1)
            # Uniform attention written as a softmax of zeros: shapes stay symbolic in ONNX.
            alpha = torch.softmax(torch.zeros_like(r.audio[..., 0]), dim=1)
            beta = torch.softmax(torch.zeros_like(evidence[..., 0]), dim=-1)
        return HeadOutput(
            logits=logits,
            step_logits=step_logits,
            audio_logits=r.audio.mean(dim=1),
            visual_logits=r.visual.mean(dim=1),
            alpha=alpha,
            beta=beta,
            modality_step_logits=(r.audio, r.visual),
        )
