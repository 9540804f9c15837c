"""The ``taaf bench`` report: what it holds, its JSON schema, and how it reads (Markdown, PNG).

One :class:`BenchReport` answers "what does my model cost on a neuromorphic chip, against a
GPU?". Its numbers come in three kinds that must never be confused, so they live in separate
sections of ``report.json`` and are labelled in every table:

* ``counted``   exact operation counts of the model on the split (SynOps, MACs, neuron
                updates, firing, memory): NeuroBench 2.x definitions, :mod:`benchmarks.metrics`.
* ``estimated`` energy = counts x constants of a cited cost table (pJ): not a measurement.
* ``measured``  what this machine measured: ONNX CPU latency / throughput and GPU energy (J)
                of the ANN baseline, or ``"not measured"`` with the reason.

Accuracy (the model's predictions on the split) and attention sit beside them. A ratio is only
ever formed between two estimates (SNN and ANN energy from the same table family), and says so.

This module holds no measurement code (that is :mod:`benchmarks.bench_cli`): it turns a report
into JSON, Markdown and plots, and checks a JSON report against the schema
(:func:`validate_report`).
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.ann_baseline import EnergyResult, MacCount, OnnxTiming
from benchmarks.energy import CostTable, EnergyEstimate, EnergyTerm
from benchmarks.metrics.harness import HostCounts, NetworkCounts
from taaf.config import MODALITIES, to_dict
from taaf.data import DataSpec
from taaf.errors import TaafError
from taaf.evaluate import Accuracies

SCHEMA = "taaf-bench/1"
COUNT_SOURCES = ("torch", "reference")
ESTIMATED_KIND = "estimate: counted operations x cost-table constants (pJ); not measured on any hardware"
MEASURED_KIND = "measured on this machine (wall-clock time, NVML energy counter)"
NOT_MEASURED = "not measured"
SNN_NOT_MEASURED = ("no neuromorphic chip in this run: the SNN's energy is estimated from its counts only, "
                    "see the 'estimated' section")
ATTENTION_SAMPLES_SHOWN = 4  # individual attention traces kept in the JSON and drawn faintly


class ReportSchemaError(TaafError):
    """A report.json does not follow the ``taaf-bench/1`` schema."""


# --------------------------------------------------------------------------- the report

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
        return {"role": self.role, "path": self.path, "sha256": self.sha256, "model": self.model,
                "method": self.method, "fusion": self.fusion, "n_steps": self.n_steps, "epochs": self.epochs,
                "parameters": self.parameters}


@dataclass(frozen=True)
class SplitInfo:
    """The data both models were evaluated and counted on (the same samples for both)."""

    spec: DataSpec
    split: str
    samples: int  # used (after --limit)
    split_samples: int  # in the whole split

    def as_dict(self) -> dict[str, Any]:
        return {"dataset": self.spec.dataset, "preset": self.spec.preset, "split": self.split,
                "samples": self.samples, "split_samples": self.split_samples, "n_steps": self.spec.n_steps,
                "data_spec": to_dict(self.spec)}


@dataclass(frozen=True)
class AnnLayer:
    """One Linear / Conv2d of the ANN, named like the SNN synapse group it mirrors."""

    name: str
    module: str
    macs: int  # per inference

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "module": self.module, "op": "MAC", "macs": self.macs}


@dataclass(frozen=True)
class AnnCounts:
    """The ANN's MACs per layer (forward hooks), cross-checked against FlopCounterMode's total."""

    layers: tuple[AnnLayer, ...]
    flop_counter: MacCount
    host: HostCounts  # the head's weighted sums at T = 1, charged like the SNN's host head
    weights: int
    biases: int

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def parameters(self) -> int:
        return self.weights + self.biases

    @property
    def parameter_bytes_float32(self) -> int:
        return 4 * self.parameters

    def as_dict(self) -> dict[str, Any]:
        return {"macs": self.macs, "host_macs": self.host.macs, "parameters": self.parameters,
                "flop_counter_macs": self.flop_counter.macs,
                "counted_by": "forward hooks on every nn.Linear / nn.Conv2d (out elements x fan-in), "
                              "equal to torch FlopCounterMode FLOPs / 2; no bias, ReLU or softmax",
                "layers": [layer.as_dict() for layer in self.layers],
                "memory": {"weights": self.weights, "biases": self.biases,
                           "parameter_bytes_float32": self.parameter_bytes_float32}}


def estimate_ann_energy(ann: AnnCounts, table: CostTable, mac_table: CostTable) -> EnergyEstimate:
    """The ANN's MACs (layers + host head) at the MAC constant of ``table``, or of ``mac_table``
    when ``table`` is a spiking chip that charges no MACs: the ANN then runs on the
    conventional processor :func:`benchmarks.energy.estimate_energy` charges the SNN's MACs to.
    ReLUs and biases are not charged (the SNN's biases are not charged either)."""
    source = table if table.charge("mac") is not None else mac_table
    const = source.charge("mac")
    if const is None:
        raise TaafError(f"cost table {source.name} charges no 'mac'")
    items = [(layer.name, float(layer.macs)) for layer in ann.layers] + [("host_head", float(ann.host.macs))]
    terms = tuple(EnergyTerm(name, "mac", n, source.name, const.name, const.pj) for name, n in items)
    return EnergyEstimate(source.name, None, terms, ())


@dataclass(frozen=True)
class TableEstimate:
    """One cost table's estimates for both models (both are estimates: their ratio is fair)."""

    table: CostTable
    snn: EnergyEstimate
    ann: EnergyEstimate | None

    @property
    def snn_platform(self) -> str:
        return self.snn.table + (f" (MACs at {self.snn.mac_table})" if self.snn.mac_table else "")

    @property
    def ann_platform(self) -> str | None:
        if self.ann is None:
            return None
        return self.ann.table if self.ann.table == self.table.name else (
            f"{self.ann.table} ({self.table.name} runs spikes only)")

    @property
    def ratio(self) -> float | None:
        """SNN estimate / ANN estimate (pJ / pJ)."""
        if self.ann is None or self.ann.total_pj == 0:
            return None
        return self.snn.total_pj / self.ann.total_pj

    @property
    def ratio_note(self) -> str:
        if self.ann is None:
            return "no ANN baseline given"
        return (f"estimate / estimate: SNN charged at {self.snn_platform}, ANN charged at {self.ann_platform}; "
                "both pJ from cost-table constants, no measured joules involved")

    def as_dict(self) -> dict[str, Any]:
        t = self.table
        return {"table": t.name, "description": t.description, "path": t.path, "notes": t.notes,
                "charges": dict(t.charges), "constants": [c.as_dict() for c in t.constants],
                "snn": self.snn.as_dict(), "ann": None if self.ann is None else self.ann.as_dict(),
                "snn_platform": self.snn_platform, "ann_platform": self.ann_platform,
                "snn_over_ann": self.ratio, "ratio_note": self.ratio_note}


@dataclass(frozen=True)
class AnnMeasurements:
    """What this machine measured of the ANN: ONNX CPU timing and GPU energy (or why not)."""

    latency: OnnxTiming  # batch 1
    throughput: OnnxTiming  # large batch
    onnx_max_abs_diff: float  # ONNX vs PyTorch logits: the timed graph is the evaluated model
    gpu_energy: tuple[EnergyResult, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"onnx_cpu": {"latency": self.latency.as_dict(), "throughput": self.throughput.as_dict(),
                             "onnx_max_abs_diff": self.onnx_max_abs_diff},
                "gpu_energy": [gpu_energy_dict(e) for e in self.gpu_energy]}


def gpu_energy_dict(e: EnergyResult) -> dict[str, Any]:
    return {"status": "measured" if e.measured else NOT_MEASURED, **e.as_dict()}


@dataclass(frozen=True)
class Machine:
    cpu: str
    cores: int
    torch: str
    onnxruntime: str
    gpu: str

    def as_dict(self) -> dict[str, Any]:
        return {"cpu": self.cpu, "cores": self.cores, "torch": self.torch, "onnxruntime": self.onnxruntime,
                "gpu": self.gpu}


@dataclass(frozen=True, eq=False)
class Attention:
    """The SNN's temporal (alpha [N, T]) and modality (beta [N, T, M]) attention on the split."""

    fusion: str
    alpha: np.ndarray
    beta: np.ndarray

    def as_dict(self) -> dict[str, Any]:
        k = min(ATTENTION_SAMPLES_SHOWN, len(self.alpha))
        return {"fusion": self.fusion, "samples": len(self.alpha), "modalities": list(MODALITIES),
                "alpha_mean": self.alpha.mean(axis=0).tolist(),
                "alpha_p10": np.percentile(self.alpha, 10, axis=0).tolist(),
                "alpha_p90": np.percentile(self.alpha, 90, axis=0).tolist(),
                "beta_mean": self.beta.mean(axis=0).tolist(),
                "alpha_samples": self.alpha[:k].tolist(), "beta_samples": self.beta[:k].tolist()}


@dataclass(frozen=True)
class BenchReport:
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

    def as_dict(self) -> dict[str, Any]:
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
            "estimated": {"kind": ESTIMATED_KIND, "tables": [e.as_dict() for e in self.estimates]},
            "measured": {
                "kind": MEASURED_KIND, "machine": self.machine.as_dict(),
                "snn": {"status": NOT_MEASURED, "reason": SNN_NOT_MEASURED},
                "ann": None if self.ann_measured is None else self.ann_measured.as_dict(),
            },
            "attention": None if self.attention is None else self.attention.as_dict(),
        }


