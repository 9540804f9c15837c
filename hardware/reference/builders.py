"""NIR node + the shape arriving at it -> the op that executes it (:mod:`hardware.reference.nodes`).

:func:`build_op` checks each node's parameters against the shape that actually arrives at the
node (inferred by the simulator) and raises :class:`GraphError` naming the node otherwise.
"""
from __future__ import annotations

from collections.abc import Callable

import nir
import numpy as np

from hardware.reference.errors import GraphError, warn
from hardware.reference.nodes import (
    DELAY_TOLERANCE_STEPS,
    BuildContext,
    Shape,
    AffineOp,
    ConvOp,
    CubaLIFOp,
    CubaLIOp,
    DelayOp,
    FlattenOp,
    IFOp,
    IntegratorOp,
    LIFOp,
    LIOp,
    PoolOp,
    Op,
    ScaleOp,
    ThresholdOp,
)
from taaf import budget, dynamics

def _fail(name: str, node: nir.NIRNode, message: str) -> GraphError:
    return GraphError(f"node {name!r} ({type(node).__name__}): {message}")


def _param(name: str, node: nir.NIRNode, attr: str, shape: Shape) -> np.ndarray:
    """A float64 copy of ``node.attr`` with the signal's shape; a scalar (shape ``()`` or
    ``(1,)``, as Norse and other exporters write shared parameters) is broadcast to it."""
    value = getattr(node, attr)
    if value is None:
        raise _fail(name, node, f"parameter {attr!r} is missing")
    array = np.asarray(value, dtype=np.float64)
    if array.shape in ((), (1,)) and array.shape != shape:
        array = np.broadcast_to(array.reshape(()), shape).copy()
    if array.shape != shape:
        raise _fail(name, node, f"parameter {attr!r} has shape {array.shape}, but its input has "
                                f"shape {shape}")
    return _finite(name, node, attr, array)


def _finite(name: str, node: nir.NIRNode, attr: str, array: np.ndarray) -> np.ndarray:
    """``array`` unchanged, or a GraphError when it holds NaN or infinity (a wrong result otherwise)."""
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise _fail(name, node, f"parameter {attr!r} holds {bad} non-finite value(s) (NaN or infinity)")
    return array


def _cast(ctx: BuildContext, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(a, dtype=ctx.dtype) for a in arrays)


def _per_dim(name: str, node: nir.NIRNode, attr: str, value, nd: int, minimum: int) -> Shape:
    """An int or a length-``nd`` sequence -> ``nd`` ints, each ``>= minimum``."""
    flat = np.asarray(value).reshape(-1)
    if flat.size == 1:
        flat = np.repeat(flat, nd)
    if flat.size != nd or not np.all(np.equal(np.mod(flat, 1), 0)) or np.any(flat < minimum):
        raise _fail(name, node, f"{attr}={value!r} is not {nd} integer(s) >= {minimum}")
    return tuple(int(v) for v in flat)


def _identity(name, node, in_shape, ctx):
    return Op(in_shape, in_shape)


def _affine(name, node, in_shape, ctx):
    weight = _finite(name, node, "weight", np.asarray(node.weight, dtype=np.float64))
    if weight.ndim != 2:
        raise _fail(name, node, f"only 2-d weights are supported, got shape {weight.shape}")
    if in_shape != (weight.shape[1],):
        raise _fail(name, node, f"weight {weight.shape} expects input ({weight.shape[1]},), "
                                f"got {in_shape}")
    bias = None
    if isinstance(node, nir.Affine) and node.bias is not None:
        bias = _param(name, node, "bias", (weight.shape[0],))
        (bias,) = _cast(ctx, bias)
    (weight,) = _cast(ctx, weight)
    return AffineOp(in_shape, (weight.shape[0],), weight=weight, bias=bias)


def _scale(name, node, in_shape, ctx):
    (scale,) = _cast(ctx, _param(name, node, "scale", in_shape))
    return ScaleOp(in_shape, in_shape, scale=scale)


