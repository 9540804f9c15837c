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
from benchmarks.report.model import NOT_MEASURED, ONCE_REASON, PLOTS, SNN_NOT_MEASURED, BenchReport
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
    """(quantity, kind, SNN, ANN): accuracy, ops both ways, estimated energy per table (effective
    counts, compute + memory; a ratio only like for like), measured numbers."""
    c, ann = r.counts, r.ann_counts
    no_ann = "-" if r.ann is None else None
    rows = [
        (f"accuracy fused ({r.data.split}, {r.data.samples} samples)", "evaluated",
         _acc(r.snn_accuracy), _acc(r.ann_accuracy)),
        ("ops per inference, effective (NeuroBench)", "counted",
         f"{c.synops:,.0f} SynOps ({c.effective_acs:,.0f} AC + {c.effective_macs:,.0f} MAC)"
         + (f"; {_once_ops(r):,.0f} with {', '.join(r.once_layers)} once" if r.once_layers else ""),
         no_ann or f"{ann.effective_macs:,.0f} MAC"),
        ("ops per inference, dense (NeuroBench)", "counted", f"{c.dense_ops:,.0f}", no_ann or f"{ann.dense_macs:,.0f} MAC"),
    ]
    for e in r.estimates:
        cmp = e.comparison("effective")
        ratio = cmp.ratio("total")
        ann_cell = no_ann or ("n/a: cannot run an ANN" if cmp.ann is None else fmt_energy(cmp.ann.total_pj)
                              + ("" if ratio is None else f" (SNN / ANN {ratio:.3g}x)"))
        snn_cell = fmt_energy(cmp.snn.total_pj) + (f" (MACs at {cmp.snn.mac_table})" if cmp.snn.mixed else "")
        rows.append((f"energy per inference, {e.table.name}{_memory_label(r, e)}", "estimated", snn_cell, ann_cell))
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
        for cmp in e.comparisons:
            a = cmp.ann
            rows.append((e.table.name, cmp.counting,
                         fmt_energy(cmp.snn.compute_pj), fmt_energy(cmp.snn.memory_pj), fmt_energy(cmp.snn.total_pj),
                         "-" if a is None else fmt_energy(a.compute_pj), "-" if a is None else fmt_energy(a.memory_pj),
                         "-" if a is None else fmt_energy(a.total_pj),
                         _ratio(cmp.ratio("compute")), _ratio(cmp.ratio("total")),
                         "; ".join(cmp.snn.uncharged) or "none"))
    once = ", ".join(r.once_layers) or "none"
    return [
        "", "## Estimated energy per cost table (like for like)", "",
        markdown_table(("table", "counting", "SNN compute", "SNN memory", "SNN total", "ANN compute", "ANN memory",
                        "ANN total", "SNN / ANN compute", "SNN / ANN total", "SNN counts not charged"),
                       rows, "llrrrrrrrrl"),
        "",
        "Both networks are counted both ways (NeuroBench effective = zero skipping, dense = every "
        "valid input-weight pair) and each row prices both under the same counting and table. A "
        "ratio is given only like for like: both models wholly on that table's technology. A "
        "spiking chip (loihi, truenorth) cannot run the ANN, and its SNN figure adds the MAC table's "
        "arithmetic for the analog first layers and host head, so those rows have no ratio.",
        f"Memory: {'priced' if r.memory else 'not priced (--memory none)'}; "
        + "; ".join(sorted({part for e in r.estimates for part in e.snn.memory.split("; ")})) + ".",
        f"Charged once per inference (static input): {once}"
        + (f" ({ONCE_REASON})." if r.once_layers else "."),
    ]


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}x"


def _memory_label(r: BenchReport, e) -> str:
    return " (compute + memory)" if r.memory and e.table.memory is not None else ""


def _once_ops(r: BenchReport) -> float:
    """Effective SynOps with the static-input groups counted once (what the estimates charge)."""
    return sum(g.effective / (r.counts.steps if g.name in r.once_layers else 1) for g in r.counts.groups)


def _groups_section(r: BenchReport) -> list[str]:
    c, names, energy = r.counts, _table_names(r), _per_layer_energy(r)
    rows = [(g.name + (" (charged once)" if g.name in r.once_layers else ""), f"{g.source} -> {g.target}", g.op, g.delay, f"{g.effective:,.1f}", f"{g.dense:,.0f}",
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
                 *(_neuron_cell(e.snn) for e in r.estimates)))
    return ["", "## SNN spiking populations (counted)", "",
            markdown_table(("population", "neurons", "firing rate", "activation sparsity", "spikes",
                            "neuron updates", "membrane updates (NeuroBench)", *names), rows,
                           "lrrrrrr" + "r" * len(names))]


