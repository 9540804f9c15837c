"""Composes the metrics into one result per run: :class:`Counter` (topology -> counts).

    counts = count_torch(model, audio, image)               # the PyTorch model
    counts = count_run(model, run_reference(model, a, i), a, i)   # any backend's ChipRun
    counts = count_graph(lower_graph(g), inputs, ReferenceSimulator(g).run(inputs, record=True).states)

All go through :class:`Counter` on an :class:`~benchmarks.metrics.activity.Activity`, so the
counts agree exactly whenever the spikes do. All per-inference numbers are per sample, summed
over the T steps; totals are kept as integers so sums over layers stay exact.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from benchmarks.metrics.activity import (Activity, ArrayLike, activity_from_graph, activity_from_run,
                                         activity_from_torch)
from benchmarks.metrics.memory import MemoryFootprint, memory_footprint
from benchmarks.metrics.neurons import Firing, FiringCounts, MembraneUpdates, UpdateCounts
from benchmarks.metrics.synops import GroupCounts, SynapticOperations
from benchmarks.metrics.topology import HostHead, Topology, chip_topology, taaf_topology
from hardware.backends import ChipRun
from hardware.ir.graph import ChipGraph
from taaf.model.network import AVSpikingNet


@dataclass(frozen=True)
class HostCounts:
    """Dense host arithmetic per inference. TAAF: beta-weighted sum over modalities (T*M*C)
    and alpha-weighted sum over steps (T*C) as MACs, softmax exponentials (T*M + T) reported
    but not charged. Concat: the same sums with uniform weights, no softmax."""

    macs: int
    exps: int

    def as_dict(self) -> dict:
        """The counts as a JSON-able dict for reports."""
        return {"macs": self.macs, "exps": self.exps}


def host_counts(host: HostHead, steps: int) -> HostCounts:
    """The host head's dense arithmetic over ``steps`` (it has no weights, so no activity is needed)."""
    t, m, c = steps, host.n_modalities, host.n_classes
    fused = t * c if host.fusion == "taaf-fused" else 0  # + z_f[t] at every step
    return HostCounts(macs=t * m * c + t * c + fused, exps=t * m + t if host.fusion in ("taaf", "taaf-fused") else 0)


@dataclass(frozen=True)
class NetworkCounts:
    """One counted run: per-group, per-population and memory counts, totalled over a batch."""

    samples: int
    steps: int
    groups: tuple[GroupCounts, ...]
    firing: tuple[FiringCounts, ...]
    updates: tuple[UpdateCounts, ...]
    memory: MemoryFootprint
    host: HostCounts | None = None

    def group(self, name: str) -> GroupCounts:
        """The counts of the synapse group ``name`` (KeyError listing the names otherwise)."""
        return _find(self.groups, "name", name)

    def population(self, name: str) -> tuple[FiringCounts, UpdateCounts]:
        """Firing and update counts of the population ``name``."""
        return _find(self.firing, "population", name), _find(self.updates, "population", name)

    def _per_sample(self, total: int) -> float:
        return total / self.samples

    @property
    def effective_acs(self) -> float:
        """Chip ACs per inference (groups fed by spikes)."""
        return self._per_sample(sum(g.effective_total for g in self.groups if g.op == "AC"))

    @property
    def effective_macs(self) -> float:
        """Chip MACs per inference (groups fed by analog input); the host is separate."""
        return self._per_sample(sum(g.effective_total for g in self.groups if g.op == "MAC"))

    @property
    def synops(self) -> float:
        """Chip synaptic operations per inference (ACs + MACs), what energy tables charge."""
        return self.effective_acs + self.effective_macs

    @property
    def dense_ops(self) -> float:
        """NeuroBench ``Dense`` per inference: every wired input and weight counted."""
        return self._per_sample(sum(g.dense_total for g in self.groups))

    @property
    def host_macs(self) -> int:
        """Host-head MACs per inference (0 without a host head)."""
        return 0 if self.host is None else self.host.macs

    @property
    def neuron_updates(self) -> float:
        """Neurons x steps per inference: what a time-stepped chip services."""
        return self._per_sample(sum(u.neuron_updates_total for u in self.updates))

    @property
    def membrane_updates(self) -> float:
        """NeuroBench membrane updates per inference."""
        return self._per_sample(sum(u.membrane_updates_total for u in self.updates))

    @property
    def activation_sparsity(self) -> float:
        """Zero outputs over all outputs of every spiking layer, all steps (NeuroBench)."""
        spikes = sum(sum(f.spikes_per_step) for f in self.firing)
        slots = sum(f.neurons * f.steps * f.samples for f in self.firing)
        return (slots - spikes) / slots

    def as_dict(self) -> dict:
        """Totals, per-group and per-population counts and memory as a JSON-able dict for reports."""
        return {
            "samples": self.samples, "steps": self.steps,
            "effective_acs": self.effective_acs, "effective_macs": self.effective_macs,
            "dense_ops": self.dense_ops, "host_macs": self.host_macs,
            "neuron_updates": self.neuron_updates, "membrane_updates": self.membrane_updates,
            "activation_sparsity": self.activation_sparsity,
            "groups": [g.as_dict() for g in self.groups],
            "populations": [{**f.as_dict(), **u.as_dict()} for f, u in zip(self.firing, self.updates)],
            "host": None if self.host is None else self.host.as_dict(),
            "memory": self.memory.as_dict(),
        }


class Counter:
    """One topology, many activities: fan-outs and memory are computed once."""

    def __init__(self, topology: Topology):
        self.topology = topology
        self.memory = memory_footprint(topology)
        self._synops, self._firing, self._updates = SynapticOperations(), Firing(), MembraneUpdates()

    def __call__(self, activity: Activity) -> NetworkCounts:
        host = self.topology.host
        return NetworkCounts(
            samples=activity.samples, steps=activity.steps,
            groups=self._synops(self.topology, activity),
            firing=self._firing(self.topology, activity),
            updates=self._updates(self.topology, activity),
            memory=self.memory,
            host=None if host is None else host_counts(host, activity.steps),
        )


def count_torch(model: AVSpikingNet, audio: ArrayLike, image: ArrayLike) -> NetworkCounts:
    """Counts of the PyTorch model's own spikes, on the chip its NIR export lowers to."""
    return Counter(taaf_topology(model))(activity_from_torch(model, audio, image))


def count_run(model: AVSpikingNet, run: ChipRun, audio: ArrayLike, image: ArrayLike) -> NetworkCounts:
    """Counts of a backend's run; ``model`` supplies the weights (the run only has spikes)."""
    return Counter(taaf_topology(model))(activity_from_run(run, audio, image))


def count_graph(chip: ChipGraph, inputs: Mapping[str, np.ndarray],
                states: Mapping[str, Mapping[str, np.ndarray]]) -> NetworkCounts:
    """Counts of any NIR graph's run (no host head): its chip IR supplies the weights, the
    simulator's ``[T, B, ...]`` inputs and recorded spikes the activity
    (:func:`~benchmarks.metrics.activity.activity_from_graph`)."""
    return Counter(chip_topology(chip))(activity_from_graph(chip, inputs, states))


def _find(items: tuple, attr: str, name: str):
    for item in items:
        if getattr(item, attr) == name:
            return item
    raise KeyError(f"no {attr} {name!r} (have {[getattr(i, attr) for i in items]})")
