"""NIR graph -> real Lava processes on ``Loihi2SimCfg`` (CPU), float or bit-accurate fixed point.

Three stages, each usable on its own:

1. :func:`lower_graph` (no Lava): the graph is compiled by the reference simulator (same
   validation, shapes, per-step coefficients) and every path of stateless nodes between two
   *neuron* layers (or an Input / an Output) is composed into linear **terms**
   ``(source, delay, matrix)``:

   ===============================  ==============================================================
   NIR                              Lava
   ===============================  ==============================================================
   Input                            ``io.source.RingBuffer`` (graded messages)
   LIF / IF / CubaLIF               ``LIFReset`` (du = 1 [CubaLIF: dt/tau_syn], dv = dt/tau [IF: 0],
                                    vth, bias_mant = v_leak dt/tau + gain x (Affine/Conv biases))
   Affine, Linear, Scale, Flatten,  folded into the matrices of the synapses of the next neuron
   Conv1d/2d, SumPool/AvgPool2d     layer: ``Dense`` with the composed (for convolutions:
                                    unrolled) matrix x the neuron's input gain ``r dt/tau``
   Delay (+ Scale chains, TimeWarp) ``DelayDense`` (one process per (source, delay) term)
   fan-in                           several synapse processes into one ``a_in`` (Lava sums them)
   Output                           synapses into an ``io.extractor.Extractor`` (the readout
                                    needs no neuron: Dense ``a_out`` is recorded directly; the
                                    Affine bias is added by the host); an Output fed by a neuron
                                    alone records its spikes
   ===============================  ==============================================================

   This is the NIR paper's LIF mapping (Dense(w = dt/tau) + LIF(du = 1, dv = dt/tau)) in
   general form. Convolutions become Dense with the unrolled matrix, not Lava's ``Conv``:
   Lava 0.10's float ``Conv`` model computes in float32 through torch (which breaks the
   spike-for-spike agreement with the float64 reference) and expects (W, H, C) layouts;
   the unrolled matrix is exact and small for our encoders (size-guarded).

2. :func:`map_graph`: parameters for one mode. Float: weights x gain, Lava float models.
   Fixed: every layer through a :class:`~hardware.loihi.fixed_point.QuantizationRule`
   (default :class:`~hardware.loihi.fixed_point.PowerOfTwoRule`); analog inputs become graded
   integers (:class:`~hardware.loihi.fixed_point.InputEncoding`).

3. :meth:`LavaProgram.network` lays a batch out in time and :func:`run_with_watchdog` runs it in
   an isolated process group; :meth:`LavaProgram.unpack` returns ``[T, B, ...]`` arrays in the
   reference simulator's time base.

Latency alignment (the one place it is done: :func:`lower_graph`)
----------------------------------------------------------------
The reference simulator lets a signal cross every feed-forward edge within one step; in Lava
every synapse process (Dense) delays by one step. Every neuron layer and Output ``X`` gets a
latency ``L(X)``: Inputs 0, otherwise ``L(X) = 1 + max L(S)`` over the sources ``S`` of its
feed-forward terms (the longest hop count from the Inputs). A term ``(S, d)`` (``d``: the
steps of NIR Delay nodes on the path, +1 per recurrent edge) gets Lava synaptic delay
``k = L(X) - L(S) - 1 + d`` (``k = 0``: Dense, else DelayDense), so every input of ``X``
arrives together: at a fan-in the shorter path is delayed (our fusion layer: the audio path
has fewer hops than the visual one) and NIR delays are carried by the same DelayDense.
Sample step ``t`` of ``X`` is Lava step ``t + 1 + L(X)`` (Lava counts from 1), i.e. recorded
index ``t + L(X)`` (plus the batch layout's offset, below); :meth:`LavaProgram.unpack` removes
it. A recurrent term with ``k < 0``
cannot be built (LavaMappingError).

Batch evaluation (many samples in one Lava run)
----------------------------------------------
Sample ``b`` occupies input steps ``[b P + G, b P + G + T)``, ``P = T + G``: each sample is
preceded by a gap of ``G`` = the largest delay ``d`` of any term (0 without Delay nodes /
recurrence). Each layer is a ``LIFReset`` with ``reset_interval = P`` and
``reset_offset = (1 + G + L(X)) mod P``: it zeroes ``u`` and ``v`` exactly at the step where
the first input of a sample reaches it, so its own latency decides its reset and no state leaks
between samples (what arrives after a sample's ``T`` steps only lands in the layer's own gap,
which the next reset clears; bias-only integration before the first sample likewise). Only
delayed terms look back across the boundary (up to ``G`` steps, into the gap): their source
layers are silenced during the gap by a **gate**: one extra RingBuffer neuron, 1 during every
gap, inhibits them through a (Delay)Dense (delay ``L(S) - 1``) strongly enough to beat any
input plus bias (fixed point: the rule checks the sum cannot wrap the 24-bit current). The
gate is part of every mapping with delayed terms, whatever the batch size, so a sample's result
never depends on the batch it runs in. Total steps: ``B P + max L``.

Not mapped (LavaMappingError naming the node): Threshold, I, LI and CubaLI nodes; per-neuron
time constants or thresholds (a Lava LIF shares du/dv/vth); ``v_reset != 0``; a constant
(Affine/Conv bias) that passes a Delay or a recurrent edge, or that feeds a CubaLIF's current;
cycles without a neuron; recurrent paths that would need a negative Lava delay.

Watchdog
--------
Lava hangs, rather than raising, when a process model fails in its child process.
:func:`run_with_watchdog` therefore validates every parameter first (:func:`validate_network`:
integer dtypes and register ranges via :mod:`~hardware.loihi.fixed_point`, shapes, delays)
and runs Lava in a forked child process that starts its own process group (``setsid``); the
child watches Lava's actor processes while it streams the recordings out, and the parent
enforces a wall-clock timeout. On any failure the whole group is killed (SIGKILL), reaped, and a
:class:`~hardware.loihi.LavaRunError` (:class:`~hardware.loihi.LavaTimeoutError`) is raised;
:func:`group_members` lets tests check that nothing is left.
"""
from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import re
import signal
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import nir
import numpy as np

from hardware.loihi import (
    FixedPointRangeError,
    LavaMappingError,
    LavaRunError,
    LavaTimeoutError,
)
from hardware.loihi import fixed_point as fp
from hardware.reference import ReferenceSimulator
from hardware.reference.nodes import (
    AffineOp,
    ConvOp,
    CubaLIFOp,
    DelayOp,
    FlattenOp,
    IFOp,
    LIFOp,
    Op,
    PoolOp,
    ScaleOp,
)

MAX_UNROLLED_ENTRIES = 50_000_000  # guard for convolution -> Dense matrices
GRADED_FLOAT_BITS = 24  # num_message_bits of float graded messages (any > 0 means graded)
DEFAULT_TIMEOUT_S = 600.0
NEURON_OPS = (LIFOp, IFOp, CubaLIFOp)

