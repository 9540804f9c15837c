"""What the counters count over: synapse groups, spiking populations and the host head.

A *synapse group* is one weight tensor between one activity array (its ``source``) and one
target (a LIF population or a readout). It is the unit NeuroBench counts (one ``nn.Linear`` /
``nn.Conv2d``) and the unit a chip stores (one connection process). Fan-in fusion is two groups
with the same target; the time warp is one group per used delay tap (see
:func:`taaf_topology`). Keeping the topology separate from the activity is what lets the torch
model and every hardware backend share one counting implementation: only the activity differs.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from export.nir_export import encoder_outputs, spiking_layers
from taaf.config import MODALITIES
from taaf.model.network import AVSpikingNet
from taaf.model.timewarp import TimeWarp


@dataclass(frozen=True, eq=False)
class SynapseGroup:
    """One weight tensor: Linear ``[out, in]`` or Conv2d ``[C_out, C_in, kh, kw]``.

    ``binary_input`` is declared, not detected: spikes (ACs) or analog values (MACs). ``delay``
    is in steps: at step t the group reads its source at step t - delay. ``inputs`` (Linear
    only, bool ``[in]``) marks the inputs the group is wired to at all: a time-warp tap carries
    only the channels whose delay uses it, so its other columns are absent synapses, not zero
    weights (they count neither as dense operations nor as stored weights).
    """

    name: str
    source: str
    target: str
    weight: torch.Tensor
    bias: torch.Tensor | None = None
    binary_input: bool = True
    delay: int = 0
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    inputs: torch.Tensor | None = None

    @property
    def stored_weights(self) -> int:
        """Weight entries the chip stores: all of them, less the columns of absent inputs."""
        if self.inputs is None:
            return self.weight.numel()
        return self.weight.shape[0] * int(self.inputs.sum())

    @property
    def is_conv(self) -> bool:
        return self.weight.dim() == 4

    @classmethod
    def from_module(cls, name: str, module: nn.Module, source: str, target: str,
                    binary_input: bool = True, delay: int = 0) -> "SynapseGroup":
        """A group from an ``nn.Linear`` or ``nn.Conv2d`` (weights detached, float32 copies)."""
        weight = module.weight.detach().float().clone()
        bias = None if module.bias is None else module.bias.detach().float().clone()
        if isinstance(module, nn.Conv2d):
            if module.groups != 1 or tuple(module.dilation) != (1, 1) or isinstance(module.padding, str):
                raise ValueError(f"{name}: only groups=1, dilation=1, numeric padding is counted")
            return cls(name, source, target, weight, bias, binary_input, delay,
                       tuple(module.stride), tuple(module.padding))
        if isinstance(module, nn.Linear):
            return cls(name, source, target, weight, bias, binary_input, delay)
        raise TypeError(f"{name}: cannot count synapses of {type(module).__name__}")


@dataclass(frozen=True)
class Population:
    """A LIF population; ``name`` is also the activity key of its spikes (NIR node name)."""

    name: str
    shape: tuple[int, ...]
    decay: float  # snnTorch beta: v[t] = decay * v[t-1] + I[t], reset to zero on a spike

    @property
    def neurons(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n


@dataclass(frozen=True)
class HostHead:
    """The host part of TAAF/concat (:mod:`taaf.model.host`): no weights, dense arithmetic."""

    fusion: str
    n_classes: int
    n_modalities: int = len(MODALITIES)


@dataclass(frozen=True)
class Topology:
    groups: tuple[SynapseGroup, ...]
    populations: tuple[Population, ...]
    host: HostHead | None = None

    def __post_init__(self) -> None:
        names = [g.name for g in self.groups] + [p.name for p in self.populations]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate topology names: {sorted(dup)}")

    def into(self, target: str) -> tuple[SynapseGroup, ...]:
        return tuple(g for g in self.groups if g.target == target)


def taaf_topology(model: AVSpikingNet) -> Topology:
    """The chip of ``model`` as the exporter writes it (same node names), plus the host head.

    Time warp: ``x~[t] = sum_s w_s * x[t - s]`` feeding ``W``. On a chip each used tap s is its
    own synapse group ``W diag(w_s)`` with synaptic delay s (NIR Delay + Scale; Loihi 2 synaptic
    delays), named ``<group>@tap<s>``. An identity warp (all delays 0, the untrained state) is
    one plain group named like the NIR node, exactly what the exporter writes.
    """
    enc_a, enc_v, cfg = model.audio_encoder, model.visual_encoder, model.config
    groups: list[SynapseGroup] = []
    for i, syn in enumerate(enc_a.synapses):
        src = "audio_input" if i == 0 else f"audio_lif{i - 1}"
        groups.append(SynapseGroup.from_module(f"audio_fc{i}", syn, src, f"audio_lif{i}", binary_input=i > 0))
    for i, conv in enumerate(enc_v.convs):
        src = "visual_input" if i == 0 else f"visual_lif{i - 1}"
        groups.append(SynapseGroup.from_module(f"visual_conv{i}", conv, src, f"visual_lif{i}", binary_input=i > 0))
    n_conv = len(enc_v.convs)
    groups.append(SynapseGroup.from_module("visual_fc", enc_v.fc, f"visual_lif{n_conv - 1}", f"visual_lif{n_conv}"))

    sources = encoder_outputs(model)
    warps = {"audio": model.audio_warp, "visual": model.visual_warp}
    for m in MODALITIES:
        readout = model.audio_evidence if m == "audio" else model.visual_evidence
        groups += _tapped(f"readout_{m}", readout, sources[m], f"z_{m}", warps[m])
        if model.fusion is not None:
            syn = model.fusion.audio_synapses if m == "audio" else model.fusion.visual_synapses
            groups += _tapped(f"fusion_{m}_synapses", syn, sources[m], "fusion_lif", warps[m])
    if model.fusion is not None:
        groups.append(SynapseGroup.from_module("readout_modality", model.fusion.modality_score,
                                               "fusion_lif", "modality_scores"))
        groups.append(SynapseGroup.from_module("readout_temporal", model.fusion.temporal_score,
                                               "fusion_lif", "temporal_scores"))

    shapes = _population_shapes(model)
    layers = [*enc_a.neurons, *enc_v.neurons] + ([model.fusion.neurons] if model.fusion is not None else [])
    pops = tuple(Population(name, shapes[name], layer.beta)
                 for name, layer in zip(spiking_layers(model).values(), layers))
    return Topology(tuple(groups), pops, HostHead(cfg.fusion, cfg.n_classes))


def _tapped(name: str, linear: nn.Linear, source: str, target: str, warp: TimeWarp | None) -> list[SynapseGroup]:
    base = SynapseGroup.from_module(name, linear, source, target)
    if warp is None:
        return [base]
    taps = warp.taps().detach().float()  # [S, F]
    used = [s for s in range(taps.shape[0]) if bool(torch.any(taps[s] != 0))]
    if used == [0] and bool(torch.all(taps[0] == 1)):
        return [base]
    return [SynapseGroup(f"{name}@tap{s}", source, target, base.weight * taps[s][None, :],
                         base.bias if k == 0 else None, True, s, inputs=taps[s] != 0)
            for k, s in enumerate(used)]


def _population_shapes(model: AVSpikingNet) -> dict[str, tuple[int, ...]]:
    cfg = model.config
    shapes = {f"audio_lif{i}": (h,) for i, h in enumerate(cfg.audio.hidden)}
    _, h, w = cfg.visual.in_shape
    k, pad = cfg.visual.kernel_size, cfg.visual.kernel_size // 2
    for i, (c, s) in enumerate(zip(cfg.visual.channels, cfg.visual.strides)):
        h, w = (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
        shapes[f"visual_lif{i}"] = (c, h, w)
    shapes[f"visual_lif{len(cfg.visual.channels)}"] = (cfg.visual.hidden,)
    if model.fusion is not None:
        shapes["fusion_lif"] = (cfg.fused_hidden,)
    return shapes