# --------------------------------------------------------------------------- schema

NUM = "number"  # int or float, not bool


@dataclass(frozen=True)
class Optional_:
    """A schema node that may also be JSON null."""

    spec: Any


def _opt(spec: Any) -> Optional_:
    return Optional_(spec)


_ACC = {"fused": NUM, "audio": NUM, "visual": NUM}
_CHECKPOINT = {"role": str, "path": str, "sha256": str, "model": str, "method": str, "fusion": str,
               "n_steps": int, "epochs": int, "parameters": int}
_LAYER_ENERGY = {"name": str, "energy_pj": NUM, "energy_j": NUM}
_ESTIMATE = {"table": str, "mac_table": _opt(str), "total_pj": NUM, "total_j": NUM, "uncharged": [str],
             "layers": [_LAYER_ENERGY],
             "terms": [{"layer": str, "kind": str, "count": NUM, "table": str, "constant": str,
                        "pj_per_op": NUM, "energy_pj": NUM}]}
_TIMING = {"batch": int, "runs": int, "median_ms": NUM, "min_ms": NUM, "p90_ms": NUM,
           "samples_per_second": NUM, "threads": _opt(int)}
_GPU = {"status": str, "batch": int, "measured": bool, "reason": str, "joules_per_inference": _opt(NUM),
        "device": str}