# --- 1. lowering ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """A linear path into a neuron layer or Output: ``matrix @ source[t - delay]``
    (``matrix`` [n_target, n_source]; None = identity)."""

    source: str
    delay: int
    matrix: np.ndarray | None


@dataclass(frozen=True)
class NeuronLayer:
    """One Lava LIF process. ``gain`` multiplies the summed input (folded into the weights);
    ``bias`` is the per-step voltage bias including ``gain x`` upstream Affine/Conv biases."""

    name: str
    kind: str  # "LIF", "IF", "CubaLIF"
    shape: tuple[int, ...]
    dv: float
    du: float
    threshold: float
    gain: np.ndarray
    bias: np.ndarray
    terms: tuple[Term, ...]
    latency: int

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass(frozen=True)
class Readout:
    """An Output: ``sum(terms) + bias`` (bias added by the host), or a recorded source when
    ``direct`` names it."""

    name: str
    shape: tuple[int, ...]
    terms: tuple[Term, ...]
    bias: np.ndarray
    latency: int
    direct: str | None = None


@dataclass(frozen=True)
class LoweredGraph:
    dt: float
    inputs: dict[str, tuple[int, ...]]
    neurons: dict[str, NeuronLayer]  # in evaluation order
    readouts: dict[str, Readout]
    gap: int  # G: the largest term delay (steps a batch leaves between samples)
    gated: tuple[str, ...]  # neuron layers that source a delayed term

    def latency(self, name: str) -> int:
        if name in self.inputs:
            return 0
        if name in self.neurons:
            return self.neurons[name].latency
        return self.readouts[name].latency

    def synaptic_delay(self, target: str, term: Term) -> int:
        """Lava synaptic delay ``k = L(target) - L(source) - 1 + d`` of a term."""
        return self.latency(target) - self.latency(term.source) - 1 + term.delay


def _unique(name: str, what: str, values: np.ndarray) -> float:
    u = np.unique(np.asarray(values, np.float64))
    if u.size != 1:
        raise LavaMappingError(f"node {name!r}: Lava's LIF shares one {what} per process, but the "
                               f"graph has {u.size} different values ({u[:4]}...)")
    return float(u[0])


def _linear(name: str, op: Op) -> tuple[str, object, np.ndarray | None]:
    """A stateless op as ("identity" | "rows" | "matrix", A, constant)."""
    if isinstance(op, FlattenOp) or type(op) is Op:
        return "identity", None, None
    if isinstance(op, ScaleOp):
        return "rows", np.asarray(op.scale, np.float64).reshape(-1), None
    if isinstance(op, AffineOp):
        bias = None if op.bias is None else np.asarray(op.bias, np.float64)
        return "matrix", np.asarray(op.weight, np.float64), bias
    if isinstance(op, (ConvOp, PoolOp)):
        n_in = int(np.prod(op.in_shape, dtype=np.int64))
        n_out = int(np.prod(op.out_shape, dtype=np.int64))
        if n_in * n_out > MAX_UNROLLED_ENTRIES:
            raise LavaMappingError(f"node {name!r}: unrolling {op.in_shape} -> {op.out_shape} into a Dense "
                                   f"matrix needs {n_in * n_out} entries (limit {MAX_UNROLLED_ENTRIES})")
        const = op.apply(np.zeros((1,) + op.in_shape)).reshape(-1)
        basis = op.apply(np.eye(n_in).reshape((n_in,) + op.in_shape)).reshape(n_in, n_out)
        const = None if not np.any(const) else const
        return "matrix", (basis - (0 if const is None else const)).T.copy(), const
    raise LavaMappingError(f"node {name!r}: {type(op).__name__} has no Lava mapping (supported between "
                           f"neurons: Affine, Linear, Scale, Flatten, Conv, SumPool/AvgPool, Delay)")


def _compose(kind: str, a, m: np.ndarray | None) -> np.ndarray | None:
    if kind == "identity":
        return m
    if kind == "rows":
        return np.diag(a) if m is None else a[:, None] * m
    return a if m is None else a @ m


def _merge(terms: list[Term], size_of: Callable[[str], int]) -> tuple[Term, ...]:
    """Sum terms with the same (source, delay), in order of first appearance."""
    merged: dict[tuple[str, int], np.ndarray | None] = {}
    for t in terms:
        key = (t.source, t.delay)
        if key not in merged:
            merged[key] = t.matrix
            continue
        a, b = merged[key], t.matrix
        eye = np.eye(size_of(t.source)) if a is None or b is None else None
        merged[key] = (eye if a is None else a) + (eye if b is None else b)
    return tuple(Term(src, d, m) for (src, d), m in merged.items())


def lower_graph(graph: nir.NIRGraph, dt: float | None = None) -> LoweredGraph:
    """Compose the graph into neuron layers, readouts and latency-aligned terms (no Lava)."""
    sim = ReferenceSimulator(graph, dt)
    plan = sim.plan
    ops = plan.ops
    shapes = {n: op.out_shape for n, op in ops.items()}
    cache: dict[str, tuple[list[Term], np.ndarray | None]] = {}
    visiting: set[str] = set()

    def size_of(n: str) -> int:
        return int(np.prod(shapes[n], dtype=np.int64))

    def is_source(n: str) -> bool:
        return n in plan.inputs or isinstance(ops[n], NEURON_OPS)

    def fan_in(n: str) -> tuple[list[Term], np.ndarray | None]:
        """Terms and constant of the summed input of node ``n``."""
        terms: list[Term] = []
        const = None
        for src in plan.sources[n]:
            extra = 1 if (src, n) in plan.recurrent_edges else 0
            t, c = output_of(src)
            if extra and c is not None and np.any(c):
                raise LavaMappingError(f"edge {src!r} -> {n!r}: a constant (bias) crossing a recurrent edge "
                                       f"is not supported by the Lava mapping")
            terms += [Term(x.source, x.delay + extra, x.matrix) for x in t]
            if c is not None:
                const = c if const is None else const + c
        return terms, const

    def output_of(n: str) -> tuple[list[Term], np.ndarray | None]:
        if is_source(n):
            return [Term(n, 0, None)], None
        if n in cache:
            return cache[n]
        if n in visiting:
            raise LavaMappingError(f"node {n!r} is on a cycle without a neuron; Lava cannot express it")
        visiting.add(n)
        terms, const = fan_in(n)
        op = ops[n]
        if isinstance(op, DelayOp):
            steps = np.asarray(op.steps, np.int64).reshape(-1)
            if const is not None and np.any(const):
                raise LavaMappingError(f"node {n!r}: a constant (bias) upstream of a Delay is not supported "
                                       f"by the Lava mapping (it would be switched on late)")
            out = []
            for d in np.unique(steps):
                mask = (steps == d).astype(np.float64)
                for t in terms:
                    m = t.matrix if np.all(mask == 1) else _compose("rows", mask, t.matrix)
                    out.append(Term(t.source, t.delay + int(d), m))
            result = (out, None)
        else:
            kind, a, c = _linear(n, op)
            out = [Term(t.source, t.delay, _compose(kind, a, t.matrix)) for t in terms]
            if const is not None:
                const = const if kind == "identity" else (a * const if kind == "rows" else a @ const)
            if c is not None:
                const = c if const is None else const + c
            result = (out, const)
        visiting.discard(n)
        cache[n] = result
        return result

    latency: dict[str, int] = {n: 0 for n in plan.inputs}
    neurons: dict[str, NeuronLayer] = {}
    readouts: dict[str, Readout] = {}
    pending: list[tuple[str, NeuronLayer | Readout]] = []
    for n in plan.order:
        op = ops[n]
        if n in plan.inputs:
            continue
        if isinstance(op, NEURON_OPS):
            terms, const = fan_in(n)
            merged = _merge(terms, size_of)
            feed = [latency[t.source] for t in merged if t.source in latency]
            latency[n] = 1 + max(feed, default=0)
            neurons[n] = _neuron_layer(n, op, merged, const, latency[n])
            pending.append((n, neurons[n]))
        elif n in plan.outputs:
            terms, const = fan_in(n)
            merged = _merge(terms, size_of)
            bias = np.zeros(int(np.prod(shapes[n], dtype=np.int64))) if const is None else np.asarray(const).reshape(-1)
            direct = None
            if len(merged) == 1 and merged[0].matrix is None and merged[0].delay == 0 and not np.any(bias):
                direct = merged[0].source
                latency[n] = latency[direct]
            else:
                latency[n] = 1 + max((latency[t.source] for t in merged if t.source in latency), default=0)
            readouts[n] = Readout(n, shapes[n], merged, bias, latency[n], direct)
            pending.append((n, readouts[n]))
        else:
            if not isinstance(op, (DelayOp, AffineOp, ScaleOp, FlattenOp, ConvOp, PoolOp)) and type(op) is not Op:
                _linear(n, op)  # raises the unsupported-node error
    gap, gated = 0, set()
    lowered = LoweredGraph(float(sim.dt), {n: ops[n].out_shape for n in plan.inputs}, neurons, readouts, 0, ())
    for target, item in pending:
        if isinstance(item, Readout) and item.direct:
            continue
        for t in item.terms:
            k = lowered.synaptic_delay(target, t)
            if k < 0:
                raise LavaMappingError(f"{t.source!r} -> {target!r}: a recurrent path with delay {t.delay} "
                                       f"would need a negative Lava delay ({k}); Lava cannot go back in time")
            if t.delay > 0:
                gap = max(gap, t.delay)
                if t.source in neurons:
                    gated.add(t.source)
    return LoweredGraph(lowered.dt, lowered.inputs, neurons, readouts, gap,
                        tuple(n for n in neurons if n in gated))


def _neuron_layer(name: str, op, terms: tuple[Term, ...], const, latency: int) -> NeuronLayer:
    if np.any(np.asarray(op.v_reset) != 0):
        raise LavaMappingError(f"node {name!r}: Lava's LIF resets to 0; v_reset = {np.unique(op.v_reset)[:4]}")
    threshold = _unique(name, "threshold (vth)", op.threshold)
    shape = tuple(op.in_shape)
    if isinstance(op, LIFOp):
        kind, dv, du = "LIF", 1.0 - _unique(name, "decay (dv)", op.decay), 1.0
        gain, bias = np.asarray(op.gain, np.float64).reshape(-1), np.asarray(op.bias, np.float64).reshape(-1)
    elif isinstance(op, IFOp):
        kind, dv, du = "IF", 0.0, 1.0
        gain, bias = np.asarray(op.gain, np.float64).reshape(-1), np.zeros(int(np.prod(shape)))
    else:  # CubaLIF: u = gain*i, du = 1 - syn_decay
        kind, dv = "CubaLIF", 1.0 - _unique(name, "decay (dv)", op.decay)
        du = 1.0 - _unique(name, "synaptic decay (du)", op.syn_decay)
        gain = (np.asarray(op.gain, np.float64) * np.asarray(op.syn_gain, np.float64)).reshape(-1)
        bias = np.asarray(op.bias, np.float64).reshape(-1)
        if const is not None and np.any(const):
            raise LavaMappingError(f"node {name!r}: an Affine/Conv bias into a CubaLIF would drive its current, "
                                   f"which Lava's LIF cannot take as a bias; not supported")
    gain = np.broadcast_to(gain, (int(np.prod(shape)),)).copy()
    if const is not None:
        bias = bias + gain * np.asarray(const, np.float64).reshape(-1)
    return NeuronLayer(name, kind, shape, float(dv), float(du), threshold, gain, bias, terms, latency)


# --- 2. parameters for one mode ---------------------------------------------------------------

@dataclass(frozen=True)
class SynapseParams:
    """One Lava synapse process; ``dst`` is a neuron layer or a readout (Extractor)."""

    name: str
    src: str
    dst: str
    weights: np.ndarray  # float (float mode) or int (fixed)
    delay: int
    weight_exp: int = 0
    sign_mode: int = 1  # fixed_point.SignMode (MIXED)
    graded: bool = False


@dataclass(frozen=True)
class LayerParams:
    name: str
    size: int
    du: float | int
    dv: float | int
    vth: float | int
    bias_mant: np.ndarray
    bias_exp: np.ndarray
    latency: int
    scale_exp: int = 0  # fixed: integer voltage = 2^scale_exp x float voltage


@dataclass(frozen=True)
class ReadoutParams:
    name: str
    size: int
    latency: int
    bias: np.ndarray
    scale: float  # float readout = recorded * scale + bias
    direct: str | None


@dataclass(frozen=True)
class LavaProgram:
    """A lowered graph with the parameters of one mode; :meth:`network` adds a batch."""

    lowered: LoweredGraph
    fixed: bool
    layers: dict[str, LayerParams]
    synapses: tuple[SynapseParams, ...]
    readouts: dict[str, ReadoutParams]
    encodings: dict[str, fp.InputEncoding] = field(default_factory=dict)
    quantized: dict[str, fp.QuantizedLayer] = field(default_factory=dict)
    rule: str = "float"

    @property
    def tag(self) -> str:
        return "fixed_pt" if self.fixed else "floating_pt"

    def network(self, inputs: Mapping[str, np.ndarray], record: bool | tuple[str, ...] = True,
                record_v: tuple[str, ...] = ()) -> NetworkSpec:
        """Lay out a batch ``inputs[name]: [T, B, *shape]`` in time (module docstring)."""
        return build_network(self, inputs, record, record_v)

    def unpack(self, spec: NetworkSpec, raw: Mapping[str, np.ndarray]) -> LavaResult:
        return unpack(self, spec, raw)


def _term_source_info(lowered: LoweredGraph, src: str, encodings: Mapping[str, fp.InputEncoding]):
    """(graded?, frac_bits, max_int) of the messages a source sends."""
    if src in lowered.inputs:
        enc = encodings.get(src)
        return True, (enc.frac_bits if enc else 0), (enc.max_int if enc else 1)
    return False, 0, 1


def map_graph(graph: nir.NIRGraph, dt: float | None = None, fixed: bool = False,
              rule: fp.QuantizationRule | None = None,
              input_ranges: Mapping[str, float] | None = None) -> LavaProgram:
    """The graph as Lava parameters. Fixed point needs ``input_ranges`` (max |x| per Input,
    the documented encoding range); float ignores it."""
    lowered = graph if isinstance(graph, LoweredGraph) else lower_graph(graph, dt)
    if not fixed:
        return _float_program(lowered)
    rule = rule or fp.PowerOfTwoRule()
    ranges = dict(input_ranges or {})
    missing = [n for n in lowered.inputs if n not in ranges]
    if missing:
        raise LavaMappingError(f"fixed point needs the input range (max |x|) of Input(s) {missing}")
    encodings = {n: rule.input_encoding(n, float(ranges[n])) for n in lowered.inputs}
    return _fixed_program(lowered, rule, encodings)


def _float_program(lowered: LoweredGraph) -> LavaProgram:
    layers, synapses = {}, []
    for name, layer in lowered.neurons.items():
        layers[name] = LayerParams(name, layer.size, du=layer.du, dv=layer.dv, vth=layer.threshold,
                                   bias_mant=layer.bias, bias_exp=np.zeros(layer.size), latency=layer.latency)
        for i, t in enumerate(layer.terms):
            m = np.diag(np.ones(layer.size)) if t.matrix is None else t.matrix
            synapses.append(SynapseParams(f"{name}<-{t.source}@{t.delay}", t.source, name,
                                          layer.gain[:, None] * m, lowered.synaptic_delay(name, t),
                                          graded=t.source in lowered.inputs))
    readouts = {}
    for name, r in lowered.readouts.items():
        readouts[name] = ReadoutParams(name, int(np.prod(r.shape)), r.latency, r.bias, 1.0, r.direct)
        if r.direct:
            continue
        for t in r.terms:
            m = np.eye(int(np.prod(r.shape))) if t.matrix is None else t.matrix
            synapses.append(SynapseParams(f"{name}<-{t.source}@{t.delay}", t.source, name, m,
                                          lowered.synaptic_delay(name, t), graded=t.source in lowered.inputs))
    return LavaProgram(lowered, False, layers, tuple(synapses), readouts)


def _fixed_program(lowered: LoweredGraph, rule, encodings) -> LavaProgram:
    layers, synapses, quantized = {}, [], {}
    for name, layer in lowered.neurons.items():
        terms = []
        for t in layer.terms:
            graded, frac, max_int = _term_source_info(lowered, t.source, encodings)
            m = np.diag(np.ones(layer.size)) if t.matrix is None else t.matrix
            terms.append(fp.FloatTerm(t.source, layer.gain[:, None] * m, frac, max_int, signed=graded))
        q = rule.layer(name, terms, fp.FloatNeuron(layer.dv, layer.du, layer.threshold, layer.bias),
                       gated=name in lowered.gated)
        quantized[name] = q
        lif = q.lif
        layers[name] = LayerParams(name, layer.size, du=lif.du, dv=lif.dv, vth=lif.vth, bias_mant=lif.bias_mant,
                                   bias_exp=lif.bias_exp, latency=layer.latency, scale_exp=q.scale_exp)
        for t, syn in zip(layer.terms, q.synapses):
            synapses.append(SynapseParams(f"{name}<-{t.source}@{t.delay}", t.source, name, syn.weights,
                                          lowered.synaptic_delay(name, t), syn.weight_exp, int(syn.sign_mode),
                                          graded=t.source in lowered.inputs))
    readouts = {}
    for name, r in lowered.readouts.items():
        size = int(np.prod(r.shape))
        if r.direct:
            scale = 2.0 ** -encodings[r.direct].frac_bits if r.direct in encodings else 1.0
            readouts[name] = ReadoutParams(name, size, r.latency, r.bias, scale, r.direct)
            continue
        terms = []
        for t in r.terms:
            graded, frac, max_int = _term_source_info(lowered, t.source, encodings)
            m = np.eye(size) if t.matrix is None else t.matrix
            terms.append(fp.FloatTerm(t.source, m, frac, max_int, signed=graded))
        q = rule.readout(name, terms)
        readouts[name] = ReadoutParams(name, size, r.latency, r.bias, 2.0 ** -q.scale_exp, None)
        for t, syn in zip(r.terms, q.synapses):
            synapses.append(SynapseParams(f"{name}<-{t.source}@{t.delay}", t.source, name, syn.weights,
                                          lowered.synaptic_delay(name, t), syn.weight_exp, int(syn.sign_mode),
                                          graded=t.source in lowered.inputs))
    return LavaProgram(lowered, True, layers, tuple(synapses), readouts, encodings, quantized,
                       rule=getattr(rule, "name", type(rule).__name__))


# --- 3a. a batch laid out in time: the network specification ------------------------------------

GATE = "__gate__"


@dataclass(frozen=True)
class NetworkSpec:
    """Everything a Lava run needs, as plain numpy (picklable; no Lava objects).

    ``sources[name]``: [n, num_steps] data; ``layers``/``synapses``: parameters with reset
    interval/offset; ``sinks``: readout name -> size (an Extractor the synapses feed);
    ``record``: names whose output is streamed out (neuron spikes, sources, sinks);
    ``record_v``: neuron layers whose voltage a Monitor records (small runs only)."""

    tag: str
    num_steps: int
    n_samples: int
    sample_steps: int  # T
    period: int  # P = T + G
    sources: dict[str, np.ndarray]
    layers: dict[str, LayerParams]
    reset: dict[str, tuple[int, int]]  # layer -> (reset_interval, reset_offset)
    synapses: tuple[SynapseParams, ...]
    sinks: dict[str, int]
    record: tuple[str, ...]
    record_v: tuple[str, ...] = ()
    batched: bool = True  # False: inputs were [T, *shape]; results come back without B
    lead: int = 0  # G: gap steps before each sample (sample b starts at step b P + G)

    @property
    def fixed(self) -> bool:
        return self.tag == "fixed_pt"


def _float_gate(program: LavaProgram, name: str, max_abs: Mapping[str, float]) -> np.ndarray:
    """Float inhibition for a gated layer: beats worst-case input (for these inputs) plus bias."""
    pos = 0.0
    for syn in program.synapses:
        if syn.dst != name or syn.src == GATE:
            continue
        w = np.asarray(syn.weights, np.float64)
        pos = pos + (np.abs(w).sum(1) * max_abs[syn.src] if syn.graded else np.clip(w, 0, None).sum(1))
    layer = program.layers[name]
    if layer.vth < 0:
        raise LavaMappingError(f"{name}: gating needs a threshold >= 0, got {layer.vth}")
    du = float(layer.du) if layer.du > 0 else 1.0
    return -(np.asarray(pos, np.float64) / du + np.clip(layer.bias_mant, 0, None) + 1.0)


def stack_inputs(shapes: Mapping[str, tuple[int, ...]], inputs: Mapping[str, np.ndarray]
                 ) -> tuple[dict[str, np.ndarray], bool, int, int]:
    """Check the Input arrays ([T, B, *shape], or [T, *shape] for one sample) against the
    graph's Input shapes; -> ({name: [T, B, n] float64}, batched?, T, B)."""
    if set(inputs) != set(shapes):
        raise LavaMappingError(f"inputs must be exactly the Input nodes {sorted(shapes)}, got {sorted(inputs)}")
    arrays, layouts = {}, set()
    for name, shape in shapes.items():
        shape = tuple(shape)
        a = np.asarray(inputs[name], np.float64)
        batched = not (a.ndim == 1 + len(shape) and a.shape[1:] == shape)
        layouts.add(batched)
        if not batched:
            a = a[:, None]
        if a.shape[2:] != shape or a.ndim != 2 + len(shape):
            raise LavaMappingError(f"input {name!r}: expected [T, B, *{shape}], got {a.shape}")
        arrays[name] = a.reshape(a.shape[0], a.shape[1], -1)
    sizes = {a.shape[:2] for a in arrays.values()}
    if len(sizes) != 1 or len(layouts) != 1:
        raise LavaMappingError(f"all inputs need the same [T, B], got { {n: a.shape for n, a in arrays.items()} }")
    (steps, batch), = sizes
    if steps < 1 or batch < 1:
        raise LavaMappingError("inputs need at least one step and one sample")
    return arrays, layouts.pop(), steps, batch


