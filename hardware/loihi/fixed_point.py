"""Loihi fixed point: THE quantisation rules, and the exact integer arithmetic of Lava's models.

One module for everything that turns float parameters into Loihi registers, so that the Lava
Lava program (:mod:`hardware.loihi.program`), a netx writer and a vectorised emulator all use the
same numbers. No Lava import: the integer arithmetic below is a transcription of Lava 0.10's
``PyDenseModelBitAcc`` / ``PyDelayDenseModelBitAcc`` and ``AbstractPyLifModelFixed`` (and
``PyLifResetModelBitAcc``), checked against them by ``tests/test_lava.py``. The arithmetic
functions take numpy arrays or torch tensors with any batch dimensions (one definition for the
mapper's emulation and the batched emulator :mod:`hardware.loihi.emulator`), and
:func:`lif_float_step` is Lava's float LIF in the same form.

Registers (what Lava's bit-accurate models do)
----------------------------------------------
* **Synapses** (Dense, DelayDense): integer weights, a per-process ``weight_exp`` and
  ``sign_mode``. Lava first clips the weights to 8 bits for the sign mode (MIXED: [-256, 255];
  EXCITATORY: [0, 255]; INHIBITORY: [-255, 0]), then drops ``8 - num_weight_bits + mixed``
  low bits (``(w >> n) << n``): with MIXED sign and 8 weight bits every weight becomes even, so
  a MIXED weight is ``2 m`` with an int8 mantissa ``m`` in [-128, 127]. Per step the
  accumulated ``a = W @ x`` is shifted: ``a << weight_exp`` (exp > 0) or ``a >> -weight_exp``
  (arithmetic, i.e. floor, exp <= 0). Binary spikes have ``x`` in {0, 1}; graded messages
  (``num_message_bits > 0``) carry integers. Dense delays its output by one step, DelayDense by
  ``1 + delay`` steps (delay <= 63 on Loihi 2).
  :class:`QuantizedSynapses` only accepts weights that Lava's clip + truncation leave
  unchanged, so what we quantise is exactly what runs.
* **LIF** (``PyLifModelBitAcc``): 24-bit ``u`` and ``v``; 12-bit ``du``/``dv``;
  ``u <- decay(u, du + 1) + (a_in << 6)`` wrapped into 24 bits (``u > 2^23 -> u - 2^24``,
  ``u <= -2^23 -> u + 2^24``); ``v <- decay(v, dv) + u + (bias_mant << bias_exp)`` clipped to
  ``[-(2^23 - 1), 2^23 - 1]``; spike when ``v > vth << 6``, then ``v = 0`` (same step). Here
  ``decay(x, d) = sign(x * (4096 - d)) * (|x * (4096 - d)| >> 12)`` (truncation toward zero),
  so ``du = 4095`` (+ Loihi's 1-bit ``ds_offset``) makes ``u`` forget everything each step:
  ``u = a_in << 6`` (a LIF without current state), and ``dv = round(4096 dt / tau)``.
  ``vth`` is unsigned 17 bit, ``bias_mant`` signed 13 bit, ``bias_exp`` in 0..7.
  ``LIFReset`` additionally zeroes ``u`` and ``v`` before the update of every step with
  ``time_step % reset_interval == reset_offset``.

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

Readouts (synapses into a recorder, no neuron) use the same mantissas with no activation
shift; their integer output divided by ``2^s`` is the float readout.

:class:`NirPaperRule` is the NIR paper's mapping for its 01_lif example (``w = int(256 w)``,
``vth = int(131071 vth) >> 9``, ``dv = int(4095 dv)``, ``du = 4095``): fixed scale
``S = 2^14``, truncation, Lava's automatic sign mode; it checks register ranges but not the
worst-case current (nor the batch gate's). Rules are objects with the same interface, so the
mapper takes either (or another).
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from hardware.errors import FixedPointRangeError

# --- Loihi / Lava register widths -----------------------------------------------------------
UV_BITS = 24
UV_MAX = 2 ** (UV_BITS - 1)  # Lava's max_uv_val: u wraps beyond it, v clips at +-(UV_MAX - 1)
DECAY_SHIFT = 12
DECAY_UNITY = 2 ** DECAY_SHIFT  # 4096
DU_MAX = DV_MAX = DECAY_UNITY - 1  # 12-bit unsigned
DS_OFFSET, DM_OFFSET = 1, 0  # Loihi's 1-bit offsets added to du / dv
VTH_BITS = 17
VTH_MAX = 2 ** VTH_BITS - 1
VTH_SHIFT = 6
ACT_SHIFT = 6
BIAS_MANT_MIN, BIAS_MANT_MAX = -(2 ** 12), 2 ** 12 - 1  # signed 13 bit
BIAS_EXP_MIN, BIAS_EXP_MAX = 0, 7  # unsigned 3 bit
WEIGHT_BITS = 8
WEIGHT_EXP_MIN, WEIGHT_EXP_MAX = -8, 7  # Loihi's shared weight exponent
DELAY_MAX = 63  # Loihi 2 synaptic delay (6 bits); Lava's DelayDense fixed model enforces it
MANTISSA_MAX = 127  # int8 mantissa of a MIXED-sign weight (Lava weight = 2 * mantissa)
ACTIVATION_MAX = (UV_MAX >> ACT_SHIFT) - 1  # |a_in| <= 2^17 - 1: a_in << 6 cannot wrap u
GRADED_MAX = 2 ** 23 - 1  # a recorded (readout) accumulation kept within 24 bits


class SignMode(enum.IntEnum):
    """Lava's ``lava.utils.weightutils.SignMode`` (same values; Lava is not imported here)."""

    NULL = 0
    MIXED = 1
    EXCITATORY = 2
    INHIBITORY = 3


