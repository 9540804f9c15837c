"""Energy estimates from operation counts and cited cost tables: pJ per inference.

A cost table (``benchmarks/cost_tables/<name>.json``, or any file of the same form) lists
constants, each with value, unit, source, year and what exactly it is, and says which count
each constant is *charged* to. Three counts can be charged:

    ac             effective ACs: synapse groups fed by spikes (chip layers, readouts)
    mac            effective MACs: groups fed by analog values (first audio layer, first conv
                   on the image) and the host head's dense arithmetic
    neuron_update  neurons x steps: every LIF neuron serviced at every step

So the estimate is a sum of count x constant terms, e.g. for Loihi
``ACs x 23.6 pJ + neuron updates x 52 pJ``. A spiking chip cannot multiply analog inputs:
tables that do not charge ``mac`` (loihi, truenorth) have their MACs charged by the
``mac_table`` (default cmos45-fp32: those layers and the head run on a conventional processor
next to the chip). Any other count a table does not charge is left out and listed in
``EnergyEstimate.uncharged``. These are estimates from constants; never put them in one ratio
with measured joules without saying so (design note, "Energy conventions").

:func:`estimate_energy` charges an SNN's counts; :func:`estimate_ann_energy` charges the ANN
baseline's MACs the same way, so the two estimates can be compared.

    python -m benchmarks.energy [--checkpoint model.pt] [--samples 100] [--tables loihi ...]
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.metrics.harness import NetworkCounts
from taaf.errors import TaafError

if TYPE_CHECKING:
    from benchmarks.report.model import AnnCounts

TABLE_DIR = Path(__file__).resolve().parent / "cost_tables"  # the shipped tables, found by name
COUNT_KINDS = ("ac", "mac", "neuron_update")  # the counts a table can charge (see above)
UNITS_IN_PJ = {"fJ": 1e-3, "pJ": 1.0, "nJ": 1e3}  # the energy units a constant may be given in
_CONSTANT_FIELDS = {"value", "unit", "source", "year", "what"}
_TABLE_FIELDS = {"name", "description", "constants", "charges"}


class CostTableError(TaafError):
    """A cost table file is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class CostConstant:
    """One cited energy per operation: its value, and where it comes from, so every pJ can be checked."""

    name: str
    value: float
    unit: str
    source: str
    year: int
    what: str
    derivation: str | None = None

    @property
    def pj(self) -> float:
        """The value in pJ, whatever unit the source gave it in."""
        return self.value * UNITS_IN_PJ[self.unit]

    def as_dict(self) -> dict[str, Any]:
        """Every field plus the value in pJ (report.json's ``constants`` entries)."""
        return {"name": self.name, "value": self.value, "unit": self.unit, "pj": self.pj,
                "source": self.source, "year": self.year, "what": self.what, "derivation": self.derivation}


@dataclass(frozen=True)
class CostTable:
    """One platform's constants and which count each is charged to (a parsed cost-table file)."""

    name: str
    description: str
    path: str
    constants: tuple[CostConstant, ...]
    charges: tuple[tuple[str, str], ...]  # (count kind, constant name)
    notes: str = ""

    def constant(self, name: str) -> CostConstant:
        """The constant called ``name`` (KeyError if the table has none)."""
        for c in self.constants:
            if c.name == name:
                return c
        raise KeyError(f"cost table {self.name}: no constant {name!r}")

    def charge(self, kind: str) -> CostConstant | None:
        """The constant charged per unit of count ``kind``, or None if this table does not."""
        for k, name in self.charges:
            if k == kind:
                return self.constant(name)
        return None

    def as_dict(self) -> dict[str, Any]:
        """The table as JSON, with each constant's value in pJ."""
        return {"name": self.name, "description": self.description, "path": self.path, "notes": self.notes,
                "charges": dict(self.charges), "constants": [c.as_dict() for c in self.constants]}