def build_network(program: LavaProgram, inputs: Mapping[str, np.ndarray],
                  record: bool | tuple[str, ...] = True, record_v: tuple[str, ...] = ()) -> NetworkSpec:
    lowered = program.lowered
    arrays, batched, steps, batch = stack_inputs(lowered.inputs, inputs)
    lead = lowered.gap  # the gap comes before each sample (it also covers the start of the run)
    period = steps + lead
    max_latency = max([lowered.latency(n) for n in (*lowered.neurons, *lowered.readouts)], default=0)
    total = batch * period + max_latency
    sources = {}
    for name, a in arrays.items():
        data = np.zeros((a.shape[2], total), np.float64)
        cols = (np.arange(batch)[:, None] * period + lead + np.arange(steps)[None, :]).reshape(-1)
        data[:, cols] = a.transpose(2, 1, 0).reshape(a.shape[2], -1)
        if program.fixed:
            data = program.encodings[name].encode(data)
        sources[name] = data
    synapses = list(program.synapses)
    if lowered.gated:
        gate = np.zeros((1, total), np.int64 if program.fixed else np.float64)
        for b in range(batch):
            gate[0, b * period:b * period + lead] = 1
        sources[GATE] = gate
        max_abs = {n: float(np.abs(a).max(initial=0.0)) for n, a in arrays.items()}
        for name in lowered.gated:
            delay = lowered.neurons[name].latency - 1
            if program.fixed:
                syn = fp.gate_synapses(program.quantized[name])
                w, e, mode = syn.weights, syn.weight_exp, int(syn.sign_mode)
            else:
                w, e, mode = _float_gate(program, name, max_abs).reshape(-1, 1), 0, 1
            synapses.append(SynapseParams(f"{name}<-gate", GATE, name, w, delay, e, mode, graded=False))
    reset = {n: (period, (1 + lead + p.latency) % period) for n, p in program.layers.items()}
    sinks = {n: r.size for n, r in program.readouts.items() if r.direct is None}
    if record is True:
        rec = tuple(dict.fromkeys([*program.layers, *sinks, *(r.direct for r in program.readouts.values() if r.direct)]))
    else:
        rec = tuple(dict.fromkeys([*(record or ()), *sinks, *(r.direct for r in program.readouts.values() if r.direct)]))
    return NetworkSpec(program.tag, total, batch, steps, period, sources, dict(program.layers), reset,
                       tuple(synapses), sinks, rec, tuple(record_v), batched=batched, lead=lead)


