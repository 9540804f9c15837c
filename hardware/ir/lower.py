"""NIR graph -> :class:`~hardware.ir.graph.ChipGraph` (no Lava).

Every backend, target and counter of the Loihi family starts from the one
:class:`~hardware.ir.graph.ChipGraph` this module builds; nothing downstream re-derives it.

The graph is compiled by the reference simulator (same
validation, shapes, per-step coefficients) and every path of stateless nodes between two
*neuron* layers (or an Input / an Output) is composed into linear **terms**
``(source, delay, matrix)``, each named after the NIR node owning its weights (the last
Affine/Linear/Conv on the path; ``<node>@tap<d>`` for a time warp's taps), with its kernel kept
(``Term.conv``) when one Conv2d is its only weighted op and its share of the constant input
(``Term.bias``) attributed to that node -- what counters and native-conv writers need:

===============================  ==============================================================
NIR                              Lava
===============================  ==============================================================
Input                            ``io.source.RingBuffer`` (graded messages)
LIF / IF / CubaLIF               ``LIFReset`` (du = 1 [CubaLIF: dt/tau_syn], dv = dt/tau [IF: 0],
                                 vth, bias_mant = v_leak dt/tau + gain x (Affine/Conv biases));
                                 per-neuron tau/threshold: one ``LIFReset`` per distinct
                                 (dv, du, vth), named ``<node>#<k>`` (``ChipGraph.split``)
constant into a CubaLIF, or      a term from the constant source ``BIAS`` (a RingBuffer that is 1
one a Delay / recurrent edge     on every sample step): ``Dense``/``DelayDense`` weight gain x c
starts late                      (bias_mant would add it to v, not to the current u)
Affine, Linear, Scale, Flatten,  folded into the matrices of the synapses of the next neuron
Conv1d/2d, SumPool/AvgPool2d     layer: ``Dense`` with the composed (for convolutions:
                                 unrolled) matrix x the neuron's input gain ``r dt/tau``
Delay (+ Scale chains, TimeWarp) ``DelayDense`` (one process per (source, delay) term)
fan-in                           several synapse processes into one ``a_in`` (Lava sums them)
Output                           synapses into an ``io.extractor.Extractor`` (the readout
                                 needs no neuron: Dense ``a_out`` is recorded directly; the
                                 Affine bias is added by the host); an Output fed by a neuron
                                 alone records its spikes
LI / CubaLI / I -> Output        the readout of the LI's input; the host runs the LI over it
                                 (``Readout.host``: the reference op itself)
===============================  ==============================================================

This is the NIR paper's LIF mapping (Dense(w = dt/tau) + LIF(du = 1, dv = dt/tau)) in
general form. Convolutions become Dense with the unrolled matrix, not Lava's ``Conv``:
Lava 0.10's float ``Conv`` model computes in float32 through torch (which breaks the
spike-for-spike agreement with the float64 reference) and expects (W, H, C) layouts;
the unrolled matrix is exact and small for our encoders (sized against the memory budget first).

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

Constants follow the reference simulator's step -1 rule: a constant reaching a node only through
stateless nodes is on from step -1 (a LIF's ``bias_mant``, a readout's host bias, or, into a
CubaLIF, a ``BIAS`` term); a Delay outputs 0 at step -1, so its share becomes a ``BIAS`` term
with the Delay's steps; a recurrent edge delivers it undelayed (it was on at step -1), but
from there on as a ``BIAS`` term with delay 0 (0 at step -1 for a later recurrent edge).

Split populations: ``outputs``, ``states[node]`` and records take the NIR node's name; the
parts are reassembled by :meth:`~hardware.ir.graph.Population.gather` (in ``unpack``).

Not mapped (LavaMappingError naming the node): Threshold nodes; LI, CubaLI and I anywhere but
as the last node before an Output; ``v_reset != 0``; cycles without a neuron; recurrent paths
that would need a negative Lava delay.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import nir
import numpy as np

from hardware.errors import LavaMappingError
from hardware.ir.graph import BIAS, ChipGraph, ConvKernel, NeuronKind, NeuronLayer, Population, Readout, Term
from hardware.reference.nodes import (
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
    Op,
    PoolOp,
    ScaleOp,
)
from hardware.reference import ReferenceSimulator
from taaf import budget

UNROLL_BYTES_PER_ENTRY = 24  # convolution -> Dense: the float64 matrix and its index arithmetic, sized
# against the memory budget (taaf.budget) before it is built
NEURON_OPS = (LIFOp, IFOp, CubaLIFOp)
HOST_OPS = (LIOp, CubaLIOp, IntegratorOp)  # non-spiking output layers: run by the host on a readout


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
        budget.check(f"node {name!r}: unrolling {op.in_shape} -> {op.out_shape} into a Dense matrix",
                     UNROLL_BYTES_PER_ENTRY * n_in * n_out, f"{n_in * n_out:,} float64 entries, with index arrays")
        const = op.apply(np.zeros((1,) + op.in_shape)).reshape(-1)
        if isinstance(op, ConvOp):
            matrix = _conv_matrix(op)
        else:
            basis = op.apply(np.eye(n_in).reshape((n_in,) + op.in_shape)).reshape(n_in, n_out)
            matrix = (basis - (0 if not np.any(const) else const)).T.copy()
        return "matrix", matrix, None if not np.any(const) else const
    raise LavaMappingError(f"node {name!r}: {type(op).__name__} has no Lava mapping (supported between "
                           f"neurons: Affine, Linear, Scale, Flatten, Conv, SumPool/AvgPool, Delay)")


def _conv_matrix(op: ConvOp) -> np.ndarray:
    """The ``[n_out, n_in]`` unrolled matrix of a convolution, built from its index arithmetic
    (one entry per valid kernel tap, no basis images pushed through the op). Each entry is
    ``(w + b) - b`` with ``b`` the output channel's bias: bit for bit what unrolling by
    ``apply(eye) - apply(0)`` gives, at a fraction of its time and memory."""
    w = np.asarray(op.weight)
    nd = w.ndim - 2
    c_out, per_group, kernel = w.shape[0], w.shape[1], w.shape[2:]
    out_sp, in_sp = op.out_shape[1:], op.in_shape[1:]
    ax = [np.arange(c_out), np.arange(per_group), *(np.arange(n) for n in out_sp), *(np.arange(k) for k in kernel)]
    grid = np.meshgrid(*ax, indexing="ij", sparse=True)
    co, cj, outs, taps = grid[0], grid[1], grid[2:2 + nd], grid[2 + nd:]
    pos = [o * s - pad[0] + k * d for o, k, s, d, pad in zip(outs, taps, op.stride, op.dilation, op.padding)]
    full = np.broadcast_shapes(*(g.shape for g in grid))
    valid = np.ones(full, bool)
    for p, n in zip(pos, in_sp):
        valid &= (p >= 0) & (p < n)
    ci = (co // (c_out // op.groups)) * per_group + cj
    rows = np.ravel_multi_index([np.broadcast_to(a, full)[valid] for a in (co, *outs)], op.out_shape)
    cols = np.ravel_multi_index([np.broadcast_to(a, full)[valid] for a in (ci, *pos)], op.in_shape)
    b = np.asarray(op.bias).reshape((c_out,) + (1,) * (1 + 2 * nd))
    values = np.broadcast_to(w.reshape((c_out, per_group) + (1,) * nd + kernel) + b, full)[valid]
    values = values - np.broadcast_to(b, full)[valid]
    matrix = np.zeros((int(np.prod(op.out_shape)), int(np.prod(op.in_shape))))
    matrix[rows, cols] = values
    return matrix


def _compose(kind: str, a, m: np.ndarray | None) -> np.ndarray | None:
    if kind == "identity":
        return m
    if kind == "rows":
        return np.diag(a) if m is None else a[:, None] * m
    return a if m is None else a @ m


def _merge(terms: list[Term], size_of: Callable[[str], int]) -> tuple[Term, ...]:
    """Sum terms with the same (source, delay), in order of first appearance; a sum keeps the
    first term's name, adds the biases and drops ``conv`` (the sum is no single convolution)."""
    merged: dict[tuple[str, int], Term] = {}
    for t in terms:
        key = (t.source, t.delay)
        if key not in merged:
            merged[key] = t
            continue
        first = merged[key]
        a, b = first.matrix, t.matrix
        eye = np.eye(size_of(t.source)) if a is None or b is None else None
        merged[key] = Term(t.source, t.delay, (eye if a is None else a) + (eye if b is None else b),
                           first.name, None, _add(first.bias, t.bias))
    return tuple(merged.values())


