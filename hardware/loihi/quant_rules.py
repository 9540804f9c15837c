"""Quantisation rules: a float LIF layer and its synapse groups -> Loihi registers
(:mod:`hardware.loihi.fixed_point`'s register sets), and the batch gate's inhibition.

A rule is any object with the :class:`QuantizationRule` interface, so the Lava program
(:func:`~hardware.loihi.program.map_graph`), the emulator and the netx export take any of them:

The scale rule (:class:`PowerOfTwoRule`, the default)
-----------------------------------------------------
Each LIF layer gets one power-of-two scale ``S = 2^s``: integer voltage = ``S`` x float
voltage, so the threshold, the bias and every incoming synapse group (all "terms" into the
layer) use the same ``S`` and the layer's dynamics are preserved up to rounding:

* weights: each synapse group ``j`` gets the finest mantissa that fits 8 bits,
  ``k_j = floor(log2(127 / max|W_j|))``, ``m = round(W_j 2^k_j)`` (Lava weight ``2 m``, MIXED),
  and the exponent that puts it on the layer's scale,
  ``weight_exp_j = s - 6 - 1 - q_j - k_j`` (6: Loihi's activation shift; 1: the MIXED factor
  2; ``q_j``: the fractional bits of the source, 0 for spikes, see :class:`InputEncoding`).
  If that exponent would be below ``WEIGHT_EXP_MIN`` the mantissa is coarsened instead;
* threshold ``vth = round(theta 2^(s-6))``; bias ``round(b 2^s) = bias_mant << bias_exp`` with
  the smallest ``bias_exp`` (per neuron) that fits 13 bits; ``dv = round(4096 dt/tau)``,
  ``du = 4095``;
* ``s`` is the **largest** integer for which every register fits: ``weight_exp <= 7``,
  ``vth <= 2^17 - 1``, bias representable, and the worst-case activation
  ``sum_j |W_int| max|x_int| 2^weight_exp`` stays below ``2^17`` so that ``u`` (24 bit) can
  never wrap (for a gated layer, see the mapper, the gate's inhibition is included).
  Larger ``s`` means finer voltage, threshold and bias resolution; the weights always keep
  their 8-bit mantissas. No ``s`` fits, or a synapse group's weights vanish (all mantissas 0)
  at the ``s`` that fits -> :class:`FixedPointRangeError` naming the layer.

Fine weights, integer inputs, calibrated currents (IF networks)
--------------------------------------------------------------
A non-leaky layer (IF, ``dv = 0``) integrates every weight-rounding error for as long as it
runs, and deep IF networks turn the drift into shifted spikes: on the NIR paper's sinabs
N-MNIST CNN (8 N-MNIST-like samples x 30 steps, ``tests/test_if_quantisation.py``) 8-bit
weights alone gave 76 wrong output entries against 71 reference spikes, worse than silence;
the v clip and the threshold's bits changed nothing measurable. So:

* **fine weights** (``fine_weights``, default for non-leaky layers): each synapse group gets a
  second Lava Dense on the same edge holding its rounding residual at exponent
  ``max(e - 7, -1)`` (~15-bit weights, twice the synapses). Not below -1: Lava floors
  ``W x >> -e`` each step (a bias the IF integrates); MIXED weights are even, so ``>> 1`` is
  exact. 76 -> 19 wrong entries.
* **integer inputs** (:class:`IntegerRange`): spike trains are sent with no fractional bits, so
  the first layer's exponents stay in Loihi's range (2^11-valued spikes pushed them below -8).
* **calibrated currents** (``currents``, opt-in: :func:`~hardware.loihi.program.calibrated_rule`,
  ``taaf simulate --calibrate``): the scale follows the measured input current (x 1.25)
  instead of the all-inputs-at-once bound, 2-4x below it in that CNN, so scales rise by 1-2
  (finer ``a_in`` units): 19 -> 9 wrong entries (all IF layers: 0.9999 agreement).

Readouts (synapses into a recorder, no neuron) use the same mantissas with no activation
shift; their integer output divided by ``2^s`` is the float readout.

:class:`NirPaperRule` is the NIR paper's mapping for its 01_lif example (``w = int(256 w)``,
``vth = int(131071 vth) >> 9``, ``dv = int(4095 dv)``, ``du = 4095``): fixed scale
``S = 2^14``, truncation, Lava's automatic sign mode; it checks register ranges but not the
worst-case current (nor the batch gate's). Rules are objects with the same interface, so the
mapper takes either (or another).

:class:`NetxRule` is the PowerOfTwoRule restricted to the registers a lava-dl netx ``.net``
file can hold (``weight_exp = 0``, ``bias_exp = 6``).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from hardware.errors import FixedPointRangeError
from hardware.loihi.fixed_point import (
    ACT_SHIFT,
    BIAS_MANT_MAX,
    BIAS_MANT_MIN,
    DECAY_UNITY,
    DS_OFFSET,
    DU_MAX,
    GRADED_MAX,
    MANTISSA_MAX,
    UV_MAX,
    VTH_MAX,
    VTH_SHIFT,
    WEIGHT_EXP_MAX,
    WEIGHT_EXP_MIN,
    InputEncoding,
    QuantizedLayer,
    QuantizedLIF,
    QuantizedReadout,
    QuantizedSynapses,
    SignMode,
    determine_sign_mode,
    lava_weights,
    u_bound,
)
from hardware.loihi.quant_terms import (  # the rules' inputs and shared register helpers
    FloatNeuron,
    FloatTerm,
    QuantizationRule,
    _best_mantissa_exp,
    _bias_registers,
    _decay_register,
    activation_bounds,
)
from hardware.netx.format import NETX_BIAS_EXP


FINE_WEIGHTS = ("non-leaky", "always", "never")  # PowerOfTwoRule.fine_weights
FINE_BITS = 7  # a fine group's exponent below its coarse group's: the residual (|r| <= 2^e) keeps |m| <= 64
FINE_EXP_MIN = -1  # MIXED weights are even, so ``W x >> 1`` is exact; a lower exponent's floor is not


def _fail(layer: str, what: str, value, lo, hi, hint: str = "") -> FixedPointRangeError:
    extra = f"; {hint}" if hint else ""
    return FixedPointRangeError(f"{layer}: {what} = {value} is outside the allowed range [{lo}, {hi}]{extra}")


class IntegerRange(float):
    """An input range (max |x|, a float like any other) that also says the input's values are
    integers (spike trains, event counts): :func:`integer_encoding` sends them without
    fractional bits. A rule's graded encoding of a spike as ``2^frac_bits`` (2^11 by default)
    is exact too, but pushes the weight exponents of its synapses 11 steps down, below Loihi's
    -8: the first layer then loses its fine weights (see :class:`PowerOfTwoRule`)."""

    __slots__ = ()


def integer_encoding(encoding: InputEncoding) -> InputEncoding:
    """``encoding`` without fractional bits (same width and range): integer messages are
    exact, and the input's synapses keep the weight exponents of spikes."""
    if encoding.frac_bits <= 0:
        return encoding
    return InputEncoding(encoding.name, frac_bits=0, bits=encoding.bits, max_abs=encoding.max_abs)