# --- 3b. validation ---------------------------------------------------------------------------

def validate_network(spec: NetworkSpec) -> None:
    """Every parameter checked before Lava sees it (Lava would hang, not raise)."""
    if spec.tag not in ("fixed_pt", "floating_pt"):
        raise LavaMappingError(f"unknown Lava tag {spec.tag!r}")
    if spec.num_steps < 1:
        raise LavaMappingError("a Lava run needs at least one step")
    sizes: dict[str, int] = {}
    for name, data in spec.sources.items():
        data = np.asarray(data)
        if data.ndim != 2 or data.shape[1] != spec.num_steps:
            raise LavaMappingError(f"source {name!r}: data must be [n, {spec.num_steps}], got {data.shape}")
        if spec.fixed:
            if data.dtype.kind not in "iu":
                raise FixedPointRangeError(f"source {name!r}: fixed point needs integer messages, got {data.dtype}")
            if data.size and np.abs(data).max() > fp.GRADED_MAX:
                raise FixedPointRangeError(f"source {name!r}: message {np.abs(data).max()} exceeds 24 bits")
        elif not np.all(np.isfinite(data)):
            raise LavaMappingError(f"source {name!r}: inputs must be finite")
        sizes[name] = data.shape[0]
    for name, p in spec.layers.items():
        if name in sizes:
            raise LavaMappingError(f"duplicate process name {name!r}")
        sizes[name] = p.size
        interval, offset = spec.reset[name]
        if interval < 1 or not 0 <= offset < interval:
            raise LavaMappingError(f"{name}: reset_interval {interval} / reset_offset {offset} invalid")
        if spec.fixed:
            fp.QuantizedLIF(name, du=p.du, dv=p.dv, vth=p.vth, bias_mant=p.bias_mant, bias_exp=p.bias_exp)
            if np.asarray(p.bias_mant).shape != (p.size,):
                raise LavaMappingError(f"{name}: bias_mant must have shape ({p.size},)")
        else:
            for what in ("du", "dv", "vth"):
                v = getattr(p, what)
                if isinstance(v, (bool, np.bool_)) or not np.isfinite(float(v)):
                    raise LavaMappingError(f"{name}: {what} = {v!r} must be a finite number")
            if not 0.0 <= float(p.du) <= 1.0 or not 0.0 <= float(p.dv) <= 1.0:
                raise LavaMappingError(f"{name}: du = {p.du}, dv = {p.dv} must be in [0, 1]")
            b = np.asarray(p.bias_mant, np.float64)
            if b.shape != (p.size,) or not np.all(np.isfinite(b)):
                raise LavaMappingError(f"{name}: bias_mant must be {p.size} finite numbers")
    for name, n in spec.sinks.items():
        if name in sizes:
            raise LavaMappingError(f"duplicate process name {name!r}")
        sizes[name] = n
    fed = set()
    for syn in spec.synapses:
        if syn.src not in spec.sources and syn.src not in spec.layers:
            raise LavaMappingError(f"synapse {syn.name!r}: unknown source {syn.src!r}")
        if syn.dst not in spec.layers and syn.dst not in spec.sinks:
            raise LavaMappingError(f"synapse {syn.name!r}: unknown target {syn.dst!r}")
        w = np.asarray(syn.weights)
        if w.shape != (sizes[syn.dst], sizes[syn.src]):
            raise LavaMappingError(f"synapse {syn.name!r}: weights {w.shape} do not connect {syn.src!r} "
                                   f"({sizes[syn.src]}) to {syn.dst!r} ({sizes[syn.dst]})")
        if isinstance(syn.delay, bool) or int(syn.delay) != syn.delay or syn.delay < 0:
            raise LavaMappingError(f"synapse {syn.name!r}: delay {syn.delay} must be an integer >= 0")
        if spec.fixed:
            fp.QuantizedSynapses(syn.name, w, syn.weight_exp, fp.SignMode(syn.sign_mode))
            if syn.delay > fp.DELAY_MAX:
                raise FixedPointRangeError(f"synapse {syn.name!r}: delay = {syn.delay} is outside the allowed "
                                           f"range [0, {fp.DELAY_MAX}] (Loihi 2)")
        elif not np.all(np.isfinite(np.asarray(w, np.float64))):
            raise LavaMappingError(f"synapse {syn.name!r}: weights must be finite")
        fed.add(syn.dst)
    for name in spec.sinks:
        if name not in fed:
            raise LavaMappingError(f"readout {name!r} has no synapses")
    for name in (*spec.record, *spec.record_v):
        if name not in sizes:
            raise LavaMappingError(f"cannot record unknown process {name!r}")
    for name in spec.record_v:
        if name not in spec.layers:
            raise LavaMappingError(f"record_v: {name!r} is not a neuron layer")
        if spec.layers[name].size * spec.num_steps > 2_000_000:
            raise LavaMappingError(f"record_v: {name!r} x {spec.num_steps} steps is too large for Lava's "
                                   f"Monitor (it copies value by value)")


