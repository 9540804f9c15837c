"""A :class:`~hardware.ir.graph.ChipGraph` with the parameters of one mode (float or Loihi
fixed point), and the way recordings are read back into the reference time base."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import nir
import numpy as np

from hardware.errors import LavaMappingError
from hardware.ir.graph import BIAS, ChipGraph
from hardware.ir.layout import BatchLayout
from hardware.ir.lower import lower_graph
from hardware.loihi import fixed_point as fp
from hardware.loihi import quant_rules as qr


@dataclass(frozen=True)
class SynapseParams:
    """One Lava synapse process (one IR term); ``dst`` is a neuron layer or a readout (Extractor).

    ``delay`` is the Lava synaptic delay after latency alignment; ``nir_delay`` the term's own
    delay in the graph (what a netx or JSON consumer needs, never parsed back from ``name``)."""

    name: str
    src: str
    dst: str
    weights: np.ndarray  # float (float mode) or int (fixed)
    delay: int
    weight_exp: int = 0
    sign_mode: int = 1  # fixed_point.SignMode (MIXED)
    graded: bool = False
    nir_delay: int = 0


@dataclass(frozen=True)
class LayerParams:
    """One Lava ``LIFReset`` process: registers in fixed point (int), coefficients in float."""

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
    """How a readout's recording becomes the NIR Output value: ``recorded * scale + bias``."""

    name: str
    size: int
    latency: int
    bias: np.ndarray
    scale: float  # float readout = recorded * scale + bias
    direct: str | None


@dataclass(frozen=True)
class LavaProgram:
    """The chip graph with the parameters of one mode; :meth:`network` adds a batch.

    Fixed point keeps the typed registers the rule produced (``quantized``, ``encodings``), so
    no consumer rebuilds them."""

    chip: ChipGraph
    fixed: bool
    layers: dict[str, LayerParams]
    synapses: tuple[SynapseParams, ...]
    readouts: dict[str, ReadoutParams]
    encodings: dict[str, fp.InputEncoding] = field(default_factory=dict)
    quantized: dict[str, fp.QuantizedLayer] = field(default_factory=dict)
    rule: str = "float"

    @property
    def tag(self) -> str:
        """Lava's process-model tag for this mode."""
        return "fixed_pt" if self.fixed else "floating_pt"

    def network(self, inputs: Mapping[str, np.ndarray], record: bool | tuple[str, ...] = True,
                record_v: tuple[str, ...] = ()):
        """Lay out a batch ``inputs[name]: [T, B, *shape]`` in time
        (:func:`hardware.loihi.network.build_network`)."""
        from hardware.loihi.network import build_network

        return build_network(self, inputs, record, record_v)

    def layout(self, steps: int, batch: int) -> BatchLayout:
        """The stream layout of a batch of this program (gap before each sample, tail for the
        deepest latency)."""
        return BatchLayout(steps, batch, lead=self.chip.gap, tail=self.chip.max_latency)

    def unpack(self, spec, raw: Mapping[str, np.ndarray]) -> LavaResult:
        """Recordings of a run of ``spec`` (:meth:`network`) -> the reference time base."""
        return unpack(self, spec.layout, raw, spec.batched)


def _term_source_info(lowered: ChipGraph, src: str, encodings: Mapping[str, fp.InputEncoding]):
    """(graded?, frac_bits, max_int) of the messages a source sends."""
    if src in lowered.inputs:
        enc = encodings.get(src)
        return True, (enc.frac_bits if enc else 0), (enc.max_int if enc else 1)
    return False, 0, 1


def map_graph(graph: nir.NIRGraph, dt: float | None = None, fixed: bool = False,
              rule: qr.QuantizationRule | None = None,
              input_ranges: Mapping[str, float] | None = None) -> LavaProgram:
    """The graph as Lava parameters. Fixed point needs ``input_ranges`` (max |x| per Input,
    the documented encoding range; a :class:`~hardware.loihi.quant_rules.IntegerRange` for an
    input of integers, sent without fractional bits); float ignores it."""
    lowered = graph if isinstance(graph, ChipGraph) else lower_graph(graph, dt)
    if isinstance(rule, qr.NetxRule):
        _netx_holds(lowered)
    if not fixed:
        return _float_program(lowered)
    rule = rule or qr.PowerOfTwoRule()
    ranges = dict(input_ranges or {})
    missing = [n for n in lowered.inputs if n not in ranges]
    if missing:
        raise LavaMappingError(f"fixed point needs the input range (max |x|) of Input(s) {missing}")
    encodings = {n: rule.input_encoding(n, float(ranges[n])) for n in lowered.inputs}
    encodings.update({n: qr.integer_encoding(e) for n, e in encodings.items()
                      if isinstance(ranges[n], qr.IntegerRange)})
    return _fixed_program(lowered, rule, encodings)


