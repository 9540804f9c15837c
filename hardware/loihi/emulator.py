"""A batched, bit-exact emulator of the Lava processes the mapper builds (``loihi-emu``).

:class:`LoihiEmulator` runs a :class:`~hardware.loihi.program.LavaProgram` — the same
object, mapping and quantised registers a Lava run uses — on a whole batch at once: state
arrays ``[B, N]``, one Python loop over time steps, in numpy or in torch (CPU, or CUDA).
It reproduces Lava 0.10's ``Loihi2SimCfg`` models as configured by
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
delay of the term, >= 0), and 0 before the sample. The emulator therefore runs each sample
from zero state for its ``T`` steps per layer, all samples side by side, and never needs the
concatenated stream (the constant source ``BIAS`` is 1 at every local step, 0 before, so a
delayed term from it starts at its delay); the results are handed to the mapper's own
:func:`~hardware.loihi.program.unpack`, so they come back in exactly the format (and the
float conversions) of ``run_graph`` / ``run_lava``.

Where the numbers come from (nothing is re-derived here)
--------------------------------------------------------
* registers: the program's ``LayerParams`` / ``SynapseParams``, checked once by the mapper's
  :func:`~hardware.loihi.network.validate_network` (exactly as before a Lava run);
  effective bias and threshold from :class:`~hardware.loihi.fixed_point.QuantizedLIF`;
* inputs: :meth:`~hardware.loihi.fixed_point.InputEncoding.encode` (fixed point);
* synapses: ``W @ x`` then :func:`~hardware.loihi.fixed_point.shift_activation` (the weight
  exponent, floor for negative ones); several synapse groups are summed as Lava's ``a_in``;
* neurons: :func:`~hardware.loihi.fixed_point.lif_fixed_step` (``decay_toward_zero``,
  ``wrap_u``, ``clip_v``, threshold, reset) / :func:`~hardware.loihi.fixed_point.lif_float_step`.

The one computation of its own is ``W @ x`` over the whole batch and all ``T`` steps at once
(one matrix product per synapse group and layer; only synapses inside a recurrent loop are
applied step by step). In fixed point it is done in floating point, which is exact: weights
and messages are integers, and every partial sum is bounded by ``sum|W| max|x|`` (precomputed
per synapse group); below ``2^24`` float32 is used, below ``2^53`` float64 (int64 beyond), and
the integer-valued result is cast to int64 before the exponent shift. float32 is only used when
torch is not allowed reduced-precision matmuls (TF32/bf16).

Exactness domain (fixed point)
------------------------------
Lava's CPU models hold ``a_in``, ``u`` and ``v`` in int32; the emulator computes in int64.
They agree whenever ``|a_in| < 2^18`` (:data:`~hardware.loihi.fixed_point.EXACT_ACTIVATION_LIMIT`:
``u`` then wraps modulo 2^24 and nothing overflows int32) and a graded accumulation that Lava
shifts right stays below 2^31 (readouts: every synapse group's output). The quantisation
rules guarantee this statically (``|a_in| <= 2^17 - 1``); for other programs the emulator
checks it on every run and raises :class:`~hardware.loihi.FixedPointRangeError` naming the
layer and step rather than return numbers Lava's int32 arithmetic might not produce.

Float mode: float64, the same operations as Lava's float models; ``W @ x`` is summed in BLAS
order rather than numpy's, so values can differ in the last bits (like the
test oracle ``tests/oracles.py``).

Engines: ``engine="numpy"`` (default) or ``"torch"`` with ``device`` (``"cpu"``, ``"cuda"``);
integer state is int64 on every device. See :mod:`hardware.loihi.engines` (:func:`resolve_engine`
and its environment variables are re-exported here).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from hardware.loihi import FixedPointRangeError, LavaMappingError
from hardware.loihi import fixed_point as fp
from hardware.loihi import quant_rules as qr
from hardware.loihi.engines import (DEVICE_ENV, ENGINE_ENV, ENGINES, FLOAT32_EXACT, FLOAT64_EXACT,
                                     make_ops, resolve_engine)
from hardware.ir.graph import BIAS
from hardware.ir.layout import BatchLayout, stack_inputs
from hardware.loihi.network import validate_network
from hardware.loihi.program import LavaProgram, LavaResult, map_graph, unpack


# --- the emulator -------------------------------------------------------------------------------

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


class LoihiEmulator:
    """Emulate ``program`` (fixed or float) on batches; see the module docstring.

    ``run(inputs)`` takes the inputs of ``program.network`` (``inputs[name]`` [T, B, *shape]
    or [T, *shape]) and returns the :class:`~hardware.loihi.program.LavaResult` that
    ``program.unpack(spec, run_with_watchdog(spec))`` returns for the same batch.
    """

    def __init__(self, program: LavaProgram, engine: str | None = None, device: str | None = None):
        engine, device = resolve_engine(engine, device)
        self.program = program
        self.fixed = program.fixed
        self.engine = engine
        self.ops = make_ops(engine, device)
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
        self._neurons = {n: self._neuron(p) for n, p in self.layers.items()}
        synapses = [self._synapse(s) for s in program.synapses]
        self._into = {n: [s for s in synapses if s.dst == n] for n in [*self.layers, *self.sinks]}
        self._components = self._schedule(synapses)
        self._check_activation = {n: self._activation_unsafe(n) for n in self.layers}

    # -- construction --

    def _neuron(self, p):
        ops = self.ops
        if self.fixed:
            q = fp.QuantizedLIF(p.name, du=p.du, dv=p.dv, vth=p.vth, bias_mant=p.bias_mant, bias_exp=p.bias_exp)
            return (int(q.du), int(q.dv), ops.asarray(q.effective_bias, ops.int64), int(q.effective_vth))
        return (float(p.du), float(p.dv), ops.asarray(np.asarray(p.bias_mant, np.float64), ops.float64), float(p.vth))

    def _source_max(self, src: str) -> int:
        """Largest |message| a source sends: 1 for spikes, the encoding's max_int for inputs."""
        if src in self.inputs:
            enc = self.program.encodings.get(src)
            return int(enc.max_int) if enc is not None else 1
        return 1

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
        check_pre = check_out = False
        if self.fixed:
            q, term = self._quantized(s)
            w = q.weights
            worst = int(np.abs(w).sum(1).max(initial=0)) * term.max_int  # any partial sum of W x
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
        else:
            dtype = ops.float64
            matrix = ops.asarray(np.asarray(s.weights, np.float64).T, dtype)
        return _Synapse(s.name, s.src, s.dst, lag, int(s.weight_exp), matrix, dtype, check_pre, check_out)

    def _activation_unsafe(self, layer: str) -> bool:
        """True when the rules do not already bound ``|a_in| < 2^18`` (then checked per run)."""
        if not self.fixed:
            return False
        qs = [self._quantized(s) for s in self.program.synapses if s.dst == layer]
        if not qs:
            return False
        pos, neg = qr.activation_bounds([q for q, _ in qs], [t for _, t in qs])
        return max(pos.max(initial=0.0), neg.max(initial=0.0)) >= fp.EXACT_ACTIVATION_LIMIT

    def _schedule(self, synapses: list[_Synapse]) -> list[tuple[tuple[str, ...], dict, dict]]:
        """Neuron layers grouped into recurrent components, in dependency order. Each entry:
        (layers in program order, {layer: synapses from outside (whole-run products)},
        {layer: synapses inside the component (applied step by step)})."""
        names = list(self.layers)
        edges = {n: {s.dst for s in synapses if s.src == n and s.dst in self.layers} for n in names}

        def reach(a: str) -> set[str]:
            seen, todo = set(), [a]
            while todo:
                for b in edges[todo.pop()]:
                    if b not in seen:
                        seen.add(b)
                        todo.append(b)
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

    # -- running --

    def _batch(self, inputs: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], bool, int, int]:
        """Inputs as [T, B, n] float64 (the layout checks of ``program.network``)."""
        arrays, batched, steps, batch = stack_inputs(self.program.chip.inputs, inputs)
        if not self.fixed:
            for name, a in arrays.items():
                if not np.all(np.isfinite(a)):
                    raise LavaMappingError(f"source {name!r}: inputs must be finite")
        return arrays, batched, steps, batch

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

    def _sum(self, target: str, synapses: list[_Synapse], hist: dict, steps: int, batch: int, size: int):
        """All of ``synapses`` into ``target`` for the whole run: [T, B, size]."""
        ops = self.ops
        total = None
        for syn in synapses:
            n = steps - syn.lag
            if n <= 0:
                continue
            a = self._apply(syn, hist[syn.src][:n], n * batch).reshape(n, batch, size)
            if total is None and syn.lag == 0:
                total = a
                continue
            if total is None:
                total = ops.zeros((steps, batch, size), ops.int64 if self.fixed else ops.float64)
            total[syn.lag:] += a
        if total is None:
            total = ops.zeros((steps, batch, size), ops.int64 if self.fixed else ops.float64)
        return total

    def run(self, inputs: Mapping[str, np.ndarray], record: bool | tuple[str, ...] = True,
            record_v: tuple[str, ...] = ()) -> LavaResult:
        """Emulate one batch; ``record`` / ``record_v`` as for ``program.network``."""
        ops, fixed = self.ops, self.fixed
        arrays, batched, steps, batch = self._batch(inputs)
        chip = self.program.chip  # a split node's name stands for all its parts
        record = tuple(self.layers) if record is True else tuple(p for n in record or () for p in chip.layers_of(n))
        record_v = tuple(p for n in record_v for p in chip.layers_of(n))
        for name in (*record, *record_v):
            if name not in self.layers and name not in self.inputs and name not in self.sinks:
                raise LavaMappingError(f"cannot record unknown process {name!r}")
        for name in record_v:
            if name not in self.layers:
                raise LavaMappingError(f"record_v: {name!r} is not a neuron layer")
        hist = {}
        for name, a in arrays.items():
            x = self.program.encodings[name].encode(a) if fixed else a
            hist[name] = ops.asarray(x, ops.int64 if fixed else ops.float64)
        hist[BIAS] = ops.asarray(np.ones((steps, batch, 1)), ops.int64 if fixed else ops.float64)
        state_dtype = ops.int64 if fixed else ops.float64
        step_fn = fp.lif_fixed_step if fixed else fp.lif_float_step
        voltages = {}
        for comp, outer, inner in self._components:
            drive = {n: self._sum(n, outer[n], hist, steps, batch, self.layers[n].size) for n in comp}
            for n in comp:
                hist[n] = ops.zeros((steps, batch, self.layers[n].size), ops.bool_)
                if n in record_v:
                    voltages[n] = ops.zeros((steps, batch, self.layers[n].size), state_dtype)
                if self._check_activation[n] and not inner[n]:
                    self._limit(n, "|a_in|", ops.absmax(drive[n]), fp.EXACT_ACTIVATION_LIMIT)
            state = {n: (ops.zeros((batch, self.layers[n].size), state_dtype),
                         ops.zeros((batch, self.layers[n].size), state_dtype)) for n in comp}
            for t in range(steps):
                for n in comp:
                    a = drive[n][t]
                    for syn in inner[n]:
                        if t >= syn.lag:
                            a = a + self._apply(syn, hist[syn.src][t - syn.lag], batch)
                    if self._check_activation[n] and inner[n]:
                        self._limit(n, "|a_in|", ops.absmax(a), fp.EXACT_ACTIVATION_LIMIT, t)
                    du, dv, bias, vth = self._neurons[n]
                    u, v, spikes = step_fn(*state[n], a, du, dv, bias, vth)
                    state[n] = (u, v)
                    hist[n][t] = spikes
                    if n in voltages:
                        voltages[n][t] = v
        sinks = {n: self._sum(n, self._into[n], hist, steps, batch, size) for n, size in self.sinks.items()}
        return self._result(hist, sinks, voltages, record, batched, steps, batch)

    def _result(self, hist, sinks, voltages, record, batched, steps, batch) -> LavaResult:
        """Lay the sample-local arrays out as Lava's raw recordings of a batch (no gap: every
        sample starts from zero state here) and let the program's ``unpack`` read them back."""
        ops, program = self.ops, self.program
        layout = BatchLayout(steps, batch, lead=0, tail=self.max_latency)
        raw = {}
        direct = [r.direct for r in program.readouts.values() if r.direct]
        for name in dict.fromkeys([*record, *direct]):
            if name in self.layers:
                raw[name] = layout.place(ops.numpy(hist[name]), self.latency[name], np.uint8)
            elif name in self.inputs:
                raw[name] = layout.place(ops.numpy(hist[name]), 0)
        for name, v in voltages.items():
            raw[f"{name}.v"] = layout.place(ops.numpy(v), self.latency[name])
        for name, a in sinks.items():
            raw[name] = layout.place(ops.numpy(a), self.latency[name])
        return unpack(program, layout, raw, batched)


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
    return _chip_run(model, emulator.run(inputs, record=layers))


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


__all__ = [
    "DEVICE_ENV",
    "ENGINES",
    "ENGINE_ENV",
    "LoihiEmulator",
    "emulate_graph",
    "emulate_model",
    "emulator_runner",
    "model_emulator",
    "resolve_engine",
]
