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
from typing import TypeVar

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


def nir_lif_to_discrete(tau, r, v_leak, dt: float = DEFAULT_DT) -> DiscreteLIF:
    """NIR LIF parameters -> per-step coefficients (forward Euler, step ``dt``)."""
    tau = np.asarray(tau, dtype=np.float64)
    k = dt / tau
    return DiscreteLIF(decay=1.0 - k, gain=np.asarray(r) * k, bias=np.asarray(v_leak) * k)