def determine_sign_mode(weights: np.ndarray) -> SignMode:
    """What Lava picks when a Dense gets no ``sign_mode``."""
    w = np.asarray(weights)
    if w.size == 0 or w.min() >= 0:
        return SignMode.EXCITATORY
    if w.max() <= 0:
        return SignMode.INHIBITORY
    return SignMode.MIXED


def lava_weights(weights: np.ndarray, sign_mode: SignMode, num_weight_bits: int = WEIGHT_BITS) -> np.ndarray:
    """The weights Lava's fixed Dense actually uses: ``clip_weights`` then ``truncate_weights``."""
    w = np.asarray(weights).astype(np.int64)
    mode = SignMode(sign_mode)
    if mode == SignMode.INHIBITORY:
        w = -w
    mixed = int(mode == SignMode.MIXED)
    w = np.clip(w, -(2 ** 8) * mixed, 2 ** 8 - 1)
    drop = WEIGHT_BITS - num_weight_bits + mixed
    w = (w >> drop) << drop
    return -w if mode == SignMode.INHIBITORY else w


def _fail(layer: str, what: str, value, lo, hi, hint: str = "") -> FixedPointRangeError:
    extra = f"; {hint}" if hint else ""
    return FixedPointRangeError(f"{layer}: {what} = {value} is outside the allowed range [{lo}, {hi}]{extra}")


def _check_int_array(layer: str, what: str, value, lo: int, hi: int) -> np.ndarray:
    a = np.asarray(value)
    if a.dtype.kind not in "iu":
        raise FixedPointRangeError(f"{layer}: {what} must be integers for fixed point, got dtype {a.dtype}")
    a = a.astype(np.int64)
    if a.size and (a.min() < lo or a.max() > hi):
        bad = a.min() if a.min() < lo else a.max()
        raise _fail(layer, what, int(bad), lo, hi)
    return a


