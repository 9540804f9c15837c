"""Outputs of a run land together or not at all (:func:`taaf.paths.staged_output`).

``taaf train``, ``taaf bench`` (checkpoint and graph mode) and ``taaf-export`` write into a
staged sibling folder that replaces ``--out`` as a whole on success; an interrupted or failed
run leaves the previous run's folder byte-identical and no staging sibling behind; a folder
that taaf did not write is refused before any work. Runs in-process on a tiny training run
(T = 4, one epoch) so the whole file takes well under a minute.
"""
from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from export.cli import main as export_main
from taaf.cli import main as taaf_main
from taaf.errors import TaafError
from taaf.paths import MARKER, STALE_AFTER_S, check_output_dir, staged_output

TRAIN = ["train", "--steps", "4", "--epochs", "1", "--quiet"]


def taaf(*args) -> int:
    return taaf_main([str(a) for a in args])


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(folder: Path) -> list[str]:
    """Hidden staging / old siblings of ``folder``."""
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}."))


@pytest.fixture(scope="module")
def previous(tmp_path_factory):
    """A complete TAAF training run and a bench report on it: the 'previous run' that later runs
    into the same folders must leave alone or replace whole."""
    root = tmp_path_factory.mktemp("atomic")
    assert taaf(*TRAIN, "--out", root / "run") == 0
    assert taaf("bench", root / "run" / "model.pt", "--limit", "20", "--out", root / "bench") == 0
    return root


def copy_of(previous: Path, name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(previous / name, target)
    return target


def _raise(exc: BaseException):
    def fail(*args, **kwargs):
        raise exc
    return fail


def _sigterm(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)  # the handler raises SystemExit at the next bytecode, long before this ends


# --------------------------------------------------------------------------- 1. train, interrupted

@pytest.mark.parametrize("failure", ["ctrl-c", "exception", "sigterm"])
def test_interrupted_train_leaves_the_previous_run_byte_identical(previous, tmp_path, monkeypatch, capsys, failure):
    out = copy_of(previous, "run", tmp_path)
    before = snapshot(out)
    assert MARKER in before and "attention.png" in before
    # model.pt, metrics.json and training_curves.png are written by then: the last plot fails
    if failure == "ctrl-c":
        monkeypatch.setattr("taaf.workflow.plot_attention", _raise(KeyboardInterrupt()))
        assert taaf(*TRAIN, "--out", out) == 130
    elif failure == "exception":
        monkeypatch.setattr("taaf.workflow.plot_attention", _raise(RuntimeError("disk on fire")))
        assert taaf(*TRAIN, "--out", out) == 2
        assert "disk on fire" in capsys.readouterr().err
    else:
        if signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
            pytest.skip("SIGTERM already has a handler in this process")
        monkeypatch.setattr("taaf.workflow.plot_attention", _sigterm)
        with pytest.raises(SystemExit) as exc:
            taaf(*TRAIN, "--out", out)
        assert exc.value.code == 128 + signal.SIGTERM
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the handler is gone again
    assert snapshot(out) == before
    assert leftovers(out) == []


def test_a_failed_train_into_a_new_folder_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr("taaf.workflow.plot_training", _raise(KeyboardInterrupt()))
    assert taaf(*TRAIN, "--out", tmp_path / "a" / "b" / "run") == 130
    assert list(tmp_path.iterdir()) == []  # not even the parent folders


# --------------------------------------------------------------------------- 2. stale files

def test_concat_run_into_an_old_taaf_folder_leaves_no_stale_attention_plot(previous, tmp_path):
    out = copy_of(previous, "run", tmp_path)
    assert taaf(*TRAIN, "--fusion", "concat", "--out", out) == 0
    names = {p.name for p in out.iterdir()}
    assert names == {MARKER, "model.pt", "metrics.json", "training_curves.png"}
    assert leftovers(out) == []


# --------------------------------------------------------------------------- 3. bench, interrupted

def test_bench_interrupted_while_plotting_keeps_the_previous_report(previous, tmp_path, monkeypatch):
    out = copy_of(previous, "bench", tmp_path)
    before = snapshot(out)
    # report.json, report.md and the first two plots are written by then
    monkeypatch.setattr("benchmarks.report.plots.plot_energy", _raise(KeyboardInterrupt()))
    assert taaf("bench", previous / "run" / "model.pt", "--limit", "10", "--out", out) == 130
    assert snapshot(out) == before
    assert leftovers(out) == []


def test_graph_bench_replaces_its_folder_whole(tmp_path):
    from foreign_graphs import snntorch_leaky, spike_inputs

    graph, inputs = snntorch_leaky(tmp_path / "g.nir"), spike_inputs(tmp_path / "in.npz", (8,), steps=5, batch=2)
    out = tmp_path / "b"
    assert taaf("bench", graph, "--input", inputs, "--dt", "1e-4", "--out", out) == 0
    (out / "stale.png").write_bytes(b"from an earlier run")  # a taaf folder: its content is taaf's
    assert taaf("bench", graph, "--input", inputs, "--dt", "1e-4", "--out", out) == 0
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "firing.png", "report.json", "report.md", "synops.png"]