# --- 3c. running: child process + watchdog -----------------------------------------------------

def _lava_sign_mode(mode: int):
    from lava.utils.weightutils import SignMode

    return SignMode(int(mode))


def build_lava(spec: NetworkSpec):
    """Instantiate the Lava processes (call only inside the Lava child). Returns
    (root process, {record name: Extractor}, {layer: (Monitor, lif)}, run config)."""
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import DelayDense, Dense
    from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIFReset
    from lava.proc.monitor.process import Monitor

    fixed = spec.fixed
    procs = {}
    for name, data in spec.sources.items():
        procs[name] = RingBuffer(data=np.asarray(data, np.int32 if fixed else np.float64))
    for name, p in spec.layers.items():
        interval, offset = spec.reset[name]
        if fixed:
            kw = {"du": int(p.du), "dv": int(p.dv), "vth": int(p.vth), "bias_mant": np.asarray(p.bias_mant, np.int32),
                      "bias_exp": np.asarray(p.bias_exp, np.int32)}
        else:
            kw = {"du": float(p.du), "dv": float(p.dv), "vth": float(p.vth),
                      "bias_mant": np.asarray(p.bias_mant, np.float64), "bias_exp": 0}
        procs[name] = LIFReset(shape=(p.size,), reset_interval=int(interval), reset_offset=int(offset),
                               name=name, **kw)
    extractors = {}
    for name, n in spec.sinks.items():
        extractors[name] = Extractor(shape=(n,), buffer_size=256)
    inport = {n: p.a_in for n, p in procs.items() if n in spec.layers}
    inport.update({n: e.in_port for n, e in extractors.items()})
    outport = {n: p.s_out for n, p in procs.items()}
    graded_bits = GRADED_FLOAT_BITS
    for syn in spec.synapses:
        graded = syn.graded
        bits = graded_bits if graded else 0
        kw = {"weights": np.asarray(syn.weights, np.int32 if fixed else np.float64), "num_message_bits": bits}
        if fixed:
            kw.update(weight_exp=int(syn.weight_exp), num_weight_bits=fp.WEIGHT_BITS,
                      sign_mode=_lava_sign_mode(syn.sign_mode))
        proc = DelayDense(delays=int(syn.delay), **kw) if syn.delay > 0 else Dense(**kw)
        outport[syn.src].connect(proc.s_in)
        proc.a_out.connect(inport[syn.dst])
        procs[syn.name] = proc
    for name in spec.record:
        if name in extractors:
            continue
        ext = Extractor(shape=(spec.layers[name].size if name in spec.layers else spec.sources[name].shape[0],),
                        buffer_size=256)
        outport[name].connect(ext.in_port)
        extractors[name] = ext
    monitors = {}
    for name in spec.record_v:
        mon = Monitor()
        mon.probe(procs[name].v, spec.num_steps)
        monitors[name] = (mon, procs[name])
    _link_components(spec, procs, extractors)
    cfg = Loihi2SimCfg(select_tag=spec.tag, exception_proc_model_map={Extractor: PyLoihiExtractorModel})
    root = next(iter(procs.values()))
    return root, extractors, monitors, cfg


