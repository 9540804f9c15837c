"""Cost tables: cited energy constants per operation, and which count each is charged to.

A cost table (``benchmarks/cost_tables/<name>.json``, or any file of the same form) lists
constants, each with value, unit, source, year and what exactly it is, and says which count
each constant is *charged* to (``charges``). The counts a table can charge:

    ac                      effective (or dense) ACs: synapse groups fed by spikes
    mac                     MACs: groups fed by analog values, the host head, every ANN layer
    neuron_update           neuron updates whose state changes ("active"); with no
                            ``neuron_update_inactive`` charge, unchanged ones are skipped
                            (zero skipping: a membrane at 0 that stays 0 needs no arithmetic)
    neuron_update_inactive  neuron updates that leave the state unchanged, on a chip that still
                            services them (Loihi: Davies et al. 2018 Table 2, inactive 52 pJ)

An optional ``memory`` section prices memory accesses (:class:`MemoryModel`): each synaptic op
or MAC fetches one weight, each charged neuron update reads and writes its state, at the read
energy of the smallest listed memory that holds the model's weights (or states). Tables whose
constants are all-in per-event figures (Loihi, TrueNorth: the chip's own SRAM reads are inside
them) have no memory section. ``technology`` names the node and the kind of figure, so two
estimates are only compared when they come from the same technology (:mod:`benchmarks.energy`).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taaf.errors import TaafError

TABLE_DIR = Path(__file__).resolve().parent / "cost_tables"  # the shipped tables, found by name
COUNT_KINDS = ("ac", "mac", "neuron_update", "neuron_update_inactive")  # the counts a table can charge
UNITS_IN_PJ = {"fJ": 1e-3, "pJ": 1.0, "nJ": 1e3}  # the energy units a constant may be given in
_CONSTANT_FIELDS = {"value", "unit", "source", "year", "what"}
_TABLE_FIELDS = {"name", "description", "constants", "charges"}
_MEMORY_FIELDS = {"word_bits", "weight_bits", "state_bits", "levels"}


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
class MemoryLevel:
    """A memory of at most ``max_bytes`` (None: unbounded, e.g. DRAM) read at ``constant`` per word."""

    max_bytes: int | None
    constant: str


@dataclass(frozen=True)
class MemoryModel:
    """How a table prices memory accesses: one ``word_bits`` read costs the constant of the
    smallest level holding the array; a ``weight_bits`` weight is a ``weight_bits / word_bits``
    share of a word (weights packed, read in full words), a state read or write likewise.
    Writes are charged at the read energy (the cited tables give reads only)."""

    word_bits: int
    weight_bits: int
    state_bits: int
    levels: tuple[MemoryLevel, ...]

    def level(self, nbytes: float) -> MemoryLevel:
        """The smallest level that holds ``nbytes`` (the array the accesses go to)."""
        for lv in self.levels:
            if lv.max_bytes is None or nbytes <= lv.max_bytes:
                return lv
        raise CostTableError(f"no memory level holds {nbytes:,.0f} bytes (add one with max_bytes null)")

    def as_dict(self) -> dict[str, Any]:
        """The ``memory`` section as JSON."""
        return {"word_bits": self.word_bits, "weight_bits": self.weight_bits, "state_bits": self.state_bits,
                "levels": [{"max_bytes": lv.max_bytes, "constant": lv.constant} for lv in self.levels]}


@dataclass(frozen=True)
class CostTable:
    """One platform's constants and which count each is charged to (a parsed cost-table file)."""

    name: str
    description: str
    path: str
    constants: tuple[CostConstant, ...]
    charges: tuple[tuple[str, str], ...]  # (count kind, constant name)
    notes: str = ""
    technology: str = ""  # node and kind of figure: only estimates of one technology are compared
    memory: MemoryModel | None = None

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

    @property
    def runs_macs(self) -> bool:
        """Whether the platform multiplies analog values (so it can run an ANN at all)."""
        return self.charge("mac") is not None

    def as_dict(self) -> dict[str, Any]:
        """The table as JSON, with each constant's value in pJ."""
        return {"name": self.name, "description": self.description, "path": self.path, "notes": self.notes,
                "technology": self.technology, "charges": dict(self.charges),
                "memory": None if self.memory is None else self.memory.as_dict(),
                "constants": [c.as_dict() for c in self.constants]}


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
    _check_keys(data, _TABLE_FIELDS, {"notes", "technology", "memory"}, where)
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
    if "neuron_update_inactive" in charges and "neuron_update" not in charges:
        raise CostTableError(f"{where}: charges.neuron_update_inactive needs charges.neuron_update (the active one)")
    memory = None if data.get("memory") is None else _memory(data["memory"], names, f"{where}: memory")
    return CostTable(data["name"], data["description"], where, constants,
                     tuple((k, v) for k, v in charges.items()),
                     _text(data.get("notes", ""), f"{where}: field 'notes'", True),
                     _text(data.get("technology", ""), f"{where}: field 'technology'", True), memory)


def _memory(m: Any, names: set[str], where: str) -> MemoryModel:
    if not isinstance(m, dict):
        raise CostTableError(f"{where}: expected an object")
    _check_keys(m, _MEMORY_FIELDS, set(), where)
    bits = {}
    for key in ("word_bits", "weight_bits", "state_bits"):
        v = m[key]
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 4096:
            raise CostTableError(f"{where}.{key}: expected a positive number of bits, got {v!r}")
        bits[key] = v
    levels = m["levels"]
    if not isinstance(levels, list) or not levels:
        raise CostTableError(f"{where}.levels: expected a non-empty list")
    parsed, last = [], 0
    for i, lv in enumerate(levels):
        w = f"{where}.levels[{i}]"
        if not isinstance(lv, dict):
            raise CostTableError(f"{w}: expected an object")
        _check_keys(lv, {"max_bytes", "constant"}, set(), w)
        size = lv["max_bytes"]
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= last):
            raise CostTableError(f"{w}.max_bytes: expected sizes growing from level to level, got {size!r}")
        if parsed and parsed[-1].max_bytes is None:
            raise CostTableError(f"{w}: a level after the unbounded one (max_bytes null) is never used")
        if lv["constant"] not in names:
            raise CostTableError(f"{w}.constant: no constant named {lv['constant']!r}")
        parsed.append(MemoryLevel(size, lv["constant"]))
        last = size or last
    return MemoryModel(bits["word_bits"], bits["weight_bits"], bits["state_bits"], tuple(parsed))


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