@dataclass(frozen=True)
class PowerOfTwoRule:
    """The default rule (module docstring): per layer, the largest power-of-two scale for which
    the threshold, bias, weight exponents and the worst-case activation all fit.

    ``input_bits``: width of graded input messages; an analog input with range ``max_abs`` gets
    ``frac_bits = input_bits - 1 - ceil(log2(max_abs))``.

    ``fine_weights``: which layers get a second, finer synapse group per incoming group (the
    module docstring's "fine weights"): ``"non-leaky"`` (default: layers with ``dv = 0``, IF
    neurons, which integrate every rounding error forever), ``"always"`` or ``"never"``.

    ``currents``: measured ``(layer, max |current|)`` pairs (float voltage per step, the
    layer's summed synaptic input; :func:`~hardware.loihi.program.calibrated_rule` measures them
    on calibration inputs; a ``node#k`` part takes its NIR node's value). A layer found there
    replaces the worst-case current bound (every input active at once, which for IF layers
    with large fan-in is several times what any input drives) by ``current_margin x`` the
    measured one: its scale can then be 1-2 powers of two larger (finer weights, threshold and
    bias). The price: an input driving more current than calibrated wraps ``u`` (as it would
    on Loihi; the emulator and Lava agree on it).
    """

    name: str = "power-of-two"
    input_bits: int = 12
    mixed_sign: SignMode = field(default=SignMode.MIXED, repr=False)
    fine_weights: str = "non-leaky"
    currents: tuple[tuple[str, float], ...] = ()
    current_margin: float = 1.25

    def __post_init__(self) -> None:
        if self.fine_weights not in FINE_WEIGHTS:
            raise ValueError(f"fine_weights must be one of {FINE_WEIGHTS}, got {self.fine_weights!r}")

    def measured_current(self, layer: str) -> float | None:
        """``current_margin x`` the calibrated current of ``layer`` (or of its NIR node), if any."""
        measured = dict(self.currents)
        for key in (layer, layer.split("#", 1)[0]):
            if key in measured:
                return self.current_margin * float(measured[key])
        return None

    def _wants_fine(self, neuron: FloatNeuron) -> bool:
        return self.fine_weights == "always" or (self.fine_weights == "non-leaky" and neuron.dv == 0.0)

    def _fine(self, layer: str, terms: list[FloatTerm], synapses: list[QuantizedSynapses], s: int,
              shift: int) -> list[QuantizedSynapses | None]:
        """Per group, the rounding residual of its coarse weights ``2 m 2^e`` (a_in units per
        integer message) as a group at ``e_fine = max(e - 7, -1)``; ``None`` where that is not
        finer than ``e`` or the residual rounds to zero everywhere. ``|m_fine| <= 64``: it always
        fits 8 bits. Not below -1: Lava floors ``W x >> -e`` every step, a bias (up to one
        ``a_in`` unit per step) that a non-leaky layer integrates; with even MIXED weights the
        shift by 1 is exact."""
        out = []
        for term, syn in zip(terms, synapses):
            target = np.asarray(term.weights, np.float64) * 2.0 ** (s - shift - term.frac_bits)
            residual = target - syn.weights.astype(np.float64) * 2.0 ** syn.weight_exp
            e = max(syn.weight_exp - FINE_BITS, FINE_EXP_MIN)
            if e >= syn.weight_exp:
                out.append(None)
                continue
            m = np.rint(residual / 2.0 ** (e + 1)).astype(np.int64)
            out.append(QuantizedSynapses(f"{layer}<-{term.name}+fine", 2 * m, weight_exp=int(e),
                                         sign_mode=SignMode.MIXED) if np.any(m) else None)
        return out

    def input_encoding(self, name: str, max_abs: float) -> InputEncoding:
        """``input_bits``-bit messages with as many fractional bits as ``max_abs`` leaves."""
        if not (np.isfinite(max_abs) and max_abs > 0):
            raise FixedPointRangeError(f"{name}: input range max_abs must be positive, got {max_abs}")
        frac = self.input_bits - 1 - math.ceil(math.log2(max_abs))
        while frac > -32 and np.rint(max_abs * 2.0 ** frac) > 2 ** (self.input_bits - 1) - 1:
            frac -= 1
        return InputEncoding(name, frac_bits=frac, bits=self.input_bits, max_abs=float(max_abs))

    def _synapses(self, layer: str, terms: list[FloatTerm], s: int, shift: int) -> list[QuantizedSynapses] | None:
        out = []
        for term in terms:
            w = np.asarray(term.weights, np.float64)
            k = _best_mantissa_exp(w)
            e = s - shift - 1 - term.frac_bits - k
            if e > WEIGHT_EXP_MAX:
                return None
            if e < WEIGHT_EXP_MIN:
                e = WEIGHT_EXP_MIN
                k = s - shift - 1 - term.frac_bits - e
            m = np.rint(w * 2.0 ** k).astype(np.int64)
            out.append(QuantizedSynapses(f"{layer}<-{term.name}", 2 * m, weight_exp=int(e),
                                         sign_mode=SignMode.MIXED))
        return out

    def _search_top(self, terms: list[FloatTerm], shift: int) -> int:
        tops = [_best_mantissa_exp(np.asarray(t.weights)) + 1 + t.frac_bits + shift + WEIGHT_EXP_MAX
                for t in terms]
        return min(tops) if tops else 40

    def layer(self, layer: str, terms: list[FloatTerm], neuron: FloatNeuron, gated: bool = False) -> QuantizedLayer:
        """The largest power-of-two scale at which every register fits (module docstring); the
        current bound is the calibrated one (``currents``) where the layer has one and no gate."""
        dv = _decay_register(layer, "dv", neuron.dv)
        du = DU_MAX if neuron.du == 1.0 else _decay_register(layer, "du", neuron.du)
        theta = float(neuron.threshold)
        if not np.isfinite(theta) or theta < 0:
            raise FixedPointRangeError(f"{layer}: threshold {theta} must be finite and >= 0 for Loihi's unsigned vth")
        bias = np.asarray(neuron.bias, np.float64)
        top = self._search_top(terms, ACT_SHIFT)
        reason = "no scale tried"
        for s in range(top, top - 80, -1):
            synapses = self._synapses(layer, terms, s, ACT_SHIFT)
            if synapses is None:
                reason = "a weight exponent above 7"
                continue
            vth = int(np.rint(theta * 2.0 ** (s - VTH_SHIFT)))
            if vth > VTH_MAX:
                reason = f"threshold {theta} -> vth {vth} > {VTH_MAX}"
                continue
            regs = _bias_registers(layer, bias * 2.0 ** s)
            if regs is None:
                reason = f"bias up to {np.abs(bias).max():.6g} does not fit 13 bits << 7"
                continue
            fine = self._fine(layer, terms, synapses, s, ACT_SHIFT) if self._wants_fine(neuron) else []
            pairs = [(f, t) for f, t in zip(fine, terms) if f is not None]
            pos, neg = activation_bounds(synapses + [f for f, _ in pairs], terms + [t for _, t in pairs])
            worst_u = u_bound(np.maximum(pos, neg), du).max(initial=0.0)
            measured = None if gated else self.measured_current(layer)
            if measured is not None:  # float voltage per step -> a_in units at this scale
                worst_u = float(u_bound(np.array([measured * 2.0 ** (s - ACT_SHIFT)]), du)[0])
            if worst_u >= UV_MAX:
                reason = f"worst-case current {worst_u:.0f} would wrap the 24-bit u"
                continue
            if gated:
                need = gate_activation(pos, np.left_shift(regs[0], regs[1]), du)
                if float(need.max(initial=0.0)) > 256 * 2 ** WEIGHT_EXP_MAX:
                    reason = "the gate's inhibition needs a weight exponent above 7"
                    continue
                w, e = gate_weights(layer, need)
                if u_bound(neg - w[:, 0] * 2.0 ** e, du).max(initial=0.0) >= UV_MAX:
                    reason = "worst-case current plus the gate's inhibition would wrap the 24-bit u"
                    continue
            for term, syn in zip(terms, synapses):
                if np.any(np.asarray(term.weights)) and not np.any(syn.weights):
                    raise FixedPointRangeError(
                        f"{layer}: the weights from {term.name} (max |w| = {np.abs(term.weights).max():.3g}) "
                        f"vanish at 2^{s}, the largest scale that fits the threshold {theta:.6g}, the bias and "
                        f"the 24-bit state: their ratio exceeds Loihi's 8-bit weights x weight exponent range")
            if theta > 0 and vth == 0:
                raise FixedPointRangeError(
                    f"{layer}: threshold {theta} rounds to vth 0 at the largest usable scale 2^{s} "
                    f"(limited by the weights' range); the layer cannot be quantised")
            lif = QuantizedLIF(layer, du=du, dv=dv, vth=vth, bias_mant=regs[0], bias_exp=regs[1])
            return QuantizedLayer(layer, s, lif, tuple(synapses), pos, neg, tuple(fine))
        raise FixedPointRangeError(f"{layer}: no power-of-two scale fits Loihi's registers (last "
                                   f"constraint hit: {reason})")

    def readout(self, layer: str, terms: list[FloatTerm]) -> QuantizedReadout:
        """The largest scale at which the readout's worst-case sum stays within 24 bits."""
        top = max((_best_mantissa_exp(np.asarray(t.weights)) + 1 + t.frac_bits for t in terms), default=0)
        for s in range(top, top - 80, -1):
            synapses = self._synapses(layer, terms, s, 0)
            if synapses is None:
                continue
            pos, neg = activation_bounds(synapses, terms)
            if max(pos.max(initial=0.0), neg.max(initial=0.0)) <= GRADED_MAX:
                return QuantizedReadout(layer, s, tuple(synapses))
        raise FixedPointRangeError(f"{layer}: no scale keeps the readout's worst-case sum within 24 bits")


