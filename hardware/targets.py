"""The ``lava`` and ``loihi2`` export targets of ``taaf-export``, registered through the
``taaf.export_targets`` entry point group (``pyproject.toml``), so :mod:`export` never imports
:mod:`hardware`.

* ``lava``: the lowered, latency-aligned fixed-point Lava program (``lava_program.json`` +
  ``lava_weights.npz``, :class:`~hardware.loihi.quant_rules.PowerOfTwoRule`) and the resource
  report;
* ``loihi2``: the netx parts (:mod:`hardware.netx.bundle`, checked to build in lava-dl's
  ``netx.hdf5.Network``), their manifest, the host readouts and the resource report.

Importing this module is cheap (no Lava, h5py or torch): ``taaf-export --help`` loads it.
"""
from __future__ import annotations

import dataclasses
import io
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hardware.json_format import dump_json

if TYPE_CHECKING:
    from hardware.loihi.program import LavaProgram


@dataclass(frozen=True)
class TargetResult:
    """What an export target hands to :func:`export.artifacts.build_artifacts`."""

    files: dict[str, bytes]
    roles: dict[str, str]
    streams: tuple = ()
    partition: str = ""
    summary: str = ""


@dataclass(frozen=True)
class ExportTarget:
    """One ``taaf-export --target`` of this stage: its name, help line and builders.

    ``build(ckpt, checkpoint_path, dt)`` exports a TAAF checkpoint; ``build_graph(graph_path,
    dt, input_ranges)`` any NIR graph (``input_ranges``: max |x| per Input, for fixed point)."""

    name: str
    description: str
    build: Callable[..., TargetResult]
    build_graph: Callable[..., TargetResult] | None = None


