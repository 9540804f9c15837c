"""What a ``taaf bench`` report holds: one dataclass per section, each turning into its JSON part.

:class:`BenchReport` is the whole report; :meth:`BenchReport.as_dict` is ``report.json``
(schema ``taaf-bench/2``, checked by :func:`benchmarks.report.schema.validate_report`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from benchmarks.ann_baseline import EnergyResult, MacCount, OnnxTiming
from benchmarks.energy import COUNTINGS, CostTable, EnergyEstimate
from benchmarks.metrics.harness import HostCounts, NetworkCounts
from taaf.config import MODALITIES, to_dict
from taaf.data import DataSpec
from taaf.evaluate import Accuracies

SCHEMA = "taaf-bench/2"  # report.json's "schema": bump it when readers would break
COUNT_SOURCES = ("torch", "reference")  # where the SNN's spikes can be counted from (BenchReport.count_source)
# The labels of report.json's "estimated" and "measured" sections: what kind of number each holds.
ESTIMATED_KIND = "estimate: counted operations x cost-table constants (pJ); not measured on any hardware"
# Why a static-input group (the image's first conv) is charged once per inference, not T times.
ONCE_REASON = ("its input is the same at every step and the model computes it once per inference "
               "(taaf.model.encoders.VisualEncoder); NeuroBench, hooking the PyTorch module, counts it once too")
MEASURED_KIND = "measured on this machine (wall-clock time, NVML energy counter)"
NOT_MEASURED = "not measured"  # the status of a number this run could not measure (always with a reason)
# Why the SNN has no measured energy: a bench run has no neuromorphic chip to measure it on.
SNN_NOT_MEASURED = ("no neuromorphic chip in this run: the SNN's energy is estimated from its counts only, "
                    "see the 'estimated' section")
ATTENTION_SAMPLES_SHOWN = 4  # individual attention traces kept in the JSON and drawn faintly
PLOTS = ("synops_per_layer.png", "firing_rate.png", "energy.png", "attention.png")  # the PNGs beside report.md


@dataclass(frozen=True)
class CheckpointInfo:
    """Which file was benchmarked (its hash pins the exact weights) and what it is."""

    role: str  # "snn" (the model) or "ann" (the baseline)
    path: str
    sha256: str
    model: str
    method: str
    fusion: str
    n_steps: int
    epochs: int
    parameters: int

    def as_dict(self) -> dict[str, Any]:
        """The ``models.snn`` / ``models.ann`` entry of report.json: every field as is."""
        return asdict(self)


@dataclass(frozen=True)
class SplitInfo:
    """The data both models were evaluated and counted on (the same samples for both)."""

    spec: DataSpec
    split: str
    samples: int  # used (after --limit)
    split_samples: int  # in the whole split

    def as_dict(self) -> dict[str, Any]:
        """The ``data`` section: the spec's headline fields flattened, the full spec beside them."""
        return {"dataset": self.spec.dataset, "preset": self.spec.preset, "split": self.split,
                "samples": self.samples, "split_samples": self.split_samples, "n_steps": self.spec.n_steps,
                "data_spec": to_dict(self.spec)}


@dataclass(frozen=True)
class AnnLayer:
    """One Linear / Conv2d of the ANN, named like the SNN synapse group it mirrors, counted both
    NeuroBench ways (per inference, averaged over the split) and as FlopCounterMode does."""

    name: str
    module: str
    effective: float  # non-zero inputs x non-zero weights they drive (zero skipping)
    dense: float  # every valid (non-padding) input-weight pair
    padded: int  # out elements x fan-in (padded conv positions too): FlopCounterMode's count
    weights: int = 0  # stored weights (what a MAC fetches one of)

    def as_dict(self) -> dict[str, Any]:
        """One ``counted.ann.layers`` entry (its op is always MAC)."""
        return {"name": self.name, "module": self.module, "op": "MAC", "effective": self.effective,
                "dense": self.dense, "padded": self.padded, "weights": self.weights}


