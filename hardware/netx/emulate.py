"""Bit-exact emulation of a lava-dl netx ``.net`` network (``netx.hdf5.Network`` on
``Loihi2SimCfg(select_tag="fixed_pt")``, as :func:`hardware.netx.run.run_netx` runs it),
batched, without Lava.

What netx builds (lava-dl 0.6 ``netx/hdf5.py``, ``netx/blocks/process.py``, ``netx/utils.py``)
---------------------------------------------------------------------------------------------
* ``dense`` layer -> ``blocks.Dense`` = a Lava ``Dense`` (``DelayDense`` with ``max_delay=62``
  when the layer has a ``delay``) feeding a ``LIF`` (``LIFReset`` when the network gets a
  ``reset_interval``). The synapse registers come from ``utils.optimize_weight_bits(weight)``:
  weights shifted left by ``scale_bits``, ``weight_exponent = -scale_bits`` and a
  ``num_weight_bits``; its ``sign_mode`` is *not* passed on, so Lava's model picks
  ``determine_sign_mode`` of the shifted weights and applies ``clip_weights`` +
  ``truncate_weights`` (:func:`~hardware.loihi.fixed_point.lava_weights`).
  :func:`netx_synapse_registers` is ``optimize_weight_bits`` (parameter derivation, not
  arithmetic); everything per step is :mod:`hardware.loihi.fixed_point`.
* neuron: ``du = iDecay - 1``, ``dv = vDecay``, ``vth = vThMant``, ``bias_mant = bias``
  (``astype(int32)``), ``bias_exp = 6``. ``refDelay`` is **not used by netx** (it builds
  ``LIF``/``LIFReset``, never ``LIFRefractory``), so there is no refractory period to emulate.
* ``input`` layer with a ``neuron`` -> ``blocks.Input``: a LIF whose ``a_in`` is the network's
  input port itself (no synapse, hence no step of latency; the ``weight``/``bias`` transform
  of the file is stored but unused by netx).
* reset: layer ``i`` (0-based among the built layers) gets ``reset_offset + 1 + i``
  (``Network._create``); ``PyLifResetModelBitAcc`` zeroes ``u`` and ``v`` before the update of
  every step with ``time_step % reset_interval == offset % reset_interval``.

Time base (``run_netx``): input column ``t`` is sent at Lava step ``t + 1`` and the recorded
index ``k`` is Lava step ``k + 1``. ``PyDenseModelBitAcc`` sends the ``a_buff`` computed in the
previous step, so a dense layer integrates at index ``k`` what its source sent at index
``k - 1`` (``DelayDense``: a synapse with delay ``d`` at ``k - 1 - d``; each delay slot is
shifted by the weight exponent on its own, then summed, as ``PyDelayDenseModelBitAcc`` does).

Exactness domain: as :mod:`hardware.loihi.emulator` — int64 here, int32 in Lava's CPU models;
identical while ``|a_in| < 2^18`` (:data:`~hardware.loihi.fixed_point.EXACT_ACTIVATION_LIMIT`),
which :func:`emulate_net` checks on every run (it raises rather than return numbers Lava's
int32 arithmetic might not produce). Layers netx builds that are not emulated here
(``conv``, ``dense_rec``, layers without a neuron, non-CUBA neurons, graded spikes) raise
:class:`NetxEmulationError` (a one-line user error that is also a ``NotImplementedError``).
"""
from __future__ import annotations

import dataclasses

from dataclasses import dataclass

import numpy as np

from hardware.errors import FixedPointRangeError, LavaMappingError
from hardware.loihi import fixed_point as fp
from hardware.netx.conv import conv_matrix
from hardware.netx.format import NETX_BIAS_EXP, NetxLayer, NetxNetwork, read_net


class NetxEmulationError(LavaMappingError, NotImplementedError):
    """A netx layer or register set this emulator does not model (one line, exit 2 from a CLI)."""


@dataclass(frozen=True)
class NetxSynapseRegisters:
    """What a netx ``Dense`` block hands to Lava's ``Dense``/``DelayDense`` model, and the
    weights that model actually uses after ``clip_weights`` + ``truncate_weights``."""

    weights: np.ndarray  # as passed to Lava (shifted by scale_bits)
    num_weight_bits: int
    weight_exp: int
    sign_mode: fp.SignMode  # what Lava's model picks (determine_sign_mode of ``weights``)
    effective: np.ndarray  # fp.lava_weights(weights, sign_mode, num_weight_bits)