def measured_currents(graph: nir.NIRGraph, inputs: Mapping[str, np.ndarray],
                      dt: float | None = None) -> dict[str, float]:
    """Per chip neuron layer, the largest |summed synaptic input| (float voltage per step: every
    term ``gain x matrix @ source[t - delay]``, the Lava ``a_in`` before quantisation) that the
    float reference simulator drives on ``inputs`` [T, B, *shape]: what
    :func:`calibrated_rule` hands the quantisation rule instead of its worst-case bound."""
    from hardware.reference import ReferenceSimulator

    lowered = lower_graph(graph, dt)
    nodes = [n for n in graph.nodes if n in lowered.split or n in lowered.neurons]
    result = ReferenceSimulator(graph, lowered.dt).run(inputs, record=nodes)
    steps = next(iter(result.outputs.values())).shape[0] if result.outputs else None
    signals: dict[str, np.ndarray] = {}
    for name, shape in lowered.inputs.items():
        x = np.asarray(inputs[name], np.float64)
        x = x[:, None] if x.ndim == len(shape) + 1 else x
        signals[name] = x.reshape(x.shape[0], x.shape[1], -1)
        steps = x.shape[0]
    batch = next(iter(signals.values())).shape[1] if signals else 1
    for node in nodes:
        s = np.asarray(result.states[node]["spikes"], np.float64)
        s = s.reshape(s.shape[0], batch, -1)
        signals.update(lowered.split[node].take(s) if node in lowered.split else {node: s})
    signals[BIAS] = np.ones((steps, batch, 1))
    out = {}
    for name, layer in lowered.neurons.items():
        current = np.zeros((steps, batch, layer.size))
        for t in layer.terms:
            src = signals[t.source]
            src = src if t.matrix is None else src @ np.asarray(t.matrix, np.float64).T
            current[t.delay:] += src[:steps - t.delay]
        out[name] = float(np.abs(current * layer.gain).max(initial=0.0))
    return out


def calibrated_rule(graph: nir.NIRGraph, inputs: Mapping[str, np.ndarray], dt: float | None = None,
                    rule: qr.PowerOfTwoRule | None = None) -> qr.PowerOfTwoRule:
    """``rule`` (default :class:`~hardware.loihi.quant_rules.PowerOfTwoRule`) with the currents
    :func:`measured_currents` finds on ``inputs`` (calibration data: the inputs to run, or a
    representative set): each layer's scale then follows the current its inputs really drive,
    not the all-inputs-at-once bound (see the rule's ``currents``)."""
    import dataclasses

    rule = rule or qr.PowerOfTwoRule()
    return dataclasses.replace(rule, currents=tuple(sorted(measured_currents(graph, inputs, dt).items())))


def _netx_holds(lowered: ChipGraph) -> None:
    """A netx bundle holds chains of layers and host readouts ``bias + terms``; no constant
    source, no host-run output layer (raises LavaMappingError, one line)."""
    node = {p: n for n, pop in lowered.split.items() for p in pop.parts}
    for name in (*lowered.neurons, *lowered.readouts):
        if any(t.source == BIAS for t in lowered.terms_into(name)):
            raise LavaMappingError(f"{node.get(name, name)!r} needs the constant source (a bias into a CubaLIF's "
                                   f"current, or one behind a Delay or a recurrent edge), which netx cannot hold")
    for name, r in lowered.readouts.items():
        if r.host is not None:
            raise LavaMappingError(f"output {name!r}: its {type(r.host).__name__} runs on the host, which a netx "
                                   f"bundle does not hold")


def _float_program(lowered: ChipGraph) -> LavaProgram:
    layers, synapses = {}, []
    for name, layer in lowered.neurons.items():
        layers[name] = LayerParams(name, layer.size, du=layer.du, dv=layer.dv, vth=layer.threshold,
                                   bias_mant=layer.bias, bias_exp=np.zeros(layer.size), latency=layer.latency)
        for i, t in enumerate(layer.terms):
            m = np.diag(np.ones(layer.size)) if t.matrix is None else t.matrix
            synapses.append(SynapseParams(f"{name}<-{t.source}@{t.delay}", t.source, name,
                                          layer.gain[:, None] * m, lowered.synaptic_delay(name, t),
                                          graded=t.source in lowered.inputs, nir_delay=t.delay))
    readouts = {}
    for name, r in lowered.readouts.items():
        readouts[name] = ReadoutParams(name, int(np.prod(r.shape)), r.latency, r.bias, 1.0, r.direct)
        if r.direct:
            continue
        for t in r.terms:
            m = np.eye(int(np.prod(r.shape))) if t.matrix is None else t.matrix
            synapses.append(SynapseParams(f"{name}<-{t.source}@{t.delay}", t.source, name, m,
                                          lowered.synaptic_delay(name, t), graded=t.source in lowered.inputs, nir_delay=t.delay))
    return LavaProgram(lowered, False, layers, tuple(synapses), readouts)


