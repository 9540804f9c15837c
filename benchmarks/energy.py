"""Energy estimates from operation counts and cited cost tables: pJ per inference.

An estimate is a sum of count x constant terms (:class:`EnergyTerm`), e.g. for Loihi 1
``ACs x 23.6 pJ + active neuron updates x 81 pJ + inactive x 52 pJ``. Every estimate is made
under one *counting* (:data:`COUNTINGS`), the same for both networks, so SNN and ANN are
priced like for like:

    effective  NeuroBench effective ops: non-zero inputs x non-zero weights (zero skipping);
               neuron updates split into those whose state changes (NeuroBench membrane
               updates, "active") and those that leave it unchanged ("inactive")
    dense      NeuroBench ``Dense``: every wired input and weight; every neuron update active

Compute terms come from the table's ``charges`` (:mod:`benchmarks.cost_table`); memory terms
(``category="memory"``, selectable with ``memory=False``) from its ``memory`` section: one weight
fetch per synaptic op / MAC (the host head's weighted sums have no weights), one state read and
one write per charged neuron update, from the smallest memory holding what the layers that platform
runs store. A spiking chip cannot multiply analog inputs: a table that
does not charge ``mac`` (loihi, truenorth) has the MACs charged by the ``mac_table`` (default
cmos45-fp32: those layers and the host head run on a conventional processor next to the chip);
such an estimate mixes two technologies (``mixed``) and is never put in a ratio. Inputs that do
not change over time (the static image) are charged once per inference with ``static_once``
when the model computes them once (:class:`~taaf.model.encoders.VisualEncoder` does); the layers
are listed in ``EnergyEstimate.once``. Any other count a table does not charge is left out and
listed in ``EnergyEstimate.uncharged``. These are estimates from constants; never put them in
one ratio with measured joules (design note, "Energy conventions").

:func:`estimate_energy` prices an SNN's counts, :func:`estimate_ann_energy` the ANN baseline's;
both go through :func:`price`, the one implementation of the equation.

    python -m benchmarks.energy [--checkpoint model.pt] [--samples 100] [--tables loihi ...]
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.cost_table import (COUNT_KINDS, TABLE_DIR, UNITS_IN_PJ, CostConstant, CostTable, CostTableError,
                                   MemoryLevel, MemoryModel, available_cost_tables, load_cost_table,
                                   parse_cost_table)
from benchmarks.metrics.harness import NetworkCounts

if TYPE_CHECKING:
    from benchmarks.report.model import AnnCounts

COUNTINGS = ("effective", "dense")  # how ops are counted; both networks are always priced the same way
HOST = "host_head"  # the layer name of the host head's weighted sums (no weights)


@dataclass(frozen=True)
class Charge:
    """One count to price: ``count`` ops of ``kind`` in ``layer`` per inference. ``stored`` is what
    the layer keeps in memory: its weights for a synaptic op / MAC (each op fetches one; 0 for the
    host head's weighted sums, which have none), its neurons for a neuron update (state read +
    write). The memory a platform reads from holds what all the layers it runs store."""

    layer: str
    kind: str  # one of cost_table.COUNT_KINDS
    count: float
    stored: int = 0

    @property
    def fetches_weights(self) -> bool:
        """Whether each op reads one stored weight."""
        return self.kind in ("ac", "mac") and self.stored > 0


@dataclass(frozen=True)
class MemorySizes:
    """What the accesses of one platform go to: the weights and neurons (states) of the layers it
    runs, which pick its memory level (a bigger SRAM costs more per read)."""

    weights: int
    neurons: int


@dataclass(frozen=True)
class EnergyTerm:
    """``count`` (per inference) of ``kind`` in ``layer``, charged at ``constant`` of ``table``;
    ``category`` is "compute" (arithmetic / per-event) or "memory" (weight fetch, state read+write)."""

    layer: str
    kind: str
    count: float
    table: str
    constant: str
    pj_per_op: float
    category: str = "compute"

    @property
    def energy_pj(self) -> float:
        """count x constant: this term's share of the estimate."""
        return self.count * self.pj_per_op

    def as_dict(self) -> dict[str, Any]:
        """Every field plus the term's energy in pJ."""
        return {"layer": self.layer, "kind": self.kind, "count": self.count, "table": self.table,
                "constant": self.constant, "pj_per_op": self.pj_per_op, "category": self.category,
                "energy_pj": self.energy_pj}


@dataclass(frozen=True)
class LayerEnergy:
    """One layer's estimated energy per inference (its terms summed), for per-layer tables."""

    name: str
    energy_pj: float

    @property
    def energy_j(self) -> float:
        """The same energy in joules."""
        return self.energy_pj * 1e-12