def netx_synapse_registers(weight: np.ndarray) -> NetxSynapseRegisters:
    """lava-dl ``netx.utils.optimize_weight_bits`` (same steps), then Lava's weight handling."""
    w = np.asarray(weight).astype(np.int64)
    hi, lo = int(w.max()), int(w.min())
    if (hi > 254 and lo < 0) or (lo < -256 and hi > 0):  # netx clips (and prints a warning)
        w = np.clip(w, -256, 254)
        hi, lo = int(w.max()), int(w.min())
    if hi < 0:
        is_signed, scale = 0, -256 / lo
    elif lo >= 0:
        is_signed, scale = 0, 255 / hi
    else:
        is_signed = 1
        with np.errstate(divide="ignore"):
            scale = min(np.float64(127) / hi, np.float64(-128) / lo)
    scale_bits = int(np.floor(np.log2(scale))) + is_signed
    n = 8
    while n > 0 and np.any(w % (2 ** n)):  # netx: largest n with w / 2^n all integers
        n -= 1
    n -= is_signed
    num_weight_bits = 8 - scale_bits - n
    shifted = np.left_shift(w.astype(np.int32), scale_bits).astype(np.int64)
    mode = fp.determine_sign_mode(shifted)
    drop = fp.WEIGHT_BITS - num_weight_bits + int(mode == fp.SignMode.MIXED)
    if drop < 0:
        raise NetxEmulationError(f"netx weight registers with a negative truncation ({drop} bits): "
                                  f"Lava's truncate_weights would fail on them")
    return NetxSynapseRegisters(shifted, num_weight_bits, -scale_bits, mode,
                                fp.lava_weights(shifted, mode, num_weight_bits))


@dataclass(frozen=True)
class _Layer:
    kind: str  # "input" (LIF fed directly) or "dense"
    size: int
    du: int
    dv: int
    effective_bias: np.ndarray
    effective_vth: int
    synapses: tuple[tuple[int, np.ndarray], ...] = ()  # (delay, effective weights) per delay slot
    weight_exp: int = 0


def _neuron(where: str, layer: NetxLayer):
    nrn = layer.neuron
    if nrn is None:
        raise NetxEmulationError(f"{where}: the layer has no 'neuron' group (netx's default integrator), which is "
                                 f"not emulated; give the layer a CUBA neuron")
    if nrn.type not in ("CUBA", "LOIHI"):
        raise NetxEmulationError(f"{where}: neuron type {nrn.type!r} is not emulated (CUBA/LOIHI only)")
    if "messageBits" in nrn.extra and int(np.asarray(nrn.extra["messageBits"]).reshape(-1)[0]) != 0:
        raise NetxEmulationError(f"{where}: graded-spike neurons are not emulated")
    lif = fp.QuantizedLIF(where, du=nrn.du, dv=int(nrn.v_decay), vth=int(nrn.vth_mant),
                          bias_mant=(np.zeros(layer.size, np.int64) if layer.bias is None
                                     else np.broadcast_to(np.asarray(layer.bias, np.int64).reshape(-1),
                                                          (layer.size,)).copy()),
                          bias_exp=np.int64(NETX_BIAS_EXP))
    return lif