def _npz(arrays: Mapping[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def lava_program_description(program: LavaProgram) -> tuple[dict, dict[str, np.ndarray]]:
    """A fixed-point :class:`~hardware.loihi.program.LavaProgram` as JSON-ready data plus its
    weight matrices (``{key: int array}``)."""
    from hardware.loihi import fixed_point as fp
    from hardware.ir.graph import BIAS

    lowered = program.chip
    arrays: dict[str, np.ndarray] = {}
    layers = {}
    for name, p in program.layers.items():
        n = lowered.neurons[name]
        layers[name] = {
            "kind": n.kind, "shape": list(n.shape), "size": p.size, "latency": p.latency,
            "du": int(p.du), "dv": int(p.dv), "vth": int(p.vth), "scale_exp": int(p.scale_exp),
            "bias_mant": np.asarray(p.bias_mant, np.int64).tolist(),
            "bias_exp": np.asarray(p.bias_exp, np.int64).tolist(),
            "gated": name in lowered.gated,
        }
    synapses = []
    for syn in program.synapses:
        key = f"{syn.dst}__from__{syn.src}__d{int(syn.nir_delay)}"
        w = np.asarray(syn.weights, np.int64)
        arrays[key] = w.astype(np.int16)
        synapses.append({
            "name": syn.name, "src": syn.src, "dst": syn.dst, "nir_delay": int(syn.nir_delay),
            "lava_delay": int(syn.delay), "process": "DelayDense" if syn.delay > 0 else "Dense",
            "weight_exp": int(syn.weight_exp), "sign_mode": fp.SignMode(syn.sign_mode).name,
            "num_weight_bits": fp.WEIGHT_BITS, "graded_input": bool(syn.graded),
            "shape": list(w.shape), "nonzero": int(np.count_nonzero(w)), "weights": key,
        })
    readouts = {name: {"size": r.size, "latency": r.latency, "scale": r.scale, "direct": r.direct,
                       "bias": np.asarray(r.bias, np.float64).reshape(-1).tolist(),
                       "host_neuron": (type(lowered.readouts[name].host).__name__
                                       if lowered.readouts[name].host is not None else None)}
                for name, r in program.readouts.items()}
    split = {node: {"shape": list(pop.shape), "parts": list(pop.parts), "index": [i.tolist() for i in pop.index]}
             for node, pop in lowered.split.items()}
    desc = {
        "format": "taaf-lava-program",
        "version": 1,
        "tag": program.tag,
        "rule": program.rule,
        "dt": lowered.dt,
        "gap": lowered.gap,
        "gated": list(lowered.gated),
        "inputs": {n: {"shape": list(shape), "latency": 0,
                       **({"frac_bits": program.encodings[n].frac_bits, "bits": program.encodings[n].bits,
                           "max_abs": program.encodings[n].max_abs} if n in program.encodings else {})}
                   for n, shape in lowered.inputs.items()},
        "layers": layers,
        "synapses": synapses,
        "readouts": readouts,
        "split": split,
        "constant_source": BIAS if lowered.biased else None,
        "semantics": (
            "Lava 0.10 Loihi2SimCfg fixed_pt. Layer: LIFReset(du, dv, vth, bias_mant, bias_exp), reset_interval = "
            "T + gap, reset_offset = (1 + gap + latency) mod (T + gap). Synapse: Dense (lava_delay 0) or "
            "DelayDense(delays = lava_delay) with weights (lava_weights.npz), weight_exp, sign_mode, 8 weight bits; "
            "lava_delay = latency(dst) - latency(src) - 1 + nir_delay (latency alignment). Inputs: graded "
            "round(x 2^frac_bits). Readout: recorded sum * scale + bias. Gated layers are silenced during the gap "
            "between batched samples by a gate neuron (hardware.loihi.network). constant_source: a RingBuffer "
            "neuron that is 1 on every step of every sample (0 in the gaps); synapses from it carry biases a LIF "
            "cannot hold on its membrane. split: a NIR neuron node held as several layers (one per distinct "
            "du/dv/vth); neuron j of parts[k] is neuron index[k][j] of the node. host_neuron: a non-spiking "
            "output layer (LI/CubaLI/I) the host steps over the recorded readout."),
        "weights_file": "lava_weights.npz",
    }
    return desc, arrays


def _quiet():
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def _taaf_streams(cfg):
    from export.host_onnx import host_input_names
    from export.manifest import Stream

    return tuple(Stream(name, name, (cfg.n_classes,) if name.startswith("z_")
                        else ((2,) if name == "modality_scores" else (1,)))
                 for name in host_input_names(cfg.fusion))


def _lava_files(program, n_steps: int | None = None, extra: str = "") -> tuple[dict[str, bytes], dict[str, str], str]:
    """lava_program.json + lava_weights.npz + resources.json of a fixed-point program -> (files, roles, report)."""
    from hardware.loihi.resources import resource_report

    desc, arrays = lava_program_description(program)
    if n_steps is not None:
        desc["n_steps"] = n_steps
    report = resource_report(program.chip)
    files = {"lava_program.json": dump_json(desc), "lava_weights.npz": _npz(arrays),
             "resources.json": dump_json(report.as_dict())}
    roles = {
        "lava_program.json": f"the lowered, latency-aligned, fixed-point Lava network ({program.rule}): per layer "
                             f"du/dv/vth/bias, per synapse group weight_exp/sign mode/delays{extra}",
        "lava_weights.npz": "integer weights of every Lava synapse group (keys in lava_program.json)",
        "resources.json": "Loihi 2 resource estimate per layer (hardware.loihi.resources)",
    }
    return files, roles, report.format_table()


def build_lava_target(ckpt, checkpoint_path: Path, dt: float) -> TargetResult:
    """``--target lava``: taaf.nir + host_head.onnx + lava_program.json (+ lava_weights.npz)."""
    _quiet()
    from export.artifacts import nir_bytes
    from export.host_onnx import host_head_onnx
    from export.nir_export import model_to_nir
    from hardware.loihi.lava_backend import TAAF_INPUT_RANGES
    from hardware.loihi.program import map_graph

    model, cfg = ckpt.model, ckpt.model_config
    graph = model_to_nir(model, dt)
    program = map_graph(graph, dt, fixed=True, input_ranges=TAAF_INPUT_RANGES)
    files, roles, table = _lava_files(program, cfg.n_steps)
    files = {"taaf.nir": nir_bytes(graph), "host_head.onnx": host_head_onnx(cfg.fusion, cfg.n_classes), **files}
    roles["taaf.nir"] = "chip graph (NIR, two Inputs: audio_input [F], visual_input [C, H, W])"
    roles["host_head.onnx"] = "host head (ONNX): inputs [B, T, ...] readouts stacked over time"
    partition = ("chip: lava_program.json (Lava processes: encoders, time-warp DelayDense, fused layer, readout "
                 "synapses, all fixed point); host: host_head.onnx")
    return TargetResult(files, roles, _taaf_streams(cfg), partition, table)


def build_lava_graph(graph_path: Path, dt: float | None, input_ranges: Mapping[str, float]) -> TargetResult:
    """``taaf-export G.nir --target lava``: any NIR graph as lava_program.json (+ weights, resources)."""
    _quiet()
    from export.manifest import Stream
    from hardware.loihi.program import map_graph
    from hardware.reference import load_graph

    graph_path = Path(graph_path)
    program = map_graph(load_graph(graph_path), dt, fixed=True, input_ranges=dict(input_ranges))
    files, roles, table = _lava_files(program, extra="; readouts are Extractor recordings x scale + bias")
    files = {"graph.nir": graph_path.read_bytes(), **files}
    roles["graph.nir"] = "the source NIR graph, unchanged"
    streams = tuple(Stream(name, name, tuple(int(v) for v in r.shape)) for name, r in program.chip.readouts.items())
    partition = ("chip: lava_program.json (every neuron layer and readout synapse, fixed point); host: readouts "
                 "= recorded sum x scale + bias (lava_program.json 'readouts')")
    return TargetResult(files, roles, streams, partition, table)


def _netx_build_child(paths: list[str]) -> list[str]:
    """Build every file with lava-dl's ``netx.hdf5.Network`` (no run); -> its layer tables."""
    from hardware.netx.run import import_netx

    netx = import_netx()
    tables = []
    for path in paths:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tables.append(str(netx.hdf5.Network(net_config=path)))
    return tables


def check_loads_in_netx(files: Mapping[str, bytes], timeout: float = 300.0) -> str:
    """Build every ``.net`` of ``files`` with lava-dl's netx in a watchdog child (Lava stays out
    of this process): a file netx cannot build never leaves the exporter."""
    import tempfile

    from hardware.errors import LavaError
    from hardware.isolation import run_in_watchdog
    from hardware.netx.format import NetxFormatError

    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, data in files.items():
            if name.endswith(".net"):
                paths.append(str(Path(tmp) / name))
                Path(paths[-1]).write_bytes(data)
        try:
            run_in_watchdog(_netx_build_child, paths, timeout=timeout)
        except LavaError as exc:
            raise NetxFormatError(f"lava-dl netx cannot build the exported .net files: {exc}") from None
    return f"checked: every .net builds in lava-dl netx.hdf5.Network ({len(paths)} files)"


def _loihi2_result(bundle, manifest, extra_files: Mapping[str, bytes], extra_roles: Mapping[str, str],
                   host: str) -> TargetResult:
    """The netx parts of ``bundle`` with ``manifest``, a resource report, the netx build check
    and ``extra_files``; ``host`` names what the host runs after the readouts."""
    from export.manifest import Stream
    from hardware.loihi.resources import merge_reports, netx_resource_report
    from hardware.netx.bundle import MANIFEST_NAME, READOUTS_NAME
    from hardware.netx.format import read_net

    files = {**bundle.files, MANIFEST_NAME: manifest.to_json(), **extra_files}
    nets = {p.name: read_net(files[f"{p.name}.net"]) for p in bundle.parts}
    names = {p.name: dict(zip((i for i, layer in enumerate(nets[p.name].layers) if layer.synaptic), p.layers))
             for p in bundle.parts}  # file layer index -> chip layer (input / flatten layers hold none)
    report = merge_reports((netx_resource_report(nets[p.name], names=names[p.name]) for p in bundle.parts),
                           "the .net parts as written; readouts on the host")
    files["resources.json"] = dump_json(report.as_dict())
    check = check_loads_in_netx(files)
    roles = {}
    for part in bundle.parts:
        slots = ", ".join(f"{s.source}@{s.delay}" for s in part.slots)
        roles[f"{part.name}.net"] = (f"netx chain ({' -> '.join(part.layers)}), input [{slots}], "
                                     f"{'graded' if part.graded else 'spike'} input, latency {len(part.layers)}")
    roles[MANIFEST_NAME] = f"how the parts, their latencies, the host readouts{host} connect"
    roles[READOUTS_NAME] = "host readouts (float, NIR matrices): readout = bias + sum matrix @ spikes[t - delay]"
    roles.update(extra_roles)
    roles["resources.json"] = "Loihi 2 resource estimate of the .net parts, readouts on the host (hardware.loihi.resources)"
    streams = tuple(Stream(p.output, READOUTS_NAME, (bundle.program.chip.neurons[p.output].size,))
                    for p in bundle.parts)
    partition = ("chip: " + "; ".join(f"{p.name}.net ({' -> '.join(p.layers)})" for p in bundle.parts)
                 + f"; host: wiring + readouts (host_readouts.npz){host}, see netx_manifest.json")
    chip = bundle.program.chip
    kinds = {n: nets[p.name].layers[i].type for p in bundle.parts for i, n in names[p.name].items()}
    unrolled = [n for n, kind in kinds.items() if kind == "dense" and any(t.conv is not None for t in chip.terms_into(n))]
    convs = [n for n, kind in kinds.items() if kind == "conv"]
    sharing = (f"unrolled into dense matrices (no netx conv block holds them: several inputs, delays, a conv "
               f"after a dense layer or a per-position bias): {', '.join(unrolled)}" if unrolled else
               "every convolution is a shared-kernel netx conv block" if convs else "no convolution")
    if convs:
        sharing += f"; conv blocks (shared kernels, pooling folded in): {', '.join(convs)}"
    summary = "\n".join([
        "netx parts:",
        *(f"  {p.name}.net: {' -> '.join(p.layers)}  (input: {', '.join(f'{s.source}@{s.delay}' for s in p.slots)})"
          for p in bundle.parts),
        check, f"convolutions: {sharing}", "", report.format_table()])
    return TargetResult(files, roles, streams, partition, summary)


def build_loihi2_target(ckpt, checkpoint_path: Path, dt: float) -> TargetResult:
    """``--target loihi2``: the netx parts + netx_manifest.json + host_readouts.npz + host head."""
    _quiet()
    from export.host_onnx import host_head_onnx, host_input_names
    from export.nir_export import model_to_nir
    from hardware.loihi.lava_backend import TAAF_INPUT_RANGES
    from hardware.netx.bundle import HostHead, export_netx

    model, cfg = ckpt.model, ckpt.model_config
    bundle = export_netx(model_to_nir(model, dt), TAAF_INPUT_RANGES, dt, n_steps=cfg.n_steps)
    manifest = dataclasses.replace(bundle.manifest,
                                   host_head=HostHead("host_head.onnx", tuple(host_input_names(cfg.fusion))))
    return _loihi2_result(bundle, manifest, {"host_head.onnx": host_head_onnx(cfg.fusion, cfg.n_classes)},
                          {"host_head.onnx": "host head (ONNX): inputs [B, T, ...] readouts stacked over time"},
                          " + host_head.onnx")


def build_loihi2_graph(graph_path: Path, dt: float | None, input_ranges: Mapping[str, float]) -> TargetResult:
    """``taaf-export G.nir --target loihi2``: any feed-forward NIR graph as netx parts + host
    readouts; a graph netx cannot hold (recurrent, ...) is one clear error."""
    _quiet()
    from hardware.netx.bundle import export_netx
    from hardware.reference import load_graph

    bundle = export_netx(load_graph(Path(graph_path)), dict(input_ranges), dt)
    return _loihi2_result(bundle, bundle.manifest, {}, {}, "")


LAVA_TARGET = ExportTarget("lava", "fixed-point Lava program (lava_program.json) + the NIR graph (+ host head "
                                   "for a checkpoint); prints the Loihi 2 resource report",
                           build_lava_target, build_lava_graph)
LOIHI2_TARGET = ExportTarget("loihi2", "lava-dl netx .net chains + netx_manifest.json + host readouts (+ host head "
                                       "for a checkpoint); prints the Loihi 2 resource report",
                             build_loihi2_target, build_loihi2_graph)


__all__ = [
    "LAVA_TARGET",
    "LOIHI2_TARGET",
    "ExportTarget",
    "TargetResult",
    "build_lava_graph",
    "build_lava_target",
    "build_loihi2_graph",
    "build_loihi2_target",
    "check_loads_in_netx",
    "dump_json",
    "lava_program_description",
]