def _check_int(layer: str, what: str, value, lo: int, hi: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise FixedPointRangeError(f"{layer}: {what} must be an integer for fixed point, got {value!r}")
    if not lo <= int(value) <= hi:
        raise _fail(layer, what, int(value), lo, hi)
    return int(value)


# --- frozen register sets -------------------------------------------------------------------

@dataclass(frozen=True)
class InputEncoding:
    """Analog input -> graded integer messages: ``x_int = round(x 2^frac_bits)``.

    ``max_abs`` is the documented input range (|x| above it is an error at run time, never a
    silent clip); ``bits`` the signed message width (Loihi 2 graded spikes carry up to 24 bits).
    """

    name: str
    frac_bits: int
    bits: int = 16
    max_abs: float = 1.0

    def __post_init__(self) -> None:
        _check_int(self.name, "input bits", self.bits, 1, 24)
        if not (np.isfinite(self.max_abs) and self.max_abs > 0):
            raise FixedPointRangeError(f"{self.name}: input max_abs must be positive, got {self.max_abs}")
        if self.max_int > 2 ** (self.bits - 1) - 1:
            raise FixedPointRangeError(
                f"{self.name}: input range |x| <= {self.max_abs} at {self.frac_bits} fractional bits "
                f"needs {self.max_int} > {2 ** (self.bits - 1) - 1}, the largest {self.bits}-bit message")

    @property
    def max_int(self) -> int:
        return int(np.rint(self.max_abs * 2.0 ** self.frac_bits))

    def encode(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.size and not np.all(np.isfinite(x)):
            raise FixedPointRangeError(f"{self.name}: inputs must be finite")
        worst = float(np.abs(x).max(initial=0.0))
        if worst > self.max_abs:
            raise FixedPointRangeError(
                f"{self.name}: input value {worst:.6g} is outside the encoded range [-{self.max_abs}, "
                f"{self.max_abs}] (pass a larger max_abs in the input encoding)")
        return np.rint(x * 2.0 ** self.frac_bits).astype(np.int64)


@dataclass(frozen=True)
class QuantizedSynapses:
    """One Dense / DelayDense process: integer ``weights`` [n_out, n_in] exactly as given to Lava
    (already invariant under Lava's clip + truncation), ``weight_exp``, ``sign_mode``."""

    layer: str
    weights: np.ndarray
    weight_exp: int = 0
    sign_mode: SignMode = SignMode.MIXED
    num_weight_bits: int = WEIGHT_BITS

    def __post_init__(self) -> None:
        w = _check_int_array(self.layer, "weights", self.weights, -(2 ** 8), 2 ** 8 - 1)
        if w.ndim != 2:
            raise FixedPointRangeError(f"{self.layer}: weights must be 2-d, got shape {w.shape}")
        _check_int(self.layer, "weight_exp", self.weight_exp, WEIGHT_EXP_MIN, WEIGHT_EXP_MAX)
        _check_int(self.layer, "num_weight_bits", self.num_weight_bits, 1, WEIGHT_BITS)
        object.__setattr__(self, "sign_mode", SignMode(self.sign_mode))
        effective = lava_weights(w, self.sign_mode, self.num_weight_bits)
        if not np.array_equal(effective, w):
            i = np.flatnonzero(effective != w)[0]
            raise FixedPointRangeError(
                f"{self.layer}: weight {int(w.flat[i])} is not representable with sign mode "
                f"{self.sign_mode.name} and {self.num_weight_bits} weight bits (Lava would use "
                f"{int(effective.flat[i])}); MIXED weights must be even numbers in [-256, 254]")
        w.setflags(write=False)
        object.__setattr__(self, "weights", w)

    @property
    def scale(self) -> float:
        """Activation (a_in units) per unit weight-times-input: 2^weight_exp."""
        return 2.0 ** self.weight_exp

    def accumulate(self, x: np.ndarray) -> np.ndarray:
        """Lava's per-step ``a_buff`` for integer inputs ``x`` [..., n_in] -> [..., n_out]."""
        return dense_accumulate(self.weights, x, self.weight_exp)


@dataclass(frozen=True)
class QuantizedLIF:
    """Registers of one Lava LIF process (``du``, ``dv``, ``vth`` shared; bias per neuron)."""

    layer: str
    du: int
    dv: int
    vth: int
    bias_mant: np.ndarray
    bias_exp: np.ndarray

    def __post_init__(self) -> None:
        _check_int(self.layer, "du", self.du, 0, DU_MAX)
        _check_int(self.layer, "dv", self.dv, 0, DV_MAX)
        _check_int(self.layer, "vth", self.vth, 0, VTH_MAX)
        mant = _check_int_array(self.layer, "bias_mant", self.bias_mant, BIAS_MANT_MIN, BIAS_MANT_MAX)
        exp = _check_int_array(self.layer, "bias_exp", self.bias_exp, BIAS_EXP_MIN, BIAS_EXP_MAX)
        exp = np.broadcast_to(exp, mant.shape).copy()
        for a in (mant, exp):
            a.setflags(write=False)
        object.__setattr__(self, "bias_mant", mant)
        object.__setattr__(self, "bias_exp", exp)

    @property
    def size(self) -> int:
        return int(self.bias_mant.size)

    @property
    def effective_bias(self) -> np.ndarray:
        return np.left_shift(self.bias_mant, self.bias_exp)

    @property
    def effective_vth(self) -> int:
        return self.vth << VTH_SHIFT

    def step(self, u, v, a_in):
        """One step of Lava's ``PyLifModelBitAcc``: -> (u, v, spikes)."""
        return lif_fixed_step(u, v, a_in, self.du, self.dv, self.effective_bias, self.effective_vth)


@dataclass(frozen=True)
class QuantizedLayer:
    """A LIF layer and the synapse groups into it, on one integer scale ``2^scale_exp``
    (integer voltage = 2^scale_exp x float voltage). ``activation_pos``/``_neg``: per-neuron
    worst-case positive / negative ``a_in`` from all synapse groups."""

    layer: str
    scale_exp: int
    lif: QuantizedLIF
    synapses: tuple[QuantizedSynapses, ...]
    activation_pos: np.ndarray
    activation_neg: np.ndarray


@dataclass(frozen=True)
class QuantizedReadout:
    """Synapse groups into a recorder (no neuron): float readout = integer sum / 2^scale_exp."""

    layer: str
    scale_exp: int
    synapses: tuple[QuantizedSynapses, ...]


# --- exact integer arithmetic (Lava 0.10's bit-accurate models) -----------------------------
#
# Written once for numpy int64 arrays and torch int64 tensors (any device), any leading batch
# dimensions: the mapper's numpy emulation, the batched emulator (:mod:`.emulator`) and the
# tests all call these functions, so the rules exist in one place only. numpy inputs are
# coerced to int64 (as before); torch inputs must already be int64 tensors (float64 for the
# float model). Only Python operators, ``sign``/``abs``/``where``/``clip`` are used.

# Where our int64 arithmetic is Lava's: Lava's CPU models hold ``a_in``, ``u`` and ``v`` in
# int32. With |a_in| < 2^18 per step the 24-bit wrap of ``u`` is a true modular wrap (``u``
# stays in (-2^23, 2^23]) and no int32 intermediate can overflow, so int64 == Lava exactly.
# Beyond it Lava's int32 overflow (an artefact of the CPU model, not Loihi) may differ.
EXACT_ACTIVATION_LIMIT = 2 ** (UV_BITS - ACT_SHIFT)  # 2^18; the rules keep |a_in| <= ACTIVATION_MAX
INT32_LIMIT = 2 ** 31  # Lava's int32 messages: a graded accumulation shifted right must stay below


def _namespace(*arrays):
    """numpy, or torch when any argument is a torch tensor (torch is only imported then)."""
    for a in arrays:
        if type(a).__module__.split(".", 1)[0] == "torch":
            import torch

            return torch
    return np


def shift_activation(a, weight_exp: int):
    """Lava's weight exponent on an accumulated sum: ``a << exp`` (exp > 0) or ``a >> -exp``
    (arithmetic shift, i.e. floor). Integer numpy array or torch tensor."""
    return a << int(weight_exp) if weight_exp > 0 else a >> -int(weight_exp)


def dense_accumulate(weights: np.ndarray, x: np.ndarray, weight_exp: int) -> np.ndarray:
    """``PyDenseModelBitAcc``: ``a = W @ x`` then ``a << exp`` (exp > 0) or ``a >> -exp``.
    ``x`` [..., n_in] (any leading batch dimensions) -> [..., n_out]."""
    a = np.asarray(x, dtype=np.int64) @ np.asarray(weights, dtype=np.int64).T
    return shift_activation(a, weight_exp)


def decay_toward_zero(x, decay_const: int):
    """``sign(x (4096 - d)) * (|x (4096 - d)| >> 12)``: Lava's decay of ``u``/``v``.
    (``d = 4096`` gives 0 and ``d = 0`` gives ``x``; both are computed without the product.)"""
    xp = _namespace(x)
    if xp is np:
        x = np.asarray(x, dtype=np.int64)
    factor = DECAY_UNITY - int(decay_const)
    if factor == 0:
        return x * 0
    if factor == DECAY_UNITY:
        return x * 1  # |x| 2^12 >> 12 = |x|, exactly; a new array, as in every other case
    p = x * factor
    return xp.sign(p) * (xp.abs(p) >> DECAY_SHIFT)


def wrap_u(u):
    """Lava's 24-bit wrap of the current (note: ``> 2^23`` and ``<= -2^23``, as Lava does)."""
    xp = _namespace(u)
    w = xp.where(u > UV_MAX, u - 2 * UV_MAX, u)
    return xp.where(w <= -UV_MAX, u + 2 * UV_MAX, w)


def clip_v(v):
    return _namespace(v).clip(v, -UV_MAX + 1, UV_MAX - 1)


def lif_fixed_step(u, v, a_in, du: int, dv: int, effective_bias, effective_vth: int):
    """One step of ``AbstractPyLifModelFixed`` + ``PyLifModelBitAcc``; all int64.

    Returns ``(u, v, spikes)`` with ``v`` already reset to 0 where it spiked. ``u``, ``v``,
    ``a_in``: [..., n] (numpy or torch, the same for all); ``effective_bias`` broadcasts.
    """
    xp = _namespace(u, v, a_in, effective_bias)
    if xp is np:
        a_in = np.asarray(a_in, dtype=np.int64)
        effective_bias = np.asarray(effective_bias, dtype=np.int64)
    u = wrap_u(decay_toward_zero(u, du + DS_OFFSET) + (a_in << ACT_SHIFT))
    v = clip_v(decay_toward_zero(v, dv + DM_OFFSET) + u + effective_bias)
    spikes = v > effective_vth
    v = xp.where(spikes, 0, v)
    return u, v, spikes


def lif_float_step(u, v, a_in, du: float, dv: float, bias, vth: float):
    """One step of Lava's float LIF (``AbstractPyLifModelFloat`` + ``PyLifModelFloat``), the
    same float64 operations in the same order: ``u = u (1 - du) + a_in``,
    ``v = v (1 - dv) + u + bias``, spike when ``v > vth``, then ``v = 0``."""
    xp = _namespace(u, v, a_in, bias)
    u = u * (1 - du) + a_in
    v = v * (1 - dv) + u + bias
    spikes = v > vth
    v = xp.where(spikes, 0.0, v)
    return u, v, spikes


# --- rules ------------------------------------------------------------------------------------

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
    name: str

    def input_encoding(self, name: str, max_abs: float) -> InputEncoding: ...

    def layer(self, layer: str, terms: list[FloatTerm], neuron: FloatNeuron,
              gated: bool = False) -> QuantizedLayer: ...

    def readout(self, layer: str, terms: list[FloatTerm]) -> QuantizedReadout: ...


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


def _activation_bounds(synapses: list[QuantizedSynapses], terms: list[FloatTerm]) -> tuple[np.ndarray, np.ndarray]:
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


def u_bound(activation: np.ndarray, du: int) -> np.ndarray:
    """Largest |u| reached by a constant activation (a_in units) with decay register ``du``:
    ``u`` keeps ``(4096 - du - 1) / 4096`` of itself, so its fixed point is a 64 * 4096/(du+1)."""
    return np.asarray(activation, np.float64) * (1 << ACT_SHIFT) * DECAY_UNITY / (du + DS_OFFSET)


@dataclass(frozen=True)
class PowerOfTwoRule:
    """The default rule (module docstring): per layer, the largest power-of-two scale for which
    the threshold, bias, weight exponents and the worst-case activation all fit.

    ``input_bits``: width of graded input messages; an analog input with range ``max_abs`` gets
    ``frac_bits = input_bits - 1 - ceil(log2(max_abs))``.
    """

    name: str = "power-of-two"
    input_bits: int = 12
    mixed_sign: SignMode = field(default=SignMode.MIXED, repr=False)

    def input_encoding(self, name: str, max_abs: float) -> InputEncoding:
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
            pos, neg = _activation_bounds(synapses, terms)
            worst_u = u_bound(np.maximum(pos, neg), du).max(initial=0.0)
            if worst_u >= UV_MAX:
                reason = f"worst-case current {worst_u:.0f} would wrap the 24-bit u"
                continue
            if gated:
                need = gate_activation(pos, np.left_shift(regs[0], regs[1]), du)
                if float(need.max(initial=0.0)) > 256 * 2 ** WEIGHT_EXP_MAX:
                    reason = "the gate's inhibition needs a weight exponent above 7"
                    continue
                w, e = _gate_weights(layer, need)
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
            return QuantizedLayer(layer, s, lif, tuple(synapses), pos, neg)
        raise FixedPointRangeError(f"{layer}: no power-of-two scale fits Loihi's registers (last "
                                   f"constraint hit: {reason})")

    def readout(self, layer: str, terms: list[FloatTerm]) -> QuantizedReadout:
        top = max((_best_mantissa_exp(np.asarray(t.weights)) + 1 + t.frac_bits for t in terms), default=0)
        for s in range(top, top - 80, -1):
            synapses = self._synapses(layer, terms, s, 0)
            if synapses is None:
                continue
            pos, neg = _activation_bounds(synapses, terms)
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
        dv = _decay_register(layer, "dv", neuron.dv, factor=4095, rounding=np.trunc)
        du = DU_MAX if neuron.du == 1.0 else _decay_register(layer, "du", neuron.du, factor=4095, rounding=np.trunc)
        vth = int(np.trunc(float(neuron.threshold) * VTH_MAX)) >> 9
        s = round(math.log2(self.weight_scale)) + ACT_SHIFT
        regs = _bias_registers(layer, np.trunc(np.asarray(neuron.bias, np.float64) * 2.0 ** s))
        if regs is None:
            raise FixedPointRangeError(f"{layer}: bias does not fit 13 bits << 7 at scale 2^{s}")
        synapses = self._synapses(layer, terms)
        pos, neg = _activation_bounds(synapses, terms)
        lif = QuantizedLIF(layer, du=du, dv=dv, vth=vth, bias_mant=regs[0], bias_exp=regs[1])
        return QuantizedLayer(layer, s, lif, tuple(synapses), pos, neg)

    def readout(self, layer: str, terms: list[FloatTerm]) -> QuantizedReadout:
        return QuantizedReadout(layer, round(math.log2(self.weight_scale)), tuple(self._synapses(layer, terms)))


# --- the batch gate (see hardware.loihi.network: silences a layer between concatenated samples) ---------

def gate_activation(activation_pos: np.ndarray, effective_bias: np.ndarray, du: int = DU_MAX) -> np.ndarray:
    """Inhibition (a_in units, positive number) that keeps a layer below threshold whatever its
    other inputs do: more than the worst-case excitatory current plus the bias."""
    steady = np.ceil(np.asarray(activation_pos, np.float64) * DECAY_UNITY / (du + DS_OFFSET))
    bias_part = np.ceil(np.clip(np.asarray(effective_bias, np.float64), 0, None) / (1 << ACT_SHIFT))
    return steady + bias_part + 1


def _gate_weights(layer: str, need: np.ndarray) -> tuple[np.ndarray, int]:
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
    w, e = _gate_weights(layer.layer, need)
    return QuantizedSynapses(f"{layer.layer}<-gate", w, weight_exp=e, sign_mode=SignMode.MIXED)


__all__ = [
    "ACTIVATION_MAX",
    "DELAY_MAX",
    "EXACT_ACTIVATION_LIMIT",
    "INT32_LIMIT",
    "FloatNeuron",
    "FloatTerm",
    "InputEncoding",
    "NirPaperRule",
    "PowerOfTwoRule",
    "QuantizationRule",
    "QuantizedLIF",
    "QuantizedLayer",
    "QuantizedReadout",
    "QuantizedSynapses",
    "SignMode",
    "clip_v",
    "decay_toward_zero",
    "dense_accumulate",
    "determine_sign_mode",
    "gate_activation",
    "gate_synapses",
    "lava_weights",
    "lif_fixed_step",
    "lif_float_step",
    "shift_activation",
    "u_bound",
    "wrap_u",
]