def _threshold(name, node, in_shape, ctx):
    (threshold,) = _cast(ctx, _param(name, node, "threshold", in_shape))
    return ThresholdOp(in_shape, in_shape, threshold=threshold)


def _flatten(name, node, in_shape, ctx):
    declared = node.input_type.get("input") if isinstance(node.input_type, dict) else None
    if declared is not None and tuple(int(v) for v in np.atleast_1d(declared)) != in_shape:
        raise _fail(name, node, f"declares input_type {tuple(declared)} but receives {in_shape}")
    nd = len(in_shape)
    start, end = int(node.start_dim), int(node.end_dim)
    start, end = (start + nd if start < 0 else start), (end + nd if end < 0 else end)
    if not 0 <= start <= end < nd:
        raise _fail(name, node, f"start_dim={node.start_dim}, end_dim={node.end_dim} do not fit "
                                f"input shape {in_shape} (NIR dims exclude the batch)")
    middle = int(np.prod(in_shape[start:end + 1], dtype=np.int64))
    return FlattenOp(in_shape, in_shape[:start] + (middle,) + in_shape[end + 1:])


def _conv(name, node, in_shape, ctx):
    weight = _finite(name, node, "weight", np.asarray(node.weight, dtype=np.float64))
    nd = weight.ndim - 2
    groups = int(node.groups)
    if len(in_shape) != nd + 1:
        raise _fail(name, node, f"expects input [C, {nd} spatial dim(s)], got {in_shape}")
    if groups < 1 or weight.shape[0] % groups or in_shape[0] != weight.shape[1] * groups:
        raise _fail(name, node, f"weight {weight.shape} with groups={groups} does not fit "
                                f"{in_shape[0]} input channels")
    if node.input_shape is not None and tuple(np.atleast_1d(node.input_shape)) != in_shape[1:]:
        raise _fail(name, node, f"input_shape={node.input_shape} but input is {in_shape}")
    stride = _per_dim(name, node, "stride", node.stride, nd, 1)
    dilation = _per_dim(name, node, "dilation", node.dilation, nd, 1)
    kernel = weight.shape[2:]
    padding = node.padding
    if isinstance(padding, (str, bytes)):
        padding = padding.decode() if isinstance(padding, bytes) else padding
        if padding == "valid":
            pads = ((0, 0),) * nd
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise _fail(name, node, "padding='same' needs stride 1 (as in PyTorch)")
            totals = [d * (k - 1) for d, k in zip(dilation, kernel)]
            pads = tuple((t // 2, t - t // 2) for t in totals)  # extra on the right, as PyTorch
        else:
            raise _fail(name, node, f"padding must be 'same', 'valid' or integers, got {padding!r}")
    else:
        pads = tuple((p, p) for p in _per_dim(name, node, "padding", padding, nd, 0))
    out = tuple((s + lo + hi - d * (k - 1) - 1) // st + 1
                for s, (lo, hi), d, k, st in zip(in_shape[1:], pads, dilation, kernel, stride))
    if any(o < 1 for o in out):
        raise _fail(name, node, f"input {in_shape} is smaller than the (dilated) kernel {kernel}")
    bias = np.zeros(weight.shape[0]) if node.bias is None else _param(name, node, "bias",
                                                                        (weight.shape[0],))
    weight, bias = _cast(ctx, weight, bias)
    return ConvOp(in_shape, (weight.shape[0],) + out, weight=weight, bias=bias, stride=stride,
                  dilation=dilation, padding=pads, groups=groups)


def _pool(name, node, in_shape, ctx):
    if len(in_shape) != 3:
        raise _fail(name, node, f"expects input [C, H, W], got {in_shape}")
    kernel = _per_dim(name, node, "kernel_size", node.kernel_size, 2, 1)
    stride = _per_dim(name, node, "stride", node.stride, 2, 1)
    padding = _per_dim(name, node, "padding", node.padding, 2, 0)
    out = tuple((s + 2 * p - k) // st + 1 for s, p, k, st in zip(in_shape[1:], padding, kernel, stride))
    if any(o < 1 for o in out):
        raise _fail(name, node, f"input {in_shape} is smaller than the kernel {kernel}")
    divisor = float(kernel[0] * kernel[1]) if isinstance(node, nir.AvgPool2d) else 1.0
    return PoolOp(in_shape, (in_shape[0],) + out, kernel=kernel, stride=stride, padding=padding,
                  divisor=divisor)


def _delay(name, node, in_shape, ctx):
    steps = _param(name, node, "delay", in_shape).reshape(-1) / ctx.dt
    rounded = np.round(steps)
    if not np.all(np.isfinite(steps)) or np.any(rounded < 0):
        raise _fail(name, node, "delays must be finite and >= 0")
    stored = np.asarray(node.delay).dtype
    eps = np.finfo(stored).eps if np.issubdtype(stored, np.floating) else 0.0
    tolerance = np.maximum(DELAY_TOLERANCE_STEPS, 4 * eps * np.abs(rounded))
    worst = np.abs(steps - rounded).max(initial=0.0)
    if np.any(np.abs(steps - rounded) > tolerance):
        raise _fail(name, node, f"delay is not a whole number of steps of dt={ctx.dt} "
                                f"(off by {worst:.3g} steps)")
    op = DelayOp(in_shape, in_shape, steps=rounded.astype(np.int64))
    budget.check(f"node {name!r} (Delay): the history of {int(rounded.max(initial=0)):,} steps",
                 ctx.dtype.itemsize * op.state_size(1), "per sample, (delay + 1) x elements, twice")
    return op


def _integrator(name, node, in_shape, ctx):
    gain = dynamics.nir_integrator_gain(_param(name, node, "r", in_shape), ctx.dt, ctx.integrator)
    (gain,) = _cast(ctx, gain)
    return IntegratorOp(in_shape, in_shape, gain=gain)


def _if(name, node, in_shape, ctx):
    gain = dynamics.nir_integrator_gain(_param(name, node, "r", in_shape), ctx.dt, ctx.integrator)
    gain, threshold, v_reset = _cast(ctx, gain, _param(name, node, "v_threshold", in_shape),
                                     _v_reset(name, node, in_shape))
    return IFOp(in_shape, in_shape, gain=gain, threshold=threshold, v_reset=v_reset)


def _warn_coarse_dt(name: str, attr: str, tau: np.ndarray, decay: np.ndarray, dt: float) -> None:
    """Forward Euler with ``dt > tau`` gives a negative ``decay`` (the state flips sign or blows
    up): a wrong dt (a graph without dt metadata, an exporter's time unit) rather than a network.
    ``tau = dt`` (to float32 rounding) is a neuron without memory, decay 0, and is fine."""
    if np.any(decay < 0):
        warn(f"node {name!r}: dt = {dt:g} s > {attr} = {float(np.min(tau)):g} s; forward Euler decays "
             f"1 - dt/{attr} < 0 (is dt right? pass --dt)")


def _v_reset(name, node, in_shape) -> np.ndarray:
    """NIR < 1.0 files have no ``v_reset``; NIR defines the default as 0."""
    return np.zeros(in_shape) if node.v_reset is None else _param(name, node, "v_reset", in_shape)


def _membrane(name, node, in_shape, tau_attr: str, ctx) -> dynamics.DiscreteLIF:
    tau = _param(name, node, tau_attr, in_shape)
    if np.any(tau <= 0):
        raise _fail(name, node, f"{tau_attr} must be > 0")
    m = dynamics.nir_lif_to_discrete(tau, _param(name, node, "r", in_shape),
                                     _param(name, node, "v_leak", in_shape), dt=ctx.dt)
    _warn_coarse_dt(name, tau_attr, tau, m.decay, ctx.dt)
    return m


def _synapse(name, node, in_shape, ctx) -> dynamics.DiscreteSynapse:
    tau_syn = _param(name, node, "tau_syn", in_shape)
    if np.any(tau_syn <= 0):
        raise _fail(name, node, "tau_syn must be > 0")
    w_in = _finite(name, node, "w_in", np.broadcast_to(np.asarray(node.w_in, dtype=np.float64), in_shape))
    syn = dynamics.nir_synapse_to_discrete(tau_syn, w_in, dt=ctx.dt)
    _warn_coarse_dt(name, "tau_syn", tau_syn, syn.decay, ctx.dt)
    return syn


def _li(name, node, in_shape, ctx):
    m = _membrane(name, node, in_shape, "tau", ctx)
    decay, gain, bias = _cast(ctx, m.decay, m.gain, m.bias)
    return LIOp(in_shape, in_shape, decay=decay, gain=gain, bias=bias)


def _lif(name, node, in_shape, ctx):
    m = _membrane(name, node, in_shape, "tau", ctx)
    decay, gain, bias, threshold, v_reset = _cast(
        ctx, m.decay, m.gain, m.bias, _param(name, node, "v_threshold", in_shape),
        _v_reset(name, node, in_shape))
    return LIFOp(in_shape, in_shape, decay=decay, gain=gain, bias=bias, threshold=threshold,
                 v_reset=v_reset)


def _cuba_li(name, node, in_shape, ctx):
    s, m = _synapse(name, node, in_shape, ctx), _membrane(name, node, in_shape, "tau_mem", ctx)
    syn_decay, syn_gain, decay, gain, bias = _cast(ctx, s.decay, s.gain, m.decay, m.gain, m.bias)
    return CubaLIOp(in_shape, in_shape, syn_decay=syn_decay, syn_gain=syn_gain, decay=decay,
                    gain=gain, bias=bias)


def _cuba_lif(name, node, in_shape, ctx):
    s, m = _synapse(name, node, in_shape, ctx), _membrane(name, node, in_shape, "tau_mem", ctx)
    syn_decay, syn_gain, decay, gain, bias, threshold, v_reset = _cast(
        ctx, s.decay, s.gain, m.decay, m.gain, m.bias,
        _param(name, node, "v_threshold", in_shape), _v_reset(name, node, in_shape))
    return CubaLIFOp(in_shape, in_shape, syn_decay=syn_decay, syn_gain=syn_gain, decay=decay,
                     gain=gain, bias=bias, threshold=threshold, v_reset=v_reset)


Builder = Callable[[str, nir.NIRNode, Shape, BuildContext], Op]

BUILDERS: dict[type, Builder] = {
    nir.Input: _identity, nir.Output: _identity, nir.ir.graph.Identity: _identity,
    nir.Affine: _affine, nir.Linear: _affine, nir.Scale: _scale,
    nir.Conv1d: _conv, nir.Conv2d: _conv, nir.SumPool2d: _pool, nir.AvgPool2d: _pool,
    nir.Flatten: _flatten, nir.Delay: _delay, nir.Threshold: _threshold,
    nir.I: _integrator, nir.IF: _if, nir.LI: _li, nir.LIF: _lif,
    nir.CubaLI: _cuba_li, nir.CubaLIF: _cuba_lif,
}


def build_op(name: str, node: nir.NIRNode, in_shape: Shape, ctx: BuildContext) -> Op:
    """The op for ``node`` given the shape of its (summed) input; GraphError if unsupported."""
    builder = BUILDERS.get(type(node))
    if builder is None:
        supported = ", ".join(sorted(t.__name__ for t in BUILDERS))
        raise _fail(name, node, f"unsupported node type (supported: {supported})")
    try:
        return builder(name, node, in_shape, ctx)
    except GraphError:
        raise
    except (ValueError, TypeError, AttributeError, OverflowError, IndexError, KeyError) as exc:  # malformed parameters
        raise _fail(name, node, f"malformed parameters: {exc}") from exc