@dataclass(frozen=True)
class EnergyEstimate:
    """A model's energy per inference under one table and one counting: its terms, the layers
    charged once, the counts left uncharged and how memory was priced."""

    table: str
    counting: str
    mac_table: str | None  # where MACs were charged when ``table`` runs spikes only (then ``mixed``)
    terms: tuple[EnergyTerm, ...]
    uncharged: tuple[str, ...]  # "<kind>: <count> per inference, not in table <name>"
    once: tuple[str, ...] = ()  # layers with a static input, charged once per inference
    memory: str = "not priced"  # how memory was priced, in words

    @property
    def mixed(self) -> bool:
        """True when two technologies are summed (a spiking chip plus the MAC table's processor)."""
        return self.mac_table is not None

    @property
    def compute_pj(self) -> float:
        """Arithmetic / per-event terms, pJ per inference."""
        return sum(t.energy_pj for t in self.terms if t.category == "compute")

    @property
    def memory_pj(self) -> float:
        """Memory-access terms (weight fetches, state reads and writes), pJ per inference."""
        return sum(t.energy_pj for t in self.terms if t.category == "memory")

    @property
    def total_pj(self) -> float:
        """The estimate: all terms summed, in pJ per inference."""
        return sum(t.energy_pj for t in self.terms)

    @property
    def total_j(self) -> float:
        """The estimate in joules per inference."""
        return self.total_pj * 1e-12

    @property
    def layers(self) -> tuple[LayerEnergy, ...]:
        """Per synapse group / LIF population / host head, in topology order."""
        totals: dict[str, float] = {}
        for t in self.terms:
            totals[t.layer] = totals.get(t.layer, 0.0) + t.energy_pj
        return tuple(LayerEnergy(k, v) for k, v in totals.items())

    def by_kind(self, kind: str) -> float:
        """The pJ charged to one count kind (e.g. all neuron updates)."""
        return sum(t.energy_pj for t in self.terms if t.kind == kind)

    def as_dict(self) -> dict[str, Any]:
        """Totals, per-layer energies and every term (report.json's ``estimated.tables[].comparisons``)."""
        return {"table": self.table, "counting": self.counting, "mac_table": self.mac_table, "mixed": self.mixed,
                "compute_pj": self.compute_pj, "memory_pj": self.memory_pj, "total_pj": self.total_pj,
                "total_j": self.total_j, "memory": self.memory, "once": list(self.once),
                "uncharged": list(self.uncharged),
                "layers": [{"name": l.name, "energy_pj": l.energy_pj, "energy_j": l.energy_j} for l in self.layers],
                "terms": [t.as_dict() for t in self.terms]}


def snn_charges(counts: NetworkCounts, counting: str = "effective", static_once: bool = False) -> tuple[Charge, ...]:
    """What an SNN's counts charge under ``counting``: its groups' ops (a static-input group's
    divided by T when ``static_once``), each population's active and inactive neuron updates
    (effective: NeuroBench membrane updates are active; dense: all are), the host head's MACs."""
    _check_counting(counting)
    items: list[Charge] = []
    for g in counts.groups:
        n = g.effective if counting == "effective" else g.dense
        if static_once and g.static_input:
            n /= counts.steps
        items.append(Charge(g.name, "ac" if g.op == "AC" else "mac", n, g.weights))
    neurons = {f.population: f.neurons for f in counts.firing}
    for u in counts.updates:
        active = u.membrane_updates if counting == "effective" else u.neuron_updates
        items.append(Charge(u.population, "neuron_update", active, neurons[u.population]))
        items.append(Charge(u.population, "neuron_update_inactive", u.neuron_updates - active, neurons[u.population]))
    if counts.host is not None:
        items.append(Charge(HOST, "mac", float(counts.host.macs)))
    return tuple(items)


def ann_charges(ann: AnnCounts, counting: str = "effective") -> tuple[Charge, ...]:
    """What the ANN charges under ``counting``: every layer's MACs (NeuroBench effective or
    dense, :func:`benchmarks.bench_cli.count_ann`) and the host head's weighted sums at T = 1."""
    _check_counting(counting)
    items = [Charge(l.name, "mac", l.effective if counting == "effective" else l.dense, l.weights) for l in ann.layers]
    return (*items, Charge(HOST, "mac", float(ann.host.macs)))


