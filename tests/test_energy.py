"""Energy estimates (:mod:`benchmarks.energy`): hand arithmetic, cost-table validation, user files."""
from __future__ import annotations

import json

import pytest
import torch

from benchmarks.energy import (CostTableError, available_cost_tables, estimate_energy, load_cost_table,
                               parse_cost_table)
from benchmarks.metrics import FiringCounts, GroupCounts, MemoryFootprint, NetworkCounts, UpdateCounts
from benchmarks.metrics.harness import HostCounts
from taaf.errors import TaafError


def _group(name: str, op: str, per_sample: int, samples: int = 2) -> GroupCounts:
    return GroupCounts(name, "src", "dst", op, 0, samples, per_sample * samples, 10 * per_sample * samples, 1, 1, 0)


@pytest.fixture
def counts() -> NetworkCounts:
    """Per inference: 10 ACs + 30 ACs, 4 chip MACs, 6 neuron updates, 2 host MACs."""
    return NetworkCounts(
        samples=2, steps=3,
        groups=(_group("in", "MAC", 4), _group("hidden", "AC", 10), _group("readout", "AC", 30)),
        firing=(FiringCounts("lif", 2, 2, (1, 0, 1)),),
        updates=(UpdateCounts("lif", 2, 12, 10),),
        memory=MemoryFootprint(1, 0, 2, 0),
        host=HostCounts(macs=2, exps=0),
    )


def test_shipped_tables_and_their_constants():
    assert set(available_cost_tables()) == {"cmos45-fp32", "cmos45-int8", "loihi", "truenorth"}
    fp32, int8 = load_cost_table("cmos45-fp32"), load_cost_table("cmos45-int8")
    loihi, tn = load_cost_table("loihi"), load_cost_table("truenorth")
    assert (fp32.charge("mac").pj, fp32.charge("ac").pj) == (4.6, 0.9)
    assert fp32.constant("fp32_mult").pj + fp32.constant("fp32_add").pj == pytest.approx(fp32.charge("mac").pj)
    assert (int8.charge("mac").pj, int8.charge("ac").pj) == (0.23, 0.03)
    # Davies et al. 2018 Table 2: active 81 pJ (state changes), inactive 52 pJ
    assert (loihi.charge("ac").pj, loihi.charge("neuron_update").pj, loihi.charge("neuron_update_inactive").pj) == (
        23.6, 81.0, 52.0)
    assert "Loihi 1" in loihi.description and "NOT Loihi 2" in loihi.description and "Loihi 2" in loihi.notes
    assert loihi.charge("mac") is None and tn.charge("neuron_update") is None
    assert tn.charge("ac").pj == 26.0
    # Horowitz 2014 Fig. 1.1.9, 64-bit reads: 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ, DRAM 1.3 nJ
    for t in (fp32, int8):
        assert [t.constant(lv.constant).pj for lv in t.memory.levels] == [10.0, 20.0, 100.0, 1300.0]
        assert [lv.max_bytes for lv in t.memory.levels] == [8192, 32768, 1048576, None]
    assert (fp32.memory.weight_bits, int8.memory.weight_bits) == (32, 8)
    assert loihi.memory is None and tn.memory is None  # all-in per-event figures
    for t in (fp32, int8, loihi, tn):
        assert t.technology
        for c in t.constants:
            assert c.source and c.what and 2000 <= c.year <= 2030
        json.dumps(t.as_dict())


def test_energy_arithmetic_by_hand(counts):
    """Compute only (memory=False); 5 of the 6 neuron updates change the membrane (active)."""
    fp32 = estimate_energy(counts, "cmos45-fp32", memory=False)
    assert fp32.total_pj == pytest.approx(40 * 0.9 + (4 + 2) * 4.6 + 5 * 4.6)  # the unchanged one is skipped
    assert fp32.mac_table is None and fp32.uncharged == () and not fp32.mixed and fp32.memory_pj == 0
    int8 = estimate_energy(counts, "cmos45-int8", memory=False)
    assert int8.total_pj == pytest.approx(40 * 0.03 + 6 * 0.23 + 5 * 0.23)
    loihi = estimate_energy(counts, "loihi", memory=False)  # MACs on the conventional side, at fp32
    assert loihi.total_pj == pytest.approx(40 * 23.6 + 5 * 81 + 1 * 52 + (4 + 2) * 4.6)
    assert loihi.total_j == pytest.approx(loihi.total_pj * 1e-12)
    assert loihi.mac_table == "cmos45-fp32" and loihi.mixed
    assert {l.name: l.energy_pj for l in loihi.layers} == pytest.approx(
        {"in": 4 * 4.6, "hidden": 10 * 23.6, "readout": 30 * 23.6, "lif": 5 * 81 + 52, "host_head": 2 * 4.6})
    assert loihi.by_kind("neuron_update") == pytest.approx(405)
    assert loihi.by_kind("neuron_update_inactive") == pytest.approx(52)
    tn = estimate_energy(counts, "truenorth", mac_table="cmos45-int8", memory=False)
    assert tn.total_pj == pytest.approx(40 * 26 + 6 * 0.23)
    assert tn.uncharged == ("neuron_update: 6 per inference, not in table truenorth",)
    no_macs = estimate_energy(counts, "loihi", mac_table=None, memory=False)
    assert no_macs.total_pj == pytest.approx(40 * 23.6 + 5 * 81 + 52)
    assert no_macs.uncharged == ("mac: 6 per inference, not in table loihi",)
    term = next(t for t in loihi.terms if t.layer == "hidden")
    assert (term.kind, term.count, term.table, term.constant, term.pj_per_op) == ("ac", 10, "loihi", "synaptic_op", 23.6)