def build_layers(net: NetxNetwork) -> list[_Layer]:
    """The Lava processes netx builds for ``net``, as register sets."""
    out: list[_Layer] = []
    shape: tuple[int, ...] = ()
    for i, layer in enumerate(net.layers):
        where = f"{net.path}: layer/{i}"
        if layer.type == "flatten":
            shape = (int(np.prod(shape)),) if shape else shape
            continue  # Lava's flatten: our emulation keeps every layer flat in (C, H, W) order already
        if layer.type == "input":
            shape = layer.shape
            if layer.neuron is None:
                continue  # shape only: netx builds nothing
            lif = _neuron(where, layer)
            out.append(_Layer("input", layer.size, lif.du, lif.dv, lif.effective_bias, lif.effective_vth))
            continue
        if layer.type == "conv":  # Lava's Conv (fixed): a = conv(x, W_file), no exponent; per-channel bias
            if len(shape) != 3:
                raise NetxEmulationError(f"{where}: a conv layer needs a (C, H, W) input shape before it "
                                         f"(an input layer with a shape), got {list(shape)}")
            per_channel = layer.bias is not None and np.asarray(layer.bias).size == layer.shape[0]
            bias = np.repeat(np.asarray(layer.bias), layer.size // layer.shape[0]) if per_channel else layer.bias
            lif = _neuron(where, dataclasses.replace(layer, bias=bias))
            out.append(_Layer("dense", layer.size, lif.du, lif.dv, lif.effective_bias, lif.effective_vth,
                              ((0, conv_matrix(layer, shape)),), 0))
            shape = layer.shape
            continue
        shape = layer.shape
        if layer.type != "dense":
            raise NetxEmulationError(f"{where}: layer type {layer.type!r} is not emulated (dense/conv/input only)")
        lif = _neuron(where, layer)
        regs = netx_synapse_registers(layer.weight)
        if layer.delay is None:
            slots = ((0, regs.effective),)
        else:
            slots = tuple((int(d), np.where(layer.delay == d, regs.effective, 0))
                          for d in np.unique(layer.delay))
        out.append(_Layer("dense", layer.size, lif.du, lif.dv, lif.effective_bias, lif.effective_vth,
                          slots, regs.weight_exp))
    if not out:
        raise NetxEmulationError(f"{net.path}: no layer to emulate")
    return out


def _accumulate(engine: str, w: np.ndarray, x, weight_exp: int):
    """``PyDenseModelBitAcc``'s ``a = W x`` then the exponent shift, for x [B, T, n_in]."""
    if engine == "numpy":
        return fp.dense_accumulate(w, x, weight_exp)
    import torch

    # exact in float64: integer operands, every partial sum below sum|W| max|x| < 2^53 (checked)
    wt = torch.as_tensor(w, dtype=torch.float64, device=x.device)
    a = torch.matmul(x.to(torch.float64), wt.T).round().to(torch.int64)
    return fp.shift_activation(a, weight_exp)


def emulate_net(net: NetxNetwork | str, spikes: np.ndarray, engine: str = "numpy", *,
                num_steps: int | None = None, reset_interval: int | None = None, reset_offset: int = 0,
                record_layers: bool = False, device: str | None = None, skip_input: bool = False,
                input_message_bits: int = 0):
    """Output spikes of ``net`` for binary input ``spikes`` [T, n_in] or [B, T, n_in], exactly
    as :func:`~hardware.netx.run.run_netx` returns them from Lava (same ``num_steps`` default
    ``T + latency``, same ``reset_interval``/``reset_offset``): uint8 [num_steps, n_out] (or
    [B, num_steps, n_out]). ``record_layers``: also return every built layer's spikes (a list,
    same layout) as ``(out, layers)``. ``engine``: ``"numpy"`` or ``"torch"`` (``device``).
    ``skip_input``: the input layer's neuron is not built (``run_netx``'s ``skip_input``);
    ``conv`` layers run as their :func:`conv_matrix`, inputs and outputs flat in (C, H, W) order.
    ``input_message_bits > 0``: graded integer input (what netx's ``input_message_bits`` takes)."""
    if isinstance(net, (str, bytes)) or hasattr(net, "__fspath__"):
        net = read_net(net)
    if engine not in ("numpy", "torch"):
        raise ValueError(f"engine must be 'numpy' or 'torch', got {engine!r}")
    x = np.asarray(spikes)
    batched = x.ndim == 3
    if not batched:
        x = x[None]
    if x.ndim != 3 or x.shape[2] != net.input_size:
        raise LavaMappingError(f"{net.path}: input must be [T, {net.input_size}] or [B, T, {net.input_size}], "
                               f"got {np.asarray(spikes).shape}")
    if input_message_bits == 0 and x.size and (x.min() < 0 or x.max() > 1):
        raise LavaMappingError(f"{net.path}: binary spike input must be 0/1 (pass input_message_bits for graded input)")
    if input_message_bits and x.size and (np.abs(x).max() >= 2 ** (min(int(input_message_bits), 24) - 1)
                                          or not np.array_equal(x, np.rint(x))):
        raise LavaMappingError(f"{net.path}: graded input must be integers within {input_message_bits} message bits")
    layers = build_layers(net)
    if skip_input and layers and layers[0].kind == "input":
        layers = layers[1:]
    steps = num_steps if num_steps is not None else x.shape[1] + net.latency
    data = np.zeros((x.shape[0], steps, x.shape[2]), np.int64)
    used = min(steps, x.shape[1])
    data[:, :used] = x[:, :used]

    if engine == "torch":
        import torch

        dev = torch.device(device or "cpu")
        cur = torch.as_tensor(data, dtype=torch.int64, device=dev)
        xp_zeros = lambda shape: torch.zeros(shape, dtype=torch.int64, device=dev)
        to_np = lambda a: a.cpu().numpy()
        as_int = lambda a: torch.as_tensor(np.asarray(a, np.int64), device=dev)
    else:
        cur = data
        xp_zeros = lambda shape: np.zeros(shape, np.int64)
        to_np = np.asarray
        as_int = lambda a: np.asarray(a, np.int64)

    batch = data.shape[0]
    recorded = []
    for i, layer in enumerate(layers):
        where = f"{net.path}: built layer {i}"
        if layer.kind == "input":
            a_in = cur  # blocks.Input: the network's input port is the LIF's a_in (same step)
        else:
            a_in = xp_zeros((batch, steps, layer.size))
            for d, w in layer.synapses:
                bound = float(np.abs(w).sum(1).max(initial=0))
                if engine == "torch" and bound >= 2.0 ** 53:
                    raise FixedPointRangeError(f"{where}: |W| sums too large for an exact float64 product")
                lag = 1 + d  # Dense: one step; DelayDense: 1 + delay
                if lag < steps:
                    a_in[:, lag:] += _accumulate(engine, w, cur[:, :steps - lag], layer.weight_exp)
        peak = int(to_np(abs(a_in).max())) if steps and layer.size and batch else 0
        if peak >= fp.EXACT_ACTIVATION_LIMIT:
            raise FixedPointRangeError(f"{where}: |a_in| reaches {peak} >= 2^18, beyond where int64 equals "
                                       f"Lava's int32 arithmetic")
        bias, vth = as_int(layer.effective_bias), int(layer.effective_vth)
        u = xp_zeros((batch, layer.size))
        v = xp_zeros((batch, layer.size))
        out = xp_zeros((batch, steps, layer.size))
        offset = None if reset_interval is None else (reset_offset + 1 + i) % reset_interval
        for k in range(steps):
            if offset is not None and (k + 1) % reset_interval == offset:  # PyLifResetModelBitAcc
                u, v = u * 0, v * 0
            u, v, s = fp.lif_fixed_step(u, v, a_in[:, k], layer.du, layer.dv, bias, vth)
            out[:, k] = s
        cur = out
        if record_layers:
            recorded.append(to_np(out).astype(np.uint8))
    result = to_np(cur).astype(np.uint8)
    if not batched:
        result = result[0]
        recorded = [r[0] for r in recorded]
    return (result, recorded) if record_layers else result


def emulated_netx_run(path, input_spikes: np.ndarray, *, num_steps: int | None = None, input_message_bits: int = 0,
                      reset_interval: int | None = None, reset_offset: int = 0, record_layers: bool = False,
                      timeout: float | None = None):
    """:func:`~hardware.netx.run.run_netx`'s signature and result on :func:`emulate_net` (no Lava):
    the ``runner`` that lets :func:`~hardware.netx.run.run_netx_bundle` reassemble a whole
    ``loihi2`` export in the emulation. ``timeout`` is accepted and unused."""
    from hardware.netx.run import NetxRun

    net = read_net(path)
    x = np.asarray(input_spikes, np.int64)
    steps = num_steps if num_steps is not None else x.shape[0] + net.latency
    out, layers = emulate_net(net, x, num_steps=steps, reset_interval=reset_interval, reset_offset=reset_offset,
                              record_layers=True, input_message_bits=input_message_bits)
    return NetxRun(out, dict(enumerate(layers)) if record_layers else {}, {}, net.latency, steps)


__all__ = ["NetxEmulationError", "NetxSynapseRegisters", "build_layers", "conv_matrix", "emulate_net",
           "emulated_netx_run", "netx_synapse_registers"]
