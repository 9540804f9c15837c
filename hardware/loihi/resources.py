"""Loihi 2 resource estimate per layer of any NIR graph (through
:func:`~hardware.ir.lower.lower_graph`): neurons, synapses, synaptic memory, neuro-cores,
and whether the network fits one chip.

What is counted (per neuron layer, i.e. per Lava LIF process, and per readout)
-----------------------------------------------------------------------------
* **neurons**: the layer's size (a readout: one accumulating compartment per output, only with
  ``include_readouts``; the ``loihi2`` target computes readouts on the host);
* **synapses**: for every term (source, delay) into the layer, ``dense`` = ``n_out x n_in`` and
  ``nonzero`` = non-zero entries of the composed matrix (an unrolled convolution is mostly
  zeros);
* **synaptic memory**: ``nonzero x (weight bits + delay bits)`` per term, with 8 weight bits
  (Loihi's synapse, :data:`~hardware.loihi.fixed_point.WEIGHT_BITS`) and
  ``bit_length(k)`` delay bits for a term whose latency-aligned Lava delay is ``k``
  (0 bits for ``k = 0``); ``memory_bits_dense`` is the same for a dense (uncompressed) layout;
* **cores** for a layer: ``max(ceil(neurons / neurons per core), ceil(memory bits / synaptic
  memory per core))`` (at least 1): a layer is split over cores by neurons, each core holding
  its neurons' incoming synapses;
* **fits one chip**: total cores <= cores per chip, and neurons / synapses within the chip
  totals.

This is a lower bound: real Loihi 2 synapse encodings add per-synapse index / format overhead,
axon routing tables and neuron state share the same SRAM, and the compiler balances cores. For
scale, lava-dl's Oxford tutorial (``tutorials/lava/lib/dl/netx/oxford/run.ipynb``, executed on
Loihi 2) prints the Lava compiler's allocation: 5 cores for the 200 -> 256 -> 200 network
(3 for the 256 neurons, 2 for the 200; synaptic memory was the binding limit); this model
estimates 2 for it (``tests/test_netx.py`` checks our number).

The limits (:class:`CoreLimits`) and where they come from
--------------------------------------------------------
Intel Labs, *Taking Neuromorphic Computing to the Next Level with Loihi 2*, Technology Brief
(2021), as summarised by open-neuromorphic.org ("Loihi 2 - Intel"): 128 neuromorphic cores and
6 embedded x86 cores per chip, up to 1 million neurons and 120 million synapses per chip.
Per-core SRAM: "128 KB of local SRAM per core, flexibly partitioned" (press coverage of the
Loihi 2 announcement, e.g. fbhtechinfo.com, "Intel's new Loihi-2 chip uses 1 million neurons").
Derived: 8192 neurons per core (= 2^20 neurons / 128 cores). Uncertain: the SRAM is shared by
synapses, neuron state and routing (so 128 KiB of synapses per core is optimistic); some
reports give 120 usable neuro-cores; Orchard et al. 2021 (SiPS, "Efficient Neuromorphic Signal
Processing with Loihi 2") describe the same chip without a per-core synapse budget.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

from hardware.loihi import fixed_point as fp
from hardware.ir import ChipGraph, lower_graph


@dataclass(frozen=True)
class CoreLimits:
    """Per-core and per-chip limits of Loihi 2 (module docstring for sources and uncertainty)."""

    name: str = "Loihi 2"
    neurons_per_core: int = 8192
    synaptic_memory_bytes_per_core: int = 128 * 1024
    cores_per_chip: int = 128
    neurons_per_chip: int = 128 * 8192
    synapses_per_chip: int = 120_000_000
    weight_bits: int = fp.WEIGHT_BITS
    citation: str = ("Intel Labs, 'Taking Neuromorphic Computing to the Next Level with Loihi 2', Technology Brief "
                     "(2021): 128 neuro-cores, up to 1M neurons and 120M synapses per chip; 128 KB SRAM per core "
                     "(flexibly partitioned) per press coverage of the announcement; 8192 neurons/core derived "
                     "(1M / 128)")
    uncertainty: str = ("per-core SRAM is shared by synapses, neuron state and routing; synapse encodings add index "
                        "overhead; some sources give 120 usable cores: core counts here are lower bounds")

    @property
    def synaptic_memory_bits_per_core(self) -> int:
        """Per-core synaptic memory in bits (what a layer's weights+delays are divided by)."""
        return 8 * self.synaptic_memory_bytes_per_core


@dataclass(frozen=True)
class LayerResources:
    """What one neuron layer (or readout) occupies on the chip: neurons, synapses, memory, cores."""

    name: str
    kind: str  # "LIF" / "IF" / "CubaLIF" / "readout" / netx layer type
    neurons: int
    synapses_dense: int
    synapses_nonzero: int
    weight_bits: int
    delay_bits: int  # the largest delay field of the layer's synapse groups
    memory_bits: int  # nonzero synapses x (weight + delay bits)
    memory_bits_dense: int
    cores: int


@dataclass(frozen=True)
class ResourceReport:
    """Per-layer resources of a network against cited Loihi 2 limits: does it fit one chip?"""

    layers: tuple[LayerResources, ...]
    limits: CoreLimits = field(default_factory=CoreLimits)
    source: str = ""

    @property
    def neurons(self) -> int:
        """Neurons of every layer."""
        return sum(r.neurons for r in self.layers)

    @property
    def synapses_nonzero(self) -> int:
        """Stored synapses (non-zero weights) of every layer."""
        return sum(r.synapses_nonzero for r in self.layers)

    @property
    def synapses_dense(self) -> int:
        """All synapse slots of every layer (zeros included)."""
        return sum(r.synapses_dense for r in self.layers)

    @property
    def memory_bits(self) -> int:
        """Synaptic memory of every layer (non-zero synapses x (weight + delay bits))."""
        return sum(r.memory_bits for r in self.layers)

    @property
    def cores(self) -> int:
        """Neuro-cores needed, summed over layers (a layer never shares a core here)."""
        return sum(r.cores for r in self.layers)

    def violations(self) -> list[str]:
        """Every per-chip limit the network exceeds, as a readable line each."""
        lim, out = self.limits, []
        if self.cores > lim.cores_per_chip:
            out.append(f"{self.cores} cores > {lim.cores_per_chip} per chip")
        if self.neurons > lim.neurons_per_chip:
            out.append(f"{self.neurons} neurons > {lim.neurons_per_chip} per chip")
        if self.synapses_nonzero > lim.synapses_per_chip:
            out.append(f"{self.synapses_nonzero} synapses > {lim.synapses_per_chip} per chip")
        return out

    @property
    def fits_one_chip(self) -> bool:
        """True when no per-chip limit is exceeded."""
        return not self.violations()

    def as_dict(self) -> dict:
        """JSON-ready report (resources.json)."""
        return {
            "source": self.source,
            "layers": [asdict(r) for r in self.layers],
            "totals": {"neurons": self.neurons, "synapses_nonzero": self.synapses_nonzero,
                       "synapses_dense": self.synapses_dense, "memory_bits": self.memory_bits,
                       "memory_bytes": math.ceil(self.memory_bits / 8), "cores": self.cores},
            "fits_one_chip": self.fits_one_chip,
            "violations": self.violations(),
            "limits": {**asdict(self.limits), "synaptic_memory_bits_per_core": self.limits.synaptic_memory_bits_per_core},
        }

    def format_table(self) -> str:
        """The printed resource report, with its citation and caveat."""
        lim = self.limits
        head = f"{'layer':<18} {'kind':<8} {'neurons':>8} {'synapses nz':>12} {'dense':>10} {'w+d bits':>8} " \
               f"{'mem KiB':>9} {'cores':>6}"
        rows = [f"Loihi 2 resources{f' ({self.source})' if self.source else ''}", head, "-" * len(head)]
        for r in self.layers:
            rows.append(f"{r.name:<18} {r.kind:<8} {r.neurons:>8} {r.synapses_nonzero:>12} {r.synapses_dense:>10} "
                        f"{r.weight_bits:>4}+{r.delay_bits:<3} {r.memory_bits / 8192:>9.1f} {r.cores:>6}")
        rows.append("-" * len(head))
        rows.append(f"{'total':<18} {'':<8} {self.neurons:>8} {self.synapses_nonzero:>12} {self.synapses_dense:>10} "
                    f"{'':>8} {self.memory_bits / 8192:>9.1f} {self.cores:>6}")
        verdict = "yes" if self.fits_one_chip else "NO (" + "; ".join(self.violations()) + ")"
        rows.append(f"fits one Loihi 2 chip: {verdict}  [{self.cores}/{lim.cores_per_chip} cores, "
                    f"{self.neurons}/{lim.neurons_per_chip} neurons, {self.synapses_nonzero}/{lim.synapses_per_chip} "
                    f"synapses]")
        rows.append(f"limits: {lim.neurons_per_core} neurons/core, {lim.synaptic_memory_bytes_per_core // 1024} KiB "
                    f"synaptic memory/core, {lim.cores_per_chip} cores/chip, {lim.weight_bits}-bit weights")
        rows.append(f"source: {lim.citation}")
        rows.append(f"caveat: {lim.uncertainty}")
        return "\n".join(rows)


def layer_cores(neurons: int, memory_bits: int, limits: CoreLimits) -> int:
    """Cores one layer needs: by neuron count or by synaptic memory, whichever binds."""
    return max(1, math.ceil(neurons / limits.neurons_per_core),
               math.ceil(memory_bits / limits.synaptic_memory_bits_per_core))


def _row(name: str, kind: str, neurons: int, groups: list[tuple[np.ndarray | int, int]],
         limits: CoreLimits) -> LayerResources:
    """``groups``: (matrix [n_out, n_in], or an int = identity size, Lava delay k) per synapse group."""
    dense = nonzero = mem = mem_dense = 0
    delay_bits = 0
    for m, k in groups:
        if isinstance(m, (int, np.integer)):
            n_d, n_nz = int(m) * int(m), int(m)
        else:
            n_d, n_nz = int(m.size), int(np.count_nonzero(m))
        bits = limits.weight_bits + int(k).bit_length()
        delay_bits = max(delay_bits, int(k).bit_length())
        dense, nonzero = dense + n_d, nonzero + n_nz
        mem, mem_dense = mem + n_nz * bits, mem_dense + n_d * bits
    return LayerResources(name, kind, int(neurons), dense, nonzero, limits.weight_bits, delay_bits, mem, mem_dense,
                          layer_cores(int(neurons), mem, limits))


def resource_report(graph, dt: float | None = None, limits: CoreLimits | None = None,
                    include_readouts: bool = True) -> ResourceReport:
    """The report for a NIR graph (or an already lowered graph). ``include_readouts``: count the
    readouts (Outputs fed through synapses) as on-chip accumulators, as the Lava mapping runs
    them; ``False`` when the host computes them (the ``loihi2`` target)."""
    limits = limits or CoreLimits()
    lowered = graph if isinstance(graph, ChipGraph) else lower_graph(graph, dt)
    rows = []
    for name, layer in lowered.neurons.items():
        groups = [(t.matrix if t.matrix is not None else layer.size, lowered.synaptic_delay(name, t))
                  for t in layer.terms]
        rows.append(_row(name, layer.kind, layer.size, groups, limits))
    if include_readouts:
        for name, r in lowered.readouts.items():
            if r.direct:
                continue
            size = int(np.prod(r.shape))
            groups = [(t.matrix if t.matrix is not None else size, lowered.synaptic_delay(name, t)) for t in r.terms]
            rows.append(_row(name, "readout", size, groups, limits))
    where = "readouts on chip" if include_readouts else "readouts on the host"
    return ResourceReport(tuple(rows), limits, f"NIR graph, {where}")


def netx_resource_report(net, limits: CoreLimits | None = None,
                         names: Mapping[int, str] | None = None) -> ResourceReport:
    """The same estimate for a :class:`~hardware.netx.format.NetxNetwork` (its integer weights
    and delays as stored). A ``conv`` layer's synapses are counted per output position (what it
    computes: ``synapses_nonzero``; ``memory_bits_dense``: the unrolled dense layout) but its memory
    as the chip stores a shared kernel: the non-zero kernel weights once per core the layer
    occupies (``memory_bits``); a dense layer is stored unrolled, as written. ``names``: row
    name per layer index (default ``layer/i``)."""
    limits = limits or CoreLimits()
    names = dict(names or {})
    rows = []
    prev_shape: tuple[int, ...] = ()
    for i, layer in enumerate(net.layers):
        name = names.get(i, f"layer/{i}")
        in_shape, prev_shape = prev_shape, tuple(layer.shape) if layer.type != "flatten" else prev_shape
        if layer.type in ("dense", "dense_rec"):
            w = layer.weight
            if layer.delay is None:
                groups = [(w, 0)]
            else:  # one group per distinct delay (each carries its own delay field width)
                groups = [(np.where(layer.delay == d, w, 0), int(d)) for d in np.unique(layer.delay)]
            groups += [(layer.weight_rec, 0)] if layer.weight_rec is not None else []
            row = _row(name, layer.type, layer.size, groups, limits)
            if layer.delay is not None:  # the per-delay split must not count the dense size twice
                bits = limits.weight_bits + row.delay_bits
                row = LayerResources(row.name, row.kind, row.neurons, int(w.size), row.synapses_nonzero,
                                     row.weight_bits, row.delay_bits, row.memory_bits, int(w.size) * bits, row.cores)
            rows.append(row)
        elif layer.type == "conv":
            k = layer.weight
            taps = _valid_taps(layer, in_shape)  # [kh, kw]: output positions whose tap lies inside the input
            nz = int(((k != 0) * taps).sum())
            bits = limits.weight_bits
            dense = layer.size * (int(np.prod(in_shape)) if len(in_shape) == 3 else int(np.prod(k.shape[1:])))
            kernel_bits = int(np.count_nonzero(k)) * bits
            cores = layer_cores(layer.size, kernel_bits, limits)
            rows.append(LayerResources(name, "conv", layer.size, dense, nz, bits, 0, kernel_bits * cores,
                                       dense * bits, cores))
    return ResourceReport(tuple(rows), limits, f"netx file {net.path}")


def _valid_taps(layer, in_shape: tuple[int, ...]) -> np.ndarray:
    """Per kernel tap (i, j) of a conv layer, the output positions at which it reads inside the
    input (not padding): the synapses it stands for when unrolled (all positions if the input
    shape is unknown)."""
    kh, kw = layer.weight.shape[2:]
    if len(in_shape) != 3:
        return np.full((kh, kw), int(np.prod(layer.shape[1:])), np.int64)
    counts = []
    for a, k in enumerate((kh, kw)):
        s, p, d = (layer.stride or (1, 1))[a], (layer.padding or (0, 0))[a], (layer.dilation or (1, 1))[a]
        pos = np.arange(layer.shape[1 + a])[:, None] * s - p + np.arange(k)[None, :] * d
        counts.append(((pos >= 0) & (pos < in_shape[1 + a])).sum(0))
    return np.outer(counts[0], counts[1]).astype(np.int64)


def merge_reports(reports, source: str) -> ResourceReport:
    """Several reports (e.g. one per netx part) as one, with the first one's limits."""
    reports = list(reports)
    rows = tuple(r for rep in reports for r in rep.layers)
    return ResourceReport(rows, reports[0].limits if reports else CoreLimits(), source)


def report_summary(report: ResourceReport) -> Mapping[str, object]:
    """The totals and the verdict (for benchmarks and logs)."""
    d = report.as_dict()
    return {**d["totals"], "fits_one_chip": d["fits_one_chip"]}


__all__ = ["CoreLimits", "LayerResources", "ResourceReport", "layer_cores", "merge_reports",
           "netx_resource_report", "report_summary", "resource_report"]
