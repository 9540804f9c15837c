"""Operation counting for any chip graph: NeuroBench 2.x definitions on recorded activity.

The topology is read from the chip IR (:func:`~benchmarks.metrics.topology.chip_topology`),
for our checkpoint (:func:`taaf_topology`) and any NIR graph (:func:`count_graph`) alike.

Small metrics with one job each (synaptic operations, firing, membrane updates, memory),
composed by :class:`~benchmarks.metrics.harness.Counter`. They read *activity arrays* (what
each synapse group received) and *weights*, never a model's forward pass, so the PyTorch model
and every hardware backend's :class:`~hardware.backends.ChipRun` are counted by the same code.

Definitions (NeuroBench 2.x, checked against ``neurobench.metrics`` in tests/test_counting.py):
effective ACs / MACs = non-zero inputs x non-zero weights they drive, bias excluded; AC when
the group's input is binary spikes, MAC when analog; ``Dense`` = the same with everything
counted as non-zero; activation sparsity = zero spike outputs / all outputs of the spiking
layers; membrane updates = every neuron at step 0, then each change of a membrane value.
Everything is per inference: summed over T steps, averaged over samples.

Where we deliberately differ from running NeuroBench on the PyTorch model:

* The static image: :class:`~taaf.model.encoders.VisualEncoder` computes its first conv once
  and reuses it for all T steps (a software shortcut); the chip (and the NIR graph) receives
  the image at every step, so we count ``visual_conv0``'s MACs T times. NeuroBench, hooking
  the PyTorch module, counts them once.
* Time warp: NeuroBench sees the warped signal ``x~ = sum_s w_s x[t-s]`` feeding one Linear; if a
  learned delay is fractional, ``x~`` is not binary and it counts MACs on ``nnz(x~)``. On a chip
  each used tap is its own synapse group with a synaptic delay fed by binary spikes, so we
  count ACs per tap (``<group>@tap<s>``). For integer delays (and the untrained identity warp)
  both agree exactly.
* Fan-in fusion: NeuroBench counts the two fusion synapse groups as two layers, as we do; it
  does not know they drive one LIF population. We need that (``target``) for membrane updates.
* Host head: NeuroBench cannot see it (no nn.Linear); we report its dense arithmetic as
  ``host`` MACs, separate from the chip's.
* Readouts (``readout_*``): counted as AC groups (spike input); they drive no neurons, so
  they add no neuron or membrane updates.
* ``neuron_updates`` (neurons x steps, what a chip services) is reported next to NeuroBench's
  ``membrane_updates``; energy tables charge the former.
"""
from benchmarks.metrics.activity import (Activity, activity_from_chip, activity_from_graph, activity_from_run, activity_from_torch,
                                         input_activity)
from benchmarks.metrics.harness import Counter, HostCounts, NetworkCounts, count_graph, count_run, count_torch
from benchmarks.metrics.memory import FLOAT32, LOIHI, MemoryFootprint, Precision, memory_footprint
from benchmarks.metrics.neurons import Firing, FiringCounts, MembraneUpdates, UpdateCounts
from benchmarks.metrics.synops import GroupCounts, SynapticOperations, fanout
from benchmarks.metrics.topology import HostHead, Population, SynapseGroup, Topology, chip_topology, taaf_topology

__all__ = [
    "Activity", "activity_from_chip", "activity_from_graph", "activity_from_run", "activity_from_torch", "input_activity",
    "Counter", "HostCounts", "NetworkCounts", "count_graph", "count_run", "count_torch",
    "FLOAT32", "LOIHI", "MemoryFootprint", "Precision", "memory_footprint",
    "Firing", "FiringCounts", "MembraneUpdates", "UpdateCounts",
    "GroupCounts", "SynapticOperations", "fanout",
    "HostHead", "Population", "SynapseGroup", "Topology", "chip_topology", "taaf_topology",
]
