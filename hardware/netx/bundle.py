"""The ``loihi2`` export of a graph: one ``.net`` file per netx part, the host readouts and
``netx_manifest.json`` (:func:`export_netx`), all from one fixed-point program mapped with
:class:`~hardware.loihi.quant_rules.NetxRule`, so the ``.net`` files, our Lava mapping and the
emulator are the same integer network, spike for spike.

The manifest is typed (:class:`NetxManifest`): written with :func:`dataclasses.asdict` and read
back into the same dataclasses (:meth:`NetxManifest.from_json`), so a consumer never indexes a
dict by string keys. How the host reassembles the parts is :mod:`hardware.netx.run`.
"""
from __future__ import annotations

import dataclasses
import io
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hardware.errors import LavaMappingError
from hardware.ir import ChipGraph, lower_graph
from hardware.loihi import quant_rules as qr
from hardware.loihi.program import LavaProgram, SynapseParams, map_graph
from hardware.loihi.quant_rules import NetxRule
from hardware.netx.conv import shared_kernel
from hardware.netx.format import GRADED_MESSAGE_BITS, NETX_BIAS_EXP, NetxFormatError, NetxLayer, cuba_neuron, write_net
from hardware.netx.partition import NetxPart, Slot, partition
from hardware.json_format import dump_json

MANIFEST_NAME = "netx_manifest.json"
READOUTS_NAME = "host_readouts.npz"
FORMAT, VERSION = "taaf-netx", 1

NEURON_NOTE = ("netx CUBA = our LIF: iDecay = du + 1 (4096: no current state), vDecay = dv, vThMant = vth, "
               f"bias = bias_mant << {NETX_BIAS_EXP}; synaptic input = W_file @ x (no weight exponent)")
REASSEMBLY_NOTE = (
    "Run the parts in order. Encode each Input x as round(x * 2^frac_bits) (|x| <= max_abs, else an "
    "error). A part's input is its slots side by side; a slot carries its source in the sample time base "
    "(Input values, or the spikes of an earlier part's layer with that part's latency removed), the .net "
    "delay d of its columns shifts it inside the part. Batch: sample b at steps [b P + lead, b P + lead + T), "
    "P = T + lead, zeros elsewhere; netx.hdf5.Network(..., input_message_bits, reset_interval=P, "
    "reset_offset=lead + 1). Layer i (1-based) of a part shows sample step t at recorded step "
    "b P + lead + t + i. Readout r[t] = bias + sum over terms of matrix @ source_spikes[t - delay] "
    "(zeros before the sample), then host_head.onnx.")


# --- the manifest -------------------------------------------------------------------------------

@dataclass(frozen=True)
class InputSpec:
    """How the host encodes one NIR Input: ``round(x 2^frac_bits)`` in ``bits``-bit messages, |x| <= max_abs."""

    shape: tuple[int, ...]
    frac_bits: int
    bits: int
    max_abs: float


@dataclass(frozen=True)
class LayerEntry:
    """One neuron layer of a part: its registers and its latency in the part and in the whole graph."""

    name: str
    size: int
    shape: tuple[int, ...]
    latency_in_part: int
    latency_in_graph: int
    scale_exp: int
    du: int
    dv: int
    vth: int


@dataclass(frozen=True)
class PartInput:
    """A part's input columns: the slots side by side, graded when any slot is an Input."""

    size: int
    graded: bool
    message_bits: int
    slots: tuple[Slot, ...]


@dataclass(frozen=True)
class NetxNetworkArgs:
    """The arguments the host passes to ``netx.hdf5.Network`` for a part (resets as formulas of T)."""

    input_message_bits: int
    reset_interval: str = "T + lead"
    reset_offset: str = "lead + 1"


@dataclass(frozen=True)
class PartEntry:
    """One ``.net`` file: its chain of layers, input slots, latency and batch lead."""

    name: str
    file: str
    layers: tuple[LayerEntry, ...]
    input: PartInput
    output: str
    latency: int
    lead: int
    netx_network_args: NetxNetworkArgs


