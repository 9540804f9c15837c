"""Modality-balancing coefficients: TAAF's attention-driven form and OGM-GE's.

Both produce one coefficient k_m in (0, 1] per modality; the dominant modality gets k < 1 and
the other keeps k = 1. What differs is what "dominant" is measured from and what k scales:

* TAAF (ours, from the design note): importance I_m = mean over batch and t of
  alpha_t * beta_t^m (the attention the fused head actually pays to m), rho_m = I_m / I_other,
  k_m = 1 - tanh(gamma * (rho_m - 1)) for rho_m > 1. k_m scales modality m's *learning rate*
  (optimizer parameter group), which also works with Adam, whose updates ignore gradient scale.
* OGM-GE (Peng et al., CVPR 2022): score_m = sum over the batch of softmax(unimodal logits)[y],
  rho_m = score_m / score_other, k_m = 1 - tanh(alpha * rho_m) for rho_m > 1, applied to the
  dominant encoder's *gradients*, optionally plus Gaussian noise with the gradient's std (GE).
"""
from __future__ import annotations

import torch


def attention_importance(alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """alpha [B, T], beta [B, T, M] -> I [M] = mean_{b,t} alpha_t * beta_t^m."""
    return (alpha.unsqueeze(-1) * beta).mean(dim=(0, 1)).detach()


def confidence_scores(unimodal_logits: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """OGM-GE's per-modality score: summed softmax probability of the true class, [M]."""
    return torch.stack([
        torch.softmax(logits.detach(), dim=-1).gather(1, labels[:, None]).sum() for logits in unimodal_logits
    ])


def _ratios(values: torch.Tensor) -> torch.Tensor:
    """rho_m = v_m / mean of the other modalities' v (= v_m / v_other for two)."""
    values = values.clamp_min(1e-12)
    others = (values.sum() - values) / (len(values) - 1)
    return values / others


def taaf_coefficients(importance: torch.Tensor, gamma: float, floor: float = 0.0) -> torch.Tensor:
    """TAAF's learning-rate coefficients: 1 - tanh(gamma (rho_m - 1)) for a dominant modality, else 1;
    never below ``floor``."""
    rho = _ratios(importance)
    k = torch.where(rho > 1, 1 - torch.tanh(gamma * (rho - 1)), torch.ones_like(rho))
    return k.clamp_min(floor)


def ogm_ge_coefficients(scores: torch.Tensor, alpha: float) -> torch.Tensor:
    """OGM-GE's gradient coefficients k_m = 1 - tanh(alpha rho_m) for the dominant modality, 1 for the others."""
    rho = _ratios(scores)
    return torch.where(rho > 1, 1 - torch.tanh(alpha * rho), torch.ones_like(rho))


def modulate_gradients(params: list[torch.nn.Parameter], coefficient: float, noise: bool,
                       generator: torch.Generator | None = None) -> None:
    """OGM(-GE): grad <- grad * k (+ N(0, std(grad)) when ``noise``), in place."""
    for p in params:
        if p.grad is None:
            continue
        std = p.grad.std().item() if p.grad.numel() > 1 else 0.0
        p.grad.mul_(coefficient)
        if noise:
            p.grad.add_(torch.randn(p.grad.shape, generator=generator, device="cpu").to(p.grad.device) * (std + 1e-8))