def _fixed_program(lowered: ChipGraph, rule, encodings) -> LavaProgram:
    layers, synapses, quantized = {}, [], {}
    for name, layer in lowered.neurons.items():
        terms = []
        for t in layer.terms:
            graded, frac, max_int = _term_source_info(lowered, t.source, encodings)
            m = np.diag(np.ones(layer.size)) if t.matrix is None else t.matrix
            terms.append(qr.FloatTerm(t.source, layer.gain[:, None] * m, frac, max_int, signed=graded))
        q = rule.layer(name, terms, qr.FloatNeuron(layer.dv, layer.du, layer.threshold, layer.bias),
                       gated=name in lowered.gated)
        quantized[name] = q
        lif = q.lif
        layers[name] = LayerParams(name, layer.size, du=lif.du, dv=lif.dv, vth=lif.vth, bias_mant=lif.bias_mant,
                                   bias_exp=lif.bias_exp, latency=layer.latency, scale_exp=q.scale_exp)
        for t, syn, fine in zip(layer.terms, q.synapses, q.fine or (None,) * len(q.synapses)):
            for suffix, group in (("", syn), ("+fine", fine)):
                if group is not None:  # a fine group: a second Dense on the same edge (QuantizedLayer.fine)
                    synapses.append(SynapseParams(
                        f"{name}<-{t.source}@{t.delay}{suffix}", t.source, name, group.weights,
                        lowered.synaptic_delay(name, t), group.weight_exp, int(group.sign_mode),
                        graded=t.source in lowered.inputs, nir_delay=t.delay))
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
            terms.append(qr.FloatTerm(t.source, m, frac, max_int, signed=graded))
        q = rule.readout(name, terms)
        readouts[name] = ReadoutParams(name, size, r.latency, r.bias, 2.0 ** -q.scale_exp, None)
        for t, syn in zip(r.terms, q.synapses):
            synapses.append(SynapseParams(f"{name}<-{t.source}@{t.delay}", t.source, name, syn.weights,
                                          lowered.synaptic_delay(name, t), syn.weight_exp, int(syn.sign_mode),
                                          graded=t.source in lowered.inputs, nir_delay=t.delay))
    return LavaProgram(lowered, True, layers, tuple(synapses), readouts, encodings, quantized,
                       rule=getattr(rule, "name", type(rule).__name__))


@dataclass(frozen=True)
class LavaResult:
    """Like the reference simulator's result: ``outputs[name]`` [T, B, *shape] (float),
    ``states[layer]`` {'spikes', and with record_v 'v' (float) / 'v_int' (fixed, raw)}."""

    outputs: dict[str, np.ndarray]
    states: dict[str, dict[str, np.ndarray]]
    dt: float


def unpack(program: LavaProgram, layout: BatchLayout, raw: Mapping[str, np.ndarray],
           batched: bool = True) -> LavaResult:
    """Raw recordings ``{name: [total, n]}`` (``'<layer>.v'`` for voltages) -> a
    :class:`LavaResult` in the reference simulator's time base; fixed-point readouts and
    voltages are scaled back to float, host-run output layers (``Readout.host``) run here, and a
    node held as several layers (``ChipGraph.split``) comes back whole under its own name (each
    neuron's ``v_int`` on the scale of its part, ``program.layers[part].scale_exp``)."""
    lowered = program.chip
    outputs, states = {}, {}
    for name, r in program.readouts.items():
        src = r.direct or name
        values = layout.windows(np.asarray(raw[src], np.float64), r.latency) * r.scale + r.bias
        values = values.reshape(values.shape[:2] + tuple(lowered.readouts[name].shape))
        host = lowered.readouts[name].host
        if host is not None:
            state, y = host.init_state(values.shape[1], np.float64), np.empty_like(values)
            for t in range(values.shape[0]):
                state, y[t] = host.step(state, values[t])
            values = y
        outputs[name] = values
    parts = {p for pop in lowered.split.values() for p in pop.parts}
    flat = {n: _layer_state(program, layout, raw, n) for n in lowered.neurons}
    for name, layer in lowered.neurons.items():
        if name not in parts and flat[name]:
            states[name] = {k: v.reshape(v.shape[:2] + layer.shape) for k, v in flat[name].items()}
    for name, pop in lowered.split.items():
        keys = set.intersection(*(set(flat[p]) for p in pop.parts))
        if keys:
            states[name] = {k: pop.gather([flat[p][k] for p in pop.parts]) for k in sorted(keys)}
    if not batched:
        outputs = {k: v[:, 0] for k, v in outputs.items()}
        states = {n: {k: v[:, 0] for k, v in d.items()} for n, d in states.items()}
    return LavaResult(outputs, states, lowered.dt)


def _layer_state(program: LavaProgram, layout: BatchLayout, raw: Mapping[str, np.ndarray],
                 name: str) -> dict[str, np.ndarray]:
    """What was recorded of one neuron layer, ``[T, B, n]``: 'spikes', 'v' (float), 'v_int'."""
    latency, entry = program.chip.neurons[name].latency, {}
    if name in raw:
        entry["spikes"] = (layout.windows(np.asarray(raw[name]), latency) != 0).astype(np.float64)
    if f"{name}.v" in raw:
        v = layout.windows(np.asarray(raw[f"{name}.v"]), latency)
        if program.fixed:
            entry["v_int"] = np.rint(v).astype(np.int64)
            v = v * 2.0 ** -program.layers[name].scale_exp
        entry["v"] = v
    return entry


__all__ = ["LavaProgram", "LavaResult", "LayerParams", "ReadoutParams", "SynapseParams", "calibrated_rule", "map_graph",
           "measured_currents", "unpack"]