def price(charges: Sequence[Charge], table: CostTable, mac_table: CostTable | None, counting: str,
          memory: bool = True, once: Sequence[str] = ()) -> EnergyEstimate:
    """Energy per inference: each charge x the constant its table charges, plus (``memory``) the
    memory terms of the table that runs it. Inactive neuron updates on a table without an
    inactive charge are skipped by zero skipping (not "uncharged"); a table without any neuron
    charge leaves all of them uncharged."""
    macs = table if table.runs_macs else mac_table
    if macs is not None and not macs.runs_macs:
        raise CostTableError(f"mac table {macs.name} charges no 'mac'")
    priced: list[tuple[Charge, CostTable, CostConstant]] = []
    skipped: dict[str, float] = {}
    for c in charges:
        source = macs if c.kind == "mac" else table
        const = None if source is None else source.charge(c.kind)
        if const is None:
            zero_skipped = c.kind == "neuron_update_inactive" and table.charge("neuron_update") is not None
            kind = "neuron_update" if c.kind == "neuron_update_inactive" else c.kind
            if not zero_skipped:
                skipped[kind] = skipped.get(kind, 0.0) + c.count
            continue
        priced.append((c, source, const))
    sizes = _sizes(priced)
    terms: list[EnergyTerm] = []
    for c, source, const in priced:
        if not c.count:
            continue
        terms.append(EnergyTerm(c.layer, c.kind, c.count, source.name, const.name, const.pj))
        if memory and source.memory is not None and c.stored:
            terms.append(_memory_term(c, source, sizes[source.name]))
    uncharged = tuple(f"{k}: {n:g} per inference, not in table {table.name}" for k, n in skipped.items() if n)
    return EnergyEstimate(table.name, counting, None if macs is None or macs is table else macs.name,
                          tuple(terms), uncharged, tuple(once), _memory_text(table, macs, memory))


def _sizes(priced: Sequence[tuple[Charge, CostTable, CostConstant]]) -> dict[str, MemorySizes]:
    """Per platform (table name): the weights and neurons of the layers it runs (each layer once)."""
    weights: dict[str, dict[str, int]] = {}
    neurons: dict[str, dict[str, int]] = {}
    for c, source, _ in priced:
        into = weights if c.fetches_weights else neurons
        if c.stored:
            into.setdefault(source.name, {})[c.layer] = c.stored
    return {name: MemorySizes(sum(weights.get(name, {}).values()), sum(neurons.get(name, {}).values()))
            for name in {*weights, *neurons}}


def _memory_term(c: Charge, source: CostTable, sizes: MemorySizes) -> EnergyTerm:
    """The memory access of one charge: a weight fetch per op, or a state read + write per update."""
    m = source.memory
    if c.fetches_weights:
        level = m.level(sizes.weights * m.weight_bits / 8)
        pj = source.constant(level.constant).pj * m.weight_bits / m.word_bits
        return EnergyTerm(c.layer, "weight_read", c.count, source.name, level.constant, pj, "memory")
    level = m.level(sizes.neurons * m.state_bits / 8)
    pj = 2 * source.constant(level.constant).pj * m.state_bits / m.word_bits  # one read + one write
    return EnergyTerm(c.layer, "state_read_write", c.count, source.name, level.constant, pj, "memory")


def _memory_text(table: CostTable, macs: CostTable | None, memory: bool) -> str:
    if not memory:
        return "not priced (--memory none)"
    parts = []
    for t in dict.fromkeys(x for x in (table, macs) if x is not None):
        parts.append(f"{t.name}: " + ("inside its all-in per-event constants" if t.memory is None else
                                      f"{t.memory.weight_bits}-bit weights / {t.memory.state_bits}-bit states "
                                      f"as shares of {t.memory.word_bits}-bit reads"))
    return "; ".join(parts)


def estimate_energy(counts: NetworkCounts, table: CostTable | str | Path,
                    mac_table: CostTable | str | Path | None = "cmos45-fp32", counting: str = "effective",
                    memory: bool = True, static_once: bool = False) -> EnergyEstimate:
    """An SNN's energy per inference: :func:`snn_charges` priced by :func:`price`."""
    table, macs = _table(table), None if mac_table is None else _table(mac_table)
    once = tuple(g.name for g in counts.groups if static_once and g.static_input)
    return price(snn_charges(counts, counting, static_once), table, macs, counting, memory, once)


def estimate_ann_energy(ann: AnnCounts, table: CostTable | str | Path, counting: str = "effective",
                        memory: bool = True) -> EnergyEstimate:
    """The ANN's energy per inference on a table that multiplies (an ANN cannot run on a
    spiking chip: there is no like-for-like ANN figure on loihi / truenorth)."""
    table = _table(table)
    if not table.runs_macs:
        raise CostTableError(f"cost table {table.name} charges no 'mac': it cannot run the ANN")
    return price(ann_charges(ann, counting), table, None, counting, memory)