@dataclass(frozen=True)
class AnnCounts:
    """The ANN's MACs per layer both ways, cross-checked against FlopCounterMode's total."""

    layers: tuple[AnnLayer, ...]
    flop_counter: MacCount
    host: HostCounts  # the head's weighted sums at T = 1, charged like the SNN's host head
    weights: int
    biases: int
    samples: int = 1  # the effective counts are averaged over these

    @property
    def effective_macs(self) -> float:
        """NeuroBench effective MACs per inference of all layers (the host head's are in ``host``)."""
        return sum(layer.effective for layer in self.layers)

    @property
    def dense_macs(self) -> float:
        """NeuroBench dense MACs per inference of all layers."""
        return sum(layer.dense for layer in self.layers)

    @property
    def padded_macs(self) -> int:
        """MACs counting padded conv positions too: equals FlopCounterMode FLOPs / 2."""
        return sum(layer.padded for layer in self.layers)

    @property
    def parameters(self) -> int:
        """Weights and biases: the ANN's size, next to the SNN's."""
        return self.weights + self.biases

    @property
    def parameter_bytes_float32(self) -> int:
        """The ANN's parameter memory at float32, comparable with the SNN's footprint."""
        return 4 * self.parameters

    def as_dict(self) -> dict[str, Any]:
        """The ``counted.ann`` section, with how the MACs were counted."""
        return {"effective_macs": self.effective_macs, "dense_macs": self.dense_macs,
                "padded_macs": self.padded_macs, "host_macs": self.host.macs, "parameters": self.parameters,
                "flop_counter_macs": self.flop_counter.macs, "samples": self.samples,
                "counted_by": "forward hooks on every nn.Linear / nn.Conv2d, counted by the SNN's NeuroBench "
                              "counter (benchmarks.metrics.synops.fanout): effective = non-zero inputs x non-zero "
                              "weights, dense = every valid input-weight pair; padded = out elements x fan-in = "
                              "torch FlopCounterMode FLOPs / 2; no bias, ReLU or softmax",
                "layers": [layer.as_dict() for layer in self.layers],
                "memory": {"weights": self.weights, "biases": self.biases,
                           "parameter_bytes_float32": self.parameter_bytes_float32}}


@dataclass(frozen=True)
class Comparison:
    """SNN and ANN priced by one table under one counting. Their ratio exists only like for
    like: both wholly on this table's technology (not a spiking chip's per-event figures mixed
    with a processor's MACs, which an ANN could not run on)."""

    counting: str
    snn: EnergyEstimate
    ann: EnergyEstimate | None

    @property
    def like_for_like(self) -> bool:
        """Same table, same counting, one technology for both models."""
        return (self.ann is not None and not self.snn.mixed and not self.ann.mixed
                and self.snn.table == self.ann.table and self.snn.counting == self.ann.counting)

    def ratio(self, part: str = "total") -> float | None:
        """SNN / ANN of ``part`` ("compute", "memory" or "total" pJ), or None when not like for like."""
        if not self.like_for_like:
            return None
        a = getattr(self.ann, f"{part}_pj")
        return None if a == 0 else getattr(self.snn, f"{part}_pj") / a

    @property
    def ratio_note(self) -> str:
        """What the ratio divides, or why there is none."""
        if self.ann is None and self.snn.mixed:
            return (f"no ratio: {self.snn.table} runs spikes only (the ANN cannot run on it) and the SNN figure "
                    f"mixes {self.snn.table}'s per-event constants with {self.snn.mac_table} MACs")
        if self.ann is None:
            return "no ratio: no ANN baseline given"
        return (f"estimate / estimate, like for like: both models {self.counting} counts priced by "
                f"{self.snn.table} alone; no measured joules involved")

    def as_dict(self) -> dict[str, Any]:
        """One ``estimated.tables[].comparisons`` entry."""
        return {"counting": self.counting, "snn": self.snn.as_dict(),
                "ann": None if self.ann is None else self.ann.as_dict(), "like_for_like": self.like_for_like,
                "snn_over_ann_compute": self.ratio("compute"), "snn_over_ann_total": self.ratio("total"),
                "ratio_note": self.ratio_note}


@dataclass(frozen=True)
class TableEstimate:
    """One cost table's estimates of both models, once per counting (effective, dense)."""

    table: CostTable
    comparisons: tuple[Comparison, ...]

    def comparison(self, counting: str = "effective") -> Comparison:
        """The comparison under ``counting``."""
        for c in self.comparisons:
            if c.counting == counting:
                return c
        raise KeyError(f"no {counting!r} comparison for table {self.table.name}")

    @property
    def snn(self) -> EnergyEstimate:
        """The SNN's effective-count estimate (the headline one)."""
        return self.comparison().snn

    @property
    def ann(self) -> EnergyEstimate | None:
        """The ANN's effective-count estimate, None on a spiking chip or without an ANN."""
        return self.comparison().ann

    def as_dict(self) -> dict[str, Any]:
        """One ``estimated.tables`` entry: the table (constants, memory model) and its comparisons."""
        return {**self.table.as_dict(), "table": self.table.name,
                "comparisons": [c.as_dict() for c in self.comparisons]}


@dataclass(frozen=True)
class AnnMeasurements:
    """What this machine measured of the ANN: ONNX CPU timing and GPU energy (or why not)."""

    latency: OnnxTiming  # batch 1
    throughput: OnnxTiming  # large batch
    onnx_max_abs_diff: float  # ONNX vs PyTorch logits: the timed graph is the evaluated model
    gpu_energy: tuple[EnergyResult, ...]

    def as_dict(self) -> dict[str, Any]:
        """The ``measured.ann`` section."""
        return {"onnx_cpu": {"latency": self.latency.as_dict(), "throughput": self.throughput.as_dict(),
                             "onnx_max_abs_diff": self.onnx_max_abs_diff},
                "gpu_energy": [gpu_energy_dict(e) for e in self.gpu_energy]}


