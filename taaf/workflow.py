"""Glue between the CLI and the library: the train -> save -> evaluate steps a user runs.

Kept apart from :mod:`taaf.cli` so tests and later stages (export, benchmarks) can call the
same steps without going through argument parsing.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from taaf.checkpoint import check_split_matches, load_checkpoint, save_checkpoint
from taaf.config import ATTENTION_FUSIONS, ModelConfig, TrainConfig, to_dict
from taaf.data import DataSpec, MultimodalDataset, load_dataset
from taaf.data.cache import atomic_write_bytes
from taaf.errors import TaafError
from taaf.evaluate import predict
from taaf.paths import staged_output
from taaf.training.plots import plot_attention, plot_training
from taaf.training.trainer import TrainResult, history_as_json, train

CHECKPOINT_NAME = "model.pt"


def train_and_save(data: MultimodalDataset, spec: DataSpec, cfg: TrainConfig, model_cfg: ModelConfig,
                   out: Path, device: str = "cpu", progress: bool = True) -> TrainResult:
    """Train, then write model.pt, metrics.json, training_curves.png (+ attention.png for TAAF)
    into ``out``, all together (:func:`taaf.paths.staged_output`: ``out`` is replaced as a whole
    only when every file is written; under torchrun only rank 0 writes). The model's T must be
    the data's, and a batch must fit the memory budget (else TaafError)."""
    result, wall = train_timed(data, cfg, model_cfg, device=device, progress=progress)
    if result.history:  # a non-zero torchrun rank has none: rank 0 writes
        with staged_output(out, "taaf train") as stage:
            write_training_outputs(result, wall, data, spec, cfg, model_cfg, stage)
    return result


def train_timed(data: MultimodalDataset, cfg: TrainConfig, model_cfg: ModelConfig, device: str = "cpu",
                progress: bool = True) -> tuple[TrainResult, float]:
    """Check that training fits (:func:`check_training_fits`), train, and return the result with
    the wall-clock seconds it took; writes nothing."""
    check_training_fits(data, cfg, model_cfg)
    start = time.perf_counter()
    result = train(data, cfg, model_cfg, device=device, progress=progress)
    return result, time.perf_counter() - start


def write_training_outputs(result: TrainResult, wall: float, data: MultimodalDataset, spec: DataSpec,
                           cfg: TrainConfig, model_cfg: ModelConfig, folder: Path) -> None:
    """model.pt, metrics.json, training_curves.png (+ attention.png for TAAF) of a finished
    training run, written into ``folder`` (a staged folder: see :func:`train_and_save`)."""
    summary = {**result.summary(), "train_seconds": wall}
    save_checkpoint(folder / CHECKPOINT_NAME, result.model.cpu(), cfg, spec, summary)
    history = history_as_json(result.history)
    metrics = {
        "method": cfg.method,
        "dataset": spec.dataset,
        "data_spec": to_dict(spec),
        "train_config": to_dict(cfg),
        "model_config": to_dict(model_cfg),
        "selected_epoch": result.selected_epoch,
        "diverged_epoch": result.diverged_epoch,
        "train_seconds": wall,
        "epochs": history,
    }
    atomic_write_bytes(folder / "metrics.json", json.dumps(metrics, indent=2).encode())
    plot_training(history, folder / "training_curves.png", title=f"{cfg.method} on {spec.dataset} ({spec.preset})")
    if model_cfg.fusion in ATTENTION_FUSIONS:
        preds = predict(result.model, data.test)
        plot_attention(preds.alpha, preds.beta, preds.labels, folder / "attention.png",
                       title=f"attention on the test split ({cfg.method})")


def check_training_fits(data: MultimodalDataset, cfg: TrainConfig, model_cfg: ModelConfig) -> None:
    """Refuse a model whose T is not the data's, and a training batch over the memory budget
    (spikes, membranes and their gradients of every neuron at every step, float32, plus the
    parameters with their gradients and two optimizer moments)."""
    from taaf import budget

    if model_cfg.n_steps != data.train.n_steps:
        raise TaafError(f"the model is configured for T = {model_cfg.n_steps} steps but the data has "
                        f"T = {data.train.n_steps}")
    per_step = model_cfg.neuron_count()
    activations = 4 * 4 * min(cfg.batch_size, len(data.train)) * model_cfg.n_steps * per_step
    budget.check("one training batch", activations + 16 * model_cfg.parameter_count(),
                 f"batch {cfg.batch_size} x T {model_cfg.n_steps} x {per_step:,} neurons")


def evaluate_checkpoint(path: str | Path, split: str = "test", device: str = "cpu") -> dict:
    """Load a checkpoint, rebuild its data set and report its accuracies on ``split`` as a JSON-able dict."""
    ckpt = load_checkpoint(path, device=device)
    data = load_dataset(ckpt.data_spec)
    check_split_matches(ckpt, data.split(split), path)
    preds = predict(ckpt.model, data.split(split))
    acc = preds.accuracies()
    return {
        "checkpoint": str(path),
        "model": ckpt.model_config.model,
        "method": ckpt.train_config.method,
        "dataset": ckpt.data_spec.dataset,
        "preset": ckpt.data_spec.preset,
        "steps": ckpt.model_config.n_steps,
        "split": split,
        "samples": int(len(preds.labels)),
        **asdict(acc),
    }


def run_demo(out: Path, epochs: int = 12, seed: int = 0, device: str = "cpu") -> dict:
    """The main job: AV-Digits (audio-dominant) -> TAAF training -> evaluation -> plots; the
    files replace ``out`` as a whole once all are written (:func:`taaf.paths.staged_output`)."""
    spec = DataSpec()
    print(f"[1/3] building AV-Digits (preset {spec.preset}, T = {spec.n_steps})")
    data = load_dataset(spec)
    print(f"      train {len(data.train)}, val {len(data.val)}, test {len(data.test)} paired samples")
    cfg = TrainConfig(method="taaf", epochs=epochs, seed=seed)
    from taaf.training.trainer import model_config_for

    print(f"[2/3] training TAAF for {epochs} epochs on {device}")
    model_cfg = model_config_for(data, cfg)
    result, wall = train_timed(data, cfg, model_cfg, device=device)
    print("[3/3] evaluating the selected model (best validation epoch) on the test split")
    with staged_output(out, "taaf demo") as stage:  # every file lands in out together, or none
        write_training_outputs(result, wall, data, spec, cfg, model_cfg, stage)
        report = evaluate_checkpoint(stage / CHECKPOINT_NAME, "test")
        report["checkpoint"] = str(Path(out) / CHECKPOINT_NAME)
        gap = abs(report["audio"] - report["visual"])
        report["unimodal_gap"] = gap
        report["train_samples_per_second"] = sum(h.samples_per_second for h in result.history) / len(result.history)
        atomic_write_bytes(stage / "summary.json", json.dumps(report, indent=2).encode())
    print()
    print(f"  test accuracy   fused {report['fused']:.3f}   audio-only {report['audio']:.3f}   "
          f"visual-only {report['visual']:.3f}   (unimodal gap {100 * gap:.1f} points, chance 0.100)")
    print(f"  selected epoch {result.selected_epoch} of {epochs}; "
          f"training {report['train_samples_per_second']:.0f} samples/s")
    print(f"  wrote {out}/model.pt, metrics.json, summary.json, training_curves.png, attention.png")
    return report
