"""Neuron dynamics: the one implementation of each discrete-time equation.

Pure functions on arrays (numpy arrays or torch tensors alike: only ``*``, ``+``, ``>`` are
used), no state objects, so every backend — the PyTorch model, the NIR reference simulator,
the Lava mapper, the emulator — calls the same code and can be tested without torch state.

Convention (documented in every NIR export's metadata):

* forward Euler with step ``dt``; NIR's ``tau dv/dt = (v_leak - v) + r * I`` becomes
  ``v[t] = decay * v[t-1] + gain * I[t] + bias`` with ``decay = 1 - dt/tau``,
  ``gain = r * dt / tau`` and ``bias = v_leak * dt / tau``;
* snnTorch's ``Leaky`` is the case ``decay = beta``, ``gain = 1``, ``bias = 0``, i.e.
  ``tau = dt / (1 - beta)`` and ``r = tau / dt``;
* a neuron spikes when ``v > threshold`` (strict, like snnTorch's Heaviside) and is reset to
  ``v_reset`` *in the same step* (snnTorch ``reset_mechanism="zero", reset_delay=False``;
  Lava's LIF does the same).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np

Array = TypeVar("Array")

DEFAULT_DT = 1e-4  # seconds; the NIR paper's and snnTorch's export convention
RESET_CONVENTION = "zero, same step (v > threshold -> v = v_reset in the step it spikes)"


@dataclass(frozen=True)
class DiscreteLIF:
    """Per-step coefficients of a forward-Euler LIF: v <- decay*v + gain*I + bias."""

    decay: np.ndarray
    gain: np.ndarray
    bias: np.ndarray


def lif_step(v: Array, current: Array, decay, threshold, v_reset=0.0, gain=1.0, bias=0.0):
    """One LIF step: integrate, fire on ``v > threshold``, reset the firing neurons.

    Returns ``(v_next, spikes)``; ``spikes`` has the dtype of ``v`` (0.0 / 1.0).
    """
    v = decay * v + gain * current + bias
    fired = v > threshold
    spikes = fired.to(v.dtype) if hasattr(fired, "to") else fired.astype(v.dtype)
    v = v * (1 - spikes) + v_reset * spikes
    return v, spikes


def li_step(v: Array, current: Array, decay, gain=1.0, bias=0.0):
    """Leaky integrator (no spikes): a LIF with an unreachable threshold."""
    return decay * v + gain * current + bias


def beta_to_nir(beta: np.ndarray, dt: float = DEFAULT_DT) -> tuple[np.ndarray, np.ndarray]:
    """snnTorch ``beta`` -> NIR ``(tau, r)`` so that forward Euler reproduces snnTorch exactly."""
    beta = np.asarray(beta, dtype=np.float64)
    if np.any(beta >= 1.0) or np.any(beta < 0.0):
        raise ValueError("beta must be in [0, 1) to have a finite time constant")
    tau = dt / (1.0 - beta)
    return tau, tau / dt


#: How far ``dt / tau`` may sit from 1 and still mean "tau = dt" (decay exactly 0, a neuron
#: without memory: snnTorch ``beta = 0``). NIR files store tau in float32, so a tau written as
#: dt = 1e-4 reads back as 9.9999997e-05 and ``1 - dt/tau`` as -2.5e-8, a negative decay that
#: no chip register holds.
EULER_RTOL = 4 * float(np.finfo(np.float32).eps)


def euler_fraction(tau, dt: float = DEFAULT_DT) -> np.ndarray:
    """``dt / tau``, the fraction of the state a forward-Euler step replaces; values within
    float32 rounding of 1 (:data:`EULER_RTOL`) are exactly 1."""
    k = dt / np.asarray(tau, dtype=np.float64)
    return np.where(np.abs(k - 1.0) <= EULER_RTOL, 1.0, k)


def nir_lif_to_discrete(tau, r, v_leak, dt: float = DEFAULT_DT) -> DiscreteLIF:
    """NIR LIF parameters -> per-step coefficients (forward Euler, step ``dt``)."""
    k = euler_fraction(tau, dt)
    return DiscreteLIF(decay=1.0 - k, gain=np.asarray(r) * k, bias=np.asarray(v_leak) * k)


# --- Other NIR neuron families -------------------------------------------------------------
# Same conventions as above: forward Euler with step ``dt`` for every ``tau``-equation, strict
# ``>`` thresholds, reset to ``v_reset`` in the step that fires.

IntegratorConvention = Literal["per_step", "euler"]
INTEGRATOR_CONVENTIONS: tuple[str, ...] = ("per_step", "euler")


@dataclass(frozen=True)
class DiscreteSynapse:
    """Per-step coefficients of a forward-Euler synaptic current: i <- decay*i + gain*x."""

    decay: np.ndarray
    gain: np.ndarray


def heaviside(x: Array, threshold) -> Array:
    """``1.0`` where ``x > threshold`` (strict), else ``0.0``, in the dtype of ``x``."""
    fired = x > threshold
    return fired.to(x.dtype) if hasattr(fired, "to") else fired.astype(x.dtype)


def if_step(v: Array, current: Array, threshold, v_reset=0.0, gain=1.0):
    """Integrate-and-fire: a LIF without leak (``decay = 1``); returns ``(v_next, spikes)``."""
    return lif_step(v, current, 1.0, threshold, v_reset=v_reset, gain=gain)


def integrator_step(v: Array, current: Array, gain=1.0) -> Array:
    """NIR ``I`` (perfect integrator, no threshold): ``v <- v + gain * I``."""
    return li_step(v, current, 1.0, gain=gain)


def synapse_step(i: Array, x: Array, decay, gain=1.0) -> Array:
    """Current-based synapse ``tau_syn di/dt = -i + w_in x``: ``i <- decay*i + gain*x``."""
    return decay * i + gain * x


def cuba_lif_step(i: Array, v: Array, x: Array, syn_decay, syn_gain, decay, threshold,
                  v_reset=0.0, gain=1.0, bias=0.0):
    """CubaLIF: update the synaptic current first, then the voltage with the NEW current.

    ``i[t] = a*i[t-1] + g_s*x[t]``; ``v[t] = b*v[t-1] + g*i[t] + bias``; fire/reset as LIF.
    This is snnTorch's ``Synaptic`` (with ``w_in = tau_syn/dt``, ``r = tau_mem/dt``), Norse's
    NIR import (``LIBoxCell`` feeding ``LIFBoxCell``), and hence the NIR paper's Braille RNN,
    which was trained in snnTorch. Returns ``(i_next, v_next, spikes)``.
    """
    i = synapse_step(i, x, syn_decay, syn_gain)
    v, spikes = lif_step(v, i, decay, threshold, v_reset=v_reset, gain=gain, bias=bias)
    return i, v, spikes


def cuba_li_step(i: Array, v: Array, x: Array, syn_decay, syn_gain, decay, gain=1.0, bias=0.0):
    """CubaLI: :func:`cuba_lif_step` without threshold. Returns ``(i_next, v_next)``."""
    i = synapse_step(i, x, syn_decay, syn_gain)
    return i, li_step(v, i, decay, gain=gain, bias=bias)


def nir_synapse_to_discrete(tau_syn, w_in, dt: float = DEFAULT_DT) -> DiscreteSynapse:
    """NIR ``tau_syn di/dt = -i + w_in x`` -> forward-Euler coefficients (step ``dt``)."""
    k = euler_fraction(tau_syn, dt)
    return DiscreteSynapse(decay=1.0 - k, gain=np.asarray(w_in, dtype=np.float64) * k)


def nir_integrator_gain(r, dt: float = DEFAULT_DT,
                        convention: IntegratorConvention = "per_step") -> np.ndarray:
    """Per-step input gain of NIR ``IF``/``I`` (``dv/dt = R I``, no time constant).

    ``"per_step"``: ``v += r*I`` -- what sinabs, Norse (``IAFCell``: "dt unused"), snnTorch's
    fixed importer (``Leaky(beta=1)``) and Lava do, and what the NIR paper's sinabs CNN
    (``r = 1``, threshold 1) assumes. ``"euler"``: ``v += dt*r*I``, the literal forward-Euler
    reading of the equation. They agree when ``r`` is exported as ``1/dt`` per step.
    """
    r = np.asarray(r, dtype=np.float64)
    if convention == "per_step":
        return r
    if convention == "euler":
        return r * dt
    raise ValueError(f"integrator convention must be one of {INTEGRATOR_CONVENTIONS}, got {convention!r}")
