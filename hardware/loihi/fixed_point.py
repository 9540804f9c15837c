"""Loihi fixed point: the registers, the input encoding and the exact integer arithmetic of Lava's models.

One module for the register sets and the arithmetic that runs on them, so that the Lava
program (:mod:`hardware.loihi.program`), a netx writer and a vectorised emulator all use the
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

The rules that choose the registers for a float network (:class:`~hardware.loihi.quant_rules.PowerOfTwoRule`,
the default; :class:`~hardware.loihi.quant_rules.NirPaperRule`; :class:`~hardware.loihi.quant_rules.NetxRule`)
and the batch gate's inhibition are :mod:`hardware.loihi.quant_rules`.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from hardware.errors import FixedPointRangeError
from taaf import dynamics

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
        """The largest |message| the range produces (what the rules size the synapses for)."""
        return int(np.rint(self.max_abs * 2.0 ** self.frac_bits))

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Floats -> integer messages; a value outside ``max_abs`` is an error, never a silent clip."""
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
        """Neurons in the process."""
        return int(self.bias_mant.size)

    @property
    def effective_bias(self) -> np.ndarray:
        """``bias_mant << bias_exp``: what Lava adds to ``v`` every step."""
        return np.left_shift(self.bias_mant, self.bias_exp)

    @property
    def effective_vth(self) -> int:
        """``vth << 6``: what Lava compares ``v`` against."""
        return self.vth << VTH_SHIFT

    def step(self, u, v, a_in):
        """One step of Lava's ``PyLifModelBitAcc``: -> (u, v, spikes)."""
        return lif_fixed_step(u, v, a_in, self.du, self.dv, self.effective_bias, self.effective_vth)


@dataclass(frozen=True)
class QuantizedLayer:
    """A LIF layer and the synapse groups into it, on one integer scale ``2^scale_exp``
    (integer voltage = 2^scale_exp x float voltage). ``activation_pos``/``_neg``: per-neuron
    worst-case positive / negative ``a_in`` from all synapse groups.

    ``fine``: per synapse group, ``None`` or a second group from the same source with the
    first's rounding residual at a 7-bit finer exponent (a second Lava Dense; Lava sums both
    into ``a_in``), so 8-bit mantissas give ~15-bit weights where a rule asks for it
    (:class:`~hardware.loihi.quant_rules.PowerOfTwoRule`'s ``fine_weights``)."""

    layer: str
    scale_exp: int
    lif: QuantizedLIF
    synapses: tuple[QuantizedSynapses, ...]
    activation_pos: np.ndarray
    activation_neg: np.ndarray
    fine: tuple[QuantizedSynapses | None, ...] = ()


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
    """Lava's clip of ``v`` to the signed 24-bit range ``[-(2^23 - 1), 2^23 - 1]`` (v saturates, u wraps)."""
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
    """One step of Lava's float LIF (``AbstractPyLifModelFloat`` + ``PyLifModelFloat``):
    ``u = u (1 - du) + a_in``, ``v = v (1 - dv) + u + bias``, spike when ``v > vth``, then
    ``v = 0``. It IS :func:`taaf.dynamics.cuba_lif_step` (the one float neuron equation of every
    backend) with unit gains, which performs Lava's float64 operations in Lava's order; spikes
    come back as booleans, like Lava's."""
    u, v, spikes = dynamics.cuba_lif_step(u, v, a_in, 1 - du, 1.0, 1 - dv, vth, bias=bias)
    return u, v, spikes != 0


def u_bound(activation: np.ndarray, du: int) -> np.ndarray:
    """Largest |u| reached by a constant activation (a_in units) with decay register ``du``:
    ``u`` keeps ``(4096 - du - 1) / 4096`` of itself, so its fixed point is a 64 * 4096/(du+1)."""
    return np.asarray(activation, np.float64) * (1 << ACT_SHIFT) * DECAY_UNITY / (du + DS_OFFSET)



__all__ = [
    "ACTIVATION_MAX",
    "DELAY_MAX",
    "EXACT_ACTIVATION_LIMIT",
    "INT32_LIMIT",
    "InputEncoding",
    "QuantizedLIF",
    "QuantizedLayer",
    "QuantizedReadout",
    "QuantizedSynapses",
    "SignMode",
    "clip_v",
    "decay_toward_zero",
    "dense_accumulate",
    "determine_sign_mode",
    "lava_weights",
    "lif_fixed_step",
    "lif_float_step",
    "shift_activation",
    "u_bound",
    "wrap_u",
]
