"""The taaf command end to end (tiny runs) and the bad-input contract: one line, exit 2."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from taaf.checkpoint import load_checkpoint, save_checkpoint
from taaf.cli import main
from taaf.config import TrainConfig
from taaf.data import DataSpec
from taaf.errors import CheckpointError
from taaf.model.network import AVSpikingNet


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "--steps", "4", "--epochs", "2", "--seed", "3", "--out", str(out), "--quiet"]) == 0
    return out


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "taaf.cli", *args], capture_output=True, text=True, timeout=300)


def test_train_writes_checkpoint_metrics_and_plots(trained):
    for name in ("model.pt", "metrics.json", "training_curves.png", "attention.png"):
        assert (trained / name).is_file(), name
    metrics = json.loads((trained / "metrics.json").read_text())
    assert len(metrics["epochs"]) == 2
    epoch = metrics["epochs"][0]
    assert set(epoch["val"]) == {"fused", "audio", "visual"}
    assert set(epoch["importance"]) == set(epoch["coefficient"]) == {"audio", "visual"}
    assert (trained / "training_curves.png").read_bytes()[:4] == b"\x89PNG"


def test_checkpoint_round_trip_rebuilds_the_same_model(trained, tmp_path):
    ckpt = load_checkpoint(trained / "model.pt")
    assert ckpt.train_config.seed == 3 and ckpt.model_config.n_steps == 4
    audio, image = torch.randn(2, 4, 13), torch.rand(2, 1, 8, 8)
    save_checkpoint(tmp_path / "copy.pt", ckpt.model, ckpt.train_config, ckpt.data_spec, ckpt.summary)
    again = load_checkpoint(tmp_path / "copy.pt")
    torch.testing.assert_close(again.model(audio, image).logits, ckpt.model(audio, image).logits)


def test_eval_json_is_one_object_on_stdout(trained):
    result = _run("eval", str(trained / "model.pt"), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["samples"] == 600 and report["split"] == "test"
    for key in ("fused", "audio", "visual"):
        assert 0.0 <= report[key] <= 1.0
    assert report["fused"] > 0.2  # two epochs on AV-Digits clearly beat chance (0.1)


def test_eval_text_lists_the_three_accuracies(trained, capsys):
    assert main(["eval", str(trained / "model.pt"), "--split", "val"]) == 0
    text = capsys.readouterr().out
    assert "fused" in text and "audio" in text and "visual" in text


@pytest.mark.parametrize("content", [b"", b"garbage" * 100, None, "foreign", "truncated"])
def test_bad_checkpoints_give_one_line_and_exit_2(trained, tmp_path, content):
    bad = tmp_path / "bad.pt"
    if content == "foreign":
        torch.save({"weights": torch.zeros(3)}, bad)
    elif content == "truncated":
        bad.write_bytes((trained / "model.pt").read_bytes()[:5000])
    elif content is not None:
        bad.write_bytes(content)
    result = _run("eval", str(bad))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert str(bad) in lines[0]
    assert result.stdout == ""


def test_weights_that_do_not_match_the_config_are_rejected(tmp_path, small_model_config):
    from dataclasses import replace

    model = AVSpikingNet(small_model_config)
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, TrainConfig(), DataSpec(n_steps=4))
    payload = torch.load(path, weights_only=True)
    payload["model_config"]["fused_hidden"] = 64
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(path)
    payload["model_config"]["fusion"] = "magic"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="invalid configuration"):
        load_checkpoint(path)
    assert replace(small_model_config).fusion == "taaf-fused"


def test_unwritable_output_and_bad_flags(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = _run("train", "--epochs", "1", "--out", str(blocker / "sub"))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    result = _run("train", "--dataset", "crema-d", "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "--root" in result.stderr and "Traceback" not in result.stderr
    result = _run("train", "--fusion", "nope", "--out", str(tmp_path / "o"))
    assert result.returncode == 2  # argparse: invalid choice


def test_missing_data_root_names_what_is_missing(tmp_path):
    result = _run("train", "--dataset", "crema-d", "--root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    assert "nowhere" in result.stderr and "Traceback" not in result.stderr


def test_help_is_there_for_a_newcomer():
    result = _run("--help")
    assert result.returncode == 0
    for sub in ("data", "train", "eval", "demo"):
        assert sub in result.stdout
    assert "--fusion" in _run("train", "--help").stdout


def test_train_runs_on_a_crema_d_root(tmp_path):
    from av_fixtures import make_crema_d_root

    root = make_crema_d_root(tmp_path, n_per_class=3)
    out = tmp_path / "run"
    args = ["train", "--dataset", "crema-d", "--root", str(root), "--steps", "4", "--image-size", "16",
            "--epochs", "1", "--out", str(out), "--quiet"]
    assert main(args) == 0
    ckpt = load_checkpoint(out / "model.pt")
    assert ckpt.model_config.n_classes == 6 and ckpt.model_config.audio.in_features == 257
    assert ckpt.data_spec.root == str(root)
