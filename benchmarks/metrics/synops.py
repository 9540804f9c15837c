"""Synaptic operations per synapse group, NeuroBench 2.x definitions.

effective: every non-zero input times the number of non-zero weights it drives (bias
    excluded). NeuroBench gets this by running a copy of the layer with binarised input and
    weights and summing its output; for a conv that is ``conv(mask_x, mask_w)``. The sum of
    that output is linear in ``mask_x``, so it equals ``sum(mask_x * fanout)`` where
    ``fanout = conv_transpose(ones, mask_w)`` is each input's number of valid (non-padding)
    non-zero synapses. We precompute ``fanout`` once per group: the per-batch cost is then a
    count of non-zeros, not a convolution (the tests check both give NeuroBench's numbers).
dense: the same with every input and every weight counted as non-zero (NeuroBench ``Dense``);
    inputs a group is not wired to (a warp tap's unused channels) are not synapses.
AC or MAC: by the group's declared input (spikes or analog), not by inspecting values.
static input: an analog input equal at every step of every sample (the image presented T times);
    such a group's counts are T equal steps, so one step's worth is exactly ``effective / T``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from benchmarks.metrics.activity import Activity
from benchmarks.metrics.topology import SynapseGroup, Topology


@dataclass(frozen=True)
class GroupCounts:
    """One synapse group's operations, summed over all steps and samples (``*_total``)."""

    name: str
    source: str
    target: str
    op: str  # "AC" (binary spike input) or "MAC" (analog input)
    delay: int
    samples: int
    effective_total: int
    dense_total: int
    weights: int
    nonzero_weights: int
    biases: int
    # analog input identical at every step (the static image): a model that computes the group
    # once per inference can be charged one step's operations (benchmarks.energy, static_once)
    static_input: bool = False

    @property
    def effective(self) -> float:
        """Effective operations per inference (per sample, summed over T)."""
        return self.effective_total / self.samples

    @property
    def dense(self) -> float:
        """Dense operations per inference (every wired input and weight counted)."""
        return self.dense_total / self.samples

    def as_dict(self) -> dict:
        """Fields plus the per-inference figures, as a JSON-able dict for reports."""
        return {**asdict(self), "effective": self.effective, "dense": self.dense}


def fanout(group: SynapseGroup, in_shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per input element: (non-zero synapses it drives, all synapses it drives), float64."""
    mask = (group.weight != 0).double()
    if group.is_conv:
        if len(in_shape) != 3:
            raise ValueError(f"{group.name}: conv input must be [C, H, W], got {in_shape}")
        out_hw = _conv_out(group, in_shape[1:])
        grad = torch.ones(1, mask.shape[0], *out_hw, dtype=torch.float64)
        size = (1, *in_shape)
        eff = torch.nn.grad.conv2d_input(size, mask, grad, stride=group.stride, padding=group.padding)[0]
        dense = torch.nn.grad.conv2d_input(size, torch.ones_like(mask), grad, stride=group.stride,
                                           padding=group.padding)[0]
        return eff, dense
    n_in = 1
    for s in in_shape:
        n_in *= s
    if n_in != mask.shape[1]:
        raise ValueError(f"{group.name}: {mask.shape[1]} input features, activity has {in_shape}")
    dense = torch.full((mask.shape[1],), float(mask.shape[0]), dtype=torch.float64)
    if group.inputs is not None:
        dense = dense * group.inputs.double()
    return mask.sum(0).reshape(in_shape), dense.reshape(in_shape)


def delayed(x: torch.Tensor, delay: int) -> torch.Tensor:
    """What a group with synaptic ``delay`` reads at steps 0..T-1 (zeros before the first input)."""
    if delay == 0:
        return x
    pad = torch.zeros_like(x[:, : min(delay, x.shape[1])])
    return torch.cat([pad, x[:, : max(x.shape[1] - delay, 0)]], dim=1)


def contributions(group: SynapseGroup, x: torch.Tensor) -> torch.Tensor:
    """Per target neuron and step, how many non-zero (input, weight) pairs reach it:
    ``[B, T, *out_shape]`` (NeuroBench's binarised-layer output, before its sum)."""
    x = delayed(x, group.delay)
    b, t = x.shape[:2]
    nz = (x != 0).float()
    mask = (group.weight != 0).float()
    if group.is_conv:
        out = F.conv2d(nz.reshape(b * t, *nz.shape[2:]), mask, stride=group.stride, padding=group.padding)
        return out.reshape(b, t, *out.shape[1:])
    return nz.reshape(b, t, -1) @ mask.T


class SynapticOperations:
    """Counts every group of a topology on recorded activity (fan-outs cached per input shape)."""

    def __init__(self) -> None:
        # Keyed by the group object itself (identity hash): it stays alive, so no id is reused.
        self._fanouts: dict[tuple[SynapseGroup, tuple[int, ...]], tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, topology: Topology, activity: Activity) -> tuple[GroupCounts, ...]:
        return tuple(self.count(g, activity) for g in topology.groups)

    def count(self, group: SynapseGroup, activity: Activity) -> GroupCounts:
        """Effective and dense operations of one synapse group on the recorded activity."""
        x = activity[group.source]
        b, t = x.shape[:2]
        key = (group, tuple(x.shape[2:]))
        if key not in self._fanouts:
            self._fanouts[key] = fanout(group, tuple(x.shape[2:]))
        eff, dense = self._fanouts[key]
        nonzero = activity.nonzero_per_step(group.source)[: max(t - group.delay, 0)].sum(dim=0)  # exact int64
        effective = int(torch.round((nonzero.double() * eff).sum()).item())
        return GroupCounts(
            name=group.name, source=group.source, target=group.target,
            op="AC" if group.binary_input else "MAC", delay=group.delay, samples=b,
            effective_total=effective, dense_total=int(round(dense.sum().item())) * t * b,
            weights=group.stored_weights, nonzero_weights=int((group.weight != 0).sum()),
            biases=0 if group.bias is None else group.bias.numel(),
            static_input=not group.binary_input and group.delay == 0 and t > 1 and bool((x == x[:, :1]).all()),
        )


def _conv_out(group: SynapseGroup, hw: tuple[int, ...]) -> tuple[int, int]:
    kh, kw = group.weight.shape[2:]
    (sh, sw), (ph, pw) = group.stride, group.padding
    return (hw[0] + 2 * ph - kh) // sh + 1, (hw[1] + 2 * pw - kw) // sw + 1
