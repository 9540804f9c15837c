"""What a quantisation rule (:mod:`hardware.loihi.quant_rules`) takes and the register helpers
all rules share: a layer's float synapse groups (:class:`FloatTerm`) and neuron
(:class:`FloatNeuron`), the rule interface (:class:`QuantizationRule`), and the worst-case
activation bound (:func:`activation_bounds`). Kept apart so the rules module holds the rules."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from hardware.errors import FixedPointRangeError
from hardware.loihi.fixed_point import (
    BIAS_EXP_MAX,
    BIAS_EXP_MIN,
    BIAS_MANT_MAX,
    BIAS_MANT_MIN,
    DECAY_UNITY,
    DV_MAX,
    MANTISSA_MAX,
    InputEncoding,
    QuantizedLayer,
    QuantizedReadout,
    QuantizedSynapses,
)


def _fail(layer: str, what: str, value, lo, hi, hint: str = "") -> FixedPointRangeError:
    extra = f"; {hint}" if hint else ""
    return FixedPointRangeError(f"{layer}: {what} = {value} is outside the allowed range [{lo}, {hi}]{extra}")


@dataclass(frozen=True)
class FloatTerm:
    """One float synapse group into a layer: ``weights`` [n_out, n_in] (gain already folded),
    from a source whose integer messages are ``x_int = x 2^frac_bits`` with ``|x_int| <= max_int``
    (spikes: frac_bits 0, max_int 1, unsigned)."""

    name: str
    weights: np.ndarray
    frac_bits: int = 0
    max_int: int = 1
    signed: bool = False  # graded (analog) messages can be negative; spikes cannot


@dataclass(frozen=True)
class FloatNeuron:
    """A layer's float per-step coefficients: ``dv = 1 - decay``; ``du = 1`` for a LIF without
    current state (else 1 - synaptic decay); ``threshold``; ``bias`` [n] (voltage per step)."""

    dv: float
    du: float
    threshold: float
    bias: np.ndarray


class QuantizationRule(Protocol):
    """What the Lava program, the emulator and the netx export need from a rule, so any rule
    (the default, the NIR paper's, netx's, a test's) plugs into all of them.

    ``name`` is recorded in every exported program; every method raises
    :class:`~hardware.errors.FixedPointRangeError` naming the layer when nothing fits."""

    name: str

    def input_encoding(self, name: str, max_abs: float) -> InputEncoding:
        """The graded message encoding of an analog Input whose values satisfy ``|x| <= max_abs``."""
        ...

    def layer(self, layer: str, terms: list[FloatTerm], neuron: FloatNeuron,
              gated: bool = False) -> QuantizedLayer:
        """Registers of one LIF layer and of every synapse group into it, on one scale
        (``gated``: the layer is silenced by the batch gate, whose inhibition must fit too)."""
        ...

    def readout(self, layer: str, terms: list[FloatTerm]) -> QuantizedReadout:
        """Registers of the synapse groups into a recorder (a NIR Output without neurons)."""
        ...


def _best_mantissa_exp(w: np.ndarray, limit: int = MANTISSA_MAX) -> int:
    """Largest k with max|w| 2^k <= limit (weights all zero: 0)."""
    peak = float(np.abs(w).max(initial=0.0))
    if peak == 0.0:
        return 0
    return math.floor(math.log2(limit / peak))


def _decay_register(layer: str, what: str, d: float, factor: float = DECAY_UNITY, rounding=np.rint) -> int:
    if not np.isfinite(d) or d < 0:
        raise FixedPointRangeError(f"{layer}: {what} = {d} must be a finite number >= 0")
    value = int(rounding(d * factor))
    if value > DV_MAX:
        raise _fail(layer, what, f"{value} (= {what} {d:.6g} x {factor:g})", 0, DV_MAX,
                    "a decay of 0 (tau = dt) is not representable on Loihi; use tau > dt")
    return value


def _bias_registers(layer: str, bias_int: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Integer bias -> (mant, exp) per neuron with the smallest exp; None if it cannot fit."""
    bias_int = np.asarray(bias_int, dtype=np.float64)
    mant = np.zeros(bias_int.shape, np.int64)
    exp = np.full(bias_int.shape, -1, np.int64)
    for e in range(BIAS_EXP_MIN, BIAS_EXP_MAX + 1):
        m = np.rint(bias_int / 2.0 ** e)
        fits = (exp < 0) & (m >= BIAS_MANT_MIN) & (m <= BIAS_MANT_MAX)
        mant[fits], exp[fits] = m[fits].astype(np.int64), e
    if np.any(exp < 0):
        return None
    return mant, exp


def activation_bounds(synapses: list[QuantizedSynapses], terms: list[FloatTerm]) -> tuple[np.ndarray, np.ndarray]:
    """Per-neuron worst-case positive and negative a_in (a_in units)."""
    pos = neg = 0
    for syn, term in zip(synapses, terms):
        w = syn.weights.astype(np.float64) * term.max_int
        if term.signed:
            p = n = np.abs(w).sum(1)
        else:
            p, n = np.clip(w, 0, None).sum(1), -np.clip(w, None, 0).sum(1)
        if syn.weight_exp >= 0:
            p, n = p * 2 ** syn.weight_exp, n * 2 ** syn.weight_exp
        else:  # floor of the shifted sum: at most ceil(|sum| / 2^-exp) in magnitude
            p, n = np.ceil(p / 2 ** -syn.weight_exp), np.ceil(n / 2 ** -syn.weight_exp)
        pos, neg = pos + p, neg + n
    return np.asarray(pos, np.float64), np.asarray(neg, np.float64)


__all__ = ["FloatNeuron", "FloatTerm", "QuantizationRule", "activation_bounds"]