SCHEMA_SPEC: dict[str, Any] = {
    "schema": str,
    "models": {"snn": _CHECKPOINT, "ann": _opt(_CHECKPOINT)},
    "data": {"dataset": str, "preset": str, "split": str, "samples": int, "split_samples": int, "n_steps": int,
             "data_spec": dict},
    "accuracy": {"snn": _ACC, "ann": _opt(_ACC), "source": str},
    "counted": {
        "snn": {"source": str, "samples": int, "steps": int,
                "totals": {"synops": NUM, "effective_acs": NUM, "effective_macs": NUM, "dense_ops": NUM,
                           "host_macs": int, "neuron_updates": NUM, "membrane_updates": NUM,
                           "activation_sparsity": NUM},
                "groups": [{"name": str, "source": str, "target": str, "op": str, "effective": NUM, "dense": NUM,
                            "weights": int, "nonzero_weights": int}],
                "populations": [{"population": str, "neurons": int, "firing_rate": NUM,
                                 "firing_rate_per_step": [NUM], "activation_sparsity": NUM,
                                 "neuron_updates": NUM, "membrane_updates": NUM}],
                "host": _opt({"macs": int, "exps": int}),
                "memory": {"weights": int, "biases": int, "neurons": int, "delay_entries": int,
                           "parameter_bytes_float32": NUM, "parameter_bytes_loihi": NUM,
                           "state_bytes_float32": NUM, "state_bytes_loihi": NUM}},
        "ann": _opt({"macs": int, "host_macs": int, "parameters": int, "flop_counter_macs": int, "counted_by": str,
                     "layers": [{"name": str, "module": str, "op": str, "macs": int}],
                     "memory": {"weights": int, "biases": int, "parameter_bytes_float32": int}}),
    },
    "estimated": {"kind": str, "tables": [{
        "table": str, "description": str, "path": str, "charges": dict,
        "constants": [{"name": str, "value": NUM, "unit": str, "pj": NUM, "source": str, "year": int, "what": str}],
        "snn": _ESTIMATE, "ann": _opt(_ESTIMATE), "snn_platform": str, "ann_platform": _opt(str),
        "snn_over_ann": _opt(NUM), "ratio_note": str}]},
    "measured": {"kind": str, "machine": {"cpu": str, "cores": int, "torch": str, "onnxruntime": str, "gpu": str},
                 "snn": {"status": str, "reason": str},
                 "ann": _opt({"onnx_cpu": {"latency": _TIMING, "throughput": _TIMING, "onnx_max_abs_diff": NUM},
                              "gpu_energy": [_GPU]})},
    "attention": _opt({"fusion": str, "samples": int, "modalities": [str], "alpha_mean": [NUM],
                       "beta_mean": [[NUM]], "alpha_samples": [[NUM]], "beta_samples": [[[NUM]]]}),
}
# Keys that only belong on one side of the estimated / measured divide.
_MEASURED_ONLY = {"joules_per_inference", "gross_joules_per_inference", "median_ms", "samples_per_second"}
_ESTIMATED_ONLY = {"total_pj", "energy_pj", "pj_per_op"}


def validate_report(report: Any) -> None:
    """Raise :class:`ReportSchemaError` naming the first field that breaks ``taaf-bench/1``.

    Checks required keys and their types (extra keys are allowed: a later minor addition does
    not break readers), then the rules the schema exists for: estimated and measured numbers
    in their own sections, every GPU figure either measured or "not measured" with a reason.
    """
    _check(report, SCHEMA_SPEC, "report")
    if report["schema"] != SCHEMA:
        raise ReportSchemaError(f"report.schema: expected {SCHEMA!r}, got {report['schema']!r}")
    if report["counted"]["snn"]["source"] not in COUNT_SOURCES:
        raise ReportSchemaError(f"report.counted.snn.source: expected one of {COUNT_SOURCES}")
    leaked = _keys(report["estimated"]) & _MEASURED_ONLY
    if leaked:
        raise ReportSchemaError(f"report.estimated: measured quantities {sorted(leaked)} in the estimated section")
    leaked = _keys(report["measured"]) & _ESTIMATED_ONLY
    if leaked:
        raise ReportSchemaError(f"report.measured: estimated quantities {sorted(leaked)} in the measured section")
    ann = report["measured"]["ann"]
    for i, e in enumerate([] if ann is None else ann["gpu_energy"]):
        where = f"report.measured.ann.gpu_energy[{i}]"
        if e["status"] == "measured":
            if not e["measured"] or not _is_num(e["joules_per_inference"]):
                raise ReportSchemaError(f"{where}: status 'measured' needs measured true and joules_per_inference")
        elif e["status"] == NOT_MEASURED:
            if e["measured"] or not e["reason"].strip() or e["joules_per_inference"] is not None:
                raise ReportSchemaError(f"{where}: status {NOT_MEASURED!r} needs a reason and no joules")
        else:
            raise ReportSchemaError(f"{where}.status: expected 'measured' or {NOT_MEASURED!r}, got {e['status']!r}")


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check(value: Any, spec: Any, where: str) -> None:
    if isinstance(spec, Optional_):
        if value is not None:
            _check(value, spec.spec, where)
        return
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise ReportSchemaError(f"{where}: expected an object, got {_type(value)}")
        for key, sub in spec.items():
            if key not in value:
                raise ReportSchemaError(f"{where}: missing key {key!r}")
            _check(value[key], sub, f"{where}.{key}")
        return
    if isinstance(spec, list):
        if not isinstance(value, list):
            raise ReportSchemaError(f"{where}: expected a list, got {_type(value)}")
        for i, item in enumerate(value):
            _check(item, spec[0], f"{where}[{i}]")
        return
    ok = _is_num(value) if spec == NUM else (
        isinstance(value, spec) and not (spec is int and isinstance(value, bool)))
    if not ok:
        name = "number" if spec == NUM else spec.__name__
        raise ReportSchemaError(f"{where}: expected {name}, got {_type(value)}")


