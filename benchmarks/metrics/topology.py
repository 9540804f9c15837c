"""What the counters count over: synapse groups, spiking populations and the host head.

A *synapse group* is one weight tensor between one activity array (its ``source``) and one
target (a LIF population or a readout). It is the unit NeuroBench counts (one ``nn.Linear`` /
``nn.Conv2d``) and the unit a chip stores (one connection process): one term of the chip IR
(:func:`chip_topology`, for any NIR graph; :func:`taaf_topology` is that of the TAAF export).
Fan-in fusion is two groups with the same target; the time warp is one group per used delay
tap (``<node>@tap<s>``, NIR Delay + Scale, i.e. Loihi 2 synaptic delays). Keeping the topology separate from the activity is what lets the torch
model and every hardware backend share one counting implementation: only the activity differs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from export.nir_export import model_to_nir
from hardware.ir.graph import BIAS, ChipGraph, NeuronLayer, Readout, Term
from hardware.ir.lower import lower_graph
from taaf.config import MODALITIES
from taaf.dynamics import DEFAULT_DT
from taaf.model.network import AVSpikingNet


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
        """Whether the weight is a conv kernel (counted at valid positions) rather than a matrix."""
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
        """Number of neurons (the product of ``shape``): the unit of firing rates and updates."""
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
    """Everything a counter counts over, independent of any activity: groups, populations, host."""

    groups: tuple[SynapseGroup, ...]
    populations: tuple[Population, ...]
    host: HostHead | None = None

    def __post_init__(self) -> None:
        names = [g.name for g in self.groups] + [p.name for p in self.populations]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate topology names: {sorted(dup)}")

    def into(self, target: str) -> tuple[SynapseGroup, ...]:
        """The groups driving ``target`` (fan-in): what membrane updates need to know reached it."""
        return tuple(g for g in self.groups if g.target == target)


def chip_topology(chip: ChipGraph, host: HostHead | None = None) -> Topology:
    """What the counters count over for any NIR graph, read from its chip IR.

    One synapse group per :class:`~hardware.ir.graph.Term` of every neuron layer and every
    non-direct readout, named like the term (the NIR node owning the weights; a time warp's
    taps are ``<node>@tap<d>``, each with its own delay); a convolution term is a conv group
    (NeuroBench's valid-position dense counts), every other term a Linear group with its exact
    matrix. One population per neuron layer. Groups and populations are listed layers first, then
    readouts, branch by branch (reached from one Input, by Input name and depth, then merging).
    """
    order = _branch_order(chip)
    groups: list[SynapseGroup] = []
    for target in order:
        item = chip.neurons.get(target) or chip.readouts[target]
        if isinstance(item, Readout) and item.direct is not None:
            continue  # recorded as it is: no synapses
        gain = item.gain if isinstance(item, NeuronLayer) else np.ones(item.size)
        # the constant source BIAS is how a chip holds a bias it cannot put on the membrane (into
        # a CubaLIF's current, behind a Delay or a recurrent edge): a bias, not synaptic events
        terms = tuple(t for t in item.terms if t.source != BIAS)
        constant = sum((t.dense(item.size)[:, 0] for t in item.terms if t.source == BIAS), np.zeros(item.size))
        residual = _unattributed_bias(item.bias, gain, terms, item.size)
        if np.any(constant):
            residual = constant if residual is None else residual + constant
        for i, t in enumerate(terms):
            bias = t.bias if i > 0 or residual is None else (residual if t.bias is None else t.bias + residual)
            groups.append(_group(chip, target, item.shape, t, bias))
    pops = tuple(Population(n, chip.neurons[n].shape, 1.0 - chip.neurons[n].dv) for n in order if n in chip.neurons)
    return Topology(tuple(groups), pops, host)


def taaf_topology(model: AVSpikingNet) -> Topology:
    """The chip of ``model`` exactly as its NIR export lowers (:func:`chip_topology` of
    ``lower_graph(model_to_nir(model))``), plus the host head: the PyTorch model and every
    backend are counted on the weights the chip holds, under the exporter's node names."""
    chip = lower_graph(model_to_nir(model, DEFAULT_DT), DEFAULT_DT)
    return chip_topology(chip, HostHead(model.config.fusion, model.config.n_classes))


def _branch_order(chip: ChipGraph) -> list[str]:
    """Neuron layers, then readouts, each sorted by (how many Inputs reach them, which, latency):
    a topological order of the feed-forward edges that keeps each Input's branch together."""
    deps: dict[str, frozenset[str]] = {n: frozenset((n,)) for n in chip.inputs}
    for n in (*chip.neurons, *chip.readouts):  # neurons are in evaluation order
        deps[n] = frozenset().union(*(deps[t.source] for t in chip.terms_into(n) if t.source in deps))
    index = {n: i for i, n in enumerate((*chip.neurons, *chip.readouts))}
    return sorted(index, key=lambda n: (n in chip.readouts, len(deps[n]), sorted(deps[n]), chip.latency(n), n))


def _unattributed_bias(bias: np.ndarray, gain: np.ndarray, terms: tuple[Term, ...], n: int) -> np.ndarray | None:
    """The part of a layer's constant input no term's node accounts for (a neuron's own leak
    ``v_leak dt/tau``), in term units (divided by the gain); None when there is none."""
    attributed = np.zeros(n)
    for t in terms:
        if t.bias is not None:
            attributed = attributed + t.bias
    expected = gain * attributed
    rest = np.where(np.isclose(bias, expected, rtol=1e-9, atol=1e-12), 0.0, bias - expected)
    if not np.any(rest):
        return None
    return np.divide(rest, gain, out=rest.copy(), where=gain != 0)


def _group(chip: ChipGraph, target: str, shape: tuple[int, ...], t: Term, bias: np.ndarray | None) -> SynapseGroup:
    """One term as a synapse group: conv with its kernel when a counter can take it, else Linear."""
    binary = t.source not in chip.inputs
    source_shape = chip.inputs.get(t.source) or chip.neurons[t.source].shape
    k = t.conv
    if (k is not None and k.groups == 1 and k.dilation == (1, 1) and all(a == b for a, b in k.padding)
            and k.in_shape == tuple(source_shape) and k.out_shape == tuple(shape)):
        per_channel = None if bias is None else _per_channel(bias, k.out_shape[0])
        if bias is None or per_channel is not None:
            return SynapseGroup(t.name, t.source, target, torch.as_tensor(k.weight),
                                None if per_channel is None else torch.as_tensor(per_channel), binary, t.delay,
                                k.stride, (k.padding[0][0], k.padding[1][0]))
    matrix = t.dense(chip.size(target))
    inputs = None
    if "@tap" in t.name:  # a time-warp tap: the channels it does not carry are absent synapses
        wired = np.any(matrix != 0, axis=0)
        inputs = None if wired.all() else torch.as_tensor(wired)
    if bias is not None and len(shape) > 1:
        per_channel = _per_channel(bias, shape[0])
        if per_channel is None:
            raise ValueError(f"{t.name}: a constant input that varies within a channel of {target!r} "
                             f"{shape} cannot be counted (membrane updates take per-channel biases)")
        bias = per_channel
    return SynapseGroup(t.name, t.source, target, torch.as_tensor(matrix),
                        None if bias is None else torch.as_tensor(bias), binary, t.delay, inputs=inputs)


def _per_channel(bias: np.ndarray, channels: int) -> np.ndarray | None:
    """``[C, ...]``-layout bias as one number per channel, or None when it varies within one."""
    rows = bias.reshape(channels, -1)
    return rows[:, 0].copy() if np.all(rows == rows[:, :1]) else None
