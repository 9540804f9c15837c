"""``taaf bench`` (benchmarks/bench_cli.py, benchmarks/report.py): files, schema, numbers, bad input.

One tiny SNN / ANN pair (T = 4, one epoch) is trained per module; every test reads its report.
"""
from __future__ import annotations

import copy
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.ann_baseline import EnergyResult
from benchmarks.energy import estimate_energy, load_cost_table
from benchmarks.metrics import count_torch
from benchmarks.report import PLOTS, SCHEMA, ReportSchemaError, validate_report
from taaf.checkpoint import load_checkpoint, save_checkpoint
from taaf.cli import main
from taaf.data import load_dataset
from taaf.paths import MARKER

LIMIT = 50
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bench")
    common = ["--steps", "4", "--epochs", "1", "--quiet"]
    assert main(["train", *common, "--out", str(root / "snn")]) == 0
    assert main(["train", *common, "--model", "ann", "--out", str(root / "ann")]) == 0
    return {"root": root, "snn": root / "snn" / "model.pt", "ann": root / "ann" / "model.pt"}


@pytest.fixture(scope="module")
def bench(pair) -> dict:
    out = pair["root"] / "report"
    assert main(["bench", str(pair["snn"]), "--ann", str(pair["ann"]), "--limit", str(LIMIT), "--out", str(out)]) == 0
    return {"out": out, "report": json.loads((out / "report.json").read_text())}


def test_writes_every_file(bench):
    out = bench["out"]
    for name in ("report.json", "report.md", *PLOTS):
        assert (out / name).is_file(), name
    for name in PLOTS:
        assert (out / name).read_bytes()[:8] == PNG, name
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [MARKER]  # no temp files left
    md = (out / "report.md").read_text()
    assert md.index("| quantity") < md.index("\n## ")  # the headline table comes first
    assert "NeuroBench" in md and "Davies et al." in md and "Horowitz" in md and "Merolla" in md


def test_report_follows_the_schema(bench, pair):
    r = bench["report"]
    validate_report(r)
    assert r["schema"] == SCHEMA
    assert r["data"]["samples"] == LIMIT and r["data"]["split"] == "test"
    assert r["counted"]["snn"]["source"] == "torch"
    from taaf.data.cache import sha256_file

    assert r["models"]["snn"]["sha256"] == sha256_file(pair["snn"])
    assert r["models"]["ann"]["sha256"] == sha256_file(pair["ann"])
    for key in ("snn", "ann"):
        assert set(r["accuracy"][key]) >= {"fused", "audio", "visual"}


def _broken(report: dict, edit) -> dict:
    bad = copy.deepcopy(report)
    edit(bad)
    return bad


@pytest.mark.parametrize("edit, message", [
    (lambda r: r.pop("measured"), "missing key 'measured'"),
    (lambda r: r.update(schema="taaf-bench/0"), "report.schema"),
    (lambda r: r["counted"]["snn"]["totals"].update(synops="many"), "report.counted.snn.totals.synops"),
    (lambda r: r["counted"]["snn"].update(source="lava"), "report.counted.snn.source"),
    (lambda r: r["estimated"]["tables"][0]["comparisons"][0]["snn"].update(total_pj=True), "total_pj: expected number"),
    (lambda r: r["estimated"]["tables"][0].update(joules_per_inference=1e-6), "measured quantities"),
    (lambda r: r["estimated"]["tables"][2]["comparisons"][0].update(snn_over_ann_total=2.0), "not like for like"),
    (lambda r: r["measured"].update(total_pj=1.0), "estimated quantities"),
    (lambda r: r["measured"]["ann"]["gpu_energy"][0].update(reason=""), "needs a reason"),
    (lambda r: r["measured"]["ann"]["gpu_energy"][0].update(status="estimated"), "status"),
])
def test_validate_report_rejects_broken_reports(bench, edit, message):
    with pytest.raises(ReportSchemaError, match=re.escape(message)):
        validate_report(_broken(bench["report"], edit))
    with pytest.raises(ReportSchemaError):
        validate_report([])


