"""lava-dl netx ``.net`` files: our reader, our writer for the chain-shaped parts of a graph,
the runner on lava-dl's own ``netx.hdf5.Network``, and the ``lava`` / ``loihi2`` export targets.

The format (lava-dl 0.6 ``netx/hdf5.py`` + ``slayer`` ``export_hdf5``)
--------------------------------------------------------------------
An HDF5 file with one group per layer, ``layer/0``, ``layer/1``, ... in chain order (netx builds
a chain: layer ``i`` feeds layer ``i + 1``, nothing else). Per layer:

* ``type``: ``input`` | ``dense`` | ``dense_rec`` | ``conv`` | ``flatten`` (bytes, slayer writes
  an ``S10`` array of one element); ``shape``: the neurons, ``(n,)`` or ``(C, H, W)``;
* ``dense``: ``weight`` [n_out, n_in] (slayer writes float32 holding integers; netx casts them
  with ``astype(int)``), optional ``bias`` [n_out] (netx: LIF ``bias_mant``, with a fixed
  ``bias_exp = 6``), optional ``delay`` (scalar, [n_out] axonal, [n_in] per input, or
  [n_out, n_in]; netx then builds a ``DelayDense`` with delays <= 62);
* ``conv``: ``weight`` [out, in/groups, kh, kw, 1], ``stride``/``padding``/``dilation``/``groups``;
* ``neuron/``: ``type`` (``CUBA``; ``LOIHI`` is the same model), ``iDecay``, ``vDecay``,
  ``vThMant``, ``refDelay``, ``gradedSpike``. netx makes a Lava ``LIF`` (``LIFReset`` with a
  reset interval) with ``du = iDecay - 1``, ``dv = vDecay``, ``vth = vThMant``,
  ``bias_exp = 6``;
* netx derives each layer's weight exponent itself (``utils.optimize_weight_bits``): it scales
  the integer weights up and uses a negative exponent that undoes the scaling, so the synaptic
  input of a netx layer is exactly ``W_file @ x`` (checked by ``tests/test_netx.py``). A file
  therefore cannot carry a weight exponent.

:func:`read_net` is our reader: every structural problem (missing file, not HDF5, missing or
mistyped keys, wrong shapes, values netx would silently truncate or clip, unknown layer or
neuron types) is a :class:`NetxFormatError` naming the file, the layer and the key. It is run
before anything is handed to Lava, which hangs instead of raising when a process fails.

Our LIF as a netx CUBA neuron, and the netx quantisation rule
--------------------------------------------------------------
Our mapper's LIF has ``du = 4095`` (the current forgets everything each step, Lava adds
Loihi's 1-bit offset: decay 4096), so ``iDecay = du + 1 = 4096`` (what slayer writes for
``current_decay = 1``); ``vDecay = dv``; ``vThMant = vth``. Two registers of our default
:class:`~hardware.loihi.fixed_point.PowerOfTwoRule` cannot be written to a ``.net`` file: the
per-synapse-group ``weight_exp`` (netx has none; a negative one even floors the summed input,
which no integer matrix reproduces) and the per-neuron ``bias_exp`` (netx fixes it at 6).
:class:`NetxRule` is the PowerOfTwoRule with these two pinned (``weight_exp = 0``,
``bias_exp = 6``): the same search for the largest power-of-two layer scale and the same
checks (threshold, 24-bit current, vanishing weights), only over the register sets a ``.net``
file can hold. The ``loihi2`` target maps the graph with it, so the ``.net`` files, our Lava
mapping (:func:`~hardware.loihi.program.map_graph` with ``rule=NetxRule()``) and
the emulator (:mod:`hardware.loihi.emulator`) are the same integer network, spike for
spike. The ``lava`` target keeps the default rule (finer weights and biases).

Partition of a graph into netx chains (:func:`partition`)
-----------------------------------------------------------
netx builds chains only; a lowered graph (:func:`~hardware.ir.lower.lower_graph`) is
split into **parts**: a neuron layer continues the part of its source when it has exactly one
term, with no delay, from a neuron layer that ends a part and feeds no other neuron layer;
otherwise it starts a new part whose **input** is the concatenation of its terms' *slots*
``(source, NIR delay d)`` (an Input's values, or the spikes of a layer of an earlier part).
The ``.net`` file of such a part has one weight block per slot (``W = [W_1 W_2 ...]``: a dense
layer on concatenated inputs is exactly the fan-in of several synapse groups) and, when any
``d > 0``, a ``delay`` matrix holding ``d`` for every column of the slot. Readouts (NIR
Outputs: synapses without neurons) are not chains: the host computes them from the parts'
output spikes (``host_readouts.npz``, float, the NIR's composed matrices).

For TAAF (``audio_input -> audio_lif0 -> audio_lif1``, ``visual_input -> visual_lif0..2``,
time-warped fusion) this gives three files::

    audio.net   input audio_input (graded, 9-bit)  -> audio_lif0 -> audio_lif1
    visual.net  input visual_input (graded, 9-bit) -> visual_lif0 -> visual_lif1 -> visual_lif2
                (convolutions unrolled to dense matrices, as our Lava mapper does)
    fusion.net  input [audio_lif1 @ d for each warp tap d] + [visual_lif2 @ d ...] -> fusion_lif
                (one input copy of the source per tap: a netx synapse has one delay)

How the host reassembles them (:func:`run_netx_bundle`, ``netx_manifest.json``)
-------------------------------------------------------------------------------
Latency alignment moves from the chip to the host. A part's layer ``i`` (1-based) shows sample
step ``t`` of its input at recorded step ``t + i`` (each netx synapse delays one step, plus the
slot's ``d``); the host cuts every part's output back to the sample time base (removing its
latency), and feeds later parts's slots with these sample-aligned spikes. So the fusion layer's
audio and visual inputs arrive together although the encoders have 2 and 3 layers (what the
whole-graph mapping does on chip with a DelayDense of 1 + d on the shorter path). Batches are
laid out per part: sample ``b`` occupies input steps ``[b P + G, b P + G + T)`` with
``G`` = the part's largest slot delay (the zeros in front play the gate's role) and
``P = T + G``; netx resets every layer with ``reset_interval = P``, ``reset_offset = G + 1``
(netx adds one per layer), which is our mapper's reset schedule. Readouts:
``r[t] = bias + sum_slots M @ spikes[t - d]`` on the host, then ``host_head.onnx``.
"""
from __future__ import annotations

import dataclasses
import io
import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hardware.loihi import FixedPointRangeError, LavaError, LavaMappingError
from hardware.loihi import fixed_point as fp
from hardware.ir import ChipGraph, lower_graph
from hardware.isolation import DEFAULT_TIMEOUT_S, run_in_watchdog
from hardware.loihi.lava_runtime import drive, release_shared_memory
from hardware.loihi.program import LavaProgram, map_graph