def _link_components(spec: NetworkSpec, procs, extractors) -> None:
    """Lava runs the connected component of the process it is started from: join the others
    with zero-weight synapses from the first source (adds exact zeros)."""
    from lava.proc.dense.process import Dense

    parent = {n: n for n in [*spec.sources, *spec.layers, *spec.sinks]}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for syn in spec.synapses:
        parent[find(syn.src)] = find(syn.dst)
    first = next(iter(spec.sources))
    for name in list(spec.layers) + list(spec.sinks):
        if find(name) != find(first):
            n_src, n_dst = spec.sources[first].shape[0], (spec.layers[name].size if name in spec.layers else spec.sinks[name])
            dense = Dense(weights=np.zeros((n_dst, n_src), np.int32 if spec.fixed else np.float64),
                          num_message_bits=GRADED_FLOAT_BITS)
            procs[first].s_out.connect(dense.s_in)
            dense.a_out.connect(procs[name].a_in if name in spec.layers else extractors[name].in_port)
            parent[find(name)] = find(first)


def _actors(root):
    try:
        return list(root.runtime._messaging_infrastructure.actors)
    except AttributeError:
        return []


def _actor_failure(root) -> str | None:
    for actor in _actors(root):
        try:
            exc = actor.exception
        except (OSError, EOFError, ValueError):
            exc = None
        if exc:
            text = str(exc[1] if isinstance(exc, tuple) else exc).strip()
            heads = [ln for ln in text.splitlines() if re.match(r"^[A-Za-z_][\w.]*(Error|Exception):", ln)]
            head = heads[-1] if heads else text.splitlines()[-1] if text else "unknown error"
            return f"{head} (in Lava process {actor.name})\n{text}"
        if not actor.is_alive():
            return f"Lava process {actor.name} exited (code {actor.exitcode}) before the run finished"
    return None


def drive(root, num_steps: int, run_cfg, extractors: Mapping[str, object],
          poll_s: float = 0.05) -> dict[str, np.ndarray]:
    """Run ``num_steps`` non-blocking and stream every Extractor out, watching Lava's actor
    processes: a failed one raises :class:`LavaRunError` at once instead of hanging."""
    from lava.magma.core.run_conditions import RunSteps

    root.run(condition=RunSteps(num_steps=num_steps, blocking=False), run_cfg=run_cfg)
    out = {name: np.zeros((num_steps,) + tuple(ext._shape), np.float64) for name, ext in extractors.items()}
    ports = {name: ext.out_port.external_pipe_csp_recv_port for name, ext in extractors.items()}
    last_check = time.monotonic()
    for step in range(num_steps):
        for name, ext in extractors.items():
            while not ports[name].probe():
                time.sleep(0.0005)
                if time.monotonic() - last_check > poll_s:
                    last_check = time.monotonic()
                    failure = _actor_failure(root)
                    if failure:
                        raise LavaRunError(f"Lava failed at step {step + 1}: {failure}")
            out[name][step] = ext.receive()
    root.wait()
    return out