def available_cost_tables() -> tuple[str, ...]:
    """The names of the shipped tables (the default set of a benchmark)."""
    return tuple(sorted(p.stem for p in TABLE_DIR.glob("*.json")))


def load_cost_table(name_or_path: str | Path) -> CostTable:
    """A shipped table by name (``"loihi"``) or a user's JSON file by path."""
    path = Path(name_or_path)
    if path.suffix != ".json" and not path.exists():
        if str(name_or_path) not in available_cost_tables():
            raise CostTableError(f"unknown cost table {str(name_or_path)!r} (shipped: "
                                 f"{', '.join(available_cost_tables())}; or pass a .json path)")
        path = TABLE_DIR / f"{name_or_path}.json"
    if not path.is_file():
        raise CostTableError(f"{path}: cost table file not found")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CostTableError(f"{path}: not valid JSON ({exc})") from None
    return parse_cost_table(data, str(path))


def parse_cost_table(data: Any, where: str) -> CostTable:
    """Strict validation: every error names the file and the field."""
    if not isinstance(data, dict):
        raise CostTableError(f"{where}: expected a JSON object at the top level")
    _check_keys(data, _TABLE_FIELDS, {"notes"}, where)
    for key in ("name", "description"):
        _text(data[key], f"{where}: field {key!r}")
    if not isinstance(data["constants"], dict) or not data["constants"]:
        raise CostTableError(f"{where}: field 'constants' must be a non-empty object")
    constants = tuple(_constant(name, c, f"{where}: constants.{name}") for name, c in data["constants"].items())
    charges = data["charges"]
    if not isinstance(charges, dict) or not charges:
        raise CostTableError(f"{where}: field 'charges' must be a non-empty object")
    names = {c.name for c in constants}
    for kind, name in charges.items():
        if kind not in COUNT_KINDS:
            raise CostTableError(f"{where}: charges.{kind}: unknown count (choose from {', '.join(COUNT_KINDS)})")
        if name not in names:
            raise CostTableError(f"{where}: charges.{kind}: no constant named {name!r}")
    notes = data.get("notes", "")
    return CostTable(data["name"], data["description"], where, constants,
                     tuple((k, v) for k, v in charges.items()), _text(notes, f"{where}: field 'notes'", True))


def _constant(name: str, c: Any, where: str) -> CostConstant:
    if not isinstance(c, dict):
        raise CostTableError(f"{where}: expected an object")
    _check_keys(c, _CONSTANT_FIELDS, {"derivation"}, where)
    value = c["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CostTableError(f"{where}.value: expected a number, got {value!r}")
    if value < 0:
        raise CostTableError(f"{where}.value: energy cannot be negative, got {value}")
    if c["unit"] not in UNITS_IN_PJ:
        raise CostTableError(f"{where}.unit: unknown unit {c['unit']!r} (choose from {', '.join(UNITS_IN_PJ)})")
    year = c["year"]
    if isinstance(year, bool) or not isinstance(year, int) or not 1900 <= year <= 2100:
        raise CostTableError(f"{where}.year: expected a publication year, got {year!r}")
    derivation = c.get("derivation")
    return CostConstant(name, float(value), c["unit"], _text(c["source"], f"{where}.source"), year,
                        _text(c["what"], f"{where}.what"),
                        None if derivation is None else _text(derivation, f"{where}.derivation"))


def _check_keys(d: dict, required: set[str], optional: set[str], where: str) -> None:
    missing = sorted(required - set(d))
    if missing:
        raise CostTableError(f"{where}: missing field(s) {', '.join(map(repr, missing))}")
    unknown = sorted(set(d) - required - optional)
    if unknown:
        raise CostTableError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}")


def _text(value: Any, where: str, empty_ok: bool = False) -> str:
    if not isinstance(value, str) or (not empty_ok and not value.strip()):
        raise CostTableError(f"{where}: expected a non-empty string, got {value!r}")
    return value


