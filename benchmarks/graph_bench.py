"""``taaf bench G.nir --input X.npz --out DIR``: what ANY NIR graph costs on a neuromorphic chip.

The graph is lowered once into the chip IR (:func:`hardware.ir.lower_graph`), run on a backend
from the registry (:mod:`hardware.registry`; default the reference simulator), and its recorded
activity is counted over the IR (:func:`benchmarks.metrics.harness.count_graph`: NeuroBench's
effective and dense synaptic operations, firing, membrane updates, memory), then priced with the
cited cost tables (:func:`benchmarks.energy.estimate_energy`). There is no accuracy here: a
foreign graph comes without labels, and no ANN (the checkpoint mode compares with one).

Writes DIR/report.json (schema ``taaf-bench-graph/1``), DIR/report.md and two PNG plots; every
file is built in a staged folder that replaces DIR as a whole only when all exist
(:func:`taaf.paths.staged_output`).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from benchmarks.energy import CostTable, EnergyEstimate, estimate_energy
from benchmarks.metrics.harness import NetworkCounts
from taaf.errors import TaafError

SCHEMA = "taaf-bench-graph/1"
PLOTS = ("synops.png", "firing.png")


@dataclass(frozen=True)
class GraphInfo:
    """The graph that was counted: file, content hash and its chip shape."""

    path: str
    sha256: str
    dt: float
    inputs: dict[str, list[int]]
    outputs: list[str]
    populations: dict[str, int]  # neuron layer -> neurons


@dataclass(frozen=True)
class GraphBenchReport:
    """Counts and energy estimates of one graph on one input file."""

    graph: GraphInfo
    input_path: str
    input_sha256: str
    backend: str
    counts: NetworkCounts
    estimates: tuple[EnergyEstimate, ...]

    def as_dict(self) -> dict:
        """JSON-ready data (schema ``taaf-bench-graph/1``)."""
        return {"schema": SCHEMA, "graph": asdict(self.graph),
                "input": {"path": self.input_path, "sha256": self.input_sha256,
                          "steps": self.counts.steps, "samples": self.counts.samples},
                "backend": self.backend, "counts": self.counts.as_dict(),
                "estimates": [e.as_dict() for e in self.estimates]}


def bench_graph(graph_path: Path, inputs: Mapping[str, np.ndarray], input_path: Path, backend: str,
                tables: Sequence[CostTable], mac_table: CostTable, dt: float | None = None,
                memory: bool = True, strict: bool = False) -> GraphBenchReport:
    """Run ``graph_path`` on ``inputs`` ([T, B, ...] per Input) and count and price its activity
    (effective counts; an input constant over time is charged at every step: the graph receives
    it at every step; memory accesses priced when ``memory``). A file failing nir's type check
    runs with a warning, as in ``taaf simulate`` (``strict``: refused), and so does a graph without
    dt metadata when no ``dt`` is given (at 1e-4 s)."""
    from benchmarks.metrics.harness import count_graph
    from hardware.ir import lower_graph
    from hardware.reference import load_graph
    from hardware.registry import get_backend
    from taaf.data.cache import sha256_file

    graph = load_graph(graph_path, strict=strict)
    if dt is None and not (isinstance(graph.metadata, dict) and "dt" in graph.metadata):
        from hardware.simulate_cli import DEFAULT_GRAPH_DT
        from taaf import notices

        dt = DEFAULT_GRAPH_DT  # as taaf simulate does
        notices.warn(f"{graph_path} has no dt metadata; running with dt = {dt} s (set --dt)")
    chip = lower_graph(graph, dt)
    batched = {}
    for name, shape in chip.inputs.items():
        if name not in inputs:
            raise TaafError(f"--input has no array for the Input node {name!r} (has {sorted(inputs)})")
        x = np.asarray(inputs[name], np.float64)
        batched[name] = x[:, None] if x.ndim == 1 + len(shape) else x
    result = get_backend(backend).run_graph(graph, batched, chip.dt, record=True)
    owner = {part: node for node, pop in chip.split.items() for part in pop.parts}
    missing = sorted({owner.get(n, n) for n in chip.neurons if "spikes" not in result.states.get(owner.get(n, n), {})})
    if missing:
        raise TaafError(f"backend {backend!r} recorded no spikes for {missing}; it cannot be counted")
    counts = count_graph(chip, batched, result.states)
    populations: dict[str, int] = {}  # NIR neuron node -> neurons (a split node's parts summed)
    for n, layer in chip.neurons.items():
        populations[owner.get(n, n)] = populations.get(owner.get(n, n), 0) + layer.size
    info = GraphInfo(str(graph_path), sha256_file(Path(graph_path)), chip.dt,
                     {n: list(s) for n, s in chip.inputs.items()}, list(chip.readouts), populations)
    estimates = tuple(estimate_energy(counts, t, mac_table, memory=memory) for t in tables)
    return GraphBenchReport(info, str(input_path), sha256_file(Path(input_path)), backend, counts, estimates)


def render_graph_markdown(r: GraphBenchReport) -> str:
    """report.md: headline, energy per table, per synapse group and per population."""
    from benchmarks.report.markdown import fmt_energy, markdown_table

    c = r.counts
    lines = [f"# Cost of `{Path(r.graph.path).name}`", "",
             f"Graph sha256 `{r.graph.sha256[:16]}`, dt = {r.graph.dt:g} s; input `{Path(r.input_path).name}`: "
             f"{c.samples} samples x {c.steps} steps; activity recorded on **{r.backend}** and counted over "
             f"the chip IR (NeuroBench definitions). Energies are ESTIMATES: counts x cited per-operation "
             f"constants, per inference (one sample, all steps).", "",
             markdown_table(["quantity (per inference)", "value"], [
                 ["effective SynOps (AC + MAC)", f"{c.synops:,.1f}"],
                 ["  effective ACs (spike inputs)", f"{c.effective_acs:,.1f}"],
                 ["  effective MACs (analog inputs)", f"{c.effective_macs:,.1f}"],
                 ["dense ops", f"{c.dense_ops:,.1f}"],
                 ["neuron updates", f"{c.neuron_updates:,.1f}"],
                 ["activation sparsity", f"{c.activation_sparsity:.4f}"]], "lr"), "",
             "## Estimated energy per inference", "",
             markdown_table(["cost table", "MACs priced by", "compute", "memory", "estimated energy", "not charged"],
                            [[e.table, e.mac_table or e.table, fmt_energy(e.compute_pj), fmt_energy(e.memory_pj),
                              fmt_energy(e.total_pj), "; ".join(e.uncharged) or "-"] for e in r.estimates],
                            "llrrrl"), "",
             "Effective counts; every step charged (the graph receives its inputs at every step); memory: "
             + "; ".join(sorted({part for e in r.estimates for part in e.memory.split("; ")})) + ".", "",
             "## Synapse groups", "",
             markdown_table(["group", "source -> target", "op", "delay", "effective", "dense", "weights"],
                            [[g.name, f"{g.source} -> {g.target}", g.op, str(g.delay), f"{g.effective:,.1f}",
                              f"{g.dense:,.1f}", str(g.weights)] for g in c.groups], "lllrrrr"), "",
             "## Populations", "",
             markdown_table(["population", "neurons", "firing rate", "spikes per inference"],
                            [[f.population, str(f.neurons), f"{f.firing_rate:.4f}",
                              f"{sum(f.spikes_per_step) / f.samples:,.1f}"] for f in c.firing], "lrrr"), ""]
    return "\n".join(lines)


def write_graph_report(r: GraphBenchReport, out: Path) -> list[str]:
    """Build report.json, report.md and the plots in a staged folder that replaces ``out`` as a
    whole once all are written (:func:`taaf.paths.staged_output`: a failed run leaves nothing
    behind, and no file of an earlier run stays); returns the file names."""
    from benchmarks.report.plots import plot_firing_counts, plot_synops_counts
    from taaf.paths import MARKER, staged_output

    as_json = json.dumps(r.as_dict(), indent=2, allow_nan=False) + "\n"
    with staged_output(out, "taaf bench") as stage:
        (stage / "report.json").write_text(as_json)
        (stage / "report.md").write_text(render_graph_markdown(r))
        plot_synops_counts(r.counts, r.backend, stage / PLOTS[0])
        plot_firing_counts(r.counts, f"{Path(r.input_path).name} on {r.backend}", stage / PLOTS[1])
        names = sorted(p.name for p in stage.iterdir() if p.name != MARKER)
    return names


__all__ = ["GraphBenchReport", "GraphInfo", "SCHEMA", "bench_graph", "render_graph_markdown", "write_graph_report"]