@dataclass(frozen=True)
class NirPaperRule:
    """The NIR paper's fixed-point mapping of its 01_lif example (Pedersen et al. 2024):
    ``w = int(w 256)`` (Lava's automatic sign mode, weight_exp 0), ``vth = int(vth 131071) >> 9``,
    ``dv = int(dv 4095)``, ``du = 4095``; bias ``int(b 2^14)`` (the scale 256 x 2^6 implied by
    the weights). Inputs are used as integers (spike trains). ``int`` truncates toward zero.
    """

    name: str = "nir-paper"
    weight_scale: float = 256.0

    def input_encoding(self, name: str, max_abs: float) -> InputEncoding:
        """Integer inputs (spike trains): no fractional bits, 16-bit messages."""
        return InputEncoding(name, frac_bits=0, bits=16, max_abs=max(float(max_abs), 1.0))

    def _synapses(self, layer: str, terms: list[FloatTerm]) -> list[QuantizedSynapses]:
        out = []
        for term in terms:
            if term.frac_bits != 0:
                raise FixedPointRangeError(f"{layer}: the NIR-paper rule takes integer inputs only")
            w = np.trunc(np.asarray(term.weights, np.float64) * self.weight_scale).astype(np.int64)
            mode = determine_sign_mode(w)
            out.append(QuantizedSynapses(f"{layer}<-{term.name}", lava_weights(w, mode), 0, mode))
        return out

    def layer(self, layer: str, terms: list[FloatTerm], neuron: FloatNeuron, gated: bool = False) -> QuantizedLayer:
        """The paper's fixed scale ``2^14``, truncated registers (no worst-case current check)."""
        dv = _decay_register(layer, "dv", neuron.dv, factor=4095, rounding=np.trunc)
        du = DU_MAX if neuron.du == 1.0 else _decay_register(layer, "du", neuron.du, factor=4095, rounding=np.trunc)
        vth = int(np.trunc(float(neuron.threshold) * VTH_MAX)) >> 9
        s = round(math.log2(self.weight_scale)) + ACT_SHIFT
        regs = _bias_registers(layer, np.trunc(np.asarray(neuron.bias, np.float64) * 2.0 ** s))
        if regs is None:
            raise FixedPointRangeError(f"{layer}: bias does not fit 13 bits << 7 at scale 2^{s}")
        synapses = self._synapses(layer, terms)
        pos, neg = activation_bounds(synapses, terms)
        lif = QuantizedLIF(layer, du=du, dv=dv, vth=vth, bias_mant=regs[0], bias_exp=regs[1])
        return QuantizedLayer(layer, s, lif, tuple(synapses), pos, neg)

    def readout(self, layer: str, terms: list[FloatTerm]) -> QuantizedReadout:
        """The paper's weights into a recorder, at scale ``weight_scale``."""
        return QuantizedReadout(layer, round(math.log2(self.weight_scale)), tuple(self._synapses(layer, terms)))