def _add(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    return a if b is None else (b if a is None else a + b)


@dataclass(frozen=True)
class _Path:
    """A term while it is being composed: ``owner`` is the last weighted node so far, ``last``
    the last node passed, ``bias`` the constant attributed to ``owner`` (on one path of it)."""

    source: str
    delay: int
    matrix: np.ndarray | None
    owner: str | None = None
    last: str | None = None
    conv: ConvKernel | None = None
    bias: np.ndarray | None = None


def _conv_kernel(op: ConvOp) -> ConvKernel | None:
    if op.weight.ndim != 4:
        return None
    return ConvKernel(op.weight, op.stride, op.padding, op.dilation, op.groups, op.in_shape)


def _through(n: str, op: Op, kind: str, a, c: np.ndarray | None, paths: list[_Path]) -> list[_Path]:
    """The paths leaving stateless node ``n`` (not a Delay); ``c`` is its own constant."""
    if kind == "identity":
        keep = type(op) is Op  # nir.Identity keeps a convolution; Flatten changes its shape
        return [replace(p, last=n, conv=p.conv if keep else None) for p in paths]
    if kind == "rows":
        return [replace(p, matrix=_compose(kind, a, p.matrix), last=n, conv=None,
                        bias=None if p.bias is None else a * p.bias) for p in paths]
    if not isinstance(op, (AffineOp, ConvOp)):  # pooling: linear but unweighted, the owner stays
        return [replace(p, matrix=_compose(kind, a, p.matrix), last=n, conv=None,
                        bias=None if p.bias is None else a @ p.bias) for p in paths]
    biases = [p.bias for p in paths if p.bias is not None]
    bias = None if not biases else a @ sum(biases[1:], biases[0])
    bias = _add(bias, c)
    holder = min(range(len(paths)), key=lambda i: paths[i].delay, default=None)  # the earliest tap
    out = []
    for i, p in enumerate(paths):
        conv = _conv_kernel(op) if isinstance(op, ConvOp) and p.matrix is None else None
        out.append(_Path(p.source, p.delay, _compose(kind, a, p.matrix), n, n, conv, bias if i == holder else None))
    return out


def _named(paths: list[_Path]) -> list[Term]:
    """Terms named after the node owning their weights (``@tap<d>`` when one source reaches that
    node through several delays), else after the node next to the target, else the source."""
    delays: dict[tuple[str, str], set[int]] = {}
    for p in paths:
        if p.owner is not None:
            delays.setdefault((p.owner, p.source), set()).add(p.delay)
    out = []
    for p in paths:
        if p.owner is None:
            name = p.last or p.source
        elif len(delays[(p.owner, p.source)]) > 1:
            name = f"{p.owner}@tap{p.delay}"
        else:
            name = p.owner
        out.append(Term(p.source, p.delay, p.matrix, name, p.conv, p.bias))
    return out


def _unique_names(neurons: dict[str, NeuronLayer], readouts: dict[str, Readout], reserved: set[str]) -> None:
    """Rename, in place, every term whose name another term or a node already has to
    ``<target><-<source>@<delay>``."""
    items = {**neurons, **readouts}
    seen: dict[str, int] = {}
    for item in items.values():
        for t in item.terms:
            seen[t.name] = seen.get(t.name, 0) + 1
    for target, item in items.items():
        if any(seen[t.name] > 1 or t.name in reserved for t in item.terms):
            terms = tuple(replace(t, name=f"{target}<-{t.source}@{t.delay}")
                          if seen[t.name] > 1 or t.name in reserved else t for t in item.terms)
            (neurons if target in neurons else readouts)[target] = replace(item, terms=terms)


def lower_graph(graph: nir.NIRGraph, dt: float | None = None) -> ChipGraph:
    """The chip IR of any NIR graph: neuron layers, readouts and latency-aligned terms.

    The graph is compiled by the reference simulator first (same checks, shapes and per-step
    coefficients), so the chip runs exactly the network the reference runs."""
    sim = ReferenceSimulator(graph, dt)
    plan = sim.plan
    ops = plan.ops
    shapes = {n: op.out_shape for n, op in ops.items()}
    consumers = {n: [d for d in plan.order if n in plan.sources[d]] for n in plan.order}
    cache: dict[str, tuple[list[_Path], np.ndarray | None]] = {}
    visiting: set[str] = set()

    def size_of(n: str) -> int:
        return 1 if n == BIAS else int(np.prod(shapes[n], dtype=np.int64))

    def is_source(n: str) -> bool:
        return n in plan.inputs or isinstance(ops[n], NEURON_OPS)

    def fan_in(n: str) -> tuple[list[_Path], np.ndarray | None]:
        """Paths and constant (on since step -1) of the summed input of node ``n``."""
        terms: list[_Path] = []
        const = None
        for src in plan.sources[n]:
            t, c = output_of(src)
            if (src, n) in plan.recurrent_edges:  # one step later; the constant is on at step -1
                t = [replace(x, delay=x.delay + 1) for x in t]  # too, so it stays on, but from
                if c is not None and np.any(c):  # here on it is 0 at step -1 (simulator docstring)
                    t.append(_Path(BIAS, 0, np.asarray(c, np.float64).reshape(-1, 1), last=src))
                c = None
            terms += t
            if c is not None:
                const = c if const is None else const + c
        return terms, const

    def output_of(n: str) -> tuple[list[_Path], np.ndarray | None]:
        if is_source(n):
            return [_Path(n, 0, None)], None
        if n in cache:
            return cache[n]
        if n in visiting:
            raise LavaMappingError(f"node {n!r} is on a cycle without a neuron; Lava cannot express it")
        visiting.add(n)
        terms, const = fan_in(n)
        op = ops[n]
        if isinstance(op, DelayOp):
            steps = np.asarray(op.steps, np.int64).reshape(-1)
            if const is not None and np.any(const):  # a Delay outputs 0 at step -1: its share of the
                terms = [*terms, _Path(BIAS, 0, np.asarray(const, np.float64).reshape(-1, 1), last=n)]
            out = []  # constant becomes a term from BIAS, on from step d
            for k, d in enumerate(np.unique(steps)):
                mask = (steps == d).astype(np.float64)
                uniform = bool(np.all(mask == 1))
                for t in terms:
                    m = t.matrix if uniform else _compose("rows", mask, t.matrix)
                    bias = None if t.bias is None or k > 0 else (t.bias if uniform else mask * t.bias)
                    out.append(replace(t, delay=t.delay + int(d), matrix=m, last=n,
                                       conv=t.conv if uniform else None, bias=bias))
            result = (out, None)
        else:
            kind, a, c = _linear(n, op)
            out = _through(n, op, kind, a, c, terms)
            if const is not None:
                const = const if kind == "identity" else (a * const if kind == "rows" else a @ const)
            if c is not None:
                const = c if const is None else const + c
            result = (out, const)
        visiting.discard(n)
        cache[n] = result
        return result

    latency: dict[str, int] = {n: 0 for n in plan.inputs}
    latency[BIAS] = 0
    neurons: dict[str, NeuronLayer] = {}
    readouts: dict[str, Readout] = {}
    split: dict[str, Population] = {}
    for n in plan.order:
        op = ops[n]
        if n in plan.inputs:
            continue
        if isinstance(op, NEURON_OPS):
            terms, const = fan_in(n)
            feed = [latency[t.source] for t in terms if t.source in latency]
            latency[n] = 1 + max(feed, default=0)
            layers, pop = _neuron_layers(n, op, terms, const, latency[n], size_of)
            neurons.update((layer.name, layer) for layer in layers)
            if pop is not None:
                split[n] = pop
        elif n in plan.outputs:
            src = plan.sources[n]
            host = ops[src[0]] if len(src) == 1 and isinstance(ops[src[0]], HOST_OPS) else None
            terms, const = fan_in(src[0] if host is not None else n)
            merged, bias = _fold_bias(_merge(_named(terms), size_of), const, size_of(n), 1.0)
            direct = None
            if (len(merged) == 1 and merged[0].matrix is None and merged[0].delay == 0 and not np.any(bias)
                    and merged[0].source not in split):
                direct = merged[0].source
                latency[n] = latency[direct]
            else:
                latency[n] = 1 + max((latency[t.source] for t in merged if t.source in latency), default=0)
            readouts[n] = Readout(n, shapes[n], merged, bias, latency[n], direct, host)
        elif isinstance(op, HOST_OPS):
            if any(d not in plan.outputs or len(plan.sources[d]) > 1 for d in consumers[n]):
                raise LavaMappingError(f"node {n!r}: {type(op).__name__} (no spikes) maps only as the last node "
                                       f"before an Output, which the host then runs; here it feeds {consumers[n]}")
        elif not isinstance(op, (DelayOp, AffineOp, ScaleOp, FlattenOp, ConvOp, PoolOp)) and type(op) is not Op:
            _linear(n, op)  # raises the unsupported-node error
    items = {**neurons, **readouts}
    for target, item in items.items():
        if any(t.source in split for t in item.terms):
            terms = _merge([x for t in item.terms for x in _columns(t, split)], size_of)
            (neurons if target in neurons else readouts)[target] = replace(item, terms=terms)
    _unique_names(neurons, readouts, {*plan.inputs, *neurons, *readouts, *split, BIAS})
    gap, gated = 0, set()
    lowered = ChipGraph(float(sim.dt), {n: ops[n].out_shape for n in plan.inputs}, neurons, readouts, 0, (), split)
    for target, item in items.items():
        if isinstance(item, Readout) and item.direct:
            continue
        for t in lowered.terms_into(target):
            k = lowered.synaptic_delay(target, t)
            if k < 0:
                raise LavaMappingError(f"{t.source!r} -> {target!r}: a recurrent path with delay {t.delay} "
                                       f"would need a negative Lava delay ({k}); Lava cannot go back in time")
            if t.delay > 0:
                gap = max(gap, t.delay)
                if t.source in neurons:
                    gated.add(t.source)
    return ChipGraph(lowered.dt, lowered.inputs, neurons, readouts, gap, tuple(n for n in neurons if n in gated), split)


def _fold_bias(terms: tuple[Term, ...], const, n: int, gain) -> tuple[tuple[Term, ...], np.ndarray]:
    """Terms from BIAS with delay 0 (on from step 0) and the constant as one bias (``x gain``)."""
    bias = np.zeros(n) if const is None else np.asarray(const, np.float64).reshape(-1).copy()
    for t in terms:
        if t.source == BIAS and t.delay == 0:
            bias = bias + t.matrix[:, 0]
    return tuple(t for t in terms if t.source != BIAS or t.delay > 0), gain * bias


def _columns(t: Term, split: dict[str, Population]) -> list[Term]:
    """A term from a split node as one term per part (the node's columns of each part)."""
    if t.source not in split:
        return [t]
    pop = split[t.source]
    m = t.dense(sum(len(i) for i in pop.index))
    return [Term(p, t.delay, m[:, idx], t.name, None, t.bias if k == 0 else None)
            for k, (p, idx) in enumerate(zip(pop.parts, pop.index))]


def _neuron_layers(name: str, op, paths: list[_Path], const, latency: int, size_of
                   ) -> tuple[list[NeuronLayer], Population | None]:
    """The layer(s) of one NIR neuron node: one per distinct (dv, du, threshold), each with its
    rows of every term, gain and bias (a Lava LIF process shares du, dv and vth)."""
    if np.any(np.asarray(op.v_reset) != 0):
        raise LavaMappingError(f"node {name!r}: Lava's LIF resets to 0; v_reset = {np.unique(op.v_reset)[:4]}")
    shape = tuple(op.in_shape)
    n = int(np.prod(shape, dtype=np.int64))
    per = lambda a: np.broadcast_to(np.asarray(a, np.float64), shape).reshape(-1)  # noqa: E731
    terms = _merge(_named(paths), size_of)
    if isinstance(op, LIFOp):
        kind, dv, du = NeuronKind.LIF, 1.0 - per(op.decay), per(1.0)
        gain, bias = per(op.gain), per(op.bias)
    elif isinstance(op, IFOp):
        kind, dv, du = NeuronKind.IF, per(0.0), per(1.0)
        gain, bias = per(op.gain), np.zeros(n)
    else:  # CubaLIF: u = gain*i, du = 1 - syn_decay; its constant input drives the current: a term
        kind, dv, du = NeuronKind.CubaLIF, 1.0 - per(op.decay), 1.0 - per(op.syn_decay)
        gain, bias = per(op.gain) * per(op.syn_gain), per(op.bias)
        if const is not None and np.any(const):
            c = _Path(BIAS, 0, np.asarray(const, np.float64).reshape(-1, 1), last=f"{name}@bias")
            terms = tuple(replace(t, bias=None) for t in _merge(_named([*paths, c]), size_of))
        const = None
    if kind is not NeuronKind.CubaLIF:  # a constant on from step 0 is a voltage bias (x gain)
        terms, folded = _fold_bias(terms, const, n, gain)
        bias = bias + folded
    keys = np.stack([dv, du, per(op.threshold)], axis=1)
    _, first, group = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    groups = [np.flatnonzero(group.reshape(-1) == g) for g in np.argsort(first)]

    def layer(part: str, idx: np.ndarray, lshape) -> NeuronLayer:
        rows = tuple(replace(t, matrix=t.dense(n)[idx], conv=None, bias=None if t.bias is None else t.bias[idx])
                     if len(groups) > 1 else t for t in terms)
        if len(groups) > 1:  # a part's all-zero rows (e.g. a Delay's other steps) need no synapses
            rows = tuple(t for t in rows if np.any(t.matrix) or t.bias is not None and np.any(t.bias)) or rows[:1]
        dv0, du0, vth = keys[idx[0]]
        return NeuronLayer(part, kind, lshape, dv0, du0, vth, gain[idx], bias[idx], rows, latency)

    if len(groups) == 1:
        return [layer(name, groups[0], shape)], None
    parts = tuple(f"{name}#{k}" for k in range(len(groups)))
    return [layer(p, idx, (len(idx),)) for p, idx in zip(parts, groups)], Population(name, shape, parts, tuple(groups))


__all__ = ["HOST_OPS", "NEURON_OPS", "UNROLL_BYTES_PER_ENTRY", "lower_graph"]