def _table(**override) -> dict:
    data = {"name": "mine", "description": "a test chip",
            "charges": {"ac": "sop", "neuron_update": "nu"},
            "constants": {"sop": {"value": 2.0, "unit": "pJ", "source": "me", "year": 2024, "what": "a synaptic op"},
                          "nu": {"value": 500, "unit": "fJ", "source": "me", "year": 2024, "what": "a neuron update"}}}
    data.update(override)
    return data


def test_user_table_file(tmp_path, counts):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(_table()))
    table = load_cost_table(path)
    assert table.name == "mine" and table.path == str(path)
    assert table.charge("neuron_update").pj == 0.5  # fJ converted
    est = estimate_energy(counts, str(path), memory=False)
    assert est.total_pj == pytest.approx(40 * 2 + 5 * 0.5 + 6 * 4.6)  # 5 active updates, the other skipped


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d["constants"]["sop"].pop("source"), "constants.sop: missing field(s) 'source'"),
    (lambda d: d.pop("charges"), "missing field(s) 'charges'"),
    (lambda d: d["constants"]["sop"].update(value=-1.0), "constants.sop.value: energy cannot be negative"),
    (lambda d: d["constants"]["sop"].update(value="2 pJ"), "constants.sop.value: expected a number"),
    (lambda d: d["constants"]["nu"].update(unit="kWh"), "constants.nu.unit: unknown unit 'kWh'"),
    (lambda d: d["constants"]["nu"].update(year="2018"), "constants.nu.year"),
    (lambda d: d["constants"]["nu"].update(what=""), "constants.nu.what"),
    (lambda d: d["constants"]["nu"].update(colour="red"), "constants.nu: unknown field(s) 'colour'"),
    (lambda d: d["charges"].update(spike="sop"), "charges.spike: unknown count"),
    (lambda d: d["charges"].update(mac="missing"), "charges.mac: no constant named 'missing'"),
    (lambda d: d.update(constants={}), "'constants' must be a non-empty object"),
    (lambda d: d["charges"].update(neuron_update_inactive="nu") or d["charges"].pop("neuron_update"),
     "neuron_update_inactive needs charges.neuron_update"),
    (lambda d: d.update(memory={"word_bits": 64, "weight_bits": 32, "state_bits": 32, "levels": []}),
     "memory.levels: expected a non-empty list"),
    (lambda d: d.update(memory={"word_bits": 64, "weight_bits": 0, "state_bits": 32, "levels": []}),
     "memory.weight_bits: expected a positive number of bits"),
    (lambda d: d.update(memory={"word_bits": 64, "weight_bits": 32, "state_bits": 32,
                                "levels": [{"max_bytes": 10, "constant": "sop"}, {"max_bytes": 5, "constant": "sop"}]}),
     "memory.levels[1].max_bytes: expected sizes growing"),
    (lambda d: d.update(memory={"word_bits": 64, "weight_bits": 32, "state_bits": 32,
                                "levels": [{"max_bytes": None, "constant": "nope"}]}),
     "memory.levels[0].constant: no constant named 'nope'"),
])
def test_table_validation_names_file_and_field(tmp_path, mutate, message):
    data = _table()
    mutate(data)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data))
    with pytest.raises(TaafError) as err:
        load_cost_table(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_table_file_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CostTableError, match="not valid JSON"):
        load_cost_table(bad)
    with pytest.raises(CostTableError, match="file not found"):
        load_cost_table(tmp_path / "absent.json")
    with pytest.raises(CostTableError, match="unknown cost table 'spinnaker2'.*loihi"):
        load_cost_table("spinnaker2")
    with pytest.raises(CostTableError, match="top level"):
        parse_cost_table([1, 2], "x.json")
    with pytest.raises(CostTableError, match="charges no 'mac'"):
        estimate_energy(_counts_stub(), "loihi", mac_table="truenorth")


def _counts_stub() -> NetworkCounts:
    return NetworkCounts(1, 1, (), (), (), MemoryFootprint(0, 0, 0, 0))


def test_estimate_on_real_counts_covers_every_layer():
    from benchmarks.metrics import count_torch
    from taaf.config import AudioEncoderConfig, ModelConfig, VisualEncoderConfig
    from taaf.model.network import AVSpikingNet

    cfg = ModelConfig(n_classes=10, n_steps=4, audio=AudioEncoderConfig(13, hidden=(16,)),
                      visual=VisualEncoderConfig((1, 8, 8), channels=(4,), strides=(2,), hidden=16), fused_hidden=16)
    torch.manual_seed(0)
    net = AVSpikingNet(cfg).eval()
    counts = count_torch(net, torch.randn(3, 4, 13), torch.rand(3, 1, 8, 8))
    est = estimate_energy(counts, "loihi", memory=False)
    names = [l.name for l in est.layers]
    assert names == [g.name for g in counts.groups] + [u.population for u in counts.updates] + ["host_head"]
    assert sum(l.energy_pj for l in est.layers) == pytest.approx(est.total_pj)
    expected = (counts.effective_acs * 23.6 + counts.membrane_updates * 81
                + (counts.neuron_updates - counts.membrane_updates) * 52
                + (counts.effective_macs + counts.host_macs) * 4.6)
    assert est.total_pj == pytest.approx(expected)
    json.dumps(est.as_dict())
    json.dumps(counts.as_dict())