def _run_network_child(spec: NetworkSpec) -> dict[str, np.ndarray]:
    root, extractors, monitors, cfg = build_lava(spec)
    try:
        raw = drive(root, spec.num_steps, cfg, extractors)
        for name, (mon, lif) in monitors.items():
            data = mon.get_data()
            raw[f"{name}.v"] = np.asarray(data[lif.name]["v"], np.float64)
    except BaseException:
        release_shared_memory(root)
        raise
    root.stop()
    for name in spec.layers:  # spikes travel back to the parent as bytes, not float64
        if name in raw:
            raw[name] = (raw[name] != 0).astype(np.uint8)
    return raw


def release_shared_memory(root, timeout_s: float = 3.0) -> None:
    """Best effort, on failure: ask Lava's SharedMemoryManager to unlink its segments before
    the watchdog kills the group (SIGKILL would leave them in /dev/shm)."""
    import threading

    try:
        smm = root.runtime._messaging_infrastructure.smm
    except AttributeError:
        return
    if smm is None:
        return
    def shutdown():
        with contextlib.suppress(Exception):
            smm.shutdown()

    t = threading.Thread(target=shutdown, daemon=True)
    t.start()
    t.join(timeout_s)


def _child_main(conn, fn, args) -> None:
    os.setsid()  # own process group: the parent can kill Lava's whole process tree at once
    # multiprocessing fixed this child's start method; Lava sets it again when imported
    mp.set_start_method(None, force=True)
    try:
        result = fn(*args)
        conn.send(("ok", result))
    except BaseException as exc:  # noqa: BLE001 - report everything, the parent decides
        msg = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, (LavaRunError, LavaMappingError)):
            msg += "\n" + traceback.format_exc(limit=6)
        with contextlib.suppress(Exception):
            conn.send(("error", msg))
    finally:
        with contextlib.suppress(Exception):
            conn.close()
        os._exit(0)


def _proc_table() -> list[tuple[int, str, int, int]]:
    """(pid, state, ppid, pgrp) of every process, from /proc."""
    rows = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        rows.append((int(entry), fields[0], int(fields[1]), int(fields[2])))
    return rows


def group_members(pgid: int, include_zombies: bool = False) -> list[int]:
    """Processes in process group ``pgid`` (live ones; with ``include_zombies`` also zombies)."""
    return [pid for pid, state, _, pgrp in _proc_table()
            if pgrp == pgid and (include_zombies or state not in ("Z", "X"))]


def _set_subreaper(on: bool) -> bool:
    """PR_SET_CHILD_SUBREAPER: orphans of the killed group come back to us to be reaped."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1 if on else 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _kill_group(pgid: int, grace_s: float = 5.0) -> list[int]:
    """SIGKILL the group, reap the orphans that came back to us (not the group leader: that is
    multiprocessing's child, joined by it); returns pids still alive after ``grace_s``."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + grace_s
    me = os.getpid()
    while True:
        waiting = False
        for pid, state, ppid, pgrp in _proc_table():
            if pgrp != pgid or pid == pgid:
                continue
            if state in ("Z", "X") and ppid == me:
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, os.WNOHANG)
            elif state not in ("Z", "X") or ppid in (pgid, me):
                waiting = True  # still dying, or about to be handed to us
        if not waiting or time.monotonic() > deadline:
            return group_members(pgid)
        time.sleep(0.02)


def _survivors(pgid: int, grace_s: float) -> list[int]:
    """Wait up to ``grace_s`` for the group to vanish, reaping the zombies handed to us (we are
    the child subreaper, so late orphans of the killed group arrive here); -> live survivors."""
    deadline, me = time.monotonic() + grace_s, os.getpid()
    while True:
        members = [(pid, state, ppid) for pid, state, ppid, pgrp in _proc_table() if pgrp == pgid]
        for pid, state, ppid in members:
            if state in ("Z", "X") and ppid == me:
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, os.WNOHANG)
        if not members or time.monotonic() > deadline:
            return group_members(pgid)
        time.sleep(0.05)


@dataclass
class WatchdogInfo:
    """What the last watchdog run did (for tests and benchmarks)."""

    pgid: int = 0
    seconds: float = 0.0
    leftover: list[int] = field(default_factory=list)


LAST_RUN = WatchdogInfo()


def run_in_watchdog(fn: Callable, *args, timeout: float = DEFAULT_TIMEOUT_S):
    """Run ``fn(*args)`` (which uses Lava) in a forked child in its own process group; return
    its result, or raise :class:`LavaRunError` / :class:`LavaTimeoutError` after killing the
    whole group. The result travels through a pipe: it must be picklable (no Lava objects).
    Not thread-safe (it toggles this process's child-subreaper flag while it runs)."""
    if not (timeout and timeout > 0):
        raise LavaMappingError(f"watchdog timeout must be positive, got {timeout}")
    ctx = mp.get_context("fork")
    parent_conn, child_conn = ctx.Pipe(duplex=False)
    subreaper = _set_subreaper(True)
    start = time.monotonic()
    proc = ctx.Process(target=_child_main, args=(child_conn, fn, args), daemon=False)
    status, payload = None, None
    try:
        proc.start()
        child_conn.close()
        deadline = start + timeout
        while True:
            if parent_conn.poll(0.1):
                try:
                    status, payload = parent_conn.recv()
                except EOFError:
                    status, payload = "error", "the Lava runner exited without a result"
                break
            if not proc.is_alive():
                status, payload = "error", f"the Lava runner died (exit code {proc.exitcode}) without a result"
                break
            if time.monotonic() > deadline:
                status, payload = "timeout", None
                break
    finally:
        if proc.pid is not None:
            proc.join(timeout=10.0 if status == "ok" else 0.5)
            _kill_group(proc.pid)
            with contextlib.suppress(Exception):
                proc.join(timeout=5.0)
            # Count survivors only after the group leader is reaped: a SIGKILLed leader that is
            # still dying shows as a live member (a flaky false alarm under load otherwise).
            leftover = _survivors(proc.pid, grace_s=5.0)
            LAST_RUN.pgid, LAST_RUN.leftover = proc.pid, leftover
        LAST_RUN.seconds = time.monotonic() - start
        parent_conn.close()
        if subreaper:
            _set_subreaper(False)
    if status == "ok":
        return payload
    if status == "timeout":
        raise LavaTimeoutError(f"Lava did not finish within {timeout:.0f} s (a process model probably failed "
                               f"in its child process); all its processes were killed")
    raise LavaRunError(f"Lava run failed: {payload}")


