"""Running ``.net`` files on lava-dl's own ``netx.hdf5.Network`` (:func:`run_netx`, under the
watchdog) and the host side of a ``loihi2`` export (:func:`run_netx_bundle`).

How the host reassembles the parts (``netx_manifest.json``, :class:`~hardware.netx.bundle.NetxManifest`)
---------------------------------------------------------------------------------------------
Latency alignment moves from the chip to the host. A part's layer ``i`` (1-based) shows sample
step ``t`` of its input at recorded step ``t + i`` (each netx synapse delays one step, plus the
slot's ``d``); the host cuts every part's output back to the sample time base (removing its
latency), and feeds later parts' slots with these sample-aligned spikes. So the fusion layer's
audio and visual inputs arrive together although the encoders have 2 and 3 layers (what the
whole-graph mapping does on chip with a DelayDense of 1 + d on the shorter path). Batches are
laid out per part with :class:`~hardware.ir.layout.BatchLayout` (``lead`` = the part's largest
slot delay: the zeros in front of each sample play the gate's role; ``tail`` = the part's
latency); netx resets layer ``i`` at ``reset_offset + 1 + i``, so passing
``layout.reset_offset(0)`` resets every layer exactly at ``layout.reset_offset(i + 1)``, our
mapper's schedule. Readouts: ``r[t] = bias + sum_slots M @ spikes[t - d]`` on the host.
"""
from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hardware.errors import LavaMappingError
from hardware.ir.layout import BatchLayout
from hardware.isolation import DEFAULT_TIMEOUT_S, run_in_watchdog
from hardware.loihi import fixed_point as fp
from hardware.loihi.lava_runtime import drive, release_shared_memory
from hardware.netx.bundle import NetxManifest
from hardware.netx.format import NetxFormatError, read_net


@dataclass(frozen=True)
class NetxRun:
    """``spikes``: [num_steps, n_out] of the output layer (index ``i`` = Lava step ``i + 1``; input
    column ``t`` reaches layer ``j`` (1-based synaptic layer) at index ``t + j``);
    ``layer_spikes``/``voltages``: per layer index, when asked for (voltages: raw integer ``v``)."""

    spikes: np.ndarray
    layer_spikes: dict[int, np.ndarray]
    voltages: dict[int, np.ndarray]
    latency: int
    num_steps: int


def import_netx():
    """``lava.lib.dl.netx`` without its import-time chatter (a Prophesee toolbox notice on stdout,
    torch's CUDA notice on stderr)."""
    import contextlib

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        from lava.lib.dl import netx
    return netx


def _run_netx_child(path: str, data: np.ndarray, num_steps: int, input_message_bits: int,
                    reset_interval: int | None, reset_offset: int, record_layers: bool, record_v: bool,
                    skip_layers: int = 0):
    netx = import_netx()
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
    from lava.proc.io.source import RingBuffer
    from lava.proc.monitor.process import Monitor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = netx.hdf5.Network(net_config=path, input_message_bits=input_message_bits,
                                reset_interval=reset_interval, reset_offset=reset_offset, skip_layers=skip_layers)
    source = RingBuffer(data=np.asarray(data, np.int32))
    source.s_out.connect(net.inp)
    extractors = {"out": Extractor(shape=net.out.shape, buffer_size=256)}
    net.out.connect(extractors["out"].in_port)
    if record_layers:
        for i, layer in enumerate(net.layers):
            extractors[f"layer{i}"] = Extractor(shape=layer.out.shape, buffer_size=256)
            layer.out.connect(extractors[f"layer{i}"].in_port)
    monitors = {}
    if record_v:
        for i, layer in enumerate(net.layers):
            mon = Monitor()
            mon.probe(layer.neuron.v, num_steps)
            monitors[i] = (mon, layer.neuron)
    cfg = Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map={Extractor: PyLoihiExtractorModel})
    try:
        raw = drive(net, num_steps, cfg, extractors)
        volts = {i: np.rint(np.asarray(mon.get_data()[proc.name]["v"], np.float64)).astype(np.int64)
                 for i, (mon, proc) in monitors.items()}
    except BaseException:
        release_shared_memory(net)
        raise
    net.stop()
    spikes = {k: (v != 0).astype(np.uint8) for k, v in raw.items()}
    return spikes, volts