def _type(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def _keys(tree: Any) -> set[str]:
    if isinstance(tree, dict):
        return set(tree) | {k for v in tree.values() for k in _keys(v)}
    if isinstance(tree, list):
        return {k for v in tree for k in _keys(v)}
    return set()


# --------------------------------------------------------------------------- formatting

def fmt_energy(pj: float) -> str:
    """pJ -> the readable SI unit in joules (e.g. 14.36 µJ)."""
    j = pj * 1e-12
    for scale, unit in ((1.0, "J"), (1e-3, "mJ"), (1e-6, "µJ"), (1e-9, "nJ"), (1e-12, "pJ")):
        if abs(j) >= scale:
            return f"{j / scale:.3g} {unit}"
    return f"{j / 1e-15:.3g} fJ"


def fmt_joules(j: float) -> str:
    return fmt_energy(j * 1e12)


def _acc(a: Accuracies | None) -> str:
    return "-" if a is None else f"{a.fused:.3f} (audio {a.audio:.3f}, visual {a.visual:.3f})"


def _gpu(e: EnergyResult) -> str:
    return fmt_joules(e.joules_per_inference) if e.measured else f"{NOT_MEASURED}: {e.reason}"


def headline_rows(r: BenchReport) -> list[tuple[str, str, str, str]]:
    """(quantity, kind, SNN, ANN): accuracy, ops, estimated energy per table, measured numbers."""
    c, ann = r.counts, r.ann_counts
    no_ann = "-" if r.ann is None else None
    rows = [
        (f"accuracy fused ({r.data.split}, {r.data.samples} samples)", "evaluated",
         _acc(r.snn_accuracy), _acc(r.ann_accuracy)),
        ("ops per inference", "counted",
         f"{c.synops:,.0f} SynOps ({c.effective_acs:,.0f} AC + {c.effective_macs:,.0f} MAC)",
         no_ann or f"{ann.macs:,} MAC"),
    ]
    for e in r.estimates:
        ann_cell = no_ann or f"{fmt_energy(e.ann.total_pj)}" + (
            "" if e.ann.table == e.table.name else f" (at {e.ann.table})")
        snn_cell = fmt_energy(e.snn.total_pj) + (f" (MACs at {e.snn.mac_table})" if e.snn.mac_table else "")
        rows.append((f"energy per inference, {e.table.name}", "estimated", snn_cell, ann_cell))
    m = r.ann_measured
    chip = "n/a (no chip: estimated only)"
    rows.append(("ONNX CPU latency, batch 1 (median)", "measured", chip,
                 no_ann or f"{m.latency.median_ms:.3f} ms"))
    rows.append((f"ONNX CPU throughput, batch {m.throughput.batch if m else 256}", "measured", chip,
                 no_ann or f"{m.throughput.samples_per_second:,.0f} samples/s"))
    for i, b in enumerate((1, m.throughput.batch if m else 256)):
        rows.append((f"GPU energy per inference, batch {b}", "measured", chip,
                     no_ann or _gpu(m.gpu_energy[i])))
    return rows


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    """A pipe table padded to column width, so it reads as well in a terminal as rendered."""
    cells = [list(map(str, header))] + [list(map(str, row)) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    align = align or "l" * len(header)

    def line(row: list[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(row, widths, align)) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if a == "r" else ("-" * (w + 2)) for w, a in zip(widths, align)) + "|"
    return "\n".join([line(cells[0]), rule, *map(line, cells[1:])])


def headline_table(r: BenchReport) -> str:
    snn = f"SNN ({r.snn.method}, T = {r.snn.n_steps})"
    ann = "ANN baseline" + (f" ({r.ann.method})" if r.ann else " (none: pass --ann)")
    return markdown_table(("quantity", "kind", snn, ann), headline_rows(r))


def _per_layer_energy(r: BenchReport, attr: str = "snn") -> list[dict[str, float]]:
    return [{layer.name: layer.energy_pj for layer in getattr(e, attr).layers} if getattr(e, attr) else {}
            for e in r.estimates]


def render_markdown(r: BenchReport) -> str:
    """report.md: the headline table first, then per-layer detail, then the conventions."""
    import benchmarks.metrics as metrics_doc

    c, names = r.counts, [e.table.name for e in r.estimates]
    out = [f"# taaf bench: {Path(r.snn.path).name}", ""]
    out.append(f"SNN `{r.snn.path}` (sha256 `{r.snn.sha256[:16]}…`)"
               + (f" against ANN `{r.ann.path}` (sha256 `{r.ann.sha256[:16]}…`)" if r.ann else "")
               + f", on {r.data.samples} of {r.data.split_samples} `{r.data.split}` samples of "
               f"{r.data.spec.dataset} ({r.data.spec.preset}), T = {c.steps}. SNN counts from the "
               f"**{r.count_source}** backend ({_source_text(r.count_source)}). Per inference = per sample.")
    out += ["", headline_table(r), ""]
    out.append("*counted*: exact operation counts (NeuroBench definitions, below). *estimated*: counts x "
               "cited cost-table constants, not a measurement. *measured*: on this machine "
               f"({r.machine.cpu}, {r.machine.cores} cores, GPU: {r.machine.gpu}). Estimated pJ and measured J "
               "are never combined into one number.")

    out += ["", "## Estimated energy per cost table", ""]
    rows = []
    for e in r.estimates:
        ratio = "-" if e.ratio is None else f"{e.ratio:.3g}x"
        rows.append((e.table.name, e.snn_platform, fmt_energy(e.snn.total_pj), e.ann_platform or "-",
                     "-" if e.ann is None else fmt_energy(e.ann.total_pj), ratio,
                     "; ".join(e.snn.uncharged) or "none"))
    out.append(markdown_table(("table", "SNN charged at", "SNN estimate", "ANN charged at", "ANN estimate",
                               "SNN / ANN (estimate / estimate)", "SNN counts not charged"), rows, "llrlrrl"))
    out.append("")
    out.append("The ratio divides two estimates of the same kind (pJ from cited cost tables); a spiking "
               "chip cannot run the ANN, so on loihi / truenorth the ANN's MACs are charged at the MAC table "
               "that also charges the SNN's analog first layers and host head.")

    out += ["", "## SNN synapse groups (counted)", ""]
    energy = _per_layer_energy(r)
    rows = [(g.name, f"{g.source} -> {g.target}", g.op, g.delay, f"{g.effective:,.1f}", f"{g.dense:,.0f}",
             f"{g.nonzero_weights:,}/{g.weights:,}", *(_cell(d, g.name) for d in energy))
            for g in c.groups]
    if c.host is not None:
        rows.append(("host_head", "readouts -> logits (host)", "MAC", 0, f"{c.host.macs:,}", f"{c.host.macs:,}",
                     "-", *(_cell(d, "host_head") for d in energy)))
    rows.append(("**total (chip + host)**", "", "", "", f"{c.synops + c.host_macs:,.1f}", f"{c.dense_ops + c.host_macs:,.0f}", "",
                 *(fmt_energy(sum(l.energy_pj for l in e.snn.layers if l.name not in _pops(c))) for e in r.estimates)))
    out.append(markdown_table(("group", "source -> target", "op", "delay", "effective ops", "dense ops",
                               "non-zero / stored weights", *names), rows, "lllrrrr" + "r" * len(names)))

    out += ["", "## SNN spiking populations (counted)", ""]
    rows = [(f.population, f.neurons, f"{f.firing_rate:.4f}", f"{f.activation_sparsity:.4f}", f"{f.spikes:,.1f}",
             f"{u.neuron_updates:,.0f}", f"{u.membrane_updates:,.1f}", *(_cell(d, f.population) for d in energy))
            for f, u in zip(c.firing, c.updates)]
    rows.append(("**all**", sum(f.neurons for f in c.firing), "", f"{c.activation_sparsity:.4f}", "",
                 f"{c.neuron_updates:,.0f}", f"{c.membrane_updates:,.1f}",
                 *(_kind_cell(e.snn, "neuron_update") for e in r.estimates)))
    out.append(markdown_table(("population", "neurons", "firing rate", "activation sparsity", "spikes",
                               "neuron updates", "membrane updates (NeuroBench)", *names), rows,
                              "lrrrrrr" + "r" * len(names)))

    if r.ann_counts is not None:
        a = r.ann_counts
        out += ["", "## ANN layers (counted)", ""]
        ann_energy = _per_layer_energy(r, "ann")
        rows = [(l.name, l.module, f"{l.macs:,}", *(_cell(d, l.name) for d in ann_energy)) for l in a.layers]
        rows.append(("host_head", "HostHead (T = 1)", f"{a.host.macs:,}", *(_cell(d, "host_head") for d in ann_energy)))
        rows.append(("**total**", "", f"{a.macs + a.host.macs:,}", *(fmt_energy(e.ann.total_pj) for e in r.estimates)))
        out.append(markdown_table(("layer", "module", "MACs", *names), rows, "llr" + "r" * len(names)))
        out.append("")
        out.append(f"Layer MACs sum to {a.macs:,} = torch FlopCounterMode's {a.flop_counter.macs:,} "
                   "(FLOPs / 2); the host head's weighted sum is charged like the SNN's.")

    m = c.memory.as_dict()
    out += ["", "## Memory footprint (counted)", ""]
    rows = [("SNN", f"{c.memory.weights:,}", f"{c.memory.biases:,}", f"{c.memory.neurons:,}",
             f"{c.memory.delay_entries:,}", f"{m['parameter_bytes_float32']:,.0f} / {m['state_bytes_float32']:,.0f}",
             f"{m['parameter_bytes_loihi']:,.0f} / {m['state_bytes_loihi']:,.0f}")]
    if r.ann_counts is not None:
        a = r.ann_counts
        rows.append(("ANN", f"{a.weights:,}", f"{a.biases:,}", "- (ReLU, no state)", "-",
                     f"{a.parameter_bytes_float32:,} / -", "-"))
    out.append(markdown_table(("model", "weights", "biases", "neurons", "delay entries",
                               "float32 bytes (params / state)", "Loihi bytes (params / state)"), rows))

    out += ["", "## Measured on this machine", ""]
    out.append(f"SNN: {NOT_MEASURED}; {SNN_NOT_MEASURED}.")
    if r.ann_measured is not None:
        am = r.ann_measured
        out.append("")
        rows = [(f"ONNX CPU, batch {t.batch}", f"{t.median_ms:.4f}", f"{t.min_ms:.4f}", f"{t.p90_ms:.4f}",
                 f"{t.samples_per_second:,.0f}", t.runs, t.threads or "default") for t in (am.latency, am.throughput)]
        out.append(markdown_table(("ANN", "median ms", "min ms", "p90 ms", "samples/s", "runs", "threads"), rows,
                                  "lrrrrrl"))
        out.append("")
        out.append(f"ONNX graph vs PyTorch logits: max |difference| {am.onnx_max_abs_diff:.2e}.")
        for e in am.gpu_energy:
            if e.measured:
                out.append(f"- GPU energy, batch {e.batch}: {fmt_joules(e.joules_per_inference)} per inference "
                           f"above idle ({e.device}; idle {e.idle_watts:.1f} W, active {e.active_watts:.1f} W, "
                           f"{e.inferences} inferences in {e.seconds:.2f} s; gross "
                           f"{fmt_joules(e.gross_joules_per_inference)})")
            else:
                out.append(f"- GPU energy, batch {e.batch}: {NOT_MEASURED} ({e.reason})")
    else:
        out.append("ANN: no baseline given (pass --ann ann.pt, from `taaf train --model ann`).")

    out += ["", "## Plots", ""]
    out += [f"![{p}]({p})" for p in PLOTS]
    out += ["", "## Conventions", ""]
    out.append("### What is counted (NeuroBench 2.x) and where we deliberately differ")
    out += ["", _doc_markdown(metrics_doc.__doc__ or ""), ""]
    out.append("### What each cost constant is charged to")
    out.append("")
    out.append("Energy estimate = sum over layers of count x constant: effective ACs -> the table's `ac` "
               "constant, effective MACs (analog-input groups, host head) -> `mac`, neuron updates (neurons "
               "x steps) -> `neuron_update`. A table that charges no `mac` (a spiking chip) has MACs charged at "
               "its MAC table. Biases, spike routing, memory accesses and static power are not charged.")
    for e in r.estimates:
        t = e.table
        out += ["", f"**{t.name}** ({t.path}): {t.description}", ""]
        for kind, const in t.charges:
            k = t.constant(const)
            out.append(f"- charged per `{kind}`: `{const}` = {k.value:g} {k.unit} — {k.what}. {k.source}"
                       + (f" (derivation: {k.derivation})" if k.derivation else ""))
        others = [k for k in t.constants if k.name not in dict(t.charges).values()]
        for k in others:
            out.append(f"- listed, not charged: `{k.name}` = {k.value:g} {k.unit} — {k.what}. {k.source}")
        if t.notes:
            out.append(f"- notes: {t.notes}")
    out += ["", "### The ANN baseline", ""]
    out.append("Same layers as the SNN with ReLU and no time dimension (audio averaged over T); trained by "
               "`taaf train --model ann`. MACs: every nn.Linear / nn.Conv2d multiply-accumulate (out elements "
               "x fan-in; no bias, ReLU or softmax), equal to torch FlopCounterMode FLOPs / 2. Latency: the "
               "exported ONNX graph in onnxruntime's CPU provider, median of single runs after warm-up; "
               "throughput: batch size / median run. GPU energy: NVML's energy counter over a >= 2 s window "
               "of back-to-back inference, idle power subtracted (benchmarks/ann_baseline.py).")
    out += ["", "### Accuracy and attention", ""]
    out.append("Accuracy is the PyTorch models' predictions on the same samples (fused, and each modality's own "
               "evidence readout); with `--backend reference` only the counts come from the simulator. "
               "Attention (alpha_t temporal, beta_t^m modality) is the SNN head's on the same samples.")
    return "\n".join(out) + "\n"


def _source_text(source: str) -> str:
    return {"torch": "count_torch: spikes recorded from the PyTorch model",
            "reference": "count_run: spikes of the exported NIR graph on the float64 reference simulator; "
                         "equal to the PyTorch counts up to the odd spike a float32 coefficient flips"}[source]


def _cell(energy: dict[str, float], layer: str) -> str:
    """A layer's estimated energy, or why there is none (the table charges none of its counts)."""
    return fmt_energy(energy[layer]) if layer in energy else "not charged"


def _kind_cell(e: EnergyEstimate, kind: str) -> str:
    return fmt_energy(e.by_kind(kind)) if any(t.kind == kind for t in e.terms) else "not charged"


def _pops(c: NetworkCounts) -> set[str]:
    return {f.population for f in c.firing}


def _doc_markdown(doc: str) -> str:
    """The metrics package docstring (the single source of the definitions), Sphinx roles and
    reST literals turned into Markdown code spans."""
    doc = re.sub(r":\w+:`~([\w.]+)`", lambda m: f"`{m.group(1).rsplit('.', 1)[-1]}`", doc.strip())
    doc = re.sub(r":\w+:`([\w.]+)`", r"`\1`", doc)
    return re.sub(r"``(.+?)``", r"`\1`", doc)


# --------------------------------------------------------------------------- plots

PLOTS = ("synops_per_layer.png", "firing_rate.png", "energy.png", "attention.png")
_OP_COLORS = {"AC": "tab:blue", "MAC": "tab:red", "host MAC": "tab:gray"}


def write_plots(r: BenchReport, out: Path) -> list[Path]:
    """All four PNGs (each saved atomically by ``taaf.training.plots.save_figure``)."""
    paths = [out / p for p in PLOTS]
    plot_synops(r, paths[0])
    plot_firing(r, paths[1])
    plot_energy(r, paths[2])
    plot_attention(r, paths[3])
    return paths


def plot_synops(r: BenchReport, path: Path) -> None:
    """Effective ops per layer (filled, AC vs MAC) over the dense ops (outline), log scale:
    readouts and first layers differ by two orders of magnitude."""
    from taaf.training.plots import plt, save_figure

    c = r.counts
    names = [g.name for g in c.groups] + (["host_head"] if c.host is not None else [])
    eff = [g.effective for g in c.groups] + ([c.host.macs] if c.host is not None else [])
    dense = [g.dense for g in c.groups] + ([c.host.macs] if c.host is not None else [])
    ops = [g.op for g in c.groups] + (["host MAC"] if c.host is not None else [])
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(7.0, 0.55 * len(names) + 2), 4.8))
    ax.bar(x, dense, width=0.75, facecolor="none", edgecolor="0.55", lw=0.9, ls="--", label="dense ops")
    for op, color in _OP_COLORS.items():
        idx = [i for i, o in enumerate(ops) if o == op]
        if idx:
            ax.bar(x[idx], [eff[i] for i in idx], width=0.75, color=color, label=f"effective {op}")
    ax.set_yscale("log")
    ax.set_xticks(x, names, rotation=45, ha="right", rotation_mode="anchor", fontsize=8)
    ax.set(ylabel="operations per inference (log)",
           title=f"SynOps per layer: {c.synops:,.0f} effective ({c.effective_acs:,.0f} AC + "
                 f"{c.effective_macs:,.0f} MAC), {r.count_source} counts, T = {c.steps}")
    ax.title.set_fontsize(10)
    ax.grid(axis="y", which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    ax.margins(x=0.01)
    fig.tight_layout()
    save_figure(fig, path)


def plot_firing(r: BenchReport, path: Path) -> None:
    """Spikes per neuron per step for every population: where activity (and cost) sits in time."""
    from taaf.training.plots import plt, save_figure

    c = r.counts
    fig, ax = plt.subplots(figsize=(8, 4.2))
    steps = np.arange(c.steps)
    for f in c.firing:
        ax.plot(steps, f.firing_rate_per_step, marker="o", ms=3, label=f"{f.population} (mean {f.firing_rate:.3f})")
    ax.set(xlabel="time step", ylabel="firing rate (spikes / neuron / step)", ylim=(0, None),
           title=f"Firing rate per layer over time ({r.data.split}, {c.samples} samples; "
                 f"activation sparsity {c.activation_sparsity:.3f})")
    ax.title.set_fontsize(10)
    ax.set_xticks(steps if c.steps <= 20 else steps[:: max(1, c.steps // 10)])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    save_figure(fig, path)


def plot_energy(r: BenchReport, path: Path) -> None:
    """Estimated energy per inference, SNN vs ANN, per cost table (accuracy above each bar);
    measured GPU energy, when there is any, in its own panel: estimates and measurements never
    share an axis."""
    from taaf.training.plots import plt, save_figure

    gpu = [e for e in (r.ann_measured.gpu_energy if r.ann_measured else ()) if e.measured]
    ncols = 2 if gpu else 1
    width_ratios = [3, 1] if gpu else [1]
    fig, axes = plt.subplots(1, ncols, figsize=(4 + 1.9 * len(r.estimates) + (3 if gpu else 0), 5),
                             gridspec_kw={"width_ratios": width_ratios}, squeeze=False)
    ax = axes[0, 0]
    x = np.arange(len(r.estimates))
    w = 0.38 if r.ann is not None else 0.6
    snn_j = [e.snn.total_j for e in r.estimates]
    bars = [("SNN", snn_j, r.snn_accuracy, "tab:blue", -w / 2 if r.ann else 0.0)]
    if r.ann is not None:
        bars.append(("ANN", [e.ann.total_j for e in r.estimates], r.ann_accuracy, "tab:orange", w / 2))
    for label, values, acc, color, dx in bars:
        rects = ax.bar(x + dx, values, w, color=color, label=f"{label} (accuracy {acc.fused:.3f})")
        for rect, v in zip(rects, values):
            ax.annotate(f"{fmt_joules(v)}\nacc {acc.fused:.3f}", (rect.get_x() + rect.get_width() / 2, v),
                        xytext=(0, 3), textcoords="offset points", ha="center", va="bottom", fontsize=7.5)
    ax.set_yscale("log")
    lo, hi = min(v for _, vals, *_ in bars for v in vals), max(v for _, vals, *_ in bars for v in vals)
    ax.set_ylim(lo / 3, hi * 12)  # room for the labels above the tallest bar
    labels = [e.table.name + ("" if e.ann is None or e.ann.table == e.table.name else f"\n(ANN at {e.ann.table})")
              for e in r.estimates]
    ax.set_xticks(x, labels, fontsize=8.5)
    ax.margins(x=0.35 if len(x) == 1 else 0.04)
    ax.set(ylabel="estimated energy per inference (J, log)",
           title=f"ESTIMATED from counts x cost-table constants ({r.data.split} accuracy above bars)")
    ax.title.set_fontsize(10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    if gpu:
        gx = axes[0, 1]
        rects = gx.bar([f"batch {e.batch}" for e in gpu], [max(e.joules_per_inference, 1e-15) for e in gpu],
                       color="tab:green")
        for rect, e in zip(rects, gpu):
            gx.annotate(f"{fmt_joules(e.joules_per_inference)}\nacc {r.ann_accuracy.fused:.3f}",
                        (rect.get_x() + rect.get_width() / 2, rect.get_height()), xytext=(0, 3),
                        textcoords="offset points", ha="center", va="bottom", fontsize=7.5)
        values = [max(e.joules_per_inference, 1e-15) for e in gpu]  # net of idle: can be ~0 on a noisy GPU
        gx.set_yscale("log")
        gx.set_ylim(min(values) / 3, max(values) * 12)
        gx.set(ylabel="measured energy per inference above idle (J, log)", title=f"MEASURED: ANN on {gpu[0].device}")
        gx.grid(axis="y", alpha=0.3)
        gx.title.set_fontsize(10)
    else:
        reasons = ("no ANN baseline given" if r.ann_measured is None else
                   "; ".join(sorted({e.reason for e in r.ann_measured.gpu_energy})))
        fig.text(0.01, -0.02, f"Measured GPU energy: {NOT_MEASURED} ({reasons})", fontsize=8, color="0.3")
    fig.tight_layout()
    save_figure(fig, path)


def plot_attention(r: BenchReport, path: Path) -> None:
    """Mean alpha_t and beta_t^m over the split, with a few individual samples drawn faintly."""
    from taaf.training.plots import COLORS, plt, save_figure

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    a = r.attention
    if a is None or a.alpha.size == 0:
        for ax in axes:
            ax.text(0.5, 0.5, "no attention (no samples)", ha="center", va="center", transform=ax.transAxes)
        save_figure(fig, path)
        return
    steps = np.arange(a.alpha.shape[1])
    k = min(ATTENTION_SAMPLES_SHOWN, len(a.alpha))
    ax = axes[0]
    for i in range(k):
        ax.plot(steps, a.alpha[i], color="0.5", lw=0.8, alpha=0.35, label="individual samples" if i == 0 else None)
    ax.fill_between(steps, *np.percentile(a.alpha, [10, 90], axis=0), color="grey", alpha=0.2, label="10-90 %")
    ax.plot(steps, a.alpha.mean(axis=0), color="black", lw=2, label="mean")
    ax.set_xticks(steps if len(steps) <= 20 else steps[:: max(1, len(steps) // 10)])
    ax.axhline(1 / len(steps), color="grey", ls=":", lw=0.8, label="uniform 1/T")
    ax.set(xlabel="time step", ylabel=r"$\alpha_t$", ylim=(0, None), title=r"temporal attention $\alpha_t$")
    ax.legend(fontsize=7.5, loc="upper right", framealpha=0.9)
    ax = axes[1]
    for j, m in enumerate(MODALITIES):
        for i in range(k):
            ax.plot(steps, a.beta[i, :, j], color=COLORS[m], lw=0.7, alpha=0.2)
        ax.plot(steps, a.beta[:, :, j].mean(axis=0), color=COLORS[m], lw=2, label=f"{m} (mean)")
    ax.axhline(0.5, color="grey", ls=":", lw=0.8)
    ax.set_xticks(axes[0].get_xticks())
    ax.set(xlabel="time step", ylabel=r"$\beta_t^m$", ylim=(0, 1), title=r"modality attention $\beta_t^m$")
    ax.legend(fontsize=8, loc="upper right", framealpha=0.9)
    note = "" if a.fusion == "taaf" else f" ({a.fusion} fusion: fixed uniform weights)"
    fig.suptitle(f"SNN attention on the {r.data.split} split ({len(a.alpha)} samples; faint: {k} samples){note}",
                 fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)