def run_with_watchdog(spec: NetworkSpec, timeout: float = DEFAULT_TIMEOUT_S,
                      validate: bool = True) -> dict[str, np.ndarray]:
    """Validate ``spec`` and run it on Lava under the watchdog; -> raw recordings
    ``{name: [num_steps, n]}`` (and ``'<layer>.v'`` for ``record_v``)."""
    if validate:
        validate_network(spec)
    return run_in_watchdog(_run_network_child, spec, timeout=timeout)


# --- 3c'. the same network in numpy (what Lava computes; for tests) --------------------------

def emulate_network(spec: NetworkSpec) -> dict[str, np.ndarray]:
    """Step ``spec`` exactly as Lava's CPU models do, in numpy, without Lava: sources send
    column ``t-1`` at step ``t``; a (Delay)Dense delivers what it received ``1 + delay`` steps
    earlier; ``LIFReset`` zeroes u, v when ``t % interval == offset``; recorders see the step's
    value. Fixed point uses :mod:`~hardware.loihi.fixed_point`'s integer functions (int64),
    float uses float64 (``W @ x``; Lava's float Dense sums the same terms, possibly in another
    order). Returns the same dict as :func:`run_with_watchdog`."""
    fixed, n_steps = spec.fixed, spec.num_steps
    dtype = np.int64 if fixed else np.float64
    size = {n: np.asarray(d).shape[0] for n, d in spec.sources.items()}
    size.update({n: p.size for n, p in spec.layers.items()})
    out = {n: np.zeros((n_steps, size[n]), dtype) for n in size}
    for n, d in spec.sources.items():
        out[n][:] = np.asarray(d).T
    sink = {n: np.zeros((n_steps, k), dtype) for n, k in spec.sinks.items()}
    vs = {n: np.zeros((n_steps, spec.layers[n].size), dtype) for n in spec.record_v}
    state = {n: [np.zeros(p.size, dtype), np.zeros(p.size, dtype)] for n, p in spec.layers.items()}
    order = [n for n in spec.layers]
    for idx in range(n_steps):
        a_in = {n: np.zeros(k, dtype) for n, k in [*((m, p.size) for m, p in spec.layers.items()),
                                                   *spec.sinks.items()]}
        for syn in spec.synapses:
            src_idx = idx - 1 - int(syn.delay)
            if src_idx < 0:
                continue
            x = out[syn.src][src_idx]
            if fixed:
                a_in[syn.dst] += fp.dense_accumulate(syn.weights, x, int(syn.weight_exp))
            else:
                a_in[syn.dst] += np.asarray(syn.weights, np.float64) @ x
        for n in order:
            p, (u, v) = spec.layers[n], state[n]
            interval, offset = spec.reset[n]
            if (idx + 1) % interval == offset:
                u, v = u * 0, v * 0
            if fixed:
                bias = np.left_shift(np.asarray(p.bias_mant, np.int64), np.asarray(p.bias_exp, np.int64))
                u, v, s = fp.lif_fixed_step(u, v, a_in[n], int(p.du), int(p.dv), bias, int(p.vth) << fp.VTH_SHIFT)
            else:
                u = u * (1 - p.du) + a_in[n]
                v = v * (1 - p.dv) + u + np.asarray(p.bias_mant, np.float64)
                s = v > p.vth
                v = np.where(s, 0.0, v)
            state[n] = [u, v]
            out[n][idx] = s
            if n in vs:
                vs[n][idx] = v
        for n in spec.sinks:
            sink[n][idx] = a_in[n]
    raw = {n: out[n].astype(np.float64) for n in spec.record if n in out}
    raw.update({n: sink[n].astype(np.float64) for n in spec.sinks})
    raw.update({f"{n}.v": vs[n].astype(np.float64) for n in vs})
    for name in spec.layers:
        if name in raw:
            raw[name] = (raw[name] != 0).astype(np.uint8)
    return raw


# --- 3d. back to the reference time base ------------------------------------------------------

@dataclass(frozen=True)
class LavaResult:
    """Like the reference simulator's result: ``outputs[name]`` [T, B, *shape] (float),
    ``states[layer]`` {'spikes', and with record_v 'v' (float) / 'v_int' (fixed, raw)}."""

    outputs: dict[str, np.ndarray]
    states: dict[str, dict[str, np.ndarray]]
    dt: float


def _windows(raw: np.ndarray, spec: NetworkSpec, latency: int) -> np.ndarray:
    """raw [num_steps, n] -> [T, B, n]: sample b step t at index b P + G + L + t."""
    idx = (np.arange(spec.n_samples)[None, :] * spec.period + spec.lead + latency
           + np.arange(spec.sample_steps)[:, None])
    return raw[idx]


def unpack(program: LavaProgram, spec: NetworkSpec, raw: Mapping[str, np.ndarray]) -> LavaResult:
    lowered = program.lowered
    outputs, states = {}, {}
    for name, r in program.readouts.items():
        src = r.direct or name
        values = _windows(np.asarray(raw[src], np.float64), spec, r.latency) * r.scale + r.bias
        outputs[name] = values.reshape(values.shape[:2] + tuple(lowered.readouts[name].shape))
    for name, layer in lowered.neurons.items():
        if name not in raw and f"{name}.v" not in raw:
            continue
        entry = {}
        shape = layer.shape
        if name in raw:
            s = _windows(np.asarray(raw[name]), spec, layer.latency) != 0
            entry["spikes"] = s.astype(np.float64).reshape(s.shape[:2] + shape)
        if f"{name}.v" in raw:
            v = _windows(np.asarray(raw[f"{name}.v"]), spec, layer.latency)
            if program.fixed:
                entry["v_int"] = np.rint(v).astype(np.int64).reshape(v.shape[:2] + shape)
                v = v * 2.0 ** -program.layers[name].scale_exp
            entry["v"] = v.reshape(v.shape[:2] + shape)
        states[name] = entry
    if not spec.batched:
        outputs = {k: v[:, 0] for k, v in outputs.items()}
        states = {n: {k: v[:, 0] for k, v in d.items()} for n, d in states.items()}
    return LavaResult(outputs, states, lowered.dt)


def run_graph(program: LavaProgram, inputs: Mapping[str, np.ndarray], record: bool | tuple[str, ...] = True,
              record_v: tuple[str, ...] = (), timeout: float = DEFAULT_TIMEOUT_S) -> LavaResult:
    """Map, lay out, validate, run (watchdog) and unpack one batch."""
    spec = program.network(inputs, record, record_v)
    raw = run_with_watchdog(spec, timeout=timeout)
    return program.unpack(spec, raw)


__all__ = [
    "LAST_RUN",
    "LavaProgram",
    "LavaResult",
    "LoweredGraph",
    "NetworkSpec",
    "NeuronLayer",
    "Readout",
    "Term",
    "build_lava",
    "build_network",
    "stack_inputs",
    "drive",
    "emulate_network",
    "group_members",
    "lower_graph",
    "map_graph",
    "run_graph",
    "run_in_watchdog",
    "run_with_watchdog",
    "unpack",
    "validate_network",
]
