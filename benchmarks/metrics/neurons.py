"""Per-population neuron metrics: firing and sparsity, and membrane (neuron) updates.

Two kinds of update are counted, because the two conventions disagree on purpose:

* ``neuron_updates`` = neurons x steps: a time-stepped chip (Loihi) services every neuron at
  every step whatever its input. This is what a per-neuron-update energy applies to.
* ``membrane_updates`` = NeuroBench's ``MembraneUpdates``: every neuron at the first step, then
  only the steps at which the membrane value changed. It is computed from spikes alone (no
  recorded voltages, which backends do not report): with reset to zero, a LIF membrane is
  exactly 0 after a spike or while no current has reached it since it was last 0, and a
  non-zero membrane always changes (0 < beta < 1: it decays). A step leaves the membrane
  unchanged exactly when it was 0 and stays 0 (plus, for beta = 1, when there is no input and
  no spike). "No current" means no non-zero (input, weight) pair and a zero bias: exact
  unless contributions cancel to exactly 0.0, which real-valued weights do not do in practice.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from benchmarks.metrics.activity import Activity
from benchmarks.metrics.synops import contributions
from benchmarks.metrics.topology import Population, SynapseGroup, Topology


@dataclass(frozen=True)
class FiringCounts:
    """One population's spike counts per step, summed over a batch, from which rates and sparsity follow."""

    population: str
    neurons: int
    samples: int
    spikes_per_step: tuple[int, ...]  # summed over the batch, one entry per step

    @property
    def steps(self) -> int:
        """Number of time steps counted."""
        return len(self.spikes_per_step)

    @property
    def spikes(self) -> float:
        """Spikes per inference."""
        return sum(self.spikes_per_step) / self.samples

    @property
    def firing_rate(self) -> float:
        """Spikes per neuron per step."""
        return sum(self.spikes_per_step) / (self.samples * self.neurons * self.steps)

    @property
    def firing_rate_per_step(self) -> tuple[float, ...]:
        """Spikes per neuron at each step, averaged over the samples."""
        return tuple(s / (self.samples * self.neurons) for s in self.spikes_per_step)

    @property
    def activation_sparsity(self) -> float:
        """Fraction of neuron-steps without a spike (1 - firing rate)."""
        return 1.0 - self.firing_rate

    def as_dict(self) -> dict:
        """Fields plus the derived rates, as a JSON-able dict for reports."""
        return {**asdict(self), "spikes": self.spikes, "firing_rate": self.firing_rate,
                "firing_rate_per_step": list(self.firing_rate_per_step),
                "activation_sparsity": self.activation_sparsity}


@dataclass(frozen=True)
class UpdateCounts:
    """One population's dense neuron updates and NeuroBench membrane updates, totalled over a batch."""

    population: str
    samples: int
    neuron_updates_total: int
    membrane_updates_total: int

    @property
    def neuron_updates(self) -> float:
        """Dense neuron updates (neurons x steps) per inference."""
        return self.neuron_updates_total / self.samples

    @property
    def membrane_updates(self) -> float:
        """NeuroBench membrane updates per inference."""
        return self.membrane_updates_total / self.samples

    def as_dict(self) -> dict:
        """Fields plus the per-inference figures, as a JSON-able dict for reports."""
        return {**asdict(self), "neuron_updates": self.neuron_updates, "membrane_updates": self.membrane_updates}


class Firing:
    """Spike counts per step for every population."""

    def __call__(self, topology: Topology, activity: Activity) -> tuple[FiringCounts, ...]:
        out = []
        for pop in topology.populations:
            per_step = activity.nonzero_per_step(pop.name).reshape(activity.steps, -1).sum(dim=1)
            out.append(FiringCounts(pop.name, pop.neurons, activity.samples, tuple(int(v) for v in per_step)))
        return tuple(out)


class MembraneUpdates:
    """Dense neuron updates and NeuroBench membrane updates for every population."""

    def __call__(self, topology: Topology, activity: Activity) -> tuple[UpdateCounts, ...]:
        return tuple(self.count(pop, topology.into(pop.name), activity) for pop in topology.populations)

    def count(self, pop: Population, groups: tuple[SynapseGroup, ...], activity: Activity) -> UpdateCounts:
        """Both update counts of population ``pop``, whose inputs are ``groups``, on the recorded activity."""
        x = activity[pop.name]
        b, t = x.shape[:2]
        has_input = self._has_input(pop, groups, activity, x.shape)
        if has_input is None and 0.0 < pop.decay < 1.0:
            changed = self.changed_with_current(activity.mask(pop.name))
        else:
            spikes = x != 0
            changed = self.changed(spikes, torch.ones_like(spikes) if has_input is None else has_input, pop.decay)
        return UpdateCounts(pop.name, b, b * t * pop.neurons, changed)

    @staticmethod
    def changed_with_current(on: torch.Tensor) -> int:
        """:meth:`changed` when current reaches every neuron at every step (0 < beta < 1), from
        the float spike mask ``on``: the membrane is 0 exactly after a spike, so a step after
        the first leaves it unchanged exactly when the neuron spiked then and one step before."""
        b, t = on.shape[:2]
        repeats = int((on[:, 1:] * on[:, :-1]).sum(dim=0).long().sum())
        return b * t * (on[0, 0].numel()) - repeats

    @staticmethod
    def changed(spikes: torch.Tensor, has_input: torch.Tensor, decay: float) -> int:
        """NeuroBench's count from bool spikes and input-reached masks, ``[B, T, ...]`` each."""
        b = spikes.shape[0]
        changed = b * spikes[0, 0].numel()  # every neuron at the first step
        zero = torch.ones_like(spikes[:, 0])  # the membrane starts at 0
        for step in range(spikes.shape[1]):
            s, h = spikes[:, step], has_input[:, step]
            now_zero = s | (~h & (zero | (decay == 0.0)))
            if step > 0:
                unchanged = zero & now_zero
                if decay == 1.0:
                    unchanged = unchanged | (~h & ~s)
                changed += int((~unchanged).sum())
            zero = now_zero
        return changed

    @staticmethod
    def _has_input(pop: Population, groups: tuple[SynapseGroup, ...], activity: Activity,
                   shape: torch.Size) -> torch.Tensor | None:
        """[B, T, *pop.shape] bool: does any current reach the neuron at that step? None when
        every neuron has a non-zero bias (current at every step, no need to look)."""
        bias = torch.zeros(pop.shape, dtype=torch.float64)
        for g in groups:
            if g.bias is not None:
                view = g.bias.double().reshape(-1, *([1] * (len(pop.shape) - 1)))
                bias = bias + view.expand(pop.shape)
        if bool((bias != 0).all()):
            return None
        biased = (bias != 0).expand(shape)
        reached = torch.zeros(shape, dtype=torch.bool)
        for g in groups:
            reached |= (contributions(g, activity[g.source]) > 0).reshape(shape)
        return biased | reached
