"""A batched, bit-exact emulator of the Lava processes the mapper builds (``loihi-emu``).

:class:`LoihiEmulator` runs a :class:`~hardware.loihi.program.LavaProgram` — the same object,
mapping and quantised registers a Lava run uses — on a whole batch at once, in numpy or torch
(CPU, or CUDA). It reproduces Lava 0.10's ``Loihi2SimCfg`` models as configured by
:func:`~hardware.loihi.lava_runtime.build_lava` — ``RingBuffer`` sources, ``Dense`` /
``DelayDense`` (fixed: ``PyDenseModelBitAcc`` / ``PyDelayDenseModelBitAcc``; float),
``LIFReset`` (``PyLifResetModelBitAcc`` / ``PyLifResetModelFloat``) and the recorders — bit
for bit in fixed point (spikes, integer voltages, readouts) and to float64 rounding in float.

Time base
---------
Lava runs a batch as one stream (samples concatenated, ``LIFReset`` per layer, a gate that
silences delayed sources in the gaps; see the mapper). By that construction every sample sees
exactly this: layer ``X`` starts from ``u = v = 0`` at the step its first input arrives and
runs ``T`` steps; before that its output is 0 (gated or never read). In *sample-local* time
(step ``t`` of ``X`` = Lava step ``t + L(X)`` of the sample) a synapse with Lava delay ``k``
from ``S`` reads ``S``'s local step ``t - lag`` with ``lag = k - (L(X) - L(S) - 1)`` (the NIR
delay of the term, >= 0), and 0 before the sample. The emulator runs every sample so, side by
side, without the stream (``BIAS`` is 1 at every local step); the program's own
:func:`~hardware.loihi.program.unpack` gives the results the format of ``run_graph`` / ``run_lava``.

Nothing is re-derived: registers from the program (checked by
:func:`~hardware.loihi.network.validate_network` as before a Lava run), bias and threshold from
:class:`~hardware.loihi.fixed_point.QuantizedLIF`, inputs by ``InputEncoding.encode``, the
neurons' ``wrap_u`` / ``clip_v`` from :mod:`~hardware.loihi.fixed_point`. Its own computations
are exact by construction (the arguments: :mod:`hardware.loihi.engines`):

* ``W @ x`` over the whole batch and all ``T`` steps at once (one product per synapse group;
  only synapses inside a recurrent loop go step by step; an input constant in time once):
  spikes times Lava's 8-bit weights as an int8 x int8 -> int32 product (``W = 2^k (W8 + o)``),
  else float32 / float64 where the group's bound on every partial sum allows (int64 beyond);
  the exponent shift and Lava's ``<< 6`` are fused into the cast to the int32 state;
* neurons: :meth:`~hardware.loihi.engines.FixedLif.step` in place on int32 ``u`` / ``v``, in
  row blocks (:data:`ROW_BLOCK` neurons at most) shared among
  :func:`~hardware.loihi.engines.default_threads` threads; the wrap of ``u`` / clip of ``v``
  is skipped where the layer's activation bound proves it a no-op, and a layer without current
  state (``du = 4095``) gets ``u = wrap(a_in << 6)`` for all steps at once.

Exactness domain (fixed point): Lava's CPU models hold ``a_in``, ``u`` and ``v`` in int32; the
emulator agrees with them while ``|a_in| < 2^18`` (``fixed_point.EXACT_ACTIVATION_LIMIT``) and a
graded sum Lava shifts right, or a readout group's output, stays below 2^31: guaranteed by the
quantisation rules, else checked on every run (:class:`~hardware.loihi.FixedPointRangeError`
names the layer and step).

Float mode: float64, Lava's float operations; ``W @ x`` is summed in BLAS order, so values can
differ in the last bits (like the test oracle ``tests/oracles.py``).

Engines: ``engine="numpy"`` (default) or ``"torch"`` with ``device`` (``"cpu"``, ``"cuda"``) and
``threads``: :mod:`hardware.loihi.engines` (its :func:`resolve_engine`, :func:`default_threads`
and environment variables are re-exported here).
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from hardware.loihi import FixedPointRangeError, LavaMappingError
from hardware.loihi import fixed_point as fp
from hardware.loihi import quant_rules as qr
from hardware.loihi.engines import (DEVICE_ENV, ENGINE_ENV, ENGINES, FLOAT32_EXACT, FLOAT64_EXACT, THREADS_ENV,
                                     V_MAX, FixedLif, blocks, default_threads, int8_split, make_ops, resolve_engine,
                                     spikes_float64)
from hardware.ir.graph import BIAS
from hardware.ir.layout import stack_inputs
from hardware.loihi.network import validate_network
from hardware.loihi.program import LavaProgram, LavaResult, map_graph, unpack


ROW_BLOCK = 2 ** 18  # neurons (rows x layer width) per block of the time loop (smaller: more Python per step)


@dataclass(frozen=True)
class _Synapse:
    """One Lava (Delay)Dense in sample-local time: ``dst[t] += shift(W @ src[t - lag])``."""

    name: str
    src: str
    dst: str
    lag: int
    weight_exp: int
    matrix: object  # W^T [n_in, n_out] in ``dtype`` on the engine's device
    dtype: object
    check_pre: bool  # a graded sum Lava shifts right: may exceed int32 (checked per run)
    check_out: bool  # a readout group's output may exceed int32 (checked per run)
    int8: object = None  # spikes: W^T = 2^int8_shift (int8 + int8_offset), for an exact int8 product
    int8_offset: int = 0
    int8_shift: int = 0


class LoihiEmulator:
    """Emulate ``program`` (fixed or float) on batches; see the module docstring.

    ``run(inputs)`` takes the inputs of ``program.network`` (``inputs[name]`` [T, B, *shape]
    or [T, *shape]) and returns the :class:`~hardware.loihi.program.LavaResult` that
    ``program.unpack(spec, run_with_watchdog(spec))`` returns for the same batch. ``threads``:
    a fixed thread count (default: decided per run, :func:`~hardware.loihi.engines.default_threads`).
    """

    def __init__(self, program: LavaProgram, engine: str | None = None, device: str | None = None,
                 threads: int | None = None):
        engine, device = resolve_engine(engine, device)
        self.program = program
        self.fixed = program.fixed
        self.engine = engine
        self.ops = make_ops(engine, device, threads)
        lowered = program.chip
        # the checks a Lava run makes (registers, shapes, delays, the gate), on a 1-step batch
        validate_network(program.network({n: np.zeros((1, 1, *shape)) for n, shape in lowered.inputs.items()}))
        self.inputs = {n: int(np.prod(shape, dtype=np.int64)) for n, shape in lowered.inputs.items()}
        self.layers = dict(program.layers)
        self.sinks = {n: r.size for n, r in program.readouts.items() if r.direct is None}
        self.latency = {n: 0 for n in (*self.inputs, BIAS)}
        self.latency.update({n: p.latency for n, p in self.layers.items()})
        self.latency.update({n: r.latency for n, r in program.readouts.items()})
        self.max_latency = max(self.latency.values(), default=0)
        bounds = {n: self._activation_bound(n) for n in self.layers}
        self._check_activation = {n: b >= fp.EXACT_ACTIVATION_LIMIT for n, b in bounds.items()}
        self._neurons = {n: self._neuron(p, bounds[n]) for n, p in self.layers.items()}
        self._state_dtype = self.ops.int32 if self.fixed else self.ops.float64
        synapses = [self._synapse(s) for s in program.synapses]
        self._into = {n: [s for s in synapses if s.dst == n] for n in [*self.layers, *self.sinks]}
        self._components = self._schedule(synapses)
        self._lock, self._work = threading.Lock(), {}  # one run at a time: runs reuse work arrays

    def _neuron(self, p, bound: float):
        """Fixed: the :class:`~hardware.loihi.engines.FixedLif` with the wrap / clip the bounds
        leave; float: ``(du, dv, bias, vth)``."""
        ops = self.ops
        if not self.fixed:
            return (float(p.du), float(p.dv), ops.asarray(np.asarray(p.bias_mant, np.float64), ops.float64),
                    float(p.vth))
        q = fp.QuantizedLIF(p.name, du=p.du, dv=p.dv, vth=p.vth, bias_mant=p.bias_mant, bias_exp=p.bias_exp)
        du, dv, vth, bias = int(q.du) + fp.DS_OFFSET, int(q.dv) + fp.DM_OFFSET, int(q.effective_vth), q.effective_bias
        a = min(bound, fp.EXACT_ACTIVATION_LIMIT - 1)  # beyond it the run raises before the neurons see it
        u_max = a * 2 ** fp.ACT_SHIFT * fp.DECAY_UNITY / du  # |u| < sum_k a 64 c^k (trunc only shrinks)
        wrap = u_max >= fp.UV_MAX
        u_max = float(fp.UV_MAX) if wrap else u_max
        b_pos, b_neg = max(int(bias.max(initial=0)), 0), max(-int(bias.min(initial=0)), 0)
        high = max(vth, 0) + u_max + b_pos  # v after a step <= max(vth, 0): it spiked and reset, or not
        low = (u_max + b_neg) * fp.DECAY_UNITY / dv if dv else (np.inf if u_max + b_neg else 0.0)
        clip = max(high, low) >= V_MAX
        bias = ops.asarray(bias, ops.int32) if bias.any() else None
        return FixedLif(1 - du / fp.DECAY_UNITY, 1 - dv / fp.DECAY_UNITY, bias, vth, bool(wrap), bool(clip))

    def _source_max(self, src: str) -> int:
        """Largest |message| a source sends: 1 for spikes, the encoding's max_int for inputs."""
        enc = self.program.encodings.get(src) if src in self.inputs else None
        return int(enc.max_int) if enc is not None else 1

    def _quantized(self, s) -> tuple[fp.QuantizedSynapses, qr.FloatTerm]:
        w = np.asarray(s.weights)
        return (fp.QuantizedSynapses(s.name, w, int(s.weight_exp), fp.SignMode(int(s.sign_mode))),
                qr.FloatTerm(s.src, w, 0, self._source_max(s.src), signed=s.src in self.inputs))

    def _synapse(self, s) -> _Synapse:
        ops = self.ops
        lag = int(s.delay) - (self.latency[s.dst] - self.latency[s.src] - 1)
        if lag < 0:
            raise LavaMappingError(f"synapse {s.name!r}: Lava delay {s.delay} delivers before the sample reaches "
                                   f"{s.dst!r} (latency {self.latency[s.dst]}) from {s.src!r} "
                                   f"(latency {self.latency[s.src]}); not a mapper program")
        check_pre, check_out, int8 = False, False, (None, 0, 0)
        if self.fixed:
            q, term = self._quantized(s)
            w = q.weights
            if term.signed:  # any partial sum of W x, whatever the order of the additions
                worst = int(np.abs(w).sum(1).max(initial=0)) * term.max_int
            else:  # x in {0, 1}: a partial sum lies in [-N, P]
                worst = max(int(np.clip(w, 0, None).sum(1).max(initial=0)),
                            int(-np.clip(w, None, 0).sum(1).min(initial=0)))
            if worst < FLOAT32_EXACT and ops.float32_exact():
                dtype = ops.float32
            elif worst < FLOAT64_EXACT:
                dtype = ops.float64
            elif ops.int_matmul():
                dtype = ops.int64
            else:
                raise FixedPointRangeError(f"synapse {s.name!r}: sums up to {worst} are not exact in float64 and "
                                           f"{ops.device} has no int64 matrix product; use the CPU")
            check_pre = s.src in self.inputs and q.weight_exp < 0 and worst >= fp.INT32_LIMIT
            if s.dst in self.sinks:
                pos, neg = qr.activation_bounds([q], [term])
                check_out = max(pos.max(initial=0.0), neg.max(initial=0.0)) >= fp.INT32_LIMIT
            matrix = ops.asarray(w.T, dtype)
            split = int8_split(w.T) if s.src in self.layers else None
            w8 = ops.int8_weights(split[0]) if split else None
            int8 = (w8, *split[1:]) if w8 is not None else int8
        else:
            dtype = ops.float64
            matrix = ops.asarray(np.asarray(s.weights, np.float64).T, dtype)
        return _Synapse(s.name, s.src, s.dst, lag, int(s.weight_exp), matrix, dtype, check_pre, check_out, *int8)

    def _activation_bound(self, layer: str) -> float:
        """The rules' bound on ``|a_in|`` of ``layer`` (0 in float mode); at or above 2^18 the
        activation is checked on every run."""
        qs = [self._quantized(s) for s in self.program.synapses if s.dst == layer] if self.fixed else []
        if not qs:
            return 0.0
        pos, neg = qr.activation_bounds([q for q, _ in qs], [t for _, t in qs])
        return float(max(pos.max(initial=0.0), neg.max(initial=0.0)))

    def _schedule(self, synapses: list[_Synapse]) -> list[tuple[tuple[str, ...], dict, dict]]:
        """Neuron layers grouped into recurrent components, in dependency order. Each entry:
        (layers in program order, {layer: synapses from outside (whole-run products)},
        {layer: synapses inside the component (applied step by step)})."""
        names = list(self.layers)
        edges = {n: {s.dst for s in synapses if s.src == n and s.dst in self.layers} for n in names}

        def reach(a: str) -> set[str]:
            seen, todo = set(), [a]
            while todo:
                new = edges[todo.pop()] - seen
                seen |= new
                todo += new
            return seen

        reachable = {n: reach(n) for n in names}
        comp_of = {n: tuple(m for m in names if m == n or (m in reachable[n] and n in reachable[m])) for n in names}
        comps = list(dict.fromkeys(comp_of.values()))
        order, done = [], set()
        while comps:  # Kahn on the condensation, ties in program order
            for c in comps:
                deps = {comp_of[s.src] for n in c for s in synapses if s.dst == n and s.src in self.layers} - {c}
                if deps <= done:
                    order.append(c)
                    done.add(c)
                    comps.remove(c)
                    break
        result = []
        for comp in order:
            outer = {n: [s for s in self._into[n] if s.src not in comp] for n in comp}
            inner = {n: [s for s in self._into[n] if s.src in comp] for n in comp}
            for n in comp:
                for s in inner[n]:
                    if s.lag == 0 and comp.index(s.src) >= comp.index(n):
                        raise LavaMappingError(f"synapse {s.name!r}: a loop without delay ({s.src!r} -> {n!r})")
            result.append((comp, outer, inner))
        return result

    def _apply(self, syn: _Synapse, x, rows: int):
        """``shift(W @ x)`` for x [..., n_in] -> [rows, n_out] (int64 fixed, float64 float)."""
        ops = self.ops
        a = ops.matmul(ops.astype(x.reshape(rows, -1), syn.dtype), syn.matrix)
        if not self.fixed:
            return a
        a = ops.astype(a, ops.int64)  # integer-valued and exact (see _synapse)
        if syn.check_pre:
            self._limit(syn.name, "graded sum before the weight exponent", ops.absmax(a), fp.INT32_LIMIT)
        a = fp.shift_activation(a, syn.weight_exp)
        if syn.check_out:
            self._limit(syn.name, "readout synapse output", ops.absmax(a), fp.INT32_LIMIT)
        return a

    @staticmethod
    def _limit(where: str, what: str, value: int, limit: int, step: int | None = None) -> None:
        if value >= limit:
            at = f" at sample step {step}" if step is not None else ""
            raise FixedPointRangeError(
                f"{where}: {what} reaches {value}{at}, outside the emulated range (< {limit}): Lava's CPU model "
                f"computes in int32 there and its overflow is not emulated")

    def _product(self, syn: _Synapse, hist: dict, m: int, batch: int):
        """``W @ x`` of the first ``m`` steps, integer-valued and exact: ``(a, exp)`` with ``a``
        [m, B, n_out] ([1, B, n_out] for an input constant in time) and the exponent to apply."""
        ops, size = self.ops, syn.matrix.shape[-1]
        if syn.int8 is not None:
            h = hist[syn.src]
            x = h.reshape(h.shape[0] * batch, -1)[:m * batch]
            out = self._buffer(("mm", syn.name), (m * batch, size), ops.int32)
            return ops.int8_matmul(x, syn.int8, syn.int8_offset, out).reshape(m, batch, size), \
                syn.weight_exp + syn.int8_shift
        if syn.src in self.inputs or syn.src == BIAS:
            key = ("constant", syn.src)
            if key not in hist:
                hist[key] = ops.constant_in_time(hist[syn.src])
            if hist[key]:
                return ops.matmul(ops.astype(hist[syn.src][0], syn.dtype), syn.matrix)[None], syn.weight_exp
        key = ("cast", syn.src, syn.dtype)  # the cast of a whole run, once per source and dtype
        if key not in hist:
            h = hist[syn.src]
            ops.copy(hist.setdefault(key, self._buffer(key, (h.shape[0] * batch, h.shape[2]), syn.dtype)),
                     h.reshape(h.shape[0] * batch, -1))
        out = self._buffer(("mm", syn.name), (m * batch, size), syn.dtype)
        return ops.matmul(hist[key][:m * batch], syn.matrix, out).reshape(m, batch, size), syn.weight_exp

    def _sum(self, key, synapses: list[_Synapse], hist: dict, steps: int, batch: int, size: int, dtype, shift=0):
        """All of ``synapses`` for the whole run, [T, B, size] in ``dtype``: Lava's ``a_in`` (fixed:
        every group's product shifted by its exponent, then summed) times ``2^shift``."""
        ops, total = self.ops, None
        for syn in sorted(synapses, key=lambda s: s.lag):
            m = steps - syn.lag
            if m <= 0:
                continue
            a, exp = self._product(syn, hist, m, batch)
            factor = 1
            if self.fixed:
                if syn.check_pre:
                    self._limit(syn.name, "graded sum before the weight exponent", ops.absmax(a), fp.INT32_LIMIT)
                if exp < 0:  # Lava's shift: floor(a / 2^-exp), exact in a's type
                    a = ops.floor_scale(a, 2.0 ** exp) if a.dtype in (ops.float32, ops.float64) else \
                        ops.shift_right(a, -exp)
                    exp = 0
                if syn.check_out:
                    self._limit(syn.name, "readout synapse output", ops.absmax(a) * 2 ** exp, fp.INT32_LIMIT)
                factor = 2 ** (exp + shift)
            if total is None:
                total = self._buffer(("sum", key, dtype), (steps, batch, size), dtype)
                if syn.lag == 0:
                    ops.scale_into(total, a, factor)
                    continue
                total[...] = 0
            part = self._buffer(("part", syn.name), a.shape, dtype)
            ops.scale_into(part, a, factor)
            total[syn.lag:] += part
        if total is None:
            total = self._buffer(("sum", key, dtype), (steps, batch, size), dtype)
            total[...] = 0
        return total

    def _buffer(self, key, shape: tuple, dtype):
        """A work array of this run, kept for the next one (fresh memory costs page faults: up to
        a third of a run); runs hold ``self._lock``, and no result aliases a work array."""
        buf = self._work.get(key)
        if buf is None or tuple(buf.shape) != tuple(shape) or buf.dtype != dtype:
            buf = self._work[key] = self.ops.empty(shape, dtype)
        return buf

    def _drive(self, n: str, synapses: list[_Synapse], hist: dict, steps: int, batch: int, recurrent: bool):
        """What the neurons of ``n`` get from outside their loop, all steps: ``(drive, folded)``.
        Float, or a recurrent layer: ``a_in`` (int64 fixed). Else ``a_in << 6`` in the int32
        state dtype, for ``cu == 0`` ``u`` itself: ``wrap(a_in << 6)`` (``folded``)."""
        ops, size, lif = self.ops, self.layers[n].size, self._neurons[n]
        if not self.fixed or recurrent:
            return self._sum(n, synapses, hist, steps, batch, size, ops.int64 if self.fixed else ops.float64), False
        if self._check_activation[n]:  # not bounded by the rules: check in int64 first
            a = self._sum(n, synapses, hist, steps, batch, size, ops.int64)
            self._limit(n, "|a_in|", ops.absmax(a), fp.EXACT_ACTIVATION_LIMIT)
            total = self._buffer(("drive", n), (steps, batch, size), self._state_dtype)
            ops.scale_into(total, a, 2 ** fp.ACT_SHIFT)
        else:
            total = self._sum(n, synapses, hist, steps, batch, size, self._state_dtype, fp.ACT_SHIFT)
        if lif.cu == 0 and lif.wrap:  # u is this step's activation alone: wrap it for all steps
            ops.copy(total, fp.wrap_u(total))
        return total, lif.cu == 0

    def run(self, inputs: Mapping[str, np.ndarray], record: bool | tuple[str, ...] = True,
            record_v: tuple[str, ...] = (), *, sample_major: bool = False) -> LavaResult:
        """Emulate one batch; ``record`` / ``record_v`` as for ``program.network``.
        ``sample_major``: the recorded spikes ([T, B, n], values unchanged) are laid out in
        memory as [B, T, n], so that ``np.swapaxes(spikes, 0, 1)`` needs no copy."""
        ops, fixed = self.ops, self.fixed
        arrays, batched, steps, batch = stack_inputs(self.program.chip.inputs, inputs)  # program.network's checks
        for name, a in arrays.items() if not fixed else ():
            if not np.all(np.isfinite(a)):
                raise LavaMappingError(f"source {name!r}: inputs must be finite")
        chip = self.program.chip  # a split node's name stands for all its parts
        record = tuple(self.layers) if record is True else tuple(p for n in record or () for p in chip.layers_of(n))
        record_v = tuple(p for n in record_v for p in chip.layers_of(n))
        for name in (*record, *record_v):
            if name not in self.layers and name not in self.inputs and name not in self.sinks:
                raise LavaMappingError(f"cannot record unknown process {name!r}")
        for name in record_v:
            if name not in self.layers:
                raise LavaMappingError(f"record_v: {name!r} is not a neuron layer")
        threads = ops.fixed_threads or default_threads()
        with self._lock, ops.running(threads):
            hist = {}
            for name, a in arrays.items():
                x = self.program.encodings[name].encode(a) if fixed else a
                hist[name] = ops.asarray(x, ops.int64 if fixed else ops.float64)
            hist[BIAS] = ops.asarray(np.ones((steps, batch, 1)), ops.int64 if fixed else ops.float64)
            voltages = {}
            for comp, outer, inner in self._components:
                drive = {n: self._drive(n, outer[n], hist, steps, batch, bool(inner[n])) for n in comp}
                for n in comp:
                    hist[n] = self._buffer(("spikes", n), (steps, batch, self.layers[n].size), ops.bool_)
                    if n in record_v:  # (every element is written below)
                        voltages[n] = self._buffer(("v", n), (steps, batch, self.layers[n].size), self._state_dtype)
                work = batch * sum(self.layers[n].size for n in comp)  # blocks of <= ROW_BLOCK neurons, a
                count = -(-work // ROW_BLOCK)  # multiple of the threads where each gets >= ROW_BLOCK / 8
                count = -(-count // threads) * threads if work >= threads * ROW_BLOCK // 8 else count
                ops.map(lambda b, c=comp, i=inner, d=drive: self._run_rows(c, i, d, hist, voltages, b, steps),
                        blocks(batch, min(batch, count)), threads)
            sinks = {n: self._sum(n, self._into[n], hist, steps, batch, size, ops.int64 if fixed else ops.float64)
                     for n, size in self.sinks.items()}
        return self._result(hist, sinks, voltages, record, batched, sample_major)

    def _run_rows(self, comp, inner, drive, hist, voltages, rows: slice, steps: int) -> None:
        """The time loop of one recurrent component (or single layer) for the samples ``rows``."""
        ops, fixed = self.ops, self.fixed
        count = rows.stop - rows.start
        state = {n: (ops.zeros((count, self.layers[n].size), self._state_dtype),
                     ops.zeros((count, self.layers[n].size), self._state_dtype)) for n in comp}
        for t in range(steps):
            for n in comp:
                d, folded = drive[n]
                d = d[t, rows]
                if inner[n]:
                    for syn in inner[n]:
                        if t >= syn.lag:
                            d = d + self._apply(syn, hist[syn.src][t - syn.lag, rows], count)
                    if self._check_activation[n]:
                        self._limit(n, "|a_in|", ops.absmax(d), fp.EXACT_ACTIVATION_LIMIT, t)
                    if fixed:
                        d = ops.astype(d << fp.ACT_SHIFT, self._state_dtype)
                u, v = state[n]
                spikes = hist[n][t, rows]
                if fixed:
                    self._neurons[n].step(ops, u, v, d, spikes, folded)
                else:
                    u, v, s = fp.lif_float_step(u, v, d, *self._neurons[n])
                    state[n] = (u, v)
                    ops.copy(spikes, s)
                if n in voltages:
                    ops.copy(voltages[n][t, rows], v)

    def _result(self, hist, sinks, voltages, record, batched, sample_major) -> LavaResult:
        """The program's ``unpack`` of the recordings, which are already [T, B, n] in sample-local
        time (the identity is all it needs of a layout's windows). Spikes of whole layers are cast
        to float64 here (laid out [B, T, n] if ``sample_major``), as ``unpack`` would."""
        ops, raw, spikes, chip = self.ops, {}, {}, self.program.chip
        parts = {p for pop in chip.split.values() for p in pop.parts}
        direct = {r.direct for r in self.program.readouts.values() if r.direct}
        for name in dict.fromkeys([*record, *direct]):
            if name in self.layers and (name in parts or name in direct):
                raw[name] = ops.numpy(hist[name])
            if name in self.layers and name not in parts and name in record:
                spikes[name] = spikes_float64(ops.numpy(hist[name]), sample_major)
        for name, v in voltages.items():
            raw[f"{name}.v"] = ops.numpy(v).astype(np.float64)
        for name, a in sinks.items():
            raw[name] = ops.numpy(a)
        result = unpack(self.program, SimpleNamespace(windows=lambda values, latency: values), raw, batched)
        for name, s in spikes.items():
            s = s.reshape(s.shape[:2] + tuple(chip.neurons[name].shape))
            result.states.setdefault(name, {})["spikes"] = s if batched else s[:, 0]
        return result


# --- models and graphs -------------------------------------------------------------------------

def model_emulator(model, fixed: bool, dt: float | None = None, engine: str | None = None,
                   device: str | None = None, *, rule: qr.QuantizationRule | None = None,
                   input_ranges: Mapping[str, float] | None = None) -> LoihiEmulator:
    """The model's exported chip graph, mapped as for Lava (:func:`lava_program`), ready to run."""
    from hardware.loihi.lava_backend import lava_program
    from taaf.dynamics import DEFAULT_DT

    program = lava_program(model, fixed, DEFAULT_DT if dt is None else dt, rule=rule, input_ranges=input_ranges)
    return LoihiEmulator(program, engine, device)


def emulate_model(model, audio: np.ndarray, image: np.ndarray, fixed: bool = False, dt: float | None = None,
                  engine: str | None = None, device: str | None = None, *,
                  emulator: LoihiEmulator | None = None):
    """:func:`~hardware.loihi.lava_backend.run_lava` on the emulator: the chip part of ``model``
    for audio [B, T, F] and images [B, C, H, W] -> :class:`~hardware.backends.ChipRun`.
    Pass ``emulator`` (from :func:`model_emulator`) to map the model once for many batches."""
    from export.nir_export import spiking_layers
    from hardware.backends import time_major_inputs
    from hardware.loihi.lava_backend import _chip_run

    emulator = emulator or model_emulator(model, fixed, dt, engine, device)
    if emulator.fixed != fixed:
        raise ValueError(f"emulator is {'fixed' if emulator.fixed else 'float'}, but fixed={fixed}")
    layers = tuple(spiking_layers(model).values())
    inputs = time_major_inputs(np.asarray(audio, np.float64), np.asarray(image, np.float64))
    return _chip_run(model, emulator.run(inputs, record=layers, sample_major=True))


def emulator_runner(model, fixed: bool, dt: float | None = None, engine: str | None = None,
                    device: str | None = None) -> Callable:
    """``(audio, image) -> ChipRun`` with the mapping done once (for ``measure_agreement``)."""
    emulator = model_emulator(model, fixed, dt, engine, device)
    return lambda audio, image: emulate_model(model, audio, image, fixed, emulator=emulator)


def emulate_graph(graph, inputs: Mapping[str, np.ndarray], fixed: bool = False, dt: float | None = None, *,
                  rule: qr.QuantizationRule | None = None, input_ranges: Mapping[str, float] | None = None,
                  record: bool = True, record_v: bool | tuple[str, ...] = False,
                  engine: str | None = None, device: str | None = None) -> LavaResult:
    """:func:`~hardware.loihi.lava_backend.run_lava_graph` on the emulator (any NIR graph)."""
    from hardware.loihi.lava_backend import default_input_ranges

    if fixed and input_ranges is None:
        input_ranges = default_input_ranges(inputs)
    program = map_graph(graph, dt, fixed=fixed, rule=rule, input_ranges=input_ranges)
    if record_v is True:
        record_v = tuple(program.layers)
    return LoihiEmulator(program, engine, device).run(inputs, record=record, record_v=tuple(record_v or ()))


__all__ = ["DEVICE_ENV", "ENGINES", "ENGINE_ENV", "ROW_BLOCK", "THREADS_ENV", "LoihiEmulator", "default_threads",
           "emulate_graph", "emulate_model", "emulator_runner", "model_emulator", "resolve_engine"]
