"""Learnable, causal time-warping: a per-channel fractional delay.

phi(t) = t - d with d >= 0 learnable per feature channel (initialised to 0: identity). The
warped signal is the linear interpolation  x~[t] = (1 - f) x[t - k] + f x[t - k - 1]  with
k = floor(d), f = d - k, i.e. the kernel K(phi(t), s) = max(0, 1 - |phi(t) - s|) of the design
note restricted to s <= t. Because d does not depend on t, the warp is a fixed set of delayed
synapses with weights (1 - f) and f: NIR ``Delay`` + ``Scale``, Loihi 2 synaptic delays.

Why per channel: a single shift per modality can only align onsets; per-channel delays let
the fused layer see e.g. the end of an utterance and the image response at the same step.
"""
from __future__ import annotations

import torch
from torch import nn


class TimeWarp(nn.Module):
    """A learnable per-channel causal delay that aligns the modalities in time and exports as delayed synapses."""

    def __init__(self, features: int, max_delay: int):
        super().__init__()
        self.max_delay = int(max_delay)
        self.delay = nn.Parameter(torch.zeros(features))

    def clamped_delay(self) -> torch.Tensor:
        """d in [0, max_delay]. Straight-through: the value is clamped but the gradient is not
        cut at the bounds, otherwise d = 0 (the identity we start from) would never move
        (torch.clamp has zero gradient at its bounds)."""
        clamped = self.delay.clamp(0.0, float(self.max_delay))
        return self.delay + (clamped - self.delay).detach()

    def taps(self) -> torch.Tensor:
        """Synaptic weight of each integer delay s = 0..max_delay+1, per channel: [S, F]."""
        d = self.clamped_delay()
        k = torch.floor(d).detach()
        frac = d - k
        shifts = torch.arange(self.max_delay + 2, dtype=d.dtype, device=d.device)[:, None]
        return (shifts == k) * (1.0 - frac) + (shifts == k + 1) * frac

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, T, F] -> warped [B, T, F]; step t only reads steps <= t (causal)."""
        taps = self.taps()
        out = x * taps[0]
        for s in range(1, taps.shape[0]):
            shifted = torch.nn.functional.pad(x, (0, 0, s, 0))[:, : x.shape[1]]
            out = out + shifted * taps[s]
        return out
