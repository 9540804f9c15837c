"""Build the bytes of every file a target needs (no file I/O here: the CLI writes atomically).

An ANN-baseline checkpoint (``model_config.model == "ann"``) has no chip part: only the onnx
target applies, and it writes the whole network as model.onnx instead of the host head.

Targets of later stages (``lava``, ``loihi2``: :func:`export.cli.plugin_targets`) build their own
files, roles, streams and partition; this module adds the manifest as for every target.

Graph mode (:func:`build_graph_artifacts`): any NIR graph, read and checked here with ``nir.read``
(export/ never imports hardware/); ``--target nir`` writes it unchanged with a manifest (dt,
Inputs/Outputs, sha256), ``lava``/``loihi2`` come from their stage's ``build_graph`` entry point,
with the fixed-point input range of every Input (``--input-range``, default 1.0) recorded.
"""
from __future__ import annotations

import io
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nir
import numpy as np

from export.ann_onnx import ann_onnx
from export.host_onnx import host_head_onnx, host_input_names
from export.manifest import ExportedFile, ExportManifest, Stream, library_versions
from export.nir_export import branch_graphs, model_to_nir
from taaf.checkpoint import Checkpoint
from taaf.data.cache import sha256_bytes, sha256_file
from taaf.dynamics import DEFAULT_DT
from taaf import notices
from taaf.errors import TaafError
from taaf.nir_checks import check_hdf5_budget, nonfinite_parameters, read_unchecked

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


# --- graph mode: any NIR graph (taaf-export G.nir) ----------------------------------------------

GRAPH_FORMAT = "taaf-export-graph"
DEFAULT_INPUT_RANGE = 1.0  # max |x| of an Input when --input-range does not name it
CHECKPOINT_TARGETS = ("snntorch", "norse", "onnx")  # built from the TAAF model itself, not from a graph
_NIR_READ_ERRORS = (OSError, ValueError, KeyError, AssertionError, TypeError, AttributeError, IndexError,
                    NotImplementedError, RuntimeError, OverflowError)


@dataclass(frozen=True)
class GraphPort:
    """A NIR Input or Output of an exported graph: its node name and per-step shape (no batch axis)."""

    name: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class GraphSource:
    """What export/ reads from a NIR file itself (``nir.read``), before any target sees it."""

    path: Path
    data: bytes
    inputs: tuple[GraphPort, ...]
    outputs: tuple[GraphPort, ...]
    dt: float
    dt_from: str


@dataclass(frozen=True)
class GraphExportManifest:
    """manifest.json of a graph export: the source graph and its sha256, the time base, the Inputs
    and Outputs, the fixed-point input ranges used (and where each came from), files, versions."""

    target: str
    graph: str
    graph_sha256: str
    dt: float
    dt_from: str
    inputs: tuple[GraphPort, ...]
    outputs: tuple[GraphPort, ...]
    input_ranges: dict[str, float]
    input_ranges_from: dict[str, str]
    files: tuple[ExportedFile, ...]
    streams: tuple[Stream, ...] = ()
    partition: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    format: str = GRAPH_FORMAT
    version: int = 1

    def to_json(self) -> str:
        """The manifest as indented JSON text, as written to manifest.json."""
        return json.dumps(asdict(self), indent=2)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200] if text else ''}"


def _port(path: Path, name: str, node) -> GraphPort:
    types = node.input_type if isinstance(node, nir.Input) else node.output_type
    values = list(types.values()) if isinstance(types, dict) else []
    shape = np.asarray(values[0] if len(values) == 1 else [], dtype=np.float64).reshape(-1)
    if shape.size == 0 or np.any(shape < 1) or np.any(shape != np.round(shape)):
        raise TaafError(f"{path}: {type(node).__name__} {name!r} has no valid shape ({values})")
    return GraphPort(name, tuple(int(v) for v in shape))


def read_graph_source(path: Path, dt: float | None, strict: bool = False) -> GraphSource:
    """Read and check a NIR graph with ``nir.read`` (one Input and Output at least, edges that
    name nodes, a usable dt); the time step is ``dt``, else the graph's metadata, else DEFAULT_DT.

    A file that fails only nir's type check (published files do: an Output declared (1, 1, 1),
    a subgraph edge naming a node by an old name) is read without it and exported with a
    one-line warning, the same as ``taaf simulate`` / ``taaf bench`` (``strict``: refused)."""
    path = Path(path)
    check_hdf5_budget(path, "the parameters")  # declared sizes, before anything is read
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TaafError(f"cannot read NIR graph {path}: {exc.strerror or exc}") from None
    try:
        graph = nir.read(io.BytesIO(data))
    except _NIR_READ_ERRORS as exc:
        graph, repairs = (None, []) if strict else _read_unchecked(data)
        if graph is None:
            raise TaafError(f"cannot read NIR graph {path}: {_one_line(exc)}") from None
        notices.warn(f"{path} fails nir's type check ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); "
                     f"running it without the check (--strict refuses such files)")  # hardware's load_graph words
        for line in repairs:
            notices.warn(f"{path}: {line}")
    if not isinstance(graph, nir.NIRGraph):
        raise TaafError(f"{path} holds a single {type(graph).__name__} node, not a NIR graph")
    bad = nonfinite_parameters(graph)
    if bad:
        raise TaafError(f"{path}: parameters hold NaN or infinity: {', '.join(bad[:5])}"
                        f"{' ...' if len(bad) > 5 else ''}")
    unknown = sorted({n for edge in graph.edges for n in edge} - set(graph.nodes))
    if unknown:
        raise TaafError(f"{path}: edges name nodes that do not exist: {unknown[:5]}")
    inputs = tuple(_port(path, k, n) for k, n in graph.nodes.items() if isinstance(n, nir.Input))
    outputs = tuple(_port(path, k, n) for k, n in graph.nodes.items() if isinstance(n, nir.Output))
    if not inputs or not outputs:
        raise TaafError(f"{path}: a graph to export needs at least one Input and one Output node "
                        f"(found {len(inputs)} and {len(outputs)})")
    meta = graph.metadata.get("dt") if isinstance(graph.metadata, dict) else None
    if meta is not None:
        try:
            meta = float(np.asarray(meta).reshape(-1)[0])
        except (TypeError, ValueError, IndexError):
            raise TaafError(f"{path}: metadata dt {meta!r} is not a number") from None
    if dt is not None and meta is not None and not math.isclose(float(dt), meta, rel_tol=1e-9):
        raise TaafError(f"--dt {dt} contradicts the graph's metadata dt = {meta} ({path})")
    if dt is not None:
        value, source = float(dt), "--dt"
    elif meta is not None:
        value, source = meta, "the graph's metadata"
    else:
        value, source = DEFAULT_DT, "default: the graph has no dt metadata, pass --dt to choose"
    if not (math.isfinite(value) and value > 0):
        raise TaafError(f"dt must be a positive number, got {value} ({source})")
    return GraphSource(path, data, inputs, outputs, value, source)


