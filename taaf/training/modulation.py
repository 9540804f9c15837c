"""Modality-balancing coefficients: TAAF's attention-driven form and OGM-GE's.

Both produce one coefficient k_m in (0, 1] per modality; the dominant modality gets k < 1 and
the other keeps k = 1. What differs is what "dominant" is measured from and what k scales:

* TAAF (ours, from the design note): importance I_m = mean over batch and t of
  alpha_t * beta_t^m (the attention the fused head actually pays to m), rho_m = I_m / I_other,
  k_m = 1 - tanh(gamma * (rho_m - 1)) for rho_m > 1. k_m scales modality m's *learning rate*
  (optimizer parameter group), which also works with Adam, whose updates ignore gradient scale.
* OGM-GE (Peng et al., CVPR 2022): score_m = sum over the batch of softmax(unimodal logits)[y],
  rho_m = score_m / score_other, k_m = 1 - tanh(alpha * rho_m) for rho_m > 1, applied to
  *gradients*, optionally plus Gaussian noise (GE). Two forms:

  - ``ogm-ge-published`` (the official code, GeWu-Lab/OGM-GE_CVPR2022 ``main.py``): every step,
    for *both* modalities, ``grad *= k_m`` then ``grad += N(0, std(grad) + 1e-8)`` with the std
    of the already scaled gradient, on the encoders' convolution kernels only (4-D weights),
    trained with SGD (momentum 0.9, weight decay 1e-4). Our audio encoder has no convolutions,
    so its weight matrices (2-D) stand in for them (:func:`published_ogm_parameters`).
  - ``ogm-ge`` (our adaptation, kept for comparison): only the dominant modality (k < 1), noise
    with the std of the *unscaled* gradient, on every parameter of its encoder, warp and
    evidence readout, trained with Adam (which largely cancels a constant gradient scale).
"""
from __future__ import annotations

import torch


def attention_importance(alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """alpha [B, T], beta [B, T, M] -> I [M] = mean_{b,t} alpha_t * beta_t^m."""
    return (alpha.unsqueeze(-1) * beta).mean(dim=(0, 1)).detach()


def attention_entropy(alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """How spread the attention is, [2] = (temporal, modality), each in [0, 1]: the mean entropy
    of alpha_b over the T steps divided by log T, and of beta_{b,t} over the M modalities divided
    by log M. 1 is uniform attention, 0 a collapse onto one step / one modality; logged per epoch
    because a collapsed attention turns TAAF's balancing into a constant (issue: the audio
    importance sat at 0.00 for 19 epochs)."""
    def normalised(p: torch.Tensor) -> torch.Tensor:
        n = p.shape[-1]
        if n < 2:
            return torch.zeros((), device=p.device)
        h = -(p * torch.log(p.clamp_min(1e-12))).sum(-1)
        return h.mean() / torch.log(torch.tensor(float(n), device=p.device))
    return torch.stack([normalised(alpha.detach()), normalised(beta.detach())])


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
                       generator: torch.Generator | None = None, noise_after_scaling: bool = False) -> None:
    """OGM(-GE): grad <- grad * k (+ N(0, s) when ``noise``), in place; ``s`` is the std of the
    unscaled gradient (our form) or, ``noise_after_scaling``, of the scaled one (the official code)."""
    for p in params:
        if p.grad is None:
            continue
        std = p.grad.std().item() if p.grad.numel() > 1 else 0.0
        p.grad.mul_(coefficient)
        if noise_after_scaling:
            std = p.grad.std().item() if p.grad.numel() > 1 else 0.0
        if noise:
            p.grad.add_(torch.randn(p.grad.shape, generator=generator, device="cpu").to(p.grad.device) * (std + 1e-8))


def published_ogm_parameters(model: torch.nn.Module) -> dict[str, list[torch.nn.Parameter]]:
    """What the official OGM-GE code modulates, per modality: the encoder's convolution kernels
    (parameters with 4 dimensions). An encoder without convolutions (our audio MLP) has its
    weight matrices (2-D) modulated instead; biases, neuron parameters, time-warps and the
    evidence readouts never are."""
    groups = {}
    for name in ("audio", "visual"):
        weights = [p for p in getattr(model, f"{name}_encoder").parameters() if p.dim() >= 2]
        rank = max((p.dim() for p in weights), default=0)
        groups[name] = [p for p in weights if p.dim() == rank]
    return groups