@dataclass(frozen=True)
class NetxRule(PowerOfTwoRule):
    """:class:`PowerOfTwoRule` restricted to what a ``.net`` file
    holds: every synapse group's ``weight_exp`` is 0 (so the largest layer scale is the one at
    which the largest weight group still fits 8-bit mantissas; all groups into a layer share
    it) and every bias uses ``bias_exp = 6`` with a 13-bit mantissa (``max_scale`` is the
    internal cap used when a bias does not fit at a larger scale).

    ``input_bits`` defaults to 9 (the default rule: 12). With ``weight_exp`` pinned, the 24-bit
    current bound fixes a layer's scale ``s`` and ties the first layer's weight mantissa bits
    ``k`` to the input's fractional bits ``q``: ``k + q = s - 7``; 12-bit inputs left the
    first-layer mantissas at 4-5 bits. Measured on the trained AV-Digits checkpoint (200 test
    samples, spike agreement with the float reference, audio_lif0 / visual_lif0 / fusion_lif):
    12 bits 0.963 / 0.951 / 0.889, 10 bits 0.985 / 0.984 / 0.907, 9 bits 0.982 / 0.990 / 0.908,
    8 bits 0.969 / 0.991 / 0.902 (default rule, 12 bits: 0.996 / 0.993 / 0.927)."""

    name: str = "netx-power-of-two"
    input_bits: int = 9
    fine_weights: str = "never"  # a .net layer holds one weight matrix
    max_scale: int | None = field(default=None, repr=False)

    def _search_top(self, terms, shift):
        top = super()._search_top(terms, shift)
        return top if self.max_scale is None else min(top, self.max_scale)

    def _synapses(self, layer, terms, s, shift):
        out = []
        for term in terms:
            w = np.asarray(term.weights, np.float64)
            k = s - shift - 1 - term.frac_bits  # the mantissa exponent with weight_exp pinned at 0
            m = np.rint(w * 2.0 ** k)
            if np.abs(m).max(initial=0.0) > MANTISSA_MAX:
                return None
            out.append(QuantizedSynapses(f"{layer}<-{term.name}", 2 * m.astype(np.int64), weight_exp=0,
                                         sign_mode=SignMode.MIXED))
        return out

    def layer(self, layer, terms, neuron, gated=False):
        """:meth:`PowerOfTwoRule.layer` at the largest scale whose biases fit ``bias_exp = 6``
        (and, for a gated layer, whose batch gate still cannot wrap ``u``)."""
        cap = self.max_scale
        while True:
            q = PowerOfTwoRule.layer(dataclasses.replace(self, max_scale=cap), layer, terms, neuron, gated)
            mant = np.rint(np.asarray(neuron.bias, np.float64) * 2.0 ** (q.scale_exp - NETX_BIAS_EXP))
            if mant.size == 0 or (mant.min() >= BIAS_MANT_MIN and mant.max() <= BIAS_MANT_MAX):
                lif = QuantizedLIF(layer, du=q.lif.du, dv=q.lif.dv, vth=q.lif.vth, bias_mant=mant.astype(np.int64),
                                   bias_exp=np.full(mant.shape, NETX_BIAS_EXP, np.int64))
                out = QuantizedLayer(layer, q.scale_exp, lif, q.synapses, q.activation_pos, q.activation_neg)
                if not gated or _gate_fits(out):
                    return out
            cap = q.scale_exp - 1