@dataclass(frozen=True)
class ReadoutTerm:
    """``matrix`` (a key of ``host_readouts.npz``) applied to ``source``'s values ``delay`` steps earlier."""

    source: str
    delay: int
    matrix: str


@dataclass(frozen=True)
class ReadoutEntry:
    """A NIR Output computed on the host: ``bias + sum of terms``, or a source passed through (``direct``)."""

    shape: tuple[int, ...]
    bias: str
    terms: tuple[ReadoutTerm, ...]
    direct: str | None


@dataclass(frozen=True)
class GraphInfo:
    """The whole-graph latencies and gap, for comparison with the single-program mapping."""

    latency: dict[str, int]
    gap: int


@dataclass(frozen=True)
class HostHead:
    """The ONNX model the host runs on the readouts (checkpoint exports only)."""

    file: str
    inputs: tuple[str, ...]


@dataclass(frozen=True)
class NetxManifest:
    """``netx_manifest.json``: everything the host needs to run the parts and compute the readouts."""

    dt: float
    n_steps: int | None
    rule: str
    inputs: dict[str, InputSpec]
    parts: tuple[PartEntry, ...]
    readouts: dict[str, ReadoutEntry]
    readout_arrays: str
    graph: GraphInfo
    host_head: HostHead | None = None
    neuron: str = NEURON_NOTE
    reassembly: str = REASSEMBLY_NOTE
    format: str = FORMAT
    version: int = VERSION

    def to_json(self) -> bytes:
        """The manifest as written to ``netx_manifest.json`` (:func:`dataclasses.asdict`)."""
        return dump_json(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes, label: str = MANIFEST_NAME) -> NetxManifest:
        """Read a manifest back into the same dataclasses; anything else is a :class:`NetxFormatError`."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise NetxFormatError(f"{label}: not JSON ({exc})") from None
        manifest = _typed(cls, data, label)
        if (manifest.format, manifest.version) != (FORMAT, VERSION):
            raise NetxFormatError(f"{label}: format {manifest.format!r} version {manifest.version}, "
                                  f"expected {FORMAT!r} version {VERSION}")
        return manifest

    @classmethod
    def read(cls, folder: str | Path) -> NetxManifest:
        """``folder``/netx_manifest.json, typed."""
        path = Path(folder) / MANIFEST_NAME
        try:
            text = path.read_text()
        except OSError as exc:
            raise NetxFormatError(f"{path}: cannot be read ({exc.strerror or exc})") from None
        return cls.from_json(text, str(path))


def _typed(tp, value, where: str):
    """JSON data -> ``tp`` (a dataclass, tuple[X, ...], dict[str, X], X | None or a scalar), strictly."""
    def fail(msg):
        return NetxFormatError(f"{where}: {msg}")

    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise fail(f"expected an object, got {type(value).__name__}")
        hints = typing.get_type_hints(tp)
        fields = {f.name: f for f in dataclasses.fields(tp)}
        if set(value) - set(fields):
            raise fail(f"unknown keys {sorted(set(value) - set(fields))}")
        missing = [n for n, f in fields.items() if n not in value and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        if missing:
            raise fail(f"missing keys {missing}")
        return tp(**{k: _typed(hints[k], v, f"{where}.{k}") for k, v in value.items()})
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _typed(inner, value, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise fail(f"expected a list, got {type(value).__name__}")
        return tuple(_typed(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise fail(f"expected an object, got {type(value).__name__}")
        return {k: _typed(args[1], v, f"{where}.{k}") for k, v in value.items()}
    ok = {int: (int,), float: (int, float), str: (str,), bool: (bool,)}[tp]
    if not isinstance(value, ok) or (tp is not bool and isinstance(value, bool)):
        raise fail(f"expected {tp.__name__}, got {value!r}")
    return tp(value)


# --- the parts ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class NetxBundle:
    """What the ``loihi2`` target writes, before the host head: ``{part}.net`` files,
    ``host_readouts.npz`` and ``netx_manifest.json``; plus the program they came from."""

    files: dict[str, bytes]
    manifest: NetxManifest
    parts: tuple[NetxPart, ...]
    program: LavaProgram


def _synapses(program: LavaProgram) -> dict[tuple[str, str, int], SynapseParams]:
    """The program's synapse groups by (target, source, NIR delay)."""
    return {(s.dst, s.src, int(s.nir_delay)): s for s in program.synapses}