NETX_BIAS_EXP = 6  # netx passes bias_exp = 6 to every LIF
NETX_MAX_DELAY = 62  # netx clamps larger delays (DelayDense max_delay = 62)
GRADED_MESSAGE_BITS = 24  # graded input messages (as in our mapper)
LAYER_TYPES = ("input", "dense", "dense_rec", "conv", "flatten")
UNBUILT_LAYER_TYPES = ("pool", "convT", "unpool", "average", "concat", "dense_comp")  # netx raises
NEURON_TYPES = ("CUBA", "LOIHI", "SDNN")
MANIFEST_NAME = "netx_manifest.json"
READOUTS_NAME = "host_readouts.npz"


class NetxFormatError(LavaError):
    """A ``.net`` file that is missing, unreadable or not what netx can build; the message names
    the file, the layer and the key."""


# --- the format ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class NetxNeuron:
    """``layer/i/neuron``: ``type`` and the CUBA registers (None where the file has none)."""

    type: str
    i_decay: int | None = None
    v_decay: int | None = None
    vth_mant: int | None = None
    ref_delay: int = 1
    graded_spike: bool = False
    extra: Mapping[str, object] = field(default_factory=dict)  # other keys (theta, scaleRho, ...)

    @property
    def du(self) -> int:
        """Lava's ``du`` register (netx: ``iDecay - 1``)."""
        return int(self.i_decay) - 1


@dataclass(frozen=True)
class NetxLayer:
    """One ``layer/i`` group. ``weight``: dense [n_out, n_in] / conv [out, in/groups, kh, kw]
    integers; ``delay``: dense [n_out, n_in] integers (expanded as netx does) or None."""

    type: str
    shape: tuple[int, ...]
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    delay: np.ndarray | None = None
    neuron: NetxNeuron | None = None
    weight_rec: np.ndarray | None = None
    stride: tuple[int, ...] = ()
    padding: tuple[int, ...] = ()
    dilation: tuple[int, ...] = ()
    groups: int = 1

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 0

    @property
    def synaptic(self) -> bool:
        """A layer with synapses in front of its neurons (one Lava step of latency)."""
        return self.type in ("dense", "dense_rec", "conv")


@dataclass(frozen=True)
class NetxNetwork:
    path: str
    layers: tuple[NetxLayer, ...]
    simulation: Mapping[str, object] = field(default_factory=dict)

    @property
    def input_size(self) -> int:
        first = self.layers[0]
        if first.type == "input":
            return first.size
        if first.type in ("dense", "dense_rec"):
            return int(first.weight.shape[1])
        raise NetxFormatError(f"{self.path}: the input size of a network starting with {first.type!r} "
                              f"is not stored in the file")

    @property
    def output_size(self) -> int:
        return self.layers[-1].size

    @property
    def latency(self) -> int:
        """Steps from an input column to the output layer's spike (one per synaptic layer)."""
        return sum(1 for layer in self.layers if layer.synaptic)


class _Reader:
    """Reads one HDF5 handle with messages that name the file, the layer and the key."""

    def __init__(self, label: str):
        self.label = label

    def fail(self, where: str, msg: str) -> NetxFormatError:
        return NetxFormatError(f"{self.label}: {where}: {msg}" if where else f"{self.label}: {msg}")

    def dataset(self, group, key: str, where: str, required: bool = True):
        import h5py

        if key not in group:
            if required:
                raise self.fail(f"{where}/{key}", "missing (required key)")
            return None
        obj = group[key]
        if not isinstance(obj, h5py.Dataset):
            raise self.fail(f"{where}/{key}", f"expected a dataset, found a {type(obj).__name__}")
        try:
            return obj[()]
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise self.fail(f"{where}/{key}", f"cannot be read ({exc}); truncated or corrupt file?") from None

    def string(self, group, key: str, where: str, required: bool = True) -> str | None:
        v = self.dataset(group, key, where, required)
        if v is None:
            return None
        if isinstance(v, np.ndarray):
            if v.size != 1 or v.dtype.kind not in "SUO":
                raise self.fail(f"{where}/{key}", f"expected one string, got dtype {v.dtype} shape {v.shape}")
            v = v.reshape(-1)[0]
        if isinstance(v, bytes):
            try:
                return v.decode("ascii")
            except UnicodeDecodeError:
                raise self.fail(f"{where}/{key}", f"not an ASCII string ({v[:20]!r})") from None
        if isinstance(v, str):
            return v
        raise self.fail(f"{where}/{key}", f"expected a string, got {type(v).__name__} {v!r}")

    def ints(self, group, key: str, where: str, required: bool = True) -> np.ndarray | None:
        v = self.dataset(group, key, where, required)
        if v is None:
            return None
        a = np.asarray(v)
        if a.dtype.kind not in "biuf":
            raise self.fail(f"{where}/{key}", f"expected numbers, got dtype {a.dtype}")
        if a.dtype.kind == "f":
            if not np.all(np.isfinite(a)):
                raise self.fail(f"{where}/{key}", "contains NaN or infinity")
            if not np.all(a == np.round(a)):
                bad = a[a != np.round(a)].reshape(-1)[0]
                raise self.fail(f"{where}/{key}", f"must hold integers (netx truncates them with astype(int)); "
                                                  f"found {bad!r}")
        return a.astype(np.int64)

    def int_scalar(self, group, key: str, where: str, required: bool = True,
                   lo: int | None = None, hi: int | None = None) -> int | None:
        a = self.ints(group, key, where, required)
        if a is None:
            return None
        if a.size != 1:
            raise self.fail(f"{where}/{key}", f"expected one number, got shape {a.shape}")
        v = int(a.reshape(-1)[0])
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise self.fail(f"{where}/{key}", f"= {v} is outside [{lo}, {hi}]")
        return v


def _conv_out(n: int, k: int, s: int, p: int, d: int) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _check_weight_range(rd: _Reader, where: str, w: np.ndarray) -> None:
    """What netx's ``optimize_weight_bits`` keeps exactly (else it clips, or fails)."""
    if w.size == 0:
        raise rd.fail(where, "is empty")
    lo, hi = int(w.min()), int(w.max())
    if lo == 0 and hi == 0:
        raise rd.fail(where, "is all zeros (netx's optimize_weight_bits divides by the largest weight)")
    if hi > 255 or lo < -256 or (lo < 0 < hi and hi > 254) or (hi <= 0 and lo < -255):
        raise rd.fail(where, f"values in [{lo}, {hi}] do not fit Loihi's 8-bit synapses; netx would clip them "
                             f"(mixed-sign weights must lie in [-256, 254], one-sign ones in [-255, 255])")