def _gate_fits(layer: QuantizedLayer) -> bool:
    """The batch gate's inhibition (computed from the final bias) still cannot wrap ``u``."""
    try:
        syn = gate_synapses(layer)
    except FixedPointRangeError:
        return False
    worst = u_bound(layer.activation_neg - syn.weights[:, 0] * 2.0 ** syn.weight_exp, layer.lif.du)
    return float(worst.max(initial=0.0)) < UV_MAX


# --- the batch gate (see hardware.loihi.network: silences a layer between concatenated samples) ---------

def gate_activation(activation_pos: np.ndarray, effective_bias: np.ndarray, du: int = DU_MAX) -> np.ndarray:
    """Inhibition (a_in units, positive number) that keeps a layer below threshold whatever its
    other inputs do: more than the worst-case excitatory current plus the bias."""
    steady = np.ceil(np.asarray(activation_pos, np.float64) * DECAY_UNITY / (du + DS_OFFSET))
    bias_part = np.ceil(np.clip(np.asarray(effective_bias, np.float64), 0, None) / (1 << ACT_SHIFT))
    return steady + bias_part + 1


def gate_weights(layer: str, need: np.ndarray) -> tuple[np.ndarray, int]:
    """MIXED weights (even, >= -256) and exponent whose product is at least ``need``."""
    peak = float(np.max(need, initial=1.0))
    e = math.ceil(math.log2(peak / 256.0)) if peak > 256 else 0
    if e > WEIGHT_EXP_MAX:
        raise _fail(layer, "gate weight exponent", e, WEIGHT_EXP_MIN, WEIGHT_EXP_MAX)
    w = -2 * np.ceil(np.asarray(need, np.float64) / 2.0 ** (e + 1)).astype(np.int64)
    return w.reshape(-1, 1), e


def gate_synapses(layer: QuantizedLayer) -> QuantizedSynapses:
    """One Dense from the gate neuron to every neuron of ``layer``: inhibition >= what
    :func:`gate_activation` requires (the rule checked it cannot wrap the 24-bit current)."""
    need = gate_activation(layer.activation_pos, layer.lif.effective_bias, layer.lif.du)
    w, e = gate_weights(layer.layer, need)
    return QuantizedSynapses(f"{layer.layer}<-gate", w, weight_exp=e, sign_mode=SignMode.MIXED)


__all__ = [
    "FINE_WEIGHTS",
    "FloatNeuron",
    "FloatTerm",
    "IntegerRange",
    "NetxRule",
    "NirPaperRule",
    "PowerOfTwoRule",
    "QuantizationRule",
    "activation_bounds",
    "gate_activation",
    "gate_synapses",
    "gate_weights",
    "integer_encoding",
]
