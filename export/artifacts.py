"""Build the bytes of every file a target needs (no file I/O here: the CLI writes atomically).

An ANN-baseline checkpoint (``model_config.model == "ann"``) has no chip part: only the onnx
target applies, and it writes the whole network as model.onnx instead of the host head.

Targets of later stages (``lava``, ``loihi2``: :func:`export.cli.plugin_targets`) build their own
files, roles, streams and partition; this module adds the manifest as for every target.
"""
from __future__ import annotations

import io
import logging
from pathlib import Path

import nir

from export.ann_onnx import ann_onnx
from export.host_onnx import host_head_onnx, host_input_names
from export.manifest import ExportedFile, ExportManifest, Stream, library_versions
from export.nir_export import branch_graphs, model_to_nir
from taaf.checkpoint import Checkpoint
from taaf.data.cache import sha256_bytes, sha256_file
from taaf.dynamics import DEFAULT_DT
from taaf.errors import TaafError

PARTITION = ("chip: taaf.nir (encoders, time-warp delays, fused spiking layer, linear readouts); "
             "host: host_head.onnx (softmax over modalities, softmax over time, weighted sum)")


def nir_bytes(graph: nir.NIRGraph) -> bytes:
    """Serialise a NIR graph to bytes in memory, so the CLI can hash and write it atomically."""
    buffer = io.BytesIO()
    nir.write(buffer, graph)
    return buffer.getvalue()


def build_artifacts(ckpt: Checkpoint, checkpoint_path: Path, target: str, dt: float | None,
                    notes: list[str] | None = None) -> dict[str, bytes]:
    """The bytes of every file ``target`` needs for ``ckpt``, plus manifest.json; writes nothing itself."""
    dt = DEFAULT_DT if dt is None else float(dt)
    if dt <= 0:
        raise TaafError(f"--dt must be positive, got {dt}")
    model, cfg = ckpt.model, ckpt.model_config
    files: dict[str, bytes] = {}
    roles: dict[str, str] = {}
    streams: tuple[Stream, ...] = ()
    partition = PARTITION if target == "nir" else ""
    if cfg.model == "ann":
        if target != "onnx":
            raise TaafError(f"{checkpoint_path} is an ANN baseline (no spiking layers): "
                            f"only --target onnx applies, not {target!r}")
        files["model.onnx"] = ann_onnx(model)
        roles["model.onnx"] = "whole ANN baseline (ONNX): audio [B, T, F] + image [B, C, H, W] -> logits [B, C]"
    elif target == "nir":
        files["taaf.nir"] = nir_bytes(model_to_nir(model, dt))
        roles["taaf.nir"] = "chip graph (NIR, two Inputs: audio_input [F], visual_input [C, H, W])"
        streams = tuple(
            Stream(name, name, (cfg.n_classes,) if name.startswith("z_") else ((2,) if name == "modality_scores" else (1,)))
            for name in host_input_names(cfg.fusion)
        )
    else:
        from export.cli import TARGETS, plugin_targets

        if target not in TARGETS:  # a later stage's target (entry point group taaf.export_targets)
            plugin = plugin_targets().get(target)
            if plugin is None or isinstance(plugin, Exception):
                raise TaafError(f"export target {target!r} cannot be loaded: {plugin}")
            result = plugin.build(ckpt, checkpoint_path, dt)
            files.update(result.files)
            roles.update(result.roles)
            streams, partition = tuple(result.streams), result.partition
            if notes is not None and result.summary:
                notes.append(result.summary)
    if target in ("snntorch", "norse"):
        for name, graph in branch_graphs(model, dt).items():
            data = nir_bytes(graph)
            _check_importer(target, data, name)
            files[f"{name}_encoder.nir"] = data
            roles[f"{name}_encoder.nir"] = f"{name} encoder only (one Input), checked with the {target} importer"
    if target in ("nir", "onnx") and cfg.model == "snn":
        files["host_head.onnx"] = host_head_onnx(cfg.fusion, cfg.n_classes)
        roles["host_head.onnx"] = "host head (ONNX): inputs [B, T, ...] readouts stacked over time"
    manifest = ExportManifest(
        target=target,
        checkpoint=str(checkpoint_path),
        checkpoint_sha256=sha256_file(checkpoint_path),
        method=ckpt.train_config.method,
        fusion=cfg.fusion,
        dt=dt,
        n_steps=cfg.n_steps,
        n_classes=cfg.n_classes,
        files=tuple(ExportedFile(n, roles[n], sha256_bytes(d)) for n, d in files.items()),
        streams=streams,
        partition=partition,
        versions=library_versions(),
    )
    files["manifest.json"] = manifest.to_json().encode()
    return files


def _check_importer(target: str, data: bytes, name: str) -> None:
    """Load the graph with the peer importer so a broken file never leaves the exporter."""
    graph = nir.read(io.BytesIO(data))
    logging.getLogger().setLevel(logging.ERROR)  # Norse warns about r != 1 (snnTorch's convention)
    try:
        if target == "snntorch":
            from snntorch.import_nir import import_from_nir

            import_from_nir(graph)
        else:
            from norse.torch import from_nir

            from_nir(graph, dt=graph.metadata.get("dt", DEFAULT_DT))
    except Exception as exc:  # a peer library's failure, reported as ours to fix
        raise TaafError(f"the {name} encoder graph does not load in {target}: {type(exc).__name__}: {exc}") from None
