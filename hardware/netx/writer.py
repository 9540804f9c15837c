"""Our writer of lava-dl netx ``.net`` files (the format: :mod:`hardware.netx.format`).

Chains of ``dense`` layers, and ``conv`` layers with one shared kernel (what a Loihi 2
deployment stores: the kernel once, not one synapse per output position), preceded by a
shape-only ``input`` layer when the chain starts with a conv (netx takes the conv's input shape
from it) and followed by a ``flatten`` before the first dense after a conv (netx then transposes
its (W, H, C) output to our (C, H, W) order and flattens it). Everything written is read back
with :func:`~hardware.netx.format.read_net` before it is returned.
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hardware.loihi import fixed_point as fp
from hardware.netx.format import FLOAT32_EXACT, NetxFormatError, NetxLayer, NetxNeuron, read_net


def cuba_neuron(du: int, dv: int, vth: int) -> NetxNeuron:
    """Our LIF registers as netx's CUBA neuron (``iDecay = du + 1``: 4096 for a current-free LIF),
    checked as Lava registers first."""
    fp.QuantizedLIF("netx", du=int(du), dv=int(dv), vth=int(vth), bias_mant=np.zeros(1, np.int64),
                    bias_exp=np.zeros(1, np.int64))
    return NetxNeuron("CUBA", int(du) + fp.DS_OFFSET, int(dv), int(vth), 1, False)


def _neuron(g, n: NetxNeuron) -> None:
    g.create_dataset("neuron/type", data="CUBA")
    g.create_dataset("neuron/iDecay", data=np.int64(n.i_decay))
    g.create_dataset("neuron/vDecay", data=np.int64(n.v_decay))
    g.create_dataset("neuron/vThMant", data=np.int64(n.vth_mant))
    g.create_dataset("neuron/refDelay", data=np.int64(n.ref_delay))
    g.create_dataset("neuron/gradedSpike", data=bool(n.graded_spike))


def _weights(i: int, layer: NetxLayer, ndim: int) -> np.ndarray:
    w = np.asarray(layer.weight)
    if w.ndim != ndim or w.dtype.kind not in "iu":
        raise NetxFormatError(f"write_net: layer {i}: {layer.type} weights must be {ndim}-d integers, "
                              f"got {w.dtype} {w.shape}")
    if np.abs(w).max(initial=0) >= FLOAT32_EXACT:
        raise NetxFormatError(f"write_net: layer {i}: weights do not fit float32 exactly")
    return w


def write_net(layers: Sequence[NetxLayer], path: str | Path | None = None) -> bytes:
    """Write a chain of ``dense`` / ``conv`` layers (plus shape-only ``input`` and ``flatten``)
    as a ``.net`` file (slayer's layout: float32 integer weights/biases/delays, ``S10`` layer
    types, a CUBA ``neuron`` group; a conv weight ``[out, in/groups, kh, kw, 1]`` with
    ``stride``/``padding``/``dilation`` pairs, ``groups`` and a per-channel bias); returns the
    bytes and writes them to ``path`` when given. The result is read back with
    :func:`~hardware.netx.format.read_net`, so a file this returns is one our reader accepts."""
    import h5py

    if not layers:
        raise NetxFormatError("write_net: no layers")
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h:
        group = h.create_group("layer")
        for i, layer in enumerate(layers):
            g = group.create_group(str(i))
            if layer.type in ("input", "flatten"):
                if layer.neuron is not None:
                    raise NetxFormatError(f"write_net: layer {i}: only shape-only {layer.type} layers are written")
                g.create_dataset("type", (1,), "S10", [layer.type.encode()])
                g.create_dataset("shape", data=np.array(layer.shape, np.int64))
                continue
            if layer.type not in ("dense", "conv"):
                raise NetxFormatError(f"write_net: layer {i}: dense, conv, input and flatten layers are written, "
                                      f"got {layer.type!r}")
            if layer.neuron is None or layer.neuron.type != "CUBA":
                raise NetxFormatError(f"write_net: layer {i}: needs a CUBA neuron")
            g.create_dataset("type", (1,), "S10", [layer.type.encode()])
            g.create_dataset("shape", data=np.array(layer.shape, np.int64))
            if layer.type == "dense":
                w = _weights(i, layer, 2)
                if w.shape[0] != layer.size:
                    raise NetxFormatError(f"write_net: layer {i}: weights must be [{layer.size}, n_in], got {w.shape}")
                g.create_dataset("inFeatures", data=np.int64(w.shape[1]))
                g.create_dataset("outFeatures", data=np.int64(w.shape[0]))
                g.create_dataset("weight", data=w.astype(np.float32))
                if layer.delay is not None and np.any(layer.delay):
                    g.create_dataset("delay", data=np.asarray(layer.delay, np.int64).astype(np.float32))
            else:
                w = _weights(i, layer, 4)
                g.create_dataset("inChannels", data=np.int64(w.shape[1] * layer.groups))
                g.create_dataset("outChannels", data=np.int64(w.shape[0]))
                g.create_dataset("kernelSize", data=np.array(w.shape[2:], np.int64))
                g.create_dataset("weight", data=w[..., None].astype(np.float32))
                for key in ("stride", "padding", "dilation"):
                    g.create_dataset(key, data=np.array(getattr(layer, key) or ((0, 0) if key == "padding" else (1, 1)),
                                                        np.int64))
                g.create_dataset("groups", data=np.int64(layer.groups))
            if layer.bias is not None:
                g.create_dataset("bias", data=np.asarray(layer.bias, np.int64).astype(np.float32))
            _neuron(g, layer.neuron)
    data = buffer.getvalue()
    read_net(data)  # everything we write must pass our own reader
    if path is not None:
        Path(path).write_bytes(data)
    return data


__all__ = ["cuba_neuron", "write_net"]