def _parse_neuron(rd: _Reader, group, where: str) -> NetxNeuron:
    import h5py

    if not isinstance(group, h5py.Group):
        raise rd.fail(where, "expected a group of neuron parameters")
    ntype = rd.string(group, "type", where)
    if "RF" in ntype:
        raise rd.fail(f"{where}/type", f"neuron type {ntype!r} (resonate-and-fire) is not supported by this reader")
    if ntype not in NEURON_TYPES:
        raise rd.fail(f"{where}/type", f"unknown neuron type {ntype!r} (known: {', '.join(NEURON_TYPES)})")
    cuba = ntype in ("CUBA", "LOIHI")
    i_decay = rd.int_scalar(group, "iDecay", where, required=cuba, lo=0, hi=4096)
    v_decay = rd.int_scalar(group, "vDecay", where, required=cuba, lo=0, hi=4096)
    vth = rd.int_scalar(group, "vThMant", where, required=cuba, lo=0, hi=2 ** 24 - 1)
    ref = rd.int_scalar(group, "refDelay", where, required=False, lo=0)
    graded = rd.ints(group, "gradedSpike", where, required=False)
    known = {"type", "iDecay", "vDecay", "vThMant", "refDelay", "gradedSpike"}
    extra = {}
    for key in group:
        if key not in known and isinstance(group[key], h5py.Dataset):
            extra[key] = rd.dataset(group, key, where)
    return NetxNeuron(ntype, i_decay, v_decay, vth, 1 if ref is None else ref,
                      bool(graded.reshape(-1)[0]) if graded is not None and graded.size else False, extra)


def _expand_delay(rd: _Reader, where: str, delay: np.ndarray, n_out: int, n_in: int) -> np.ndarray:
    """netx's interpretation of a ``delay`` dataset -> [n_out, n_in]."""
    d = np.asarray(delay, np.int64)
    if d.size and (d.min() < 0 or d.max() > NETX_MAX_DELAY):
        raise rd.fail(where, f"delays must lie in [0, {NETX_MAX_DELAY}] (netx clamps larger ones), found "
                             f"[{d.min()}, {d.max()}]")
    if d.ndim == 0 or d.size == 1 and d.ndim <= 1:
        return np.full((n_out, n_in), int(d.reshape(-1)[0]), np.int64)
    if d.ndim == 1:
        if d.size == n_out:
            return np.repeat(d.reshape(-1, 1), n_in, axis=1)
        if d.size == n_in:
            return np.repeat(d.reshape(1, -1), n_out, axis=0)
        raise rd.fail(where, f"shape {d.shape} fits neither the {n_out} outputs nor the {n_in} inputs")
    if d.shape != (n_out, n_in):
        raise rd.fail(where, f"shape {d.shape} does not match the weights [{n_out}, {n_in}]")
    return d


def _parse(handle, label: str) -> NetxNetwork:
    import h5py

    rd = _Reader(label)
    if "layer" not in handle or not isinstance(handle["layer"], h5py.Group):
        raise rd.fail("", "no 'layer' group (a netx .net file has layer/0, layer/1, ...)")
    group = handle["layer"]
    keys = list(group.keys())
    if not keys:
        raise rd.fail("layer", "has no layers")
    if sorted(keys, key=lambda k: (len(k), k)) != [str(i) for i in range(len(keys))]:
        raise rd.fail("layer", f"layers must be numbered 0..{len(keys) - 1}, found {sorted(keys)[:8]}")
    layers: list[NetxLayer] = []
    prev_shape: tuple[int, ...] | None = None  # output shape of the previous layer
    for i in range(len(keys)):
        where = f"layer/{i}"
        g = group[str(i)]
        if not isinstance(g, h5py.Group):
            raise rd.fail(where, "expected a group")
        ltype = rd.string(g, "type", where)
        if ltype in UNBUILT_LAYER_TYPES:
            raise rd.fail(f"{where}/type", f"layer type {ltype!r} is not built by netx (it raises NotImplementedError)")
        if ltype not in LAYER_TYPES:
            raise rd.fail(f"{where}/type", f"unknown layer type {ltype!r} (known: {', '.join(LAYER_TYPES)})")
        shape_a = rd.ints(g, "shape", where, required=ltype != "flatten")
        shape = () if shape_a is None else tuple(int(s) for s in shape_a.reshape(-1))
        if shape_a is not None and (shape_a.ndim != 1 or not shape or min(shape) < 1):
            raise rd.fail(f"{where}/shape", f"expected positive sizes, got {shape_a.tolist()}")
        neuron = None
        if "neuron" in g:
            neuron = _parse_neuron(rd, g["neuron"], f"{where}/neuron")
        if ltype == "input":
            for key in ("weight", "bias"):
                v = rd.ints(g, key, where, required=False)
                if v is not None and v.size != 1:
                    raise rd.fail(f"{where}/{key}", f"the input transform takes one number, got shape {v.shape}")
            layers.append(NetxLayer("input", shape, neuron=neuron))
            prev_shape = shape
            continue
        if ltype == "flatten":
            layers.append(NetxLayer("flatten", shape if shape else (prev_shape or ())))
            if prev_shape is not None:
                prev_shape = (int(np.prod(prev_shape)),)
            continue
        if neuron is None and ltype == "conv":
            raise rd.fail(f"{where}/neuron", "missing (required key for a conv layer)")
        n_out = int(np.prod(shape))
        weight = rd.ints(g, "weight", where)
        if ltype in ("dense", "dense_rec"):
            if weight.ndim == 1 and weight.size % n_out == 0:
                weight = weight.reshape(n_out, -1)
            if weight.ndim != 2 or weight.shape[0] != n_out:
                raise rd.fail(f"{where}/weight", f"shape {weight.shape} does not match the layer's {n_out} neurons "
                                                 f"(expected [{n_out}, n_in])")
            n_in = weight.shape[1]
            if prev_shape is not None and int(np.prod(prev_shape)) != n_in:
                raise rd.fail(f"{where}/weight", f"has {n_in} inputs but the previous layer has "
                                                 f"{int(np.prod(prev_shape))} outputs")
            _check_weight_range(rd, f"{where}/weight", weight)
            weight_rec = None
            if ltype == "dense_rec":
                weight_rec = rd.ints(g, "weight_rec", where)
                if weight_rec.ndim == 1 and weight_rec.size == n_out * n_out:
                    weight_rec = weight_rec.reshape(n_out, n_out)
                if weight_rec.shape != (n_out, n_out):
                    raise rd.fail(f"{where}/weight_rec", f"shape {weight_rec.shape}, expected [{n_out}, {n_out}]")
            delay = rd.ints(g, "delay", where, required=False)
            if delay is not None:
                delay = _expand_delay(rd, f"{where}/delay", delay, n_out, n_in)
            extra = {}
        else:  # conv
            if weight.ndim == 5 and weight.shape[-1] == 1:
                weight = weight[..., 0]
            if weight.ndim != 4:
                raise rd.fail(f"{where}/weight", f"a conv weight is [out, in/groups, kh, kw(, 1)], got shape {weight.shape}")
            groups = rd.int_scalar(g, "groups", where, required=False, lo=1)
            groups = 1 if groups is None else groups
            vals = {}
            for key, default in (("stride", 1), ("padding", 0), ("dilation", 1)):
                v = rd.ints(g, key, where, required=False)
                v = np.array([default, default]) if v is None else v.reshape(-1)
                if v.size == 1:
                    v = np.repeat(v, 2)
                if v.size != 2 or v.min() < (0 if key == "padding" else 1):
                    raise rd.fail(f"{where}/{key}", f"expected two {'non-negative' if key == 'padding' else 'positive'} "
                                                    f"numbers, got {v.tolist()}")
                vals[key] = tuple(int(x) for x in v)
            if len(shape) != 3 or weight.shape[0] != shape[0]:
                raise rd.fail(f"{where}/weight", f"{weight.shape[0]} output channels do not match shape {list(shape)}")
            if prev_shape is not None:
                if len(prev_shape) != 3 or prev_shape[0] != weight.shape[1] * groups:
                    raise rd.fail(f"{where}/weight", f"{weight.shape[1]} x {groups} input channels do not match the "
                                                     f"previous layer's shape {list(prev_shape)}")
                expect = tuple(_conv_out(prev_shape[1 + a], weight.shape[2 + a], vals["stride"][a],
                                         vals["padding"][a], vals["dilation"][a]) for a in range(2))
                if expect != tuple(shape[1:]):
                    raise rd.fail(f"{where}/shape", f"{list(shape)} but the convolution of {list(prev_shape)} gives "
                                                    f"{[shape[0], *expect]}")
            _check_weight_range(rd, f"{where}/weight", weight)
            delay, weight_rec = None, None
            extra = {"stride": vals["stride"], "padding": vals["padding"], "dilation": vals["dilation"],
                     "groups": groups}
        bias = rd.ints(g, "bias", where, required=False)
        if bias is not None:
            bias = bias.reshape(-1)
            ok = bias.size == n_out or (ltype == "conv" and bias.size == shape[0])
            if not ok:
                raise rd.fail(f"{where}/bias", f"has {bias.size} values for {n_out} neurons")
        layers.append(NetxLayer(ltype, shape, weight, bias, delay, neuron, weight_rec, **extra))
        prev_shape = shape
    simulation = {}
    if "simulation" in handle and isinstance(handle["simulation"], h5py.Group):
        for key in handle["simulation"]:
            simulation[key] = rd.dataset(handle["simulation"], key, "simulation")
    if not any(layer.synaptic for layer in layers):
        raise rd.fail("layer", "has no dense or conv layer")
    return NetxNetwork(label, tuple(layers), simulation)