def gpu_energy_dict(e: EnergyResult) -> dict[str, Any]:
    """A GPU energy result labelled "measured" or "not measured", as the schema demands."""
    return {"status": "measured" if e.measured else NOT_MEASURED, **e.as_dict()}


@dataclass(frozen=True)
class Machine:
    """The machine the measured numbers come from (they mean nothing without it)."""

    cpu: str
    cores: int
    torch: str
    onnxruntime: str
    gpu: str

    def as_dict(self) -> dict[str, Any]:
        """The ``measured.machine`` entry: every field as is."""
        return asdict(self)


@dataclass(frozen=True, eq=False)
class Attention:
    """The SNN's temporal (alpha [N, T]) and modality (beta [N, T, M]) attention on the split."""

    fusion: str
    alpha: np.ndarray
    beta: np.ndarray

    def as_dict(self) -> dict[str, Any]:
        """The ``attention`` section: means and spread over the split, plus a few samples."""
        k = min(ATTENTION_SAMPLES_SHOWN, len(self.alpha))
        return {"fusion": self.fusion, "samples": len(self.alpha), "modalities": list(MODALITIES),
                "alpha_mean": self.alpha.mean(axis=0).tolist(),
                "alpha_p10": np.percentile(self.alpha, 10, axis=0).tolist(),
                "alpha_p90": np.percentile(self.alpha, 90, axis=0).tolist(),
                "beta_mean": self.beta.mean(axis=0).tolist(),
                "alpha_samples": self.alpha[:k].tolist(), "beta_samples": self.beta[:k].tolist()}


@dataclass(frozen=True)
class BenchReport:
    """One ``taaf bench`` run: counted, estimated and measured numbers kept in their own sections."""

    snn: CheckpointInfo
    ann: CheckpointInfo | None
    data: SplitInfo
    snn_accuracy: Accuracies
    ann_accuracy: Accuracies | None
    counts: NetworkCounts
    count_source: str  # "torch" (count_torch) or "reference" (count_run on the reference simulator)
    ann_counts: AnnCounts | None
    estimates: tuple[TableEstimate, ...]
    ann_measured: AnnMeasurements | None
    machine: Machine
    attention: Attention | None
    memory: bool = True  # memory accesses priced (taaf bench --memory sram) or not (--memory none)
    static_once: bool = True  # static-input layers charged once per inference (the model computes them once)

    @property
    def once_layers(self) -> tuple[str, ...]:
        """The SNN groups fed by an input constant over time, charged once per inference."""
        return tuple(g.name for g in self.counts.groups if self.static_once and g.static_input)

    def as_dict(self) -> dict[str, Any]:
        """report.json (schema ``taaf-bench/2``)."""
        c = self.counts
        counts = c.as_dict()
        totals = {k: counts[k] for k in ("effective_acs", "effective_macs", "dense_ops", "host_macs",
                                          "neuron_updates", "membrane_updates", "activation_sparsity")}
        snn_counted = {
            "source": self.count_source, "samples": c.samples, "steps": c.steps,
            "totals": {"synops": c.synops, **totals},
            "groups": counts["groups"], "populations": counts["populations"],
            "host": counts["host"], "memory": counts["memory"],
        }
        return {
            "schema": SCHEMA,
            "models": {"snn": self.snn.as_dict(), "ann": None if self.ann is None else self.ann.as_dict()},
            "data": self.data.as_dict(),
            "accuracy": {"snn": self.snn_accuracy.as_dict(),
                         "ann": None if self.ann_accuracy is None else self.ann_accuracy.as_dict(),
                         "source": "PyTorch models' predictions (taaf.evaluate.predict) on data.samples"},
            "counted": {"snn": snn_counted,
                        "ann": None if self.ann_counts is None else self.ann_counts.as_dict()},
            "estimated": {"kind": ESTIMATED_KIND, "countings": list(COUNTINGS), "memory_priced": self.memory,
                          "charged_once": list(self.once_layers), "charged_once_reason": ONCE_REASON,
                          "tables": [e.as_dict() for e in self.estimates]},
            "measured": {
                "kind": MEASURED_KIND, "machine": self.machine.as_dict(),
                "snn": {"status": NOT_MEASURED, "reason": SNN_NOT_MEASURED},
                "ann": None if self.ann_measured is None else self.ann_measured.as_dict(),
            },
            "attention": None if self.attention is None else self.attention.as_dict(),
        }
