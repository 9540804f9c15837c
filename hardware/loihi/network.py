"""One batch of a :class:`~hardware.loihi.program.LavaProgram` laid out in time for a Lava run,
and every parameter checked before Lava sees it (Lava hangs, rather than raising, on bad ones).

The layout itself (where each sample sits, when each layer resets, the gate that silences
delayed sources between samples) is :class:`hardware.ir.layout.BatchLayout`; this module
turns it into sources, reset registers and gate synapses.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from hardware.errors import FixedPointRangeError, LavaMappingError
from hardware.ir.graph import BIAS
from hardware.ir.layout import BatchLayout, stack_inputs
from hardware.loihi import fixed_point as fp
from hardware.loihi import quant_rules as qr
from hardware.loihi.program import LavaProgram, LayerParams, SynapseParams
from taaf import budget

GATE = "__gate__"


@dataclass(frozen=True)
class NetworkSpec:
    """Everything a Lava run needs, as plain numpy (picklable; no Lava objects).

    ``sources[name]``: [n, num_steps] data; ``layers``/``synapses``: parameters with reset
    interval/offset; ``sinks``: readout name -> size (an Extractor the synapses feed);
    ``record``: names whose output is streamed out (neuron spikes, sources, sinks);
    ``record_v``: neuron layers whose voltage is recorded: by a Monitor when small, else read
    whole at every step (:data:`MONITOR_VALUES`, :func:`hardware.loihi.lava_runtime.drive`)."""

    tag: str
    layout: BatchLayout
    sources: dict[str, np.ndarray]
    layers: dict[str, LayerParams]
    reset: dict[str, tuple[int, int]]  # layer -> (reset_interval, reset_offset)
    synapses: tuple[SynapseParams, ...]
    sinks: dict[str, int]
    record: tuple[str, ...]
    record_v: tuple[str, ...] = ()
    batched: bool = True  # False: inputs were [T, *shape]; results come back without B

    @property
    def fixed(self) -> bool:
        """True for Loihi fixed point (integer registers and messages)."""
        return self.tag == "fixed_pt"

    @property
    def num_steps(self) -> int:
        """Steps of the whole Lava run."""
        return self.layout.total


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


def build_network(program: LavaProgram, inputs: Mapping[str, np.ndarray],
                  record: bool | tuple[str, ...] = True, record_v: tuple[str, ...] = ()) -> NetworkSpec:
    """A batch ``inputs[name]: [T, B, *shape]`` as one Lava stream: encoded sources, per-layer
    reset registers, the gate (when the graph has delayed terms) and what to record."""
    chip = program.chip
    arrays, batched, steps, batch = stack_inputs(chip.inputs, inputs)
    layout = program.layout(steps, batch)
    cols = layout.indices(0)
    sources = {}
    for name, a in arrays.items():
        data = np.zeros((a.shape[2], layout.total), np.float64)
        data[:, cols.reshape(-1)] = a.reshape(-1, a.shape[2]).T
        if program.fixed:
            data = program.encodings[name].encode(data)
        sources[name] = data
    if chip.biased:  # the constant source: 1 on every step of every sample (like an Input)
        on = np.zeros((1, layout.total), np.int64 if program.fixed else np.float64)
        on[0, cols.reshape(-1)] = 1
        sources[BIAS] = on
    synapses = list(program.synapses)
    if chip.gated:
        sources[GATE] = layout.gap_mask()[None, :].astype(np.int64 if program.fixed else np.float64)
        max_abs = {n: float(np.abs(a).max(initial=0.0)) for n, a in arrays.items()}
        for name in chip.gated:
            delay = chip.neurons[name].latency - 1
            if program.fixed:
                syn = qr.gate_synapses(program.quantized[name])
                w, e, mode = syn.weights, syn.weight_exp, int(syn.sign_mode)
            else:
                w, e, mode = _float_gate(program, name, max_abs).reshape(-1, 1), 0, 1
            synapses.append(SynapseParams(f"{name}<-gate", GATE, name, w, delay, e, mode, graded=False))
    reset = {n: (layout.period, layout.reset_offset(p.latency)) for n, p in program.layers.items()}
    sinks = {n: r.size for n, r in program.readouts.items() if r.direct is None}
    wanted = program.layers if record is True else (record or ())
    wanted = [p for n in wanted for p in chip.layers_of(n)]  # a split node: all its parts
    direct = (r.direct for r in program.readouts.values() if r.direct)
    rec = tuple(dict.fromkeys([*wanted, *sinks, *direct]))
    record_v = tuple(dict.fromkeys(p for n in record_v for p in chip.layers_of(n)))
    return NetworkSpec(program.tag, layout, sources, dict(program.layers), reset,
                       tuple(synapses), sinks, rec, record_v, batched=batched)


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
    values = sum(spec.layers[n].size for n in spec.record_v) * spec.num_steps
    budget.check("the recorded voltages", 8 * values, f"{values:,} voltage values")


#: Voltage values (neurons x steps) up to which a layer is recorded by Lava's Monitor, which
#: copies value by value; a larger layer's ``v`` is read whole after every step instead.
MONITOR_VALUES = 2_000_000


def monitored(spec: NetworkSpec, name: str) -> bool:
    """Whether ``record_v`` layer ``name`` is small enough for a Monitor (else read per step)."""
    return spec.layers[name].size * spec.num_steps <= MONITOR_VALUES


__all__ = ["BIAS", "GATE", "MONITOR_VALUES", "NetworkSpec", "build_network", "monitored", "validate_network"]