# --------------------------------------------------------------------------- 4. foreign folders

def test_a_folder_taaf_did_not_write_is_refused_before_any_work(previous, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    ckpt = previous / "run" / "model.pt"
    calls = [
        (lambda: taaf(*TRAIN, "--out", out), "taaf train: error: "),
        (lambda: taaf("demo", "--epochs", "1", "--out", out), "taaf demo: error: "),
        (lambda: taaf("bench", ckpt, "--limit", "10", "--out", out), "taaf bench: error: "),
        (lambda: export_main([str(ckpt), "--target", "nir", "-o", str(out)]), "taaf-export: error: "),
    ]
    for call, prefix in calls:
        start = time.perf_counter()
        assert call() == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"{prefix}{out} holds files taaf did not write; choose a new or empty folder"]
        assert time.perf_counter() - start < 5  # refused before training, counting or exporting
        assert snapshot(out) == {"thesis.tex": b"years of work"}
        assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_an_output_folder_holding_an_input_or_the_current_folder_is_refused(previous, tmp_path, capsys,
                                                                              monkeypatch):
    out = copy_of(previous, "run", tmp_path)
    before = snapshot(out)
    assert export_main([str(out / "model.pt"), "--target", "nir", "-o", str(out)]) == 2
    assert "holds the input" in capsys.readouterr().err
    monkeypatch.chdir(out)
    with pytest.raises(TaafError, match="holds the current folder"):
        check_output_dir(out)
    assert snapshot(out) == before


# --------------------------------------------------------------------------- 5. export, nested outputs

def test_export_into_an_existing_export_folder_replaces_it_whole(previous, tmp_path, capsys):
    run = copy_of(previous, "run", tmp_path)
    out = run / "export"  # nested in a taaf folder, as make demo does
    assert export_main([str(run / "model.pt"), "--target", "nir", "-o", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {MARKER, "taaf.nir", "host_head.onnx", "manifest.json"}
    assert export_main([str(run / "model.pt"), "--target", "snntorch", "-o", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {MARKER, "audio_encoder.nir", "visual_encoder.nir", "manifest.json"}
    assert leftovers(out) == []
    # the outer folder is replaced whole by the next training run, nested export included
    assert taaf(*TRAIN, "--fusion", "concat", "--out", run) == 0
    assert not out.exists() and (run / MARKER).is_file()
    capsys.readouterr()


# --------------------------------------------------------------------------- the mechanism itself

def test_staged_output_follows_a_link_and_cleans_stale_siblings(tmp_path):
    real = tmp_path / "real"
    with staged_output(real, "test") as stage:
        (stage / "a.txt").write_text("1")
    link = tmp_path / "link"
    link.symlink_to(real)
    stale = tmp_path / ".real.staging-dead"
    stale.mkdir()
    old = time.time() - STALE_AFTER_S - 60
    os.utime(stale, (old, old))
    young = tmp_path / ".real.staging-alive"
    young.mkdir()
    with staged_output(link, "test") as stage:
        (stage / "b.txt").write_text("2")
    assert link.is_symlink() and sorted(p.name for p in real.iterdir()) == [MARKER, "b.txt"]
    assert not stale.exists() and young.exists()  # a live run's staging folder is younger