def read_net(source: str | Path | bytes) -> NetxNetwork:
    """Read and check a ``.net`` file (a path, or the file's bytes) -> :class:`NetxNetwork`.

    Raises :class:`NetxFormatError` naming the file, layer and key for anything netx could not
    build or would silently change."""
    import h5py

    if isinstance(source, (bytes, bytearray)):
        label, target = "<.net bytes>", io.BytesIO(bytes(source))
        if not bytes(source[:8]) == b"\x89HDF\r\n\x1a\n":
            raise NetxFormatError(f"{label}: not an HDF5 file (a netx .net file is HDF5)")
    else:
        path = Path(source)
        label = str(path)
        if not path.exists():
            raise NetxFormatError(f"{label}: no such .net file")
        if not path.is_file():
            raise NetxFormatError(f"{label}: not a file")
        try:
            is_hdf5 = h5py.is_hdf5(str(path))
        except OSError as exc:
            raise NetxFormatError(f"{label}: cannot be read ({exc.strerror or exc})") from None
        if not is_hdf5:
            raise NetxFormatError(f"{label}: not an HDF5 file (a netx .net file is HDF5)")
        target = str(path)
    try:
        handle = h5py.File(target, "r")
    except OSError as exc:
        raise NetxFormatError(f"{label}: cannot be read as HDF5, truncated or corrupt ({str(exc)[:160]})") from None
    try:
        with handle:
            return _parse(handle, label)
    except NetxFormatError:
        raise
    except (OSError, RuntimeError, KeyError) as exc:  # h5py reading a damaged file lazily
        raise NetxFormatError(f"{label}: cannot be read, truncated or corrupt ({str(exc)[:160]})") from None


# --- the writer ---------------------------------------------------------------------------------

def cuba_neuron(du: int, dv: int, vth: int) -> NetxNeuron:
    """Our LIF registers as netx's CUBA neuron (``iDecay = du + 1``: 4096 for a current-free LIF)."""
    fp.QuantizedLIF("netx", du=int(du), dv=int(dv), vth=int(vth), bias_mant=np.zeros(1, np.int64),
                    bias_exp=np.zeros(1, np.int64))
    return NetxNeuron("CUBA", int(du) + 1, int(dv), int(vth), 1, False)


def write_net(layers: Sequence[NetxLayer], path: str | Path | None = None) -> bytes:
    """Write a chain of ``dense`` layers as a ``.net`` file (slayer's layout: float32 integer
    weights/biases/delays, ``S10`` layer types, a CUBA ``neuron`` group); returns the bytes and
    writes them to ``path`` when given. The result is read back with :func:`read_net`, so a file
    this function returns is one our reader (and netx) accepts."""
    import h5py

    if not layers:
        raise NetxFormatError("write_net: no layers")
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h:
        group = h.create_group("layer")
        for i, layer in enumerate(layers):
            if layer.type != "dense":
                raise NetxFormatError(f"write_net: layer {i}: only dense layers are written, got {layer.type!r}")
            if layer.neuron is None or layer.neuron.type != "CUBA":
                raise NetxFormatError(f"write_net: layer {i}: needs a CUBA neuron")
            w = np.asarray(layer.weight)
            if w.ndim != 2 or w.dtype.kind not in "iu" or w.shape[0] != layer.size:
                raise NetxFormatError(f"write_net: layer {i}: weights must be integers [{layer.size}, n_in], "
                                      f"got {w.dtype} {w.shape}")
            if np.abs(w).max(initial=0) >= 2 ** 24:
                raise NetxFormatError(f"write_net: layer {i}: weights do not fit float32 exactly")
            g = group.create_group(str(i))
            g.create_dataset("type", (1,), "S10", [b"dense"])
            g.create_dataset("shape", data=np.array(layer.shape, np.int64))
            g.create_dataset("inFeatures", data=np.int64(w.shape[1]))
            g.create_dataset("outFeatures", data=np.int64(w.shape[0]))
            g.create_dataset("weight", data=w.astype(np.float32))
            if layer.bias is not None:
                g.create_dataset("bias", data=np.asarray(layer.bias, np.int64).astype(np.float32))
            if layer.delay is not None and np.any(layer.delay):
                g.create_dataset("delay", data=np.asarray(layer.delay, np.int64).astype(np.float32))
            n = layer.neuron
            g.create_dataset("neuron/type", data="CUBA")
            g.create_dataset("neuron/iDecay", data=np.int64(n.i_decay))
            g.create_dataset("neuron/vDecay", data=np.int64(n.v_decay))
            g.create_dataset("neuron/vThMant", data=np.int64(n.vth_mant))
            g.create_dataset("neuron/refDelay", data=np.int64(n.ref_delay))
            g.create_dataset("neuron/gradedSpike", data=bool(n.graded_spike))
    data = buffer.getvalue()
    read_net(data)  # everything we write must pass our own reader
    if path is not None:
        Path(path).write_bytes(data)
    return data


