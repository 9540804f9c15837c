"""Proof of agreement: the PyTorch model and the reference simulator on the exported graph,
and the `taaf simulate` command in both modes."""
from __future__ import annotations

import json
import subprocess
import sys

import nir
import numpy as np
import pytest
import torch

from export.nir_export import model_to_nir
from hardware.agreement import measure_agreement
from hardware.backends import exported_twin, run_reference, run_torch
from taaf.checkpoint import load_checkpoint
from taaf.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A real (briefly) trained TAAF model with a learned time-warp."""
    out = tmp_path_factory.mktemp("sim")
    assert main(["train", "--steps", "6", "--epochs", "2", "--seed", "1", "--out", str(out), "--quiet"]) == 0
    return out / "model.pt"


def test_reference_reproduces_every_spike_of_the_exported_model(trained):
    from taaf.data import load_dataset

    ckpt = load_checkpoint(trained)
    split = load_dataset(ckpt.data_spec).test.subset(slice(0, 120))
    model = ckpt.model
    graph = model_to_nir(model)
    expected = run_torch(exported_twin(model, graph), split.audio, split.image, torch.float64)
    got = run_reference(model, split.audio, split.image)
    assert set(got.spikes) == set(expected.spikes) and len(got.spikes) == 6
    for layer, spikes in got.spikes.items():
        np.testing.assert_array_equal(spikes, expected.spikes[layer], err_msg=layer)
        assert 0.0 < spikes.mean() < 1.0, layer  # a silent or saturated layer would prove nothing
    for key, value in got.readouts.items():
        np.testing.assert_allclose(value, expected.readouts[key], atol=1e-6, err_msg=key)


def test_target_plus_host_reproduce_the_pytorch_predictions(trained):
    from taaf.data import load_dataset

    ckpt = load_checkpoint(trained)
    split = load_dataset(ckpt.data_spec).test
    report = measure_agreement(ckpt, split, "reference", batch_size=200, progress=False)
    assert report.samples == 600
    assert report.spikes_identical
    assert report.prediction_agreement == 1.0
    assert report.max_readout_difference < 1e-6
    assert report.accuracy["fused"] > 0.2


def test_simulate_checkpoint_json(trained):
    result = subprocess.run([sys.executable, "-m", "taaf.cli", "simulate", str(trained), "--backend", "reference",
                             "--limit", "50", "--json"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["samples"] == 50 and report["spikes_identical"] is True


def test_simulate_any_nir_graph_from_npz(tmp_path):
    graph = nir.NIRGraph(
        nodes={"x": nir.Input(input_type={"input": np.array([2])}),
               "w": nir.Affine(weight=np.array([[1.0, 0.5]], np.float32), bias=np.zeros(1, np.float32)),
               "lif": nir.LIF(tau=np.full(1, 2e-4, np.float32), r=np.full(1, 2.0, np.float32),
                              v_leak=np.zeros(1, np.float32), v_threshold=np.full(1, 0.9, np.float32),
                              v_reset=np.zeros(1, np.float32)),
               "y": nir.Output(output_type={"output": np.array([1])})},
        edges=[("x", "w"), ("w", "lif"), ("lif", "y")],
    )
    nir.write(tmp_path / "g.nir", graph)
    x = np.ones((5, 3, 2))
    np.savez(tmp_path / "in.npz", x=x)
    assert main(["simulate", str(tmp_path / "g.nir"), "--input", str(tmp_path / "in.npz"),
                 "-o", str(tmp_path / "out.npz"), "--record", "--dt", "1e-4"]) == 0
    out = np.load(tmp_path / "out.npz")
    # decay 0.5, gain r*dt/tau = 1, current 1.5: v = 1.5 > 0.9 spikes every step
    np.testing.assert_array_equal(out["output__y"][:, :, 0], np.ones((5, 3)))
    assert "state__lif__v" in out.files


def test_simulate_errors_are_one_line(tmp_path, capsys):
    assert main(["simulate", str(tmp_path / "missing.nir"), "--input", "x.npz", "-o", "y.npz"]) == 2
    assert main(["simulate", str(tmp_path / "missing.pt")]) == 2
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"not hdf5")
    np.savez(tmp_path / "in.npz", x=np.zeros((2, 1)))
    assert main(["simulate", str(bad), "--input", str(tmp_path / "in.npz"), "-o", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("taaf simulate: error:") for line in err)
    assert not (tmp_path / "o.npz").exists()