def _read_unchecked(data: bytes):
    """The graph without nir's type check (:func:`taaf.nir_checks.read_unchecked`) and its
    repairs, or ``(None, [])`` when the file is broken, not just mistyped."""
    try:
        return read_unchecked(io.BytesIO(data))
    except _NIR_READ_ERRORS:
        return None, []


def resolve_input_ranges(source: GraphSource, given: Mapping[str, float] | None
                         ) -> tuple[dict[str, float], dict[str, str]]:
    """Max |x| per Input (``--input-range NAME=MAX``, else DEFAULT_INPUT_RANGE) and where each came from."""
    given = dict(given or {})
    names = [p.name for p in source.inputs]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise TaafError(f"--input-range names {unknown}, but the Inputs of {source.path} are {names}")
    for name, value in given.items():
        if not (math.isfinite(value) and value > 0):
            raise TaafError(f"--input-range {name}={value}: the range must be a positive number")
    ranges = {n: float(given.get(n, DEFAULT_INPUT_RANGE)) for n in names}
    return ranges, {n: ("--input-range" if n in given else "default") for n in names}


def build_graph_artifacts(graph_path: Path, target: str, dt: float | None,
                          input_ranges: Mapping[str, float] | None = None,
                          notes: list[str] | None = None, strict: bool = False) -> dict[str, bytes]:
    """The bytes of every file ``target`` needs for the NIR graph at ``graph_path``, plus
    manifest.json; ``nir`` is built here, ``lava``/``loihi2`` by their stage's ``build_graph``."""
    from export.cli import plugin_targets

    if target in CHECKPOINT_TARGETS:
        raise TaafError(f"{graph_path} is a NIR graph; the {target} target needs a checkpoint from 'taaf train'")
    source = read_graph_source(graph_path, dt, strict)
    if target == "nir":
        if input_ranges:
            raise TaafError("--input-range sets the fixed-point input encoding of the lava and loihi2 targets; "
                            "--target nir writes the float graph unchanged")
        ranges, ranges_from = {}, {}
        files = {"graph.nir": source.data}
        roles = {"graph.nir": f"the source NIR graph, unchanged ({len(source.inputs)} Input(s), "
                              f"{len(source.outputs)} Output(s); checked with nir.read)"}
        streams, partition, summary = (), "chip: graph.nir (the whole graph, float)", ""
    else:
        plugin = plugin_targets().get(target)
        if plugin is None or isinstance(plugin, Exception):
            raise TaafError(f"export target {target!r} cannot be loaded: {plugin}")
        if getattr(plugin, "build_graph", None) is None:
            raise TaafError(f"{graph_path} is a NIR graph; the {target} target needs a checkpoint from 'taaf train'")
        ranges, ranges_from = resolve_input_ranges(source, input_ranges)
        result = plugin.build_graph(source.path, source.dt, ranges)
        files, roles = dict(result.files), dict(result.roles)
        streams, partition, summary = tuple(result.streams), result.partition, result.summary
    if notes is not None:
        notes.append(f"graph {source.path}: dt = {source.dt:g} s ({source.dt_from})")
        if ranges:
            notes.append("input ranges (max |x|, fixed-point encoding): "
                         + ", ".join(f"{n} = {v:g} ({ranges_from[n]})" for n, v in ranges.items()))
        if summary:
            notes.append(summary)
    manifest = GraphExportManifest(
        target=target, graph=str(source.path), graph_sha256=sha256_bytes(source.data), dt=source.dt,
        dt_from=source.dt_from, inputs=source.inputs, outputs=source.outputs, input_ranges=ranges,
        input_ranges_from=ranges_from,
        files=tuple(ExportedFile(n, roles[n], sha256_bytes(d)) for n, d in files.items()),
        streams=streams, partition=partition, versions=library_versions())
    files["manifest.json"] = manifest.to_json().encode()
    return files