# --- the netx quantisation rule -------------------------------------------------------------

@dataclass(frozen=True)
class NetxRule(fp.PowerOfTwoRule):
    """:class:`~hardware.loihi.fixed_point.PowerOfTwoRule` restricted to what a ``.net`` file
    holds: every synapse group's ``weight_exp`` is 0 (so the largest layer scale is the one at
    which the largest weight group still fits 8-bit mantissas; all groups into a layer share
    it) and every bias uses ``bias_exp = 6`` with a 13-bit mantissa (``max_scale`` is the
    internal cap used when a bias does not fit at a larger scale).

    ``input_bits`` defaults to 9 (the default rule: 12). With ``weight_exp`` pinned, the 24-bit
    current bound fixes a layer's scale ``s`` and ties the first layer's weight mantissa bits
    ``k`` to the input's fractional bits ``q``: ``k + q = s - 7``; 12-bit inputs left the
    first-layer mantissas at 4-5 bits. Measured on the trained AV-Digits checkpoint (200 test
    samples, spike agreement with the float reference, audio_lif0 / visual_lif0 / fusion_lif):
    12 bits 0.963 / 0.951 / 0.889, 10 bits 0.985 / 0.984 / 0.907, 9 bits 0.982 / 0.990 / 0.908,
    8 bits 0.969 / 0.991 / 0.902 (default rule, 12 bits: 0.996 / 0.993 / 0.927)."""

    name: str = "netx-power-of-two"
    input_bits: int = 9
    max_scale: int | None = field(default=None, repr=False)

    def _search_top(self, terms, shift):
        top = super()._search_top(terms, shift)
        return top if self.max_scale is None else min(top, self.max_scale)

    def _synapses(self, layer, terms, s, shift):
        out = []
        for term in terms:
            w = np.asarray(term.weights, np.float64)
            k = s - shift - 1 - term.frac_bits  # the mantissa exponent with weight_exp pinned at 0
            m = np.rint(w * 2.0 ** k)
            if np.abs(m).max(initial=0.0) > fp.MANTISSA_MAX:
                return None
            out.append(fp.QuantizedSynapses(f"{layer}<-{term.name}", 2 * m.astype(np.int64), weight_exp=0,
                                            sign_mode=fp.SignMode.MIXED))
        return out

    def layer(self, layer, terms, neuron, gated=False):
        cap = self.max_scale
        while True:
            q = fp.PowerOfTwoRule.layer(dataclasses.replace(self, max_scale=cap), layer, terms, neuron, gated)
            mant = np.rint(np.asarray(neuron.bias, np.float64) * 2.0 ** (q.scale_exp - NETX_BIAS_EXP))
            if mant.size == 0 or (mant.min() >= fp.BIAS_MANT_MIN and mant.max() <= fp.BIAS_MANT_MAX):
                lif = fp.QuantizedLIF(layer, du=q.lif.du, dv=q.lif.dv, vth=q.lif.vth,
                                      bias_mant=mant.astype(np.int64),
                                      bias_exp=np.full(mant.shape, NETX_BIAS_EXP, np.int64))
                out = fp.QuantizedLayer(layer, q.scale_exp, lif, q.synapses, q.activation_pos, q.activation_neg)
                if not gated or _gate_fits(out):
                    return out
            cap = q.scale_exp - 1


def _gate_fits(layer: fp.QuantizedLayer) -> bool:
    """The batch gate's inhibition (computed from the final bias) still cannot wrap ``u``."""
    try:
        syn = fp.gate_synapses(layer)
    except FixedPointRangeError:
        return False
    worst = fp.u_bound(layer.activation_neg - syn.weights[:, 0] * 2.0 ** syn.weight_exp, layer.lif.du)
    return float(worst.max(initial=0.0)) < fp.UV_MAX


# --- partition into chains --------------------------------------------------------------------

@dataclass(frozen=True)
class Slot:
    """A block of a part's input: ``source`` (an Input, or a neuron layer of an earlier part)
    delayed by ``delay`` NIR steps, at columns ``[offset, offset + size)``."""

    source: str
    delay: int
    size: int
    offset: int
    kind: str  # "input" (graded values) | "spikes"


@dataclass(frozen=True)
class NetxPart:
    name: str
    layers: tuple[str, ...]
    slots: tuple[Slot, ...]

    @property
    def input_size(self) -> int:
        return sum(s.size for s in self.slots)

    @property
    def output(self) -> str:
        return self.layers[-1]

    @property
    def graded(self) -> bool:
        return any(s.kind == "input" for s in self.slots)

    @property
    def lead(self) -> int:
        """G: the zero steps in front of each sample in a batch (the largest slot delay)."""
        return max((s.delay for s in self.slots), default=0)


def _prefix(names: Sequence[str]) -> str:
    heads = {n.split("_", 1)[0] for n in names}
    return heads.pop() if len(heads) == 1 else ""


def partition(lowered: ChipGraph) -> tuple[NetxPart, ...]:
    """Split the neuron layers of ``lowered`` into netx chains (module docstring)."""
    consumers: dict[str, list[str]] = {}
    for name, layer in lowered.neurons.items():
        for t in layer.terms:
            consumers.setdefault(t.source, []).append(name)
    parts: list[dict] = []
    part_of: dict[str, int] = {}
    for name, layer in lowered.neurons.items():
        for t in layer.terms:
            if t.source not in lowered.inputs and t.source not in part_of:
                raise LavaMappingError(f"{name!r}: its input from {t.source!r} is recurrent (or comes from a later "
                                       f"layer); netx builds feed-forward chains only")
        t = layer.terms[0] if layer.terms else None
        if (len(layer.terms) == 1 and t.delay == 0 and t.source in lowered.neurons
                and parts[part_of[t.source]]["layers"][-1] == t.source
                and len(set(consumers[t.source])) == 1):
            parts[part_of[t.source]]["layers"].append(name)
            part_of[name] = part_of[t.source]
            continue
        if not layer.terms:
            raise LavaMappingError(f"{name!r} has no input; a netx layer needs synapses")
        slots, offset = [], 0
        for term in layer.terms:
            src_is_input = term.source in lowered.inputs
            size = (int(np.prod(lowered.inputs[term.source])) if src_is_input
                    else lowered.neurons[term.source].size)
            if term.delay > NETX_MAX_DELAY:
                raise LavaMappingError(f"{name!r}: delay {term.delay} from {term.source!r} exceeds netx's "
                                       f"{NETX_MAX_DELAY}")
            slots.append(Slot(term.source, int(term.delay), size, offset, "input" if src_is_input else "spikes"))
            offset += size
        part_of[name] = len(parts)
        parts.append({"layers": [name], "slots": slots})
    out, used = [], set()
    for i, p in enumerate(parts):
        name = _prefix(p["layers"]) or f"part{i}"
        if name in used or name in lowered.inputs or name in lowered.neurons:
            name = f"part{i}_{name}" if name else f"part{i}"
        used.add(name)
        out.append(NetxPart(name, tuple(p["layers"]), tuple(p["slots"])))
    return tuple(out)