def _table(t: CostTable | str | Path) -> CostTable:
    return t if isinstance(t, CostTable) else load_cost_table(t)


def _check_counting(counting: str) -> None:
    if counting not in COUNTINGS:
        raise ValueError(f"counting {counting!r}: choose from {', '.join(COUNTINGS)}")


__all__ = ["COUNTINGS", "COUNT_KINDS", "HOST", "TABLE_DIR", "UNITS_IN_PJ", "Charge", "CostConstant", "CostTable",
           "CostTableError", "EnergyEstimate", "EnergyTerm", "LayerEnergy", "MemoryLevel", "MemoryModel",
           "MemorySizes", "ann_charges", "available_cost_tables", "estimate_ann_energy", "estimate_energy",
           "load_cost_table", "parse_cost_table", "price", "snn_charges"]


def main(argv: list[str] | None = None) -> None:
    """Print SynOps per layer and energy per inference for each table on AV-Digits test samples."""
    import argparse

    import torch

    from benchmarks.metrics import count_torch
    from taaf.data import DataSpec, load_dataset

    parser = argparse.ArgumentParser(prog="python -m benchmarks.energy", description=main.__doc__)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--tables", nargs="+", default=list(available_cost_tables()))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.checkpoint is not None:
        from taaf.checkpoint import load_checkpoint

        ckpt = load_checkpoint(args.checkpoint)
        model, spec, what = ckpt.model.eval(), ckpt.data_spec, str(args.checkpoint)
    else:
        from taaf.config import TrainConfig
        from taaf.model.network import AVSpikingNet
        from taaf.training.trainer import model_config_for

        spec = DataSpec()
        torch.manual_seed(0)
        model = AVSpikingNet(model_config_for(load_dataset(spec), TrainConfig())).eval()
        what = "untrained default TAAF (torch.manual_seed(0))"
    split = load_dataset(spec).test
    n = min(args.samples, len(split.labels))
    counts = count_torch(model, split.audio[:n], split.image[:n])
    estimates = [estimate_energy(counts, t) for t in args.tables]
    print(f"model: {what}; {n} {spec.dataset} test samples, T = {counts.steps}; per inference")
    head = f"{'layer':<26}{'op':>4}{'effective':>12}{'dense':>12}" + "".join(f"{e.table + ' pJ':>16}" for e in estimates)
    print(head)
    energy = [{l.name: l.energy_pj for l in e.layers} for e in estimates]
    for g in counts.groups:
        row = f"{g.name:<26}{g.op:>4}{g.effective:>12.1f}{g.dense:>12.0f}"
        print(row + "".join(f"{d.get(g.name, 0.0):>16.1f}" for d in energy))
    for f, u in zip(counts.firing, counts.updates):
        row = f"{u.population + ' (rate ' + format(f.firing_rate, '.3f') + ')':<26}{'NU':>4}{u.neuron_updates:>12.0f}{'':>12}"
        print(row + "".join(f"{d.get(u.population, 0.0):>16.1f}" for d in energy))
    if counts.host is not None:
        print(f"{'host_head':<26}{'MAC':>4}{counts.host.macs:>12}{counts.host.macs:>12}"
              + "".join(f"{d.get('host_head', 0.0):>16.1f}" for d in energy))
    print(f"{'total':<30}{counts.synops:>12.1f}{counts.dense_ops:>12.0f}"
          + "".join(f"{e.total_pj:>16.1f}" for e in estimates))
    print("total J per inference: " + ", ".join(f"{e.table} {e.total_j:.3e}" for e in estimates))
    print(f"ACs {counts.effective_acs:.1f}, chip MACs {counts.effective_macs:.1f}, host MACs {counts.host_macs}, "
          f"activation sparsity {counts.activation_sparsity:.4f}, neuron updates {counts.neuron_updates:.0f}, "
          f"membrane updates (NeuroBench) {counts.membrane_updates:.1f}")
    m = counts.memory
    print(f"memory: {m.weights} weights, {m.biases} biases, {m.neurons} neurons, {m.delay_entries} delay entries; "
          + "; ".join(f"{p}: params {d['parameter_bytes_' + p]:.0f} B, state {d['state_bytes_' + p]:.0f} B"
                      for d in [m.as_dict()] for p in ("float32", "loihi")))
    for e in estimates:
        if e.uncharged or e.mac_table:
            print(f"{e.table}: MACs charged at {e.mac_table or e.table}; uncharged: {'; '.join(e.uncharged) or 'none'}")


if __name__ == "__main__":
    main()
