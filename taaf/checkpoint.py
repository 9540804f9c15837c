"""Checkpoints: weights + typed configs, loadable with ``torch.load(weights_only=True)``.

Layout (a plain dict of tensors and JSON-able values, nothing pickled beyond that):
    format: "taaf-checkpoint", version: 1,
    model_config / train_config / data_spec: dataclass dicts (see taaf.config / taaf.data),
    state_dict: the model's tensors, summary: small JSON-able facts (e.g. selected epoch).
Any failure to read one becomes a :class:`CheckpointError` naming the file and the reason: an
unreadable file, a config with out-of-range, non-finite or absurd values (see the bounds in
:mod:`taaf.config`), a network larger than the memory budget (:mod:`taaf.budget`), NaN or
infinite weights, or a model T that disagrees with its data spec.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import torch

from taaf.config import ModelConfig, TrainConfig, from_dict, to_dict
from taaf.data import DataSpec
from taaf.data.cache import atomic_write_bytes
from taaf.budget import BudgetError
from taaf.errors import CheckpointError, ConfigError
from taaf.model.network import AVNetwork, build_network

FORMAT = "taaf-checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` restores: the rebuilt model (eval mode) plus the configs it was trained with."""

    model: AVNetwork  # AVSpikingNet or AVANNNet, as model_config.model says
    model_config: ModelConfig
    train_config: TrainConfig
    data_spec: DataSpec
    summary: dict


def save_checkpoint(path: Path, model: AVNetwork, train_config: TrainConfig, data_spec: DataSpec,
                    summary: dict | None = None) -> None:
    """Write the weights and the configs needed to rebuild the model to ``path`` (atomically, weights-only loadable)."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": to_dict(model.config),
        "train_config": to_dict(train_config),
        "data_spec": to_dict(data_spec),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "summary": summary or {},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # NIR files are HDF5; checkpoints are torch zip archives


def is_nir_file(path: str | Path) -> bool:
    """True for a NIR graph file (``.nir`` suffix, or HDF5 content), so every command can tell a
    graph from a checkpoint and say which one it needs."""
    path = Path(path)
    if path.suffix.lower() == ".nir":
        return True
    try:
        with path.open("rb") as fh:
            return fh.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE
    except OSError:
        return False


def load_checkpoint(path: str | Path, device: str = "cpu") -> Checkpoint:
    """Rebuild a saved model on ``device`` in eval mode; any unreadable or mismatched file raises CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if is_nir_file(path):
        raise CheckpointError(f"{path} is a NIR graph, not a checkpoint from 'taaf train'; this command needs "
                              f"a checkpoint (graphs run with 'taaf simulate G.nir', 'taaf-export G.nir', "
                              f"'taaf bench G.nir')")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except MemoryError:
        raise CheckpointError(f"{path}: not a readable checkpoint (it declares more data than fits in memory)") from None
    except Exception as exc:  # noqa: BLE001 - a corrupt archive fails torch.load in many ways, all "unreadable"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint ({reason[:160]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a TAAF checkpoint (no '{FORMAT}' header)")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {payload.get('version')} is not supported (expected {VERSION})")
    try:
        model_config = from_dict(ModelConfig, payload["model_config"])
        train_config = from_dict(TrainConfig, payload["train_config"])
        data_spec = from_dict(DataSpec, payload["data_spec"])
    except (KeyError, ConfigError) as exc:
        raise CheckpointError(f"{path}: invalid configuration ({exc})") from None
    if model_config.n_steps != data_spec.n_steps:
        raise CheckpointError(f"{path}: the model is configured for T = {model_config.n_steps} steps but its data "
                              f"spec has T = {data_spec.n_steps}; the checkpoint is inconsistent")
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: 'state_dict' is not a mapping of tensors")
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{path}: non-finite weights in {name} (NaN or infinity); the checkpoint is "
                                  f"unusable (retrain, e.g. with a smaller --lr)")
    try:
        model = build_network(model_config)
    except BudgetError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    try:
        model.load_state_dict(state)
    except (KeyError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"{path}: weights do not match the stored configuration ({first[:160]})") from None
    model.to(device).eval()
    return Checkpoint(model, model_config, train_config, data_spec, dict(payload.get("summary", {})))


def check_split_matches(ckpt: Checkpoint, split, path: str | Path = "") -> None:
    """Refuse to run a checkpoint on data whose T differs from the model's (a wrong success
    otherwise: the network runs on any T, and its numbers mean nothing)."""
    steps = getattr(split, "n_steps", ckpt.model_config.n_steps)
    if steps != ckpt.model_config.n_steps:
        raise CheckpointError(f"{path or 'checkpoint'}: the model is configured for T = {ckpt.model_config.n_steps} "
                              f"steps but its data has T = {steps}")
