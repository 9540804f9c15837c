"""Spiking encoders, one per modality. Every layer is a synapse group (Linear or Conv2d)
followed by a LIF population: the unit a Loihi core implements and NIR can describe.

Encoders are run layer by layer over all T steps (valid because they are feed-forward), which
is several times faster than stepping the whole network per time step.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from taaf.config import AudioEncoderConfig, NeuronConfig, VisualEncoderConfig
from taaf.errors import TaafError
from taaf.model.neurons import LIFLayer


@dataclass
class Trace:
    """Spikes of every LIF layer of an encoder, [B, T, ...] each, in layer order."""

    spikes: list[torch.Tensor]


class AudioEncoder(nn.Module):
    """MFCC frame per step -> Linear -> LIF -> ... ; the first layer sees analog input (MACs)."""

    def __init__(self, cfg: AudioEncoderConfig, neuron: NeuronConfig):
        super().__init__()
        sizes = (cfg.in_features, *cfg.hidden)
        self.synapses = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.neurons = nn.ModuleList(LIFLayer(neuron) for _ in cfg.hidden)
        self.out_features = cfg.hidden[-1]

    def forward(self, audio: torch.Tensor) -> Trace:
        """audio [B, T, F] -> spikes of every layer over all steps (the last one feeds fusion)."""
        x, spikes = audio, []
        for syn, lif in zip(self.synapses, self.neurons):
            x = lif(syn(x))
            spikes.append(x)
        return Trace(spikes)


def visual_synapses(cfg: VisualEncoderConfig) -> tuple[nn.ModuleList, nn.Linear]:
    """The visual synapse groups: strided 'same'-padded convolutions, then one Linear layer
    (shared by the spiking encoder and its ANN twin, so they have the same shapes)."""
    c, h, w = cfg.in_shape
    convs, pad = [], cfg.kernel_size // 2
    for out_c, stride in zip(cfg.channels, cfg.strides):
        convs.append(nn.Conv2d(c, out_c, cfg.kernel_size, stride=stride, padding=pad))
        h = (h + 2 * pad - cfg.kernel_size) // stride + 1
        w = (w + 2 * pad - cfg.kernel_size) // stride + 1
        c = out_c
    return nn.ModuleList(convs), nn.Linear(c * h * w, cfg.hidden)


def stream_needs_schedule() -> TaafError:
    """The one-line refusal for a per-step visual stream ([B, K, C, H, W] frames) passed without its
    schedule, i.e. to a path that only knows static images (it would otherwise give wrong results)."""
    return TaafError("this path takes one static image per sample, but the data has a per-step visual "
                     "stream (e.g. av-mnist-temporal: frames [N, K, C, H, W] + schedule [N, T, K]); "
                     "it is not supported here yet")


def first_layer_current(conv: nn.Conv2d, image: torch.Tensor, n_steps: int,
                        schedule: torch.Tensor | None) -> torch.Tensor:
    """Input current of the first conv layer at every step, [B, T, C', H', W'].

    Static image: convolved once and repeated. Visual stream (``image`` [B, K, C, H, W], ``schedule``
    [B, T, K]): the conv is linear, so conv(sum_k w_k x_k) = sum_k w_k conv(x_k) + bias, and the K
    frames are convolved once each instead of T mixed frames being built and convolved."""
    if schedule is None:
        if image.ndim != 4:
            raise stream_needs_schedule()
        return conv(image).unsqueeze(1).expand(-1, n_steps, -1, -1, -1)
    batch, k = image.shape[:2]
    if image.ndim != 5 or schedule.shape != (batch, n_steps, k):
        raise TaafError(f"visual stream: frames {tuple(image.shape)} and schedule {tuple(schedule.shape)} do "
                        f"not fit T = {n_steps}")
    frames = nn.functional.conv2d(image.flatten(0, 1), conv.weight, None, conv.stride, conv.padding)
    current = torch.einsum("btk,bkchw->btchw", schedule, frames.reshape(batch, k, *frames.shape[1:]))
    return current if conv.bias is None else current + conv.bias[:, None, None]


class VisualEncoder(nn.Module):
    """Static image presented at every step (or a per-step visual stream) -> strided Conv2d + LIF
    layers -> Linear + LIF."""

    def __init__(self, cfg: VisualEncoderConfig, neuron: NeuronConfig):
        super().__init__()
        self.convs, self.fc = visual_synapses(cfg)
        self.neurons = nn.ModuleList(LIFLayer(neuron) for _ in range(len(self.convs) + 1))
        self.out_features = cfg.hidden

    def forward(self, image: torch.Tensor, n_steps: int, schedule: torch.Tensor | None = None) -> Trace:
        """image [B, C, H, W] shown for ``n_steps`` steps (or frames [B, K, C, H, W] mixed per step by
        ``schedule`` [B, T, K]) -> spikes of every layer."""
        batch = image.shape[0]
        current = first_layer_current(self.convs[0], image, n_steps, schedule)
        spikes = [self.neurons[0](current)]
        for conv, lif in zip(self.convs[1:], self.neurons[1:-1]):
            flat = spikes[-1].reshape(batch * n_steps, *spikes[-1].shape[2:])
            out = conv(flat)
            current = out.reshape(batch, n_steps, *out.shape[1:])
            spikes.append(lif(current))
        flat = spikes[-1].reshape(batch, n_steps, -1)
        spikes.append(self.neurons[-1](self.fc(flat)))
        return Trace(spikes)
