"""Test oracles: plain-numpy transcriptions of what Lava computes, independent of the emulator."""
from __future__ import annotations

import numpy as np

from hardware.loihi import fixed_point as fp
from hardware.loihi.network import NetworkSpec

def emulate_network(spec: NetworkSpec) -> dict[str, np.ndarray]:
    """Step ``spec`` exactly as Lava's CPU models do, in numpy, without Lava: sources send
    column ``t-1`` at step ``t``; a (Delay)Dense delivers what it received ``1 + delay`` steps
    earlier; ``LIFReset`` zeroes u, v when ``t % interval == offset``; recorders see the step's
    value. Fixed point uses :mod:`~hardware.loihi.fixed_point`'s integer functions (int64),
    float uses float64 (``W @ x``; Lava's float Dense sums the same terms, possibly in another
    order). Returns the same dict as :func:`run_with_watchdog`."""
    fixed, n_steps = spec.fixed, spec.num_steps
    dtype = np.int64 if fixed else np.float64
    size = {n: np.asarray(d).shape[0] for n, d in spec.sources.items()}
    size.update({n: p.size for n, p in spec.layers.items()})
    out = {n: np.zeros((n_steps, size[n]), dtype) for n in size}
    for n, d in spec.sources.items():
        out[n][:] = np.asarray(d).T
    sink = {n: np.zeros((n_steps, k), dtype) for n, k in spec.sinks.items()}
    vs = {n: np.zeros((n_steps, spec.layers[n].size), dtype) for n in spec.record_v}
    state = {n: [np.zeros(p.size, dtype), np.zeros(p.size, dtype)] for n, p in spec.layers.items()}
    order = [n for n in spec.layers]
    for idx in range(n_steps):
        a_in = {n: np.zeros(k, dtype) for n, k in [*((m, p.size) for m, p in spec.layers.items()),
                                                   *spec.sinks.items()]}
        for syn in spec.synapses:
            src_idx = idx - 1 - int(syn.delay)
            if src_idx < 0:
                continue
            x = out[syn.src][src_idx]
            if fixed:
                a_in[syn.dst] += fp.dense_accumulate(syn.weights, x, int(syn.weight_exp))
            else:
                a_in[syn.dst] += np.asarray(syn.weights, np.float64) @ x
        for n in order:
            p, (u, v) = spec.layers[n], state[n]
            interval, offset = spec.reset[n]
            if (idx + 1) % interval == offset:
                u, v = u * 0, v * 0
            if fixed:
                bias = np.left_shift(np.asarray(p.bias_mant, np.int64), np.asarray(p.bias_exp, np.int64))
                u, v, s = fp.lif_fixed_step(u, v, a_in[n], int(p.du), int(p.dv), bias, int(p.vth) << fp.VTH_SHIFT)
            else:
                u, v, s = fp.lif_float_step(u, v, a_in[n], p.du, p.dv, np.asarray(p.bias_mant, np.float64), p.vth)
            state[n] = [u, v]
            out[n][idx] = s
            if n in vs:
                vs[n][idx] = v
        for n in spec.sinks:
            sink[n][idx] = a_in[n]
    raw = {n: out[n].astype(np.float64) for n in spec.record if n in out}
    raw.update({n: sink[n].astype(np.float64) for n in spec.sinks})
    raw.update({f"{n}.v": vs[n].astype(np.float64) for n in vs})
    for name in spec.layers:
        if name in raw:
            raw[name] = (raw[name] != 0).astype(np.uint8)
    return raw