def test_energy_equals_estimate_energy_on_the_same_counts(bench, pair):
    r = bench["report"]
    ckpt = load_checkpoint(pair["snn"])
    split = load_dataset(ckpt.data_spec).test.subset(slice(0, LIMIT))
    counts = count_torch(ckpt.model, split.audio, split.image)
    assert r["counted"]["snn"]["totals"]["synops"] == pytest.approx(counts.synops, rel=1e-12)
    assert r["counted"]["snn"]["totals"]["neuron_updates"] == counts.neuron_updates
    ann = r["counted"]["ann"]
    assert ann["padded_macs"] == ann["flop_counter_macs"]
    assert ann["effective_macs"] <= ann["dense_macs"] <= ann["padded_macs"]
    assert r["estimated"]["charged_once"] == ["visual_conv0"] and r["estimated"]["memory_priced"] is True
    assert {t["table"] for t in r["estimated"]["tables"]} == {"cmos45-fp32", "cmos45-int8", "loihi", "truenorth"}
    for t in r["estimated"]["tables"]:
        assert [c["counting"] for c in t["comparisons"]] == ["effective", "dense"]
        for c in t["comparisons"]:
            expected = estimate_energy(counts, t["table"], counting=c["counting"], static_once=True)
            assert c["snn"]["total_pj"] == pytest.approx(expected.total_pj, rel=1e-12)
            assert c["snn"]["memory_pj"] == pytest.approx(expected.memory_pj, rel=1e-12)
            assert {l["name"]: l["energy_pj"] for l in c["snn"]["layers"]} == pytest.approx(
                {l.name: l.energy_pj for l in expected.layers}, rel=1e-12)
            if load_cost_table(t["table"]).charge("mac") is None:  # a spiking chip: no ANN, no ratio
                assert c["ann"] is None and c["snn_over_ann_total"] is None and not c["like_for_like"]
                continue
            macs = ann["effective_macs" if c["counting"] == "effective" else "dense_macs"] + ann["host_macs"]
            assert c["ann"]["compute_pj"] == pytest.approx(macs * load_cost_table(t["table"]).charge("mac").pj)
            assert c["like_for_like"] and "like for like" in c["ratio_note"]
            assert c["snn_over_ann_total"] == pytest.approx(c["snn"]["total_pj"] / c["ann"]["total_pj"])


def test_memory_none_leaves_memory_out(pair, tmp_path):
    out = tmp_path / "nomem"
    assert main(["bench", str(pair["snn"]), "--limit", "10", "--cost-table", "cmos45-fp32", "--memory", "none",
                 "--out", str(out)]) == 0
    r = json.loads((out / "report.json").read_text())
    assert r["estimated"]["memory_priced"] is False
    for c in r["estimated"]["tables"][0]["comparisons"]:
        assert c["snn"]["memory_pj"] == 0 and c["snn"]["total_pj"] == c["snn"]["compute_pj"] > 0


def test_estimated_and_measured_are_separate(bench):
    r = bench["report"]
    estimated, measured = json.dumps(r["estimated"]), json.dumps(r["measured"])
    assert "joules_per_inference" not in estimated and "median_ms" not in estimated
    assert "total_pj" not in measured and "energy_pj" not in measured
    onnx = r["measured"]["ann"]["onnx_cpu"]
    assert onnx["latency"]["batch"] == 1 and onnx["throughput"]["batch"] == 256
    assert onnx["latency"]["median_ms"] > 0 and onnx["throughput"]["samples_per_second"] > 0
    assert r["measured"]["snn"]["status"] == "not measured" and r["measured"]["snn"]["reason"]


def test_gpu_energy_not_measured_here_with_a_reason(bench):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    gpu = bench["report"]["measured"]["ann"]["gpu_energy"]
    assert [e["batch"] for e in gpu] == [1, 256]
    for e in gpu:
        assert e["status"] == "not measured" and e["reason"] and e["joules_per_inference"] is None
    assert "not measured" in (bench["out"] / "report.md").read_text().split("\n## ")[0]  # in the headline


def test_measured_gpu_energy_gets_its_own_section(pair, tmp_path, monkeypatch, capsys):
    """With a (faked) NVML measurement: status 'measured', joules in 'measured' only."""
    import benchmarks.ann_baseline as ab

    def fake(model, batch, **_):
        return EnergyResult(batch=batch, measured=True, joules_per_inference=2e-4 / batch,
                            gross_joules_per_inference=3e-4 / batch, idle_watts=60.0, active_watts=90.0,
                            seconds=2.0, inferences=1000, device="Fake GPU")

    monkeypatch.setattr(ab, "measure_gpu_energy", fake)
    out = tmp_path / "gpu"
    assert main(["bench", str(pair["snn"]), "--ann", str(pair["ann"]), "--limit", "20", "--cost-table", "loihi",
                 "--runs", "5", "--out", str(out)]) == 0
    r = json.loads((out / "report.json").read_text())
    validate_report(r)
    gpu = r["measured"]["ann"]["gpu_energy"]
    assert [e["status"] for e in gpu] == ["measured", "measured"]
    assert gpu[0]["joules_per_inference"] == pytest.approx(2e-4)
    assert "200 µJ" in capsys.readouterr().out
    assert (out / "energy.png").read_bytes()[:8] == PNG


