"""Parameter and state memory of the deployed network, at float32 and at Loihi precisions.

Counted per synapse group as the chip stores it: one dense weight tensor per group (so every
time-warp tap stores its own ``W diag(w_s)``, over the channels it carries) plus its bias; per LIF neuron its state; per
delayed source its spike history (``max delay`` steps of the source). Per-layer neuron
constants (decay, threshold: two numbers per layer) are left out.

Loihi widths (the fixed-point Lava LIF / Dense process models, lava-nc 0.10
``lava/proc/lif/models.py``, ``lava/proc/dense/models.py``; Davies et al., IEEE Micro 2018):
weights 8 bit, bias 13-bit mantissa + 3-bit exponent = 16 bit, state u and v 24 bit each (a
Lava LIF keeps a current u next to the voltage v, so two states per neuron where snnTorch
keeps one), delay history 1 bit per spike.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from benchmarks.metrics.topology import Topology


@dataclass(frozen=True)
class Precision:
    """Storage widths in bits of one number format, so one footprint can be priced at float32 and at Loihi widths."""

    name: str
    weight_bits: int
    bias_bits: int
    state_bits: int
    states_per_neuron: int
    delay_bits: int


FLOAT32 = Precision("float32", 32, 32, 32, states_per_neuron=1, delay_bits=32)
LOIHI = Precision("loihi", 8, 16, 24, states_per_neuron=2, delay_bits=1)


@dataclass(frozen=True)
class MemoryFootprint:
    """Counts of stored weights, biases, neurons and delay-line entries of a deployed network."""

    weights: int
    biases: int
    neurons: int
    delay_entries: int

    def parameter_bytes(self, p: Precision) -> float:
        """Bytes of weights and biases at precision ``p``."""
        return (self.weights * p.weight_bits + self.biases * p.bias_bits) / 8

    def state_bytes(self, p: Precision) -> float:
        """Bytes of neuron state and spike delay history at precision ``p``."""
        return (self.neurons * p.states_per_neuron * p.state_bits + self.delay_entries * p.delay_bits) / 8

    def as_dict(self) -> dict:
        """The counts plus parameter and state bytes at float32 and Loihi precision, for reports."""
        out: dict = asdict(self)
        for p in (FLOAT32, LOIHI):
            out[f"parameter_bytes_{p.name}"] = self.parameter_bytes(p)
            out[f"state_bytes_{p.name}"] = self.state_bytes(p)
        return out


def memory_footprint(topology: Topology) -> MemoryFootprint:
    """Count what the chip stores for ``topology``: dense weights per group, biases, neurons and delay history."""
    neurons = {p.name: p.neurons for p in topology.populations}
    delays: dict[str, tuple[int, int]] = {}  # source -> (its size, largest delay read from it)
    for g in topology.groups:
        if g.delay > 0:
            if g.source not in neurons and g.is_conv:
                raise ValueError(f"{g.name}: cannot size the delay line of a conv input {g.source!r}")
            size = neurons.get(g.source, g.weight.shape[1])
            delays[g.source] = (size, max(delays.get(g.source, (0, 0))[1], g.delay))
    return MemoryFootprint(
        weights=sum(g.stored_weights for g in topology.groups),
        biases=sum(0 if g.bias is None else g.bias.numel() for g in topology.groups),
        neurons=sum(neurons.values()),
        delay_entries=sum(size * d for size, d in delays.values()),
    )
