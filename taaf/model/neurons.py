"""LIF layers as used by every encoder: snnTorch ``Leaky``, reset to zero, no reset delay.

These are the only settings NIR and Lava can represent (NIR has no delayed subtract reset), so
the model is trained with the dynamics it will be deployed with. ``beta`` is one scalar per
layer (Lava's LIF process shares du/dv/vth); the exporter expands it to per-neuron arrays.
"""
from __future__ import annotations

import snntorch as snn
import torch
from torch import nn

from taaf.config import NeuronConfig


#: Largest decay a layer may learn. beta = 1 is a non-leaky IF neuron: NIR's LIF needs a finite
#: tau = dt / (1 - beta), and Loihi's 12-bit decay cannot represent leaks below 1/4096 anyway.
BETA_MAX = 0.995
#: Smallest decay a layer may learn. beta = 0 (tau = dt, no memory) is a fine float neuron, but
#: Loihi's 12-bit dv register holds at most 4095/4096 of a decay step, so the chip keeps at least
#: 1/4096 of the voltage. An SGD run at a high rate drove a visual layer's beta to 0 (the study's
#: ogm-ge-published on misaligned-strong); clamping keeps such a model deployable.
BETA_MIN = 1.0 / 4096


class LIFLayer(nn.Module):
    """Runs a snnTorch Leaky population over time: currents [B, T, ...] -> spikes [B, T, ...]."""

    def __init__(self, neuron: NeuronConfig):
        super().__init__()
        self.lif = snn.Leaky(
            beta=torch.tensor(float(neuron.beta)),
            threshold=float(neuron.threshold),
            learn_beta=neuron.learn_beta,
            reset_mechanism="zero",
            reset_delay=False,
        )

    @torch.no_grad()
    def constrain_(self) -> None:
        """Keep a learned beta deployable (called after every optimizer step)."""
        self.lif.beta.clamp_(BETA_MIN, BETA_MAX)

    @property
    def beta(self) -> float:
        """The layer's membrane decay, clamped to [0, 1], as the exporter writes it."""
        return float(self.lif.beta.detach().clamp(0, 1))

    @property
    def threshold(self) -> float:
        """The layer's firing threshold, as the exporter writes it."""
        return float(self.lif.threshold)

    def forward(self, currents: torch.Tensor, record_voltage: bool = False):
        """Currents [B, T, ...] -> spikes [B, T, ...] from a zero membrane (and voltages too if ``record_voltage``)."""
        mem = torch.zeros_like(currents[:, 0])
        spikes, voltages = [], []
        for t in range(currents.shape[1]):
            spk, mem = self.lif(currents[:, t], mem)
            spikes.append(spk.to(currents.dtype))  # snnTorch's spike functions return float32
            if record_voltage:
                voltages.append(mem)
        out = torch.stack(spikes, dim=1)
        return (out, torch.stack(voltages, dim=1)) if record_voltage else out