# --- export: .net parts, host readouts and the manifest ---------------------------------------

@dataclass(frozen=True)
class NetxBundle:
    """What the ``loihi2`` target writes, before the host head: ``{part}.net`` files,
    ``host_readouts.npz`` and ``netx_manifest.json``; plus the program they came from."""

    files: dict[str, bytes]
    manifest: dict
    parts: tuple[NetxPart, ...]
    program: LavaProgram


def _synapse(program: LavaProgram, layer: str, source: str, delay: int):
    name = f"{layer}<-{source}@{delay}"
    for syn in program.synapses:
        if syn.name == name:
            if int(syn.weight_exp) != 0:
                raise LavaMappingError(f"{name}: weight_exp {syn.weight_exp} cannot be written to a .net file "
                                       f"(map the graph with NetxRule)")
            return syn
    raise LavaMappingError(f"{name}: no such synapse group in the program")


def part_layers(program: LavaProgram, part: NetxPart) -> list[NetxLayer]:
    """The netx layers of one part, from a fixed-point program mapped with :class:`NetxRule`."""
    lowered = program.chip
    layers = []
    for i, name in enumerate(part.layers):
        p = program.layers[name]
        if np.any(np.asarray(p.bias_exp) != NETX_BIAS_EXP):
            raise LavaMappingError(f"{name}: bias_exp must be {NETX_BIAS_EXP} for netx (map the graph with NetxRule)")
        if i == 0:
            blocks = [np.asarray(_synapse(program, name, s.source, s.delay).weights, np.int64) for s in part.slots]
            weight = np.hstack(blocks)
            delay = np.hstack([np.full(b.shape, s.delay, np.int64) for b, s in zip(blocks, part.slots)])
            delay = delay if np.any(delay) else None
        else:
            weight = np.asarray(_synapse(program, name, part.layers[i - 1], 0).weights, np.int64)
            delay = None
        shape = (int(lowered.neurons[name].size),)
        layers.append(NetxLayer("dense", shape, weight, np.asarray(p.bias_mant, np.int64), delay,
                                cuba_neuron(p.du, p.dv, p.vth)))
    return layers


def netx_program(graph, dt: float | None = None, input_ranges: Mapping[str, float] | None = None,
                 rule: fp.QuantizationRule | None = None) -> LavaProgram:
    """The graph mapped to fixed point with :class:`NetxRule` (a NIR graph or a ChipGraph)."""
    lowered = graph if isinstance(graph, ChipGraph) else lower_graph(graph, dt)
    ranges = dict(input_ranges or {})
    return map_graph(lowered, fixed=True, rule=rule or NetxRule(), input_ranges=ranges)


def export_netx(graph, input_ranges: Mapping[str, float], dt: float | None = None,
                n_steps: int | None = None) -> NetxBundle:
    """Partition, quantise (:class:`NetxRule`) and write a NIR graph as netx parts."""
    program = netx_program(graph, dt, input_ranges)
    lowered = program.chip
    parts = partition(lowered)
    files: dict[str, bytes] = {}
    part_entries = []
    for part in parts:
        layers = part_layers(program, part)
        files[f"{part.name}.net"] = write_net(layers)
        part_entries.append({
            "name": part.name,
            "file": f"{part.name}.net",
            "layers": [{"name": n, "size": lowered.neurons[n].size, "shape": list(lowered.neurons[n].shape),
                        "latency_in_part": i + 1, "latency_in_graph": lowered.neurons[n].latency,
                        "scale_exp": program.layers[n].scale_exp, "du": int(program.layers[n].du),
                        "dv": int(program.layers[n].dv), "vth": int(program.layers[n].vth)}
                       for i, n in enumerate(part.layers)],
            "input": {"size": part.input_size, "graded": part.graded,
                      "message_bits": GRADED_MESSAGE_BITS if part.graded else 0,
                      "slots": [dataclasses.asdict(s) for s in part.slots]},
            "output": part.output,
            "latency": len(part.layers),
            "lead": part.lead,
            "netx_network_args": {"input_message_bits": GRADED_MESSAGE_BITS if part.graded else 0,
                                  "reset_interval": "T + lead", "reset_offset": "lead + 1"},
        })
    arrays: dict[str, np.ndarray] = {}
    readouts = {}
    for name, r in lowered.readouts.items():
        size = int(np.prod(r.shape))
        entry = {"shape": list(r.shape), "bias": f"{name}__bias", "terms": [], "direct": r.direct}
        arrays[f"{name}__bias"] = np.asarray(r.bias, np.float64).reshape(-1)
        if not r.direct:
            for t in r.terms:
                key = f"{name}__{t.source}__d{t.delay}"
                arrays[key] = np.eye(size) if t.matrix is None else np.asarray(t.matrix, np.float64)
                entry["terms"].append({"source": t.source, "delay": int(t.delay), "matrix": key})
        readouts[name] = entry
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    files[READOUTS_NAME] = buffer.getvalue()
    manifest = {
        "format": "taaf-netx",
        "version": 1,
        "dt": float(lowered.dt),
        "n_steps": n_steps,
        "rule": program.rule,
        "neuron": "netx CUBA = our LIF: iDecay = du + 1 (4096: no current state), vDecay = dv, vThMant = vth, "
                  f"bias = bias_mant << {NETX_BIAS_EXP}; synaptic input = W_file @ x (no weight exponent)",
        "inputs": {n: {"shape": list(shape), "frac_bits": program.encodings[n].frac_bits,
                       "bits": program.encodings[n].bits, "max_abs": program.encodings[n].max_abs}
                   for n, shape in lowered.inputs.items()},
        "parts": part_entries,
        "readouts": readouts,
        "readout_arrays": READOUTS_NAME,
        "graph": {"latency": {n: l.latency for n, l in lowered.neurons.items()}, "gap": lowered.gap},
        "reassembly": (
            "Run the parts in order. Encode each Input x as round(x * 2^frac_bits) (|x| <= max_abs, else an "
            "error). A part's input is its slots side by side; a slot carries its source in the sample time base "
            "(Input values, or the spikes of an earlier part's layer with that part's latency removed), the .net "
            "delay d of its columns shifts it inside the part. Batch: sample b at steps [b P + lead, b P + lead + T), "
            "P = T + lead, zeros elsewhere; netx.hdf5.Network(..., input_message_bits, reset_interval=P, "
            "reset_offset=lead + 1). Layer i (1-based) of a part shows sample step t at recorded step "
            "b P + lead + t + i. Readout r[t] = bias + sum over terms of matrix @ source_spikes[t - delay] "
            "(zeros before the sample), then host_head.onnx."),
    }
    files[MANIFEST_NAME] = dump_json(manifest)
    return NetxBundle(files, manifest, parts, program)


