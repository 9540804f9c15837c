"""A chip graph split into the feed-forward chains lava-dl netx can build (:func:`partition`).

netx builds chains only; a lowered graph (:func:`~hardware.ir.lower.lower_graph`) is split into
**parts**: a neuron layer continues the part of its source when it has exactly one term, with
no delay, from a neuron layer that ends a part and feeds no other neuron layer; otherwise it
starts a new part whose **input** is the concatenation of its terms' *slots*
``(source, NIR delay d)`` (an Input's values, or the spikes of a layer of an earlier part).
The ``.net`` file of such a part has one weight block per slot (``W = [W_1 W_2 ...]``: a dense
layer on concatenated inputs is exactly the fan-in of several synapse groups) and, when any
``d > 0``, a ``delay`` matrix holding ``d`` for every column of the slot. Readouts (NIR
Outputs: synapses without neurons) are not chains: the host computes them from the parts'
output spikes (:mod:`hardware.netx.bundle`).

For TAAF (``audio_input -> audio_lif0 -> audio_lif1``, ``visual_input -> visual_lif0..2``,
time-warped fusion) this gives three parts::

    audio   input audio_input (graded)  -> audio_lif0 -> audio_lif1
    visual  input visual_input (graded) -> visual_lif0 -> visual_lif1 -> visual_lif2
            (convolutions unrolled to dense matrices, as our Lava mapper does)
    fusion  input [audio_lif1 @ d for each warp tap d] + [visual_lif2 @ d ...] -> fusion_lif
            (one input copy of the source per tap: a netx synapse has one delay)
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hardware.errors import LavaMappingError
from hardware.ir import ChipGraph
from hardware.netx.format import NETX_MAX_DELAY


@dataclass(frozen=True)
class Slot:
    """A block of a part's input: ``source`` (an Input, or a neuron layer of an earlier part)
    delayed by ``delay`` NIR steps, at columns ``[offset, offset + size)``."""

    source: str
    delay: int
    size: int
    offset: int
    kind: str  # "input" (graded values) | "spikes"


@dataclass(frozen=True)
class NetxPart:
    """One netx chain: its neuron ``layers`` in order and the ``slots`` its first layer reads;
    one ``.net`` file each."""

    name: str
    layers: tuple[str, ...]
    slots: tuple[Slot, ...]

    @property
    def input_size(self) -> int:
        """Columns of the part's input (all slots side by side)."""
        return sum(s.size for s in self.slots)

    @property
    def output(self) -> str:
        """The last layer: the one whose spikes leave the part."""
        return self.layers[-1]

    @property
    def graded(self) -> bool:
        """Whether the input carries graded Input values (netx needs input_message_bits > 0)."""
        return any(s.kind == "input" for s in self.slots)

    @property
    def lead(self) -> int:
        """G: the zero steps in front of each sample in a batch (the largest slot delay)."""
        return max((s.delay for s in self.slots), default=0)


def _prefix(names: Sequence[str]) -> str:
    heads = {n.split("_", 1)[0] for n in names}
    return heads.pop() if len(heads) == 1 else ""


def partition(lowered: ChipGraph) -> tuple[NetxPart, ...]:
    """Split the neuron layers of ``lowered`` into netx chains (module docstring)."""
    consumers: dict[str, list[str]] = {}
    for name, layer in lowered.neurons.items():
        for t in layer.terms:
            consumers.setdefault(t.source, []).append(name)
    parts: list[dict] = []
    part_of: dict[str, int] = {}
    for name, layer in lowered.neurons.items():
        for t in layer.terms:
            if t.source not in lowered.inputs and t.source not in part_of:
                raise LavaMappingError(f"{name!r}: its input from {t.source!r} is recurrent (or comes from a later "
                                       f"layer); netx builds feed-forward chains only")
        t = layer.terms[0] if layer.terms else None
        if (len(layer.terms) == 1 and t.delay == 0 and t.source in lowered.neurons
                and parts[part_of[t.source]]["layers"][-1] == t.source
                and len(set(consumers[t.source])) == 1):
            parts[part_of[t.source]]["layers"].append(name)
            part_of[name] = part_of[t.source]
            continue
        if not layer.terms:
            raise LavaMappingError(f"{name!r} has no input; a netx layer needs synapses")
        slots, offset = [], 0
        for term in layer.terms:
            src_is_input = term.source in lowered.inputs
            size = (int(np.prod(lowered.inputs[term.source])) if src_is_input
                    else lowered.neurons[term.source].size)
            if term.delay > NETX_MAX_DELAY:
                raise LavaMappingError(f"{name!r}: delay {term.delay} from {term.source!r} exceeds netx's "
                                       f"{NETX_MAX_DELAY}")
            slots.append(Slot(term.source, int(term.delay), size, offset, "input" if src_is_input else "spikes"))
            offset += size
        part_of[name] = len(parts)
        parts.append({"layers": [name], "slots": slots})
    out, used = [], set()
    for i, p in enumerate(parts):
        name = _prefix(p["layers"]) or f"part{i}"
        if name in used or name in lowered.inputs or name in lowered.neurons:
            name = f"part{i}_{name}" if name else f"part{i}"
        used.add(name)
        out.append(NetxPart(name, tuple(p["layers"]), tuple(p["slots"])))
    return tuple(out)


__all__ = ["NetxPart", "Slot", "partition"]