def run_netx(path: str | Path, input_spikes: np.ndarray, *, num_steps: int | None = None,
             input_message_bits: int = 0, reset_interval: int | None = None, reset_offset: int = 0,
             record_layers: bool = False, record_v: bool = False, skip_input: bool = False,
             timeout: float = DEFAULT_TIMEOUT_S) -> NetxRun:
    """Run a ``.net`` file with lava-dl's ``netx.hdf5.Network`` on ``Loihi2SimCfg`` (bit-accurate
    ``fixed_pt``) under the watchdog.

    ``input_spikes``: [steps, n_in] integers, time-major (column ``t`` is sent at Lava step
    ``t + 1``); binary unless ``input_message_bits > 0`` (graded). ``num_steps`` defaults to
    ``steps + latency``. ``reset_interval``/``reset_offset`` are netx's own (None: plain LIF).
    ``skip_input``: netx's ``skip_layers=1`` (an ``input`` layer with a neuron, as in
    ``tiny.net``, is not built: lava-dl 0.6's ``Input`` block has no model Lava 0.10 compiles).
    A conv chain's input is sent as Lava's (W, H, C) and its recordings come back flattened in
    our (C, H, W) order. The file is checked with :func:`read_net` first, the inputs against it."""
    net = read_net(path)
    x = np.asarray(input_spikes)
    if x.ndim != 2 or x.shape[1] != net.input_size:
        raise LavaMappingError(f"{path}: input must be [steps, {net.input_size}], got {x.shape}")
    if x.size and x.dtype.kind not in "biu" and (not np.all(np.isfinite(x)) or not np.all(x == np.round(x))):
        raise LavaMappingError(f"{path}: inputs must be integers (fixed point), got dtype {x.dtype}")
    x = x.astype(np.int64)
    if input_message_bits == 0:
        if x.size and (x.min() < 0 or x.max() > 1):
            raise LavaMappingError(f"{path}: binary spike input must be 0/1 (pass input_message_bits for graded "
                                   f"input), found values in [{x.min()}, {x.max()}]")
    elif not 0 < input_message_bits <= 24 or (x.size and np.abs(x).max() >= 2 ** (input_message_bits - 1)
                                                and input_message_bits < 24):
        raise LavaMappingError(f"{path}: graded input does not fit {input_message_bits} message bits")
    latency = net.latency
    steps = num_steps if num_steps is not None else x.shape[0] + latency
    if steps < 1:
        raise LavaMappingError(f"{path}: a run needs at least one step")
    data = np.zeros((x.shape[1], steps), np.int64)
    used = min(steps, x.shape[0])
    data[:, :used] = x[:used].T
    first = net.layers[0]
    if first.type == "input" and len(first.shape) == 3:  # netx's conv chains take (W, H, C) = our (C, H, W) reversed
        data = data.reshape(*first.shape, steps).transpose(2, 1, 0, 3)
    if record_v and net.output_size * steps * len(net.layers) > 4_000_000:
        raise LavaMappingError(f"{path}: record_v for {steps} steps is too large for Lava's Monitor")
    spikes, volts = run_in_watchdog(_run_netx_child, str(path), data, steps, int(input_message_bits),
                                    None if reset_interval is None else int(reset_interval), int(reset_offset),
                                    bool(record_layers), bool(record_v), int(bool(skip_input)), timeout=timeout)
    spikes = {k: _flat_chw(v) for k, v in spikes.items()}
    layer_spikes = {int(k[5:]): v for k, v in spikes.items() if k.startswith("layer")}
    return NetxRun(spikes["out"], layer_spikes, volts, latency, steps)


def _flat_chw(recorded: np.ndarray) -> np.ndarray:
    """``[steps, *lava_shape]`` -> ``[steps, n]``: a (W, H, C) recording of a conv layer is
    flattened in our (C, H, W) order (every other layer is 1-d already)."""
    if recorded.ndim == 4:
        recorded = recorded.transpose(0, 3, 2, 1)
    return recorded.reshape(recorded.shape[0], -1)