# --- running .net files on lava-dl's netx (under the watchdog) ---------------------------------

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


def _import_netx():
    """``lava.lib.dl.netx`` without its import-time chatter (a Prophesee toolbox notice on stdout,
    torch's CUDA notice on stderr)."""
    import contextlib

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        from lava.lib.dl import netx
    return netx


def _run_netx_child(path: str, data: np.ndarray, num_steps: int, input_message_bits: int,
                    reset_interval: int | None, reset_offset: int, record_layers: bool, record_v: bool):
    netx = _import_netx()
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
    from lava.proc.io.source import RingBuffer
    from lava.proc.monitor.process import Monitor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = netx.hdf5.Network(net_config=path, input_message_bits=input_message_bits,
                                reset_interval=reset_interval, reset_offset=reset_offset)
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
             record_layers: bool = False, record_v: bool = False,
             timeout: float = DEFAULT_TIMEOUT_S) -> NetxRun:
    """Run a ``.net`` file with lava-dl's ``netx.hdf5.Network`` on ``Loihi2SimCfg`` (bit-accurate
    ``fixed_pt``) under the watchdog.

    ``input_spikes``: [steps, n_in] integers, time-major (column ``t`` is sent at Lava step
    ``t + 1``); binary unless ``input_message_bits > 0`` (graded). ``num_steps`` defaults to
    ``steps + latency``. ``reset_interval``/``reset_offset`` are netx's own (None: plain LIF).
    The file is checked with :func:`read_net` first, the inputs against it."""
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
    if record_v and net.output_size * steps * len(net.layers) > 4_000_000:
        raise LavaMappingError(f"{path}: record_v for {steps} steps is too large for Lava's Monitor")
    spikes, volts = run_in_watchdog(_run_netx_child, str(path), data, steps, int(input_message_bits),
                                    None if reset_interval is None else int(reset_interval), int(reset_offset),
                                    bool(record_layers), bool(record_v), timeout=timeout)
    layer_spikes = {int(k[5:]): v for k, v in spikes.items() if k.startswith("layer")}
    return NetxRun(spikes["out"], layer_spikes, volts, latency, steps)


# --- the host side: run a bundle folder ---------------------------------------------------------

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
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text())
    except (OSError, ValueError) as exc:
        raise NetxFormatError(f"{folder / MANIFEST_NAME}: cannot be read ({exc})") from None
    runner = runner or run_netx
    encoded, sizes = {}, set()
    for name, spec in manifest["inputs"].items():
        if name not in inputs:
            raise LavaMappingError(f"missing input {name!r}")
        x = np.asarray(inputs[name], np.float64)
        if x.shape[2:] != tuple(spec["shape"]) or x.ndim != 2 + len(spec["shape"]):
            raise LavaMappingError(f"input {name!r}: expected [T, B, *{tuple(spec['shape'])}], got {x.shape}")
        enc = fp.InputEncoding(name, frac_bits=int(spec["frac_bits"]), bits=int(spec["bits"]),
                               max_abs=float(spec["max_abs"]))
        encoded[name] = enc.encode(x.reshape(x.shape[0], x.shape[1], -1))
        sizes.add(x.shape[:2])
    if len(sizes) != 1:
        raise LavaMappingError(f"all inputs need the same [T, B], got {sorted(sizes)}")
    (steps, batch), = sizes
    spikes: dict[str, np.ndarray] = {}
    for part in manifest["parts"]:
        lead = int(part["lead"])
        period = steps + lead
        latency = int(part["latency"])
        x = np.zeros((batch * period + latency, int(part["input"]["size"])), np.int64)
        for slot in part["input"]["slots"]:
            src = encoded[slot["source"]] if slot["kind"] == "input" else spikes[slot["source"]]
            for b in range(batch):
                x[b * period + lead: b * period + lead + steps, slot["offset"]:slot["offset"] + slot["size"]] = src[:, b]
        run = runner(folder / part["file"], x, num_steps=x.shape[0],
                     input_message_bits=int(part["input"]["message_bits"]),
                     reset_interval=period, reset_offset=lead + 1, record_layers=True, timeout=timeout)
        for i, layer in enumerate(part["layers"]):
            raw = run.layer_spikes[i]
            idx = (np.arange(batch)[None, :] * period + lead + (i + 1) + np.arange(steps)[:, None])
            spikes[layer["name"]] = raw[idx].astype(np.int64)
    with np.load(folder / manifest["readout_arrays"]) as arrays:
        outputs = {}
        for name, r in manifest["readouts"].items():
            bias = arrays[r["bias"]]
            if r["direct"]:
                src = r["direct"]
                value = spikes[src] if src in spikes else encoded[src] * 2.0 ** -manifest["inputs"][src]["frac_bits"]
                outputs[name] = np.asarray(value, np.float64).reshape((steps, batch, *r["shape"]))
                continue
            total = np.zeros((steps, batch, bias.size)) + bias
            for t in r["terms"]:
                src = t["source"]
                s = (spikes[src] if src in spikes
                     else encoded[src] * 2.0 ** -manifest["inputs"][src]["frac_bits"])
                total = total + _delayed(np.asarray(s, np.float64), int(t["delay"])) @ arrays[t["matrix"]].T
            outputs[name] = total.reshape((steps, batch, *r["shape"]))
    shapes = {layer["name"]: tuple(layer["shape"]) for part in manifest["parts"] for layer in part["layers"]}
    return NetxBundleResult(outputs, {k: v.astype(np.uint8).reshape((steps, batch, *shapes[k]))
                                      for k, v in spikes.items()})


# --- export targets (registered through the ``taaf.export_targets`` entry point group) ----------

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
    name: str
    description: str
    build: Callable[..., TargetResult]


