"""The lava-dl netx ``.net`` file format: our strict reader (the writer: :mod:`hardware.netx.writer`).

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

Our LIF as a netx CUBA neuron (:func:`cuba_neuron`): our mapper's LIF has ``du = 4095`` (the
current forgets everything each step; Lava adds Loihi's 1-bit offset, decay 4096), so
``iDecay = du + 1 = 4096`` (what slayer writes for ``current_decay = 1``), ``vDecay = dv``,
``vThMant = vth``. The registers a file cannot hold (a weight exponent, a bias exponent other
than 6) are pinned by :class:`~hardware.loihi.quant_rules.NetxRule`.
"""
from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hardware.errors import LavaError
from hardware.loihi import fixed_point as fp
from taaf.nir_checks import check_hdf5_budget

NETX_BIAS_EXP = 6  # netx passes bias_exp = 6 to every LIF
NETX_MAX_DELAY = 62  # netx clamps larger delays (DelayDense max_delay = 62)
GRADED_MESSAGE_BITS = 24  # graded input messages (as in our mapper; Loihi 2's widest graded spike)
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
FLOAT32_EXACT = 2 ** 24  # slayer stores integers as float32: exact below this magnitude
WEIGHT_HI = 2 ** fp.WEIGHT_BITS - 1  # 255: largest 8-bit synapse weight (one sign)
WEIGHT_LO = -(2 ** fp.WEIGHT_BITS)  # -256: smallest (mixed sign)
LAYER_TYPES = ("input", "dense", "dense_rec", "conv", "flatten")
UNBUILT_LAYER_TYPES = ("pool", "convT", "unpool", "average", "concat", "dense_comp")  # netx raises
NEURON_TYPES = ("CUBA", "LOIHI", "SDNN")


class NetxFormatError(LavaError):
    """A ``.net`` file that is missing, unreadable or not what netx can build; the message names
    the file, the layer and the key."""


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
        """Lava's ``du`` register (netx: ``iDecay - 1``, Loihi's 1-bit decay offset)."""
        return int(self.i_decay) - fp.DS_OFFSET


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
        """Number of neurons (the product of ``shape``), which the next layer's weights must match."""
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 0

    @property
    def synaptic(self) -> bool:
        """A layer with synapses in front of its neurons (one Lava step of latency)."""
        return self.type in ("dense", "dense_rec", "conv")


@dataclass(frozen=True)
class NetxNetwork:
    """A checked ``.net`` file: what netx would build, layer by layer, so nothing reaches Lava
    (which hangs on bad input) unchecked. ``path`` labels every error message."""

    path: str
    layers: tuple[NetxLayer, ...]
    simulation: Mapping[str, object] = field(default_factory=dict)

    @property
    def input_size(self) -> int:
        """Columns of the input a run must supply (``[steps, input_size]``)."""
        first = self.layers[0]
        if first.type == "input":
            return first.size
        if first.type in ("dense", "dense_rec"):
            return int(first.weight.shape[1])
        raise NetxFormatError(f"{self.path}: the input size of a network starting with {first.type!r} "
                              f"is not stored in the file")

    @property
    def output_size(self) -> int:
        """Neurons of the last layer, i.e. the columns of a run's output spikes."""
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
    if hi > WEIGHT_HI or lo < WEIGHT_LO or (lo < 0 < hi and hi > WEIGHT_HI - 1) or (hi <= 0 and lo < -WEIGHT_HI):
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
    i_decay = rd.int_scalar(group, "iDecay", where, required=cuba, lo=0, hi=fp.DECAY_UNITY)
    v_decay = rd.int_scalar(group, "vDecay", where, required=cuba, lo=0, hi=fp.DECAY_UNITY)
    vth = rd.int_scalar(group, "vThMant", where, required=cuba, lo=0, hi=2 ** fp.UV_BITS - 1)
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
        if not bytes(source[:len(HDF5_SIGNATURE)]) == HDF5_SIGNATURE:
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
    check_hdf5_budget(target, "the layers", label)  # declared dataset sizes, before any is read
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


from hardware.netx.writer import cuba_neuron, write_net  # noqa: E402  (the writer; re-exported here)


__all__ = [
    "GRADED_MESSAGE_BITS",
    "LAYER_TYPES",
    "NETX_BIAS_EXP",
    "NETX_MAX_DELAY",
    "NEURON_TYPES",
    "NetxFormatError",
    "NetxLayer",
    "NetxNetwork",
    "NetxNeuron",
    "cuba_neuron",
    "read_net",
    "write_net",
]