def _netx_weights(synapses: Mapping[tuple[str, str, int], SynapseParams], target: str, source: str,
                  delay: int) -> np.ndarray:
    syn = synapses.get((target, source, delay))
    if syn is None:
        raise LavaMappingError(f"{target}: no synapse group from {source!r} with delay {delay} in the program")
    if int(syn.weight_exp) != 0:
        raise LavaMappingError(f"{syn.name}: weight_exp {syn.weight_exp} cannot be written to a .net file "
                               f"(map the graph with NetxRule)")
    return np.asarray(syn.weights, np.int64)


def part_layers(program: LavaProgram, part: NetxPart) -> list[NetxLayer]:
    """The netx layers of one part, from a fixed-point program mapped with :class:`NetxRule`.

    A layer whose weights are a convolution of the previous (C, H, W) layer or Input
    (:func:`~hardware.netx.conv.shared_kernel`: exactly, a SumPool in front included) and whose
    bias is one per channel is written as a netx ``conv`` block with its shared kernel; the
    first conv of a part gets a shape-only ``input`` layer in front, the first dense after a
    conv a ``flatten``. Anything else (several inputs, delays, a conv after a dense layer, a
    per-position bias) stays a dense matrix: unrolled, as the resource report then says."""
    synapses = _synapses(program)
    chip = program.chip
    layers: list[NetxLayer] = []
    prev_conv = False
    for i, name in enumerate(part.layers):
        p = program.layers[name]
        if np.any(np.asarray(p.bias_exp) != NETX_BIAS_EXP):
            raise LavaMappingError(f"{name}: bias_exp must be {NETX_BIAS_EXP} for netx (map the graph with NetxRule)")
        src_shape = None
        if i == 0:
            blocks = [_netx_weights(synapses, name, s.source, s.delay) for s in part.slots]
            weight = np.hstack(blocks)
            delay = np.hstack([np.full(b.shape, s.delay, np.int64) for b, s in zip(blocks, part.slots)])
            delay = delay if np.any(delay) else None
            if len(part.slots) == 1 and delay is None:
                src = part.slots[0].source
                src_shape = chip.inputs[src] if src in chip.inputs else getattr(chip.neurons.get(src), "shape", None)
        else:
            weight, delay = _netx_weights(synapses, name, part.layers[i - 1], 0), None
            src_shape = chip.neurons[part.layers[i - 1]].shape if prev_conv else None
        neuron = cuba_neuron(p.du, p.dv, p.vth)
        bias = np.asarray(p.bias_mant, np.int64)
        shape = tuple(int(v) for v in getattr(chip.neurons[name], "shape", ()) or ())
        kernel = None
        if src_shape is not None and len(src_shape) == 3 and len(shape) == 3:
            per_channel = bias.reshape(shape[0], -1)
            if np.all(per_channel == per_channel[:, :1]):
                kernel = shared_kernel(weight, tuple(int(v) for v in src_shape), shape)
        if kernel is not None:
            if i == 0:
                layers.append(NetxLayer("input", tuple(int(v) for v in src_shape)))
            layers.append(NetxLayer("conv", shape, kernel.weight, per_channel[:, 0].copy(), None, neuron,
                                    stride=kernel.stride, padding=kernel.padding, dilation=(1, 1), groups=1))
            prev_conv = True
            continue
        if prev_conv:
            layers.append(NetxLayer("flatten", (int(weight.shape[1]),)))
        prev_conv = False
        layers.append(NetxLayer("dense", (int(chip.neurons[name].size),), weight, bias, delay, neuron))
    return layers