def dump_json(data) -> bytes:
    """Indented JSON with numeric lists on one line each (bias vectors stay readable)."""
    import re

    text = json.dumps(data, indent=1)
    text = re.sub(r"\[\s+([-0-9.eE+,\s]+?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text)
    return (text + "\n").encode()


def _npz(arrays: Mapping[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def lava_program_description(program: LavaProgram) -> tuple[dict, dict[str, np.ndarray]]:
    """A fixed-point :class:`~hardware.loihi.program.LavaProgram` as JSON-ready data plus its
    weight matrices (``{key: int array}``)."""
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
        key = syn.name.replace("<-", "__from__").replace("@", "__d")
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
                       "bias": np.asarray(r.bias, np.float64).reshape(-1).tolist()}
                for name, r in program.readouts.items()}
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
        "semantics": (
            "Lava 0.10 Loihi2SimCfg fixed_pt. Layer: LIFReset(du, dv, vth, bias_mant, bias_exp), reset_interval = "
            "T + gap, reset_offset = (1 + gap + latency) mod (T + gap). Synapse: Dense (lava_delay 0) or "
            "DelayDense(delays = lava_delay) with weights (lava_weights.npz), weight_exp, sign_mode, 8 weight bits; "
            "lava_delay = latency(dst) - latency(src) - 1 + nir_delay (latency alignment). Inputs: graded "
            "round(x 2^frac_bits). Readout: recorded sum * scale + bias. Gated layers are silenced during the gap "
            "between batched samples by a gate neuron (hardware.loihi.network)."),
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


def build_lava_target(ckpt, checkpoint_path: Path, dt: float) -> TargetResult:
    """``--target lava``: taaf.nir + host_head.onnx + lava_program.json (+ lava_weights.npz)."""
    _quiet()
    from export.artifacts import nir_bytes
    from export.host_onnx import host_head_onnx
    from export.nir_export import model_to_nir
    from hardware.loihi.lava_backend import TAAF_INPUT_RANGES
    from hardware.loihi.resources import resource_report

    model, cfg = ckpt.model, ckpt.model_config
    graph = model_to_nir(model, dt)
    program = map_graph(graph, dt, fixed=True, input_ranges=TAAF_INPUT_RANGES)
    desc, arrays = lava_program_description(program)
    desc["n_steps"] = cfg.n_steps
    report = resource_report(program.chip)
    files = {
        "taaf.nir": nir_bytes(graph),
        "host_head.onnx": host_head_onnx(cfg.fusion, cfg.n_classes),
        "lava_program.json": dump_json(desc),
        "lava_weights.npz": _npz(arrays),
        "resources.json": dump_json(report.as_dict()),
    }
    roles = {
        "taaf.nir": "chip graph (NIR, two Inputs: audio_input [F], visual_input [C, H, W])",
        "host_head.onnx": "host head (ONNX): inputs [B, T, ...] readouts stacked over time",
        "lava_program.json": "the lowered, latency-aligned, fixed-point Lava network (PowerOfTwoRule): per layer "
                             "du/dv/vth/bias, per synapse group weight_exp/sign mode/delays",
        "lava_weights.npz": "integer weights of every Lava synapse group (keys in lava_program.json)",
        "resources.json": "Loihi 2 resource estimate per layer (hardware.loihi.resources)",
    }
    partition = ("chip: lava_program.json (Lava processes: encoders, time-warp DelayDense, fused layer, readout "
                 "synapses, all fixed point); host: host_head.onnx")
    return TargetResult(files, roles, _taaf_streams(cfg), partition, report.format_table())


def _netx_build_child(paths: list[str]) -> list[str]:
    """Build every file with lava-dl's ``netx.hdf5.Network`` (no run); -> its layer tables."""
    netx = _import_netx()

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


def build_loihi2_target(ckpt, checkpoint_path: Path, dt: float) -> TargetResult:
    """``--target loihi2``: the netx parts + netx_manifest.json + host_readouts.npz + host head."""
    _quiet()
    from export.host_onnx import host_head_onnx
    from export.manifest import Stream
    from export.nir_export import model_to_nir
    from hardware.loihi.lava_backend import TAAF_INPUT_RANGES
    from hardware.loihi.resources import merge_reports, netx_resource_report

    model, cfg = ckpt.model, ckpt.model_config
    bundle = export_netx(model_to_nir(model, dt), TAAF_INPUT_RANGES, dt, n_steps=cfg.n_steps)
    files = dict(bundle.files)
    bundle.manifest["host_head"] = {"file": "host_head.onnx", "inputs": list(_host_inputs(cfg))}
    files[MANIFEST_NAME] = dump_json(bundle.manifest)
    files["host_head.onnx"] = host_head_onnx(cfg.fusion, cfg.n_classes)
    report = merge_reports((netx_resource_report(read_net(files[f"{p.name}.net"]), names=dict(enumerate(p.layers)))
                            for p in bundle.parts), "the .net parts as written; readouts on the host")
    files["resources.json"] = dump_json(report.as_dict())
    check = check_loads_in_netx(files)
    roles = {}
    for part in bundle.parts:
        slots = ", ".join(f"{s.source}@{s.delay}" for s in part.slots)
        roles[f"{part.name}.net"] = (f"netx chain ({' -> '.join(part.layers)}), input [{slots}], "
                                     f"{'graded' if part.graded else 'spike'} input, latency {len(part.layers)}")
    roles[MANIFEST_NAME] = "how the parts, their latencies, the host readouts and the host head connect"
    roles[READOUTS_NAME] = "host readouts (float, NIR matrices): readout = bias + sum matrix @ spikes[t - delay]"
    roles["host_head.onnx"] = "host head (ONNX): inputs [B, T, ...] readouts stacked over time"
    roles["resources.json"] = "Loihi 2 resource estimate of the .net parts, readouts on the host (hardware.loihi.resources)"
    streams = tuple(Stream(p.output, READOUTS_NAME, (bundle.program.chip.neurons[p.output].size,))
                    for p in bundle.parts)
    partition = ("chip: " + "; ".join(f"{p.name}.net ({' -> '.join(p.layers)})" for p in bundle.parts)
                 + "; host: wiring + readouts (host_readouts.npz) + host_head.onnx, see netx_manifest.json")
    summary = "\n".join([
        "netx parts:",
        *(f"  {p.name}.net: {' -> '.join(p.layers)}  (input: {', '.join(f'{s.source}@{s.delay}' for s in p.slots)})"
          for p in bundle.parts),
        check, "", report.format_table()])
    return TargetResult(files, roles, streams, partition, summary)


def _host_inputs(cfg):
    from export.host_onnx import host_input_names

    return host_input_names(cfg.fusion)


LAVA_TARGET = ExportTarget("lava", "fixed-point Lava program (lava_program.json) + taaf.nir + host head; "
                                   "prints the Loihi 2 resource report", build_lava_target)
LOIHI2_TARGET = ExportTarget("loihi2", "lava-dl netx .net chains + netx_manifest.json + host readouts/head; "
                                       "prints the Loihi 2 resource report", build_loihi2_target)


__all__ = [
    "LAVA_TARGET",
    "LOIHI2_TARGET",
    "ExportTarget",
    "NetxBundle",
    "NetxBundleResult",
    "NetxFormatError",
    "NetxLayer",
    "NetxNetwork",
    "NetxNeuron",
    "NetxPart",
    "NetxRule",
    "NetxRun",
    "Slot",
    "TargetResult",
    "check_loads_in_netx",
    "cuba_neuron",
    "export_netx",
    "lava_program_description",
    "netx_program",
    "part_layers",
    "partition",
    "read_net",
    "run_netx",
    "run_netx_bundle",
    "write_net",
]
