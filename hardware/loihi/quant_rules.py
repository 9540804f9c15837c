"""Quantisation rules: float LIF layers -> Loihi registers.

:class:`NetxRule` is the :class:`~hardware.loihi.fixed_point.PowerOfTwoRule` restricted to the
registers a lava-dl netx ``.net`` file can hold.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from hardware.errors import FixedPointRangeError
from hardware.loihi import fixed_point as fp
from hardware.netx.format import NETX_BIAS_EXP


@dataclass(frozen=True)
class NetxRule(fp.PowerOfTwoRule):
    """:class:`~hardware.loihi.fixed_point.PowerOfTwoRule` restricted to what a ``.net`` file
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
            if np.abs(m).max(initial=0.0) > fp.MANTISSA_MAX:
                return None
            out.append(fp.QuantizedSynapses(f"{layer}<-{term.name}", 2 * m.astype(np.int64), weight_exp=0,
                                            sign_mode=fp.SignMode.MIXED))
        return out

    def layer(self, layer, terms, neuron, gated=False):
        """:meth:`PowerOfTwoRule.layer` at the largest scale whose biases fit ``bias_exp = 6``
        (and, for a gated layer, whose batch gate still cannot wrap ``u``)."""
        cap = self.max_scale
        while True:
            q = fp.PowerOfTwoRule.layer(dataclasses.replace(self, max_scale=cap), layer, terms, neuron, gated)
            mant = np.rint(np.asarray(neuron.bias, np.float64) * 2.0 ** (q.scale_exp - NETX_BIAS_EXP))
            if mant.size == 0 or (mant.min() >= fp.BIAS_MANT_MIN and mant.max() <= fp.BIAS_MANT_MAX):
                lif = fp.QuantizedLIF(layer, du=q.lif.du, dv=q.lif.dv, vth=q.lif.vth,
                                      bias_mant=mant.astype(np.int64),
                                      bias_exp=np.full(mant.shape, NETX_BIAS_EXP, np.int64))
                out = fp.QuantizedLayer(layer, q.scale_exp, lif, q.synapses, q.activation_pos, q.activation_neg)
                if not gated or _gate_fits(out):
                    return out
            cap = q.scale_exp - 1


def _gate_fits(layer: fp.QuantizedLayer) -> bool:
    """The batch gate's inhibition (computed from the final bias) still cannot wrap ``u``."""
    try:
        syn = fp.gate_synapses(layer)
    except FixedPointRangeError:
        return False
    worst = fp.u_bound(layer.activation_neg - syn.weights[:, 0] * 2.0 ** syn.weight_exp, layer.lif.du)
    return float(worst.max(initial=0.0)) < fp.UV_MAX


__all__ = ["NetxRule"]