def netx_program(graph, dt: float | None = None, input_ranges: Mapping[str, float] | None = None,
                 rule: qr.QuantizationRule | None = None) -> LavaProgram:
    """The graph mapped to fixed point with :class:`NetxRule` (a NIR graph or a ChipGraph)."""
    lowered = graph if isinstance(graph, ChipGraph) else lower_graph(graph, dt)
    ranges = dict(input_ranges or {})
    return map_graph(lowered, fixed=True, rule=rule or NetxRule(), input_ranges=ranges)


def _part_entry(program: LavaProgram, part: NetxPart) -> PartEntry:
    lowered = program.chip
    bits = GRADED_MESSAGE_BITS if part.graded else 0
    layers = tuple(LayerEntry(n, lowered.neurons[n].size, tuple(lowered.neurons[n].shape), i + 1,
                              lowered.neurons[n].latency, program.layers[n].scale_exp, int(program.layers[n].du),
                              int(program.layers[n].dv), int(program.layers[n].vth))
                   for i, n in enumerate(part.layers))
    return PartEntry(part.name, f"{part.name}.net", layers, PartInput(part.input_size, part.graded, bits, part.slots),
                     part.output, len(part.layers), part.lead, NetxNetworkArgs(bits))


def _readouts(lowered: ChipGraph) -> tuple[dict[str, ReadoutEntry], dict[str, np.ndarray]]:
    """The NIR Outputs as host computations (float, the NIR's composed matrices) and their arrays."""
    arrays: dict[str, np.ndarray] = {}
    readouts = {}
    for name, r in lowered.readouts.items():
        size = int(np.prod(r.shape))
        arrays[f"{name}__bias"] = np.asarray(r.bias, np.float64).reshape(-1)
        terms = []
        if not r.direct:
            for t in r.terms:
                key = f"{name}__{t.source}__d{t.delay}"
                arrays[key] = np.eye(size) if t.matrix is None else np.asarray(t.matrix, np.float64)
                terms.append(ReadoutTerm(t.source, int(t.delay), key))
        readouts[name] = ReadoutEntry(tuple(r.shape), f"{name}__bias", tuple(terms), r.direct)
    return readouts, arrays


def export_netx(graph, input_ranges: Mapping[str, float], dt: float | None = None,
                n_steps: int | None = None) -> NetxBundle:
    """Partition, quantise (:class:`NetxRule`) and write a NIR graph as netx parts."""
    program = netx_program(graph, dt, input_ranges)
    lowered = program.chip
    parts = partition(lowered)
    files = {f"{part.name}.net": write_net(part_layers(program, part)) for part in parts}
    readouts, arrays = _readouts(lowered)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    files[READOUTS_NAME] = buffer.getvalue()
    encodings = program.encodings
    manifest = NetxManifest(
        dt=float(lowered.dt), n_steps=n_steps, rule=program.rule,
        inputs={n: InputSpec(tuple(shape), encodings[n].frac_bits, encodings[n].bits, encodings[n].max_abs)
                for n, shape in lowered.inputs.items()},
        parts=tuple(_part_entry(program, p) for p in parts),
        readouts=readouts, readout_arrays=READOUTS_NAME,
        graph=GraphInfo({n: layer.latency for n, layer in lowered.neurons.items()}, lowered.gap))
    files[MANIFEST_NAME] = manifest.to_json()
    return NetxBundle(files, manifest, parts, program)


__all__ = [
    "MANIFEST_NAME",
    "READOUTS_NAME",
    "GraphInfo",
    "HostHead",
    "InputSpec",
    "LayerEntry",
    "NetxBundle",
    "NetxManifest",
    "NetxNetworkArgs",
    "PartEntry",
    "PartInput",
    "ReadoutEntry",
    "ReadoutTerm",
    "export_netx",
    "netx_program",
    "part_layers",
]
