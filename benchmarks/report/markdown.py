"""How a report reads: report.md and the headline table ``taaf bench`` prints.

:func:`render_markdown` joins one small function per section of report.md, in order.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import benchmarks.metrics as metrics_doc
from benchmarks.ann_baseline import EnergyResult
from benchmarks.energy import EnergyEstimate
from benchmarks.metrics.harness import NetworkCounts
from benchmarks.report.model import NOT_MEASURED, PLOTS, SNN_NOT_MEASURED, BenchReport
from taaf.evaluate import Accuracies

# --------------------------------------------------------------------------- formatting

def fmt_energy(pj: float) -> str:
    """pJ -> the readable SI unit in joules (e.g. 14.36 µJ)."""
    j = pj * 1e-12
    for scale, unit in ((1.0, "J"), (1e-3, "mJ"), (1e-6, "µJ"), (1e-9, "nJ"), (1e-12, "pJ")):
        if abs(j) >= scale:
            return f"{j / scale:.3g} {unit}"
    return f"{j / 1e-15:.3g} fJ"


def fmt_joules(j: float) -> str:
    """J -> the readable SI unit, as :func:`fmt_energy` (for measured joules)."""
    return fmt_energy(j * 1e12)


def _acc(a: Accuracies | None) -> str:
    return "-" if a is None else f"{a.fused:.3f} (audio {a.audio:.3f}, visual {a.visual:.3f})"


def _gpu(e: EnergyResult) -> str:
    return fmt_joules(e.joules_per_inference) if e.measured else f"{NOT_MEASURED}: {e.reason}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    """A pipe table padded to column width, so it reads as well in a terminal as rendered."""
    cells = [list(map(str, header))] + [list(map(str, row)) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    align = align or "l" * len(header)

    def line(row: list[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(row, widths, align)) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if a == "r" else ("-" * (w + 2)) for w, a in zip(widths, align)) + "|"
    return "\n".join([line(cells[0]), rule, *map(line, cells[1:])])


# --------------------------------------------------------------------------- the headline

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


def headline_table(r: BenchReport) -> str:
    """The one table ``taaf bench`` prints and report.md opens with."""
    snn = f"SNN ({r.snn.method}, T = {r.snn.n_steps})"
    ann = "ANN baseline" + (f" ({r.ann.method})" if r.ann else " (none: pass --ann)")
    return markdown_table(("quantity", "kind", snn, ann), headline_rows(r))


# --------------------------------------------------------------------------- report.md

def render_markdown(r: BenchReport) -> str:
    """report.md: the headline table first, then per-layer detail, then the conventions."""
    sections = (_intro(r), _estimates_section(r), _groups_section(r), _populations_section(r),
                _ann_layers_section(r), _memory_section(r), _measured_section(r), _plots_section(),
                _counting_conventions(), _cost_conventions(r), _ann_conventions(), _accuracy_conventions())
    return "\n".join(line for section in sections for line in section) + "\n"


def _intro(r: BenchReport) -> list[str]:
    c = r.counts
    return [
        f"# taaf bench: {Path(r.snn.path).name}", "",
        f"SNN `{r.snn.path}` (sha256 `{r.snn.sha256[:16]}…`)"
        + (f" against ANN `{r.ann.path}` (sha256 `{r.ann.sha256[:16]}…`)" if r.ann else "")
        + f", on {r.data.samples} of {r.data.split_samples} `{r.data.split}` samples of "
        f"{r.data.spec.dataset} ({r.data.spec.preset}), T = {c.steps}. SNN counts from the "
        f"**{r.count_source}** backend ({_source_text(r.count_source)}). Per inference = per sample.",
        "", headline_table(r), "",
        "*counted*: exact operation counts (NeuroBench definitions, below). *estimated*: counts x "
        "cited cost-table constants, not a measurement. *measured*: on this machine "
        f"({r.machine.cpu}, {r.machine.cores} cores, GPU: {r.machine.gpu}). Estimated pJ and measured J "
        "are never combined into one number.",
    ]


def _estimates_section(r: BenchReport) -> list[str]:
    rows = []
    for e in r.estimates:
        ratio = "-" if e.ratio is None else f"{e.ratio:.3g}x"
        rows.append((e.table.name, e.snn_platform, fmt_energy(e.snn.total_pj), e.ann_platform or "-",
                     "-" if e.ann is None else fmt_energy(e.ann.total_pj), ratio,
                     "; ".join(e.snn.uncharged) or "none"))
    return [
        "", "## Estimated energy per cost table", "",
        markdown_table(("table", "SNN charged at", "SNN estimate", "ANN charged at", "ANN estimate",
                        "SNN / ANN (estimate / estimate)", "SNN counts not charged"), rows, "llrlrrl"),
        "",
        "The ratio divides two estimates of the same kind (pJ from cited cost tables); a spiking "
        "chip cannot run the ANN, so on loihi / truenorth the ANN's MACs are charged at the MAC table "
        "that also charges the SNN's analog first layers and host head.",
    ]


def _groups_section(r: BenchReport) -> list[str]:
    c, names, energy = r.counts, _table_names(r), _per_layer_energy(r)
    rows = [(g.name, f"{g.source} -> {g.target}", g.op, g.delay, f"{g.effective:,.1f}", f"{g.dense:,.0f}",
             f"{g.nonzero_weights:,}/{g.weights:,}", *(_cell(d, g.name) for d in energy))
            for g in c.groups]
    if c.host is not None:
        rows.append(("host_head", "readouts -> logits (host)", "MAC", 0, f"{c.host.macs:,}", f"{c.host.macs:,}",
                     "-", *(_cell(d, "host_head") for d in energy)))
    rows.append(("**total (chip + host)**", "", "", "", f"{c.synops + c.host_macs:,.1f}",
                 f"{c.dense_ops + c.host_macs:,.0f}", "",
                 *(fmt_energy(sum(l.energy_pj for l in e.snn.layers if l.name not in _pops(c))) for e in r.estimates)))
    return ["", "## SNN synapse groups (counted)", "",
            markdown_table(("group", "source -> target", "op", "delay", "effective ops", "dense ops",
                            "non-zero / stored weights", *names), rows, "lllrrrr" + "r" * len(names))]


def _populations_section(r: BenchReport) -> list[str]:
    c, names, energy = r.counts, _table_names(r), _per_layer_energy(r)
    rows = [(f.population, f.neurons, f"{f.firing_rate:.4f}", f"{f.activation_sparsity:.4f}", f"{f.spikes:,.1f}",
             f"{u.neuron_updates:,.0f}", f"{u.membrane_updates:,.1f}", *(_cell(d, f.population) for d in energy))
            for f, u in zip(c.firing, c.updates)]
    rows.append(("**all**", sum(f.neurons for f in c.firing), "", f"{c.activation_sparsity:.4f}", "",
                 f"{c.neuron_updates:,.0f}", f"{c.membrane_updates:,.1f}",
                 *(_kind_cell(e.snn, "neuron_update") for e in r.estimates)))
    return ["", "## SNN spiking populations (counted)", "",
            markdown_table(("population", "neurons", "firing rate", "activation sparsity", "spikes",
                            "neuron updates", "membrane updates (NeuroBench)", *names), rows,
                           "lrrrrrr" + "r" * len(names))]


def _ann_layers_section(r: BenchReport) -> list[str]:
    a = r.ann_counts
    if a is None:
        return []
    names, ann_energy = _table_names(r), _per_layer_energy(r, "ann")
    rows = [(l.name, l.module, f"{l.macs:,}", *(_cell(d, l.name) for d in ann_energy)) for l in a.layers]
    rows.append(("host_head", "HostHead (T = 1)", f"{a.host.macs:,}", *(_cell(d, "host_head") for d in ann_energy)))
    rows.append(("**total**", "", f"{a.macs + a.host.macs:,}", *(fmt_energy(e.ann.total_pj) for e in r.estimates)))
    return ["", "## ANN layers (counted)", "",
            markdown_table(("layer", "module", "MACs", *names), rows, "llr" + "r" * len(names)), "",
            f"Layer MACs sum to {a.macs:,} = torch FlopCounterMode's {a.flop_counter.macs:,} "
            "(FLOPs / 2); the host head's weighted sum is charged like the SNN's."]


def _memory_section(r: BenchReport) -> list[str]:
    mem = r.counts.memory
    m = mem.as_dict()
    rows = [("SNN", f"{mem.weights:,}", f"{mem.biases:,}", f"{mem.neurons:,}",
             f"{mem.delay_entries:,}", f"{m['parameter_bytes_float32']:,.0f} / {m['state_bytes_float32']:,.0f}",
             f"{m['parameter_bytes_loihi']:,.0f} / {m['state_bytes_loihi']:,.0f}")]
    if r.ann_counts is not None:
        a = r.ann_counts
        rows.append(("ANN", f"{a.weights:,}", f"{a.biases:,}", "- (ReLU, no state)", "-",
                     f"{a.parameter_bytes_float32:,} / -", "-"))
    return ["", "## Memory footprint (counted)", "",
            markdown_table(("model", "weights", "biases", "neurons", "delay entries",
                            "float32 bytes (params / state)", "Loihi bytes (params / state)"), rows)]


def _measured_section(r: BenchReport) -> list[str]:
    out = ["", "## Measured on this machine", "", f"SNN: {NOT_MEASURED}; {SNN_NOT_MEASURED}."]
    am = r.ann_measured
    if am is None:
        return out + ["ANN: no baseline given (pass --ann ann.pt, from `taaf train --model ann`)."]
    rows = [(f"ONNX CPU, batch {t.batch}", f"{t.median_ms:.4f}", f"{t.min_ms:.4f}", f"{t.p90_ms:.4f}",
             f"{t.samples_per_second:,.0f}", t.runs, t.threads or "default") for t in (am.latency, am.throughput)]
    out += ["", markdown_table(("ANN", "median ms", "min ms", "p90 ms", "samples/s", "runs", "threads"), rows,
                               "lrrrrrl"),
            "", f"ONNX graph vs PyTorch logits: max |difference| {am.onnx_max_abs_diff:.2e}."]
    for e in am.gpu_energy:
        if e.measured:
            out.append(f"- GPU energy, batch {e.batch}: {fmt_joules(e.joules_per_inference)} per inference "
                       f"above idle ({e.device}; idle {e.idle_watts:.1f} W, active {e.active_watts:.1f} W, "
                       f"{e.inferences} inferences in {e.seconds:.2f} s; gross "
                       f"{fmt_joules(e.gross_joules_per_inference)})")
        else:
            out.append(f"- GPU energy, batch {e.batch}: {NOT_MEASURED} ({e.reason})")
    return out


def _plots_section() -> list[str]:
    return ["", "## Plots", "", *(f"![{p}]({p})" for p in PLOTS)]


def _counting_conventions() -> list[str]:
    return ["", "## Conventions", "",
            "### What is counted (NeuroBench 2.x) and where we deliberately differ",
            "", _doc_markdown(metrics_doc.__doc__ or ""), ""]


def _cost_conventions(r: BenchReport) -> list[str]:
    out = ["### What each cost constant is charged to", "",
           "Energy estimate = sum over layers of count x constant: effective ACs -> the table's `ac` "
           "constant, effective MACs (analog-input groups, host head) -> `mac`, neuron updates (neurons "
           "x steps) -> `neuron_update`. A table that charges no `mac` (a spiking chip) has MACs charged at "
           "its MAC table. Biases, spike routing, memory accesses and static power are not charged."]
    for e in r.estimates:
        t = e.table
        out += ["", f"**{t.name}** ({t.path}): {t.description}", ""]
        for kind, const in t.charges:
            k = t.constant(const)
            out.append(f"- charged per `{kind}`: `{const}` = {k.value:g} {k.unit} — {k.what}. {k.source}"
                       + (f" (derivation: {k.derivation})" if k.derivation else ""))
        for k in (k for k in t.constants if k.name not in dict(t.charges).values()):
            out.append(f"- listed, not charged: `{k.name}` = {k.value:g} {k.unit} — {k.what}. {k.source}")
        if t.notes:
            out.append(f"- notes: {t.notes}")
    return out


def _ann_conventions() -> list[str]:
    return ["", "### The ANN baseline", "",
            "Same layers as the SNN with ReLU and no time dimension (audio averaged over T); trained by "
            "`taaf train --model ann`. MACs: every nn.Linear / nn.Conv2d multiply-accumulate (out elements "
            "x fan-in; no bias, ReLU or softmax), equal to torch FlopCounterMode FLOPs / 2. Latency: the "
            "exported ONNX graph in onnxruntime's CPU provider, median of single runs after warm-up; "
            "throughput: batch size / median run. GPU energy: NVML's energy counter over a >= 2 s window "
            "of back-to-back inference, idle power subtracted (benchmarks/ann_baseline.py)."]


def _accuracy_conventions() -> list[str]:
    return ["", "### Accuracy and attention", "",
            "Accuracy is the PyTorch models' predictions on the same samples (fused, and each modality's own "
            "evidence readout); with `--backend reference` only the counts come from the simulator. "
            "Attention (alpha_t temporal, beta_t^m modality) is the SNN head's on the same samples."]


# --------------------------------------------------------------------------- helpers

def _source_text(source: str) -> str:
    return {"torch": "count_torch: spikes recorded from the PyTorch model",
            "reference": "count_run: spikes of the exported NIR graph on the float64 reference simulator; "
                         "equal to the PyTorch counts up to the odd spike a float32 coefficient flips"}[source]


def _table_names(r: BenchReport) -> list[str]:
    return [e.table.name for e in r.estimates]


def _per_layer_energy(r: BenchReport, attr: str = "snn") -> list[dict[str, float]]:
    return [{layer.name: layer.energy_pj for layer in getattr(e, attr).layers} if getattr(e, attr) else {}
            for e in r.estimates]


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