def _ann_layers_section(r: BenchReport) -> list[str]:
    a = r.ann_counts
    if a is None:
        return []
    names, ann_energy = _table_names(r), _per_layer_energy(r, "ann")
    rows = [(l.name, l.module, f"{l.effective:,.1f}", f"{l.dense:,.0f}", f"{l.padded:,}",
             *(_cell(d, l.name) for d in ann_energy)) for l in a.layers]
    rows.append(("host_head", "HostHead (T = 1)", f"{a.host.macs:,}", f"{a.host.macs:,}", f"{a.host.macs:,}",
                 *(_cell(d, "host_head") for d in ann_energy)))
    rows.append(("**total**", "", f"{a.effective_macs + a.host.macs:,.1f}", f"{a.dense_macs + a.host.macs:,.0f}",
                 f"{a.padded_macs + a.host.macs:,}",
                 *("-" if e.ann is None else fmt_energy(e.ann.total_pj) for e in r.estimates)))
    return ["", "## ANN layers (counted)", "",
            markdown_table(("layer", "module", "effective MACs", "dense MACs", "padded MACs", *names), rows,
                           "llrrr" + "r" * len(names)), "",
            f"Effective and dense MACs: NeuroBench definitions, counted by the SNN's own counter over "
            f"{a.samples} samples. Padded MACs (out elements x fan-in, padded conv positions too) sum to "
            f"{a.padded_macs:,} = torch FlopCounterMode's {a.flop_counter.macs:,} (FLOPs / 2). Energy columns: "
            "effective counts; '-' on a spiking chip (it cannot run the ANN)."]


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
           "Energy estimate = sum over layers of count x constant (benchmarks/energy.py, `price`): ACs -> "
           "the table's `ac` constant, MACs (analog-input groups, host head, every ANN layer) -> `mac`, neuron "
           "updates whose state changes (NeuroBench membrane updates under effective counting, all of them "
           "under dense) -> `neuron_update`, the unchanged ones -> `neuron_update_inactive` where the chip "
           "services them (Loihi) and nothing where zero skipping skips them. Memory (a table's `memory` "
           "section): one weight fetch per synaptic op / MAC at the read energy of the smallest SRAM holding "
           "the model's weights (a weight_bits / word_bits share of one read), one state read + one write per "
           "charged neuron update; the host head's weighted sums fetch no weights. A table that charges no "
           "`mac` (a spiking chip) has MACs charged at its MAC table. Biases, activations' reads and writes, "
           "spike routing and static power are not charged."]
    for e in r.estimates:
        t = e.table
        out += ["", f"**{t.name}** ({t.path}): {t.description} Technology: {t.technology or 'not stated'}.", ""]
        for kind, const in t.charges:
            k = t.constant(const)
            out.append(f"- charged per `{kind}`: `{const}` = {k.value:g} {k.unit} — {k.what}. {k.source}"
                       + (f" (derivation: {k.derivation})" if k.derivation else ""))
        if t.memory is not None:
            m = t.memory
            out.append(f"- memory: {m.weight_bits}-bit weights, {m.state_bits}-bit states, {m.word_bits}-bit reads; "
                       + ", ".join(f"up to {lv.max_bytes:,} B: `{lv.constant}`" if lv.max_bytes else
                                   f"larger: `{lv.constant}`" for lv in m.levels))
        for k in (k for k in t.constants if k.name not in dict(t.charges).values()):
            out.append(f"- listed, not charged: `{k.name}` = {k.value:g} {k.unit} — {k.what}. {k.source}")
        if t.notes:
            out.append(f"- notes: {t.notes}")
    return out


def _ann_conventions() -> list[str]:
    return ["", "### The ANN baseline", "",
            "Same layers as the SNN with ReLU and no time dimension (audio averaged over T); trained by "
            "`taaf train --model ann`. MACs: every nn.Linear / nn.Conv2d multiply-accumulate, counted the "
            "NeuroBench ways (effective, dense) like the SNN, plus the padded count that equals torch "
            "FlopCounterMode FLOPs / 2 (no bias, ReLU or softmax). Latency: the "
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


def _neuron_cell(e: EnergyEstimate) -> str:
    """All neuron-update energy of an estimate (active, inactive, state accesses)."""
    kinds = ("neuron_update", "neuron_update_inactive")
    if not any(t.kind in kinds for t in e.terms):
        return "not charged"
    return fmt_energy(sum(t.energy_pj for t in e.terms if t.kind in kinds or t.kind == "state_read_write"))


def _pops(c: NetworkCounts) -> set[str]:
    return {f.population for f in c.firing}


def _doc_markdown(doc: str) -> str:
    """The metrics package docstring (the single source of the definitions), Sphinx roles and
    reST literals turned into Markdown code spans."""
    doc = re.sub(r":\w+:`~([\w.]+)`", lambda m: f"`{m.group(1).rsplit('.', 1)[-1]}`", doc.strip())
    doc = re.sub(r":\w+:`([\w.]+)`", r"`\1`", doc)
    return re.sub(r"``(.+?)``", r"`\1`", doc)