@dataclass(frozen=True)
class EnergyTerm:
    """``count`` (per inference) of ``kind`` in ``layer``, charged at ``constant`` of ``table``."""

    layer: str
    kind: str
    count: float
    table: str
    constant: str
    pj_per_op: float

    @property
    def energy_pj(self) -> float:
        """count x constant: this term's share of the estimate."""
        return self.count * self.pj_per_op

    def as_dict(self) -> dict[str, Any]:
        """Every field plus the term's energy in pJ."""
        return {"layer": self.layer, "kind": self.kind, "count": self.count, "table": self.table,
                "constant": self.constant, "pj_per_op": self.pj_per_op, "energy_pj": self.energy_pj}


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
    """A model's energy per inference under one table: its terms, and the counts left uncharged."""

    table: str
    mac_table: str | None
    terms: tuple[EnergyTerm, ...]
    uncharged: tuple[str, ...]  # "<kind>: <count> per inference, not in table <name>"

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
        """Totals, per-layer energies and every term (report.json's ``estimated.tables[].snn / ann``)."""
        return {"table": self.table, "mac_table": self.mac_table, "total_pj": self.total_pj,
                "total_j": self.total_j, "uncharged": list(self.uncharged),
                "layers": [{"name": l.name, "energy_pj": l.energy_pj, "energy_j": l.energy_j} for l in self.layers],
                "terms": [t.as_dict() for t in self.terms]}


def estimate_energy(counts: NetworkCounts, table: CostTable | str | Path,
                    mac_table: CostTable | str | Path | None = "cmos45-fp32") -> EnergyEstimate:
    """Energy per inference: every count of ``counts`` times the constant its table charges."""
    table = table if isinstance(table, CostTable) else load_cost_table(table)
    macs = table if table.charge("mac") is not None else mac_table
    if macs is not None and not isinstance(macs, CostTable):
        macs = load_cost_table(macs)
    if macs is not None and macs.charge("mac") is None:
        raise CostTableError(f"mac table {macs.name} charges no 'mac'")
    items: list[tuple[str, str, float]] = []
    for g in counts.groups:
        items.append((g.name, "ac" if g.op == "AC" else "mac", g.effective))
    for u in counts.updates:
        items.append((u.population, "neuron_update", u.neuron_updates))
    if counts.host is not None:
        items.append(("host_head", "mac", float(counts.host.macs)))
    terms, skipped = [], {}
    for layer, kind, n in items:
        source = macs if kind == "mac" else table
        const = None if source is None else source.charge(kind)
        if const is None:
            skipped[kind] = skipped.get(kind, 0.0) + n
            continue
        terms.append(EnergyTerm(layer, kind, n, source.name, const.name, const.pj))
    uncharged = tuple(f"{k}: {n:g} per inference, not in table {table.name}" for k, n in skipped.items() if n)
    return EnergyEstimate(table.name, None if macs is None or macs is table else macs.name,
                          tuple(terms), uncharged)


def estimate_ann_energy(ann: AnnCounts, table: CostTable, mac_table: CostTable) -> EnergyEstimate:
    """The ANN's MACs (layers + host head) at the MAC constant of ``table``, or of ``mac_table``
    when ``table`` is a spiking chip that charges no MACs: the ANN then runs on the
    conventional processor :func:`estimate_energy` charges the SNN's MACs to.
    ReLUs and biases are not charged (the SNN's biases are not charged either)."""
    source = table if table.charge("mac") is not None else mac_table
    const = source.charge("mac")
    if const is None:
        raise CostTableError(f"cost table {source.name} charges no 'mac'")
    items = [(layer.name, float(layer.macs)) for layer in ann.layers] + [("host_head", float(ann.host.macs))]
    terms = tuple(EnergyTerm(name, "mac", n, source.name, const.name, const.pj) for name, n in items)
    return EnergyEstimate(source.name, None, terms, ())


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