def test_reference_backend_counts_batches_exactly(pair, tmp_path):
    """--backend reference: counted from the simulator's spikes, merged over batches; the report
    says which. For a checkpoint this small the spikes, and so the counts, match the torch ones."""
    out = tmp_path / "ref"
    assert main(["bench", str(pair["snn"]), "--backend", "reference", "--limit", "30", "--batch-size", "12",
                 "--cost-table", "loihi", "--out", str(out)]) == 0
    r = json.loads((out / "report.json").read_text())
    validate_report(r)
    assert r["counted"]["snn"]["source"] == "reference" and r["counted"]["snn"]["samples"] == 30
    assert r["models"]["ann"] is None and r["measured"]["ann"] is None
    assert "reference" in (out / "report.md").read_text().split("\n## ")[0]
    ckpt = load_checkpoint(pair["snn"])
    split = load_dataset(ckpt.data_spec).test.subset(slice(0, 30))
    torch_totals = count_torch(ckpt.model, split.audio, split.image).as_dict()
    assert r["counted"]["snn"]["totals"]["synops"] == pytest.approx(
        torch_totals["effective_acs"] + torch_totals["effective_macs"], rel=1e-3)


def test_merge_counts_equals_one_batch(pair):
    from benchmarks.bench_cli import count_split

    ckpt = load_checkpoint(pair["snn"])
    split = load_dataset(ckpt.data_spec).test.subset(slice(0, 25))
    merged = count_split(ckpt.model, split, "torch", batch_size=7)
    assert merged.as_dict() == count_torch(ckpt.model, split.audio, split.image).as_dict()


# --------------------------------------------------------------------------- bad input

@pytest.fixture(scope="module")
def bad_files(pair) -> dict[str, Path]:
    root = pair["root"] / "bad"
    root.mkdir()
    corrupt = root / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint at all")
    malformed = root / "table.json"
    malformed.write_text(json.dumps({"name": "mine", "description": "no constants"}))
    ann = load_checkpoint(pair["ann"])
    other = root / "ann_other_data.pt"
    save_checkpoint(other, ann.model, ann.train_config, replace(ann.data_spec, seed=1))
    return {"corrupt": corrupt, "malformed": malformed, "other": other}


@pytest.mark.parametrize("case, message", [
    ("unknown_table", "unknown cost table 'loihi3'"),
    ("malformed_table", "missing field(s)"),
    ("corrupt_model", "not a readable checkpoint"),
    ("corrupt_ann", "not a readable checkpoint"),
    ("ann_as_model", "checkpoint mismatch"),
    ("snn_as_ann", "checkpoint mismatch"),
    ("other_data", "data_spec.seed: SNN 0, ANN 1"),
    ("negative_limit", "--limit"),
    ("bad_memory", "--memory"),
])
def test_bad_input_is_one_line_and_exit_2(pair, bad_files, tmp_path, capsys, case, message):
    snn, ann = str(pair["snn"]), str(pair["ann"])
    args = {
        "unknown_table": [snn, "--cost-table", "loihi3"],
        "malformed_table": [snn, "--cost-table", str(bad_files["malformed"])],
        "corrupt_model": [str(bad_files["corrupt"])],
        "corrupt_ann": [snn, "--ann", str(bad_files["corrupt"])],
        "ann_as_model": [ann],
        "snn_as_ann": [snn, "--ann", snn],
        "other_data": [snn, "--ann", str(bad_files["other"])],
        "negative_limit": [snn, "--limit", "-1"],
        "bad_memory": [snn, "--memory", "dram"],
    }[case]
    out = tmp_path / "never"
    assert main(["bench", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith("taaf bench: error:") and message in err, err
    assert not out.exists()  # nothing written (nothing even created) on bad input
