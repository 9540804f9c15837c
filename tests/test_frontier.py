"""``taaf frontier`` (benchmarks/frontier.py) and the linear late-fusion floor: the Pareto front
on hand-made points, one small end-to-end run, and bad input."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.energy import EnergyEstimate, EnergyTerm
from benchmarks.frontier import FULL_FLOOR, TWIN_FLOOR, Point, PointEnergy, floor_checks, pareto, snn_wins
from taaf.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


def _point(name: str, family: str, accuracy: float, pj: dict[str, float | None], steps: int | None = None) -> Point:
    def est(table: str, v: float | None) -> EnergyEstimate | None:
        return None if v is None else EnergyEstimate(table, "effective", None,
                                                     (EnergyTerm(name, "ac", v, table, "c", 1.0),), ())
    return Point(name, family, steps, accuracy, "by hand",
                 tuple(PointEnergy(t, "effective", est(t, v)) for t, v in pj.items()), 0.0)


def test_pareto_and_wins_by_hand():
    points = [
        _point("SNN T=1", "snn", 0.90, {"a": 10.0, "chip": 5.0}, 1),
        _point("SNN T=4", "snn", 0.95, {"a": 40.0, "chip": 20.0}, 4),
        _point("SNN T=8", "snn", 0.94, {"a": 80.0, "chip": 30.0}, 8),  # dominated by T=4
        _point("ANN", "ann", 0.93, {"a": 20.0, "chip": None}),
        _point("floor", "floor", 0.97, {"a": 60.0, "chip": None}),
    ]
    assert [p.name for p in pareto(points, "a")] == ["SNN T=1", "ANN", "SNN T=4", "floor"]
    assert snn_wins(points, "a") == ("SNN T=1", "SNN T=4")
    assert snn_wins(points, "chip") == ()  # no rival can run there: no win claimed
    assert points[3].energy_pj("chip") is None and points[0].energy_pj("a") == 10.0
    cheaper_floor = points[:4] + [_point("floor", "floor", 0.97, {"a": 5.0, "chip": None})]
    assert snn_wins(cheaper_floor, "a") == ()  # the floor dominates every SNN point
    assert snn_wins(cheaper_floor, "a", ("ann",)) == ("SNN T=1", "SNN T=4")  # against the ANN alone
    tie = [_point("SNN T=2", "snn", 0.9, {"a": 10.0}, 2), _point("ANN", "ann", 0.9, {"a": 10.0})]
    assert len(pareto(tie, "a")) == 2  # equal points do not dominate each other


def test_floor_checks_pair_each_ann_with_the_floor_on_its_input():
    points = [_point("ANN", "ann", 0.93, {"a": 1.0}), _point("temporal ANN", "ann", 0.99, {"a": 2.0}, 16),
              _point(FULL_FLOOR, "floor", 0.98, {"a": 0.1}), _point(TWIN_FLOOR, "floor", 0.95, {"a": 0.1})]
    assert floor_checks(points) == [
        {"ann": "ANN", "accuracy": 0.93, "floor": TWIN_FLOOR, "floor_accuracy": 0.95, "at_least_floor": False},
        {"ann": "temporal ANN", "accuracy": 0.99, "floor": FULL_FLOOR, "floor_accuracy": 0.98, "at_least_floor": True}]
    assert floor_checks(points[:1]) == []  # no floor, no check


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("frontier")
    common = ["--steps", "4", "--epochs", "1", "--quiet"]
    assert main(["train", *common, "--out", str(root / "snn")]) == 0
    assert main(["train", *common, "--model", "ann", "--out", str(root / "ann")]) == 0
    return {"root": root, "snn": root / "snn" / "model.pt", "ann": root / "ann" / "model.pt"}


def test_frontier_end_to_end(pair, capsys, monkeypatch):
    import benchmarks.temporal_ann as temporal

    monkeypatch.setattr(temporal, "EPOCHS", 2)  # the real run trains up to 40 epochs per learning rate
    out = pair["root"] / "out"
    assert main(["frontier", str(pair["snn"]), "--ann", str(pair["ann"]), "--steps", "2", "4", "--epochs", "1",
                 "--spike-rate-weight", "2", "--cost-table", "cmos45-int8", "loihi", "--out", str(out)]) == 0
    r = json.loads((out / "frontier.json").read_text())
    assert [p["name"] for p in r["points"]] == ["SNN T=2", "SNN T=4", "SNN T=2, rate 2", "SNN T=4, rate 2",
                                                 "ANN (taaf-fused fusion)", "temporal ANN (concat, T=4)", FULL_FLOOR,
                                                 TWIN_FLOOR]
    snn2, snn4, _, reg4, ann, fair, floor, twin_floor = r["points"]
    assert "spike-rate weight 2" in reg4["trained"]  # retrained although the checkpoint is at T = 4
    assert reg4["ops"] < snn4["ops"]  # the regulariser's point: fewer spikes, fewer synaptic events
    assert [(c["ann"], c["floor"]) for c in r["ann_floor_checks"]] == [
        ("ANN (taaf-fused fusion)", TWIN_FLOOR), ("temporal ANN (concat, T=4)", FULL_FLOOR)]
    assert r["ann_floor_checks"][1]["at_least_floor"] == (fair["accuracy"] >= floor["accuracy"])
    assert twin_floor["ops"] < floor["ops"]  # the averaged audio probe has T times fewer inputs
    assert fair["family"] == "ann" and "chosen on val" in fair["trained"] and fair["energy"]["loihi"]["dense"] is None
    assert snn4["trained"] == "the given checkpoint" and snn2["trained"].startswith("retrained at T = 2")
    for p in r["points"]:
        assert 0.0 <= p["accuracy"] <= 1.0
        assert p["energy"]["cmos45-int8"]["effective"]["total_pj"] > 0
    assert ann["energy"]["loihi"]["effective"] is None and floor["energy"]["loihi"]["dense"] is None
    assert snn2["energy"]["loihi"]["effective"]["mixed"] is True
    assert snn2["energy"]["cmos45-int8"]["effective"]["total_pj"] < snn4["energy"]["cmos45-int8"]["effective"]["total_pj"]
    assert floor["accuracy"] > 0.8  # a linear model on the raw inputs is a real floor on AV-Digits
    assert r["pareto"]["loihi"] is None and r["snn_wins_at"]["loihi"] == []
    assert (out / "frontier.png").read_bytes()[:8] == PNG
    md = (out / "frontier.md").read_text()
    assert "taaf frontier" in md and "Where the SNN wins" in md and "against the linear floor" in md
    assert "Pareto front" in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [
    (["--steps", "0"], "--steps"),
    (["--steps", "65"], "--steps"),
    (["--epochs", "0"], "--epochs"),
    (["--cost-table", "loihi3"], "unknown cost table 'loihi3'"),
    (["--memory", "dram"], "--memory"),
])
def test_bad_input_is_one_line_and_exit_2(pair, tmp_path, capsys, extra, message):
    out = tmp_path / "never"
    assert main(["frontier", str(pair["snn"]), *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("taaf frontier: error:") and message in err, err
    assert not out.exists()


def test_ann_as_model_is_refused(pair, tmp_path, capsys):
    assert main(["frontier", str(pair["ann"]), "--out", str(tmp_path / "x")]) == 2
    assert "checkpoint mismatch" in capsys.readouterr().err


def test_stream_data_is_refused_before_any_work(monkeypatch, pair, tmp_path, capsys):
    class Split:
        is_stream = True

    class Data:
        test = Split()

    monkeypatch.setattr("taaf.data.load_dataset", lambda spec: Data())
    assert main(["frontier", str(pair["snn"]), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "per-step stream" in err and err.count("\n") == 1