@dataclass(frozen=True)
class NetxBundleResult:
    """``outputs[readout]``: [T, B, *shape] (host readouts); ``spikes[layer]``: [T, B, *shape]."""

    outputs: dict[str, np.ndarray]
    spikes: dict[str, np.ndarray]


def _delayed(x: np.ndarray, d: int) -> np.ndarray:
    """x [T, B, n] -> x[t - d] with zeros before the sample."""
    if d == 0:
        return x
    out = np.zeros_like(x)
    if d < x.shape[0]:
        out[d:] = x[:-d]
    return out


def run_netx_bundle(folder: str | Path, inputs: Mapping[str, np.ndarray],
                    timeout: float = DEFAULT_TIMEOUT_S, runner: Callable | None = None) -> NetxBundleResult:
    """Reassemble a ``loihi2`` export on the host: run every ``.net`` part with :func:`run_netx`
    (``runner``, same signature, to substitute), wire the parts and compute the readouts as
    ``netx_manifest.json`` describes. ``inputs[name]``: [T, B, *shape] floats."""
    folder = Path(folder)
    manifest = NetxManifest.read(folder)
    runner = runner or run_netx
    encoded, sizes = {}, set()
    for name, spec in manifest.inputs.items():
        if name not in inputs:
            raise LavaMappingError(f"missing input {name!r}")
        x = np.asarray(inputs[name], np.float64)
        if x.shape[2:] != spec.shape or x.ndim != 2 + len(spec.shape):
            raise LavaMappingError(f"input {name!r}: expected [T, B, *{spec.shape}], got {x.shape}")
        enc = fp.InputEncoding(name, frac_bits=spec.frac_bits, bits=spec.bits, max_abs=spec.max_abs)
        encoded[name] = enc.encode(x.reshape(x.shape[0], x.shape[1], -1))
        sizes.add(x.shape[:2])
    if len(sizes) != 1:
        raise LavaMappingError(f"all inputs need the same [T, B], got {sorted(sizes)}")
    (steps, batch), = sizes
    spikes: dict[str, np.ndarray] = {}
    for part in manifest.parts:
        layout = BatchLayout(steps, batch, lead=part.lead, tail=part.latency)
        x = np.zeros((layout.total, part.input.size), np.int64)
        for slot in part.input.slots:
            src = encoded[slot.source] if slot.kind == "input" else spikes[slot.source]
            x[:, slot.offset:slot.offset + slot.size] = layout.place(src, 0, np.int64)
        run = runner(folder / part.file, x, num_steps=layout.total, input_message_bits=part.input.message_bits,
                     reset_interval=layout.period, reset_offset=layout.reset_offset(0), record_layers=True,
                     timeout=timeout)
        for i, layer in enumerate(part.layers):  # layer i (0-based) has latency i + 1 in its part
            spikes[layer.name] = layout.windows(run.layer_spikes[i], i + 1).astype(np.int64)

    def values(src: str) -> np.ndarray:
        if src in spikes:
            return np.asarray(spikes[src], np.float64)
        return encoded[src] * 2.0 ** -manifest.inputs[src].frac_bits

    try:
        with np.load(folder / manifest.readout_arrays) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise NetxFormatError(f"{folder / manifest.readout_arrays}: cannot be read ({exc})") from None
    outputs = {}
    for name, r in manifest.readouts.items():
        if r.direct:
            outputs[name] = values(r.direct).reshape((steps, batch, *r.shape))
            continue
        bias = arrays[r.bias]
        total = np.zeros((steps, batch, bias.size)) + bias
        for t in r.terms:
            total = total + _delayed(values(t.source), t.delay) @ arrays[t.matrix].T
        outputs[name] = total.reshape((steps, batch, *r.shape))
    shapes = {layer.name: layer.shape for part in manifest.parts for layer in part.layers}
    return NetxBundleResult(outputs, {k: v.astype(np.uint8).reshape((steps, batch, *shapes[k]))
                                      for k, v in spikes.items()})


__all__ = ["NetxBundleResult", "NetxRun", "import_netx", "run_netx", "run_netx_bundle"]
