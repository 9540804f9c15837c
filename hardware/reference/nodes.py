"""One small operation per NIR primitive, in numpy, vectorised over the batch.

Every op is a frozen dataclass built once per graph (parameters already cast to the simulation
dtype and converted to per-step coefficients) with

* ``init_state(batch, dtype)`` -> tuple of state arrays (empty for stateless ops), and
* ``step(state, x)`` -> ``(next_state, y)`` for one time step; ``x`` is ``[B, *in_shape]``.

``state_names`` names the leading state entries that may be recorded (``'v'``, ``'i'``);
``spiking`` marks ops whose output is a spike train (recorded as ``'spikes'``). Neuron equations
come from :mod:`taaf.dynamics` only, so every backend integrates the same way.

The builders that turn a NIR node into its op live in :mod:`hardware.reference.builders`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from taaf import dynamics
from taaf.dynamics import IntegratorConvention

Shape = tuple[int, ...]
State = tuple[np.ndarray, ...]

DELAY_TOLERANCE_STEPS = 1e-6  # |delay/dt - round(delay/dt)| above this is an error, widened by
# the stored dtype's rounding (a float32 delay of 100 steps is already 1.5e-6 steps off)


@dataclass(frozen=True)
class BuildContext:
    """What every op builder needs besides the node: step, dtype, IF/I convention."""

    dt: float
    dtype: np.dtype
    integrator: IntegratorConvention = "per_step"


@dataclass(frozen=True)
class Op:
    """Base: a stateless identity (used for Input, Output and nir.Identity)."""

    in_shape: Shape
    out_shape: Shape
    state_names: ClassVar[tuple[str, ...]] = ()
    spiking: ClassVar[bool] = False

    def init_state(self, batch: int, dtype: np.dtype) -> State:
        """Zero state for ``batch`` samples, so every run starts from rest; stateless ops have none."""
        return ()

    def state_size(self, batch: int) -> int:
        """Elements :meth:`init_state` allocates for ``batch`` samples (sized against the memory budget first)."""
        return len(self.state_names) * batch * int(np.prod(self.in_shape, dtype=np.int64))

    def step(self, state: State, x: np.ndarray) -> tuple[State, np.ndarray]:
        """The simulator's one per-step call for every op; stateless ops pass state through to :meth:`apply`."""
        return state, self.apply(x)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """The memoryless map of a stateless op on one step's ``[B, *in_shape]`` input (identity here)."""
        return x


# --- stateless ops ----------------------------------------------------------------------------

@dataclass(frozen=True)
class AffineOp(Op):
    """``y = x W^T (+ b)``: NIR Affine and Linear (bias ``None``)."""

    weight: np.ndarray
    bias: np.ndarray | None

    def apply(self, x):
        """The dense projection of one step's input, batch kept as the leading axis."""
        y = x @ self.weight.T
        return y if self.bias is None else y + self.bias


@dataclass(frozen=True)
class ScaleOp(Op):
    """NIR Scale: an element-wise gain (e.g. input normalisation) that mixes no channels."""

    scale: np.ndarray

    def apply(self, x):
        """Multiply each element by its own factor, broadcast over the batch."""
        return x * self.scale


@dataclass(frozen=True)
class ThresholdOp(Op):
    """``z = H(x - threshold)`` with the strict ``>`` used by every neuron."""

    threshold: np.ndarray
    spiking: ClassVar[bool] = True

    def apply(self, x):
        """Spike where the input exceeds the threshold, via the same ``heaviside`` every neuron uses."""
        return dynamics.heaviside(x, self.threshold)


@dataclass(frozen=True)
class FlattenOp(Op):
    """NIR Flatten: merges per-sample dims (conv maps before a dense layer); out_shape fixed by the builder."""

    def apply(self, x):
        """Reshape to ``[B, *out_shape]``, leaving the batch axis alone (NIR dims exclude it)."""
        return x.reshape((x.shape[0],) + self.out_shape)


@dataclass(frozen=True)
class ConvOp(Op):
    """N-d cross-correlation (PyTorch's ``conv1d``/``conv2d``): zero padding, groups, dilation."""

    weight: np.ndarray  # [C_out, C_in/groups, *kernel]
    bias: np.ndarray  # [C_out]
    stride: Shape
    dilation: Shape
    padding: tuple[tuple[int, int], ...]  # (before, after) per spatial dim
    groups: int

    def apply(self, x):
        """Convolve ``[B, C, *spatial]`` via sliding windows and one einsum (no per-position Python loop)."""
        nd = self.weight.ndim - 2
        x = np.pad(x, ((0, 0), (0, 0)) + self.padding)
        kernel = self.weight.shape[2:]
        span = tuple(d * (k - 1) + 1 for d, k in zip(self.dilation, kernel))
        win = sliding_window_view(x, span, axis=tuple(range(2, 2 + nd)))
        win = win[(slice(None), slice(None))
                  + tuple(slice(None, None, s) for s in self.stride)
                  + tuple(slice(None, None, d) for d in self.dilation)]  # [B, C, *out, *kernel]
        b, c = x.shape[:2]
        g, c_out = self.groups, self.weight.shape[0]
        win = win.reshape((b, g, c // g) + win.shape[2:])
        w = self.weight.reshape((g, c_out // g) + self.weight.shape[1:])
        sp, ks = "xyz"[:nd], "ijk"[:nd]
        y = np.einsum(f"bgc{sp}{ks},goc{ks}->bgo{sp}", win, w, optimize=True)
        y = y.reshape((b, c_out) + y.shape[3:])
        return y + self.bias.reshape((c_out,) + (1,) * nd)


@dataclass(frozen=True)
class PoolOp(Op):
    """2-d sum pooling over zero-padded input; ``divisor`` = kernel area for AvgPool2d
    (PyTorch's default ``count_include_pad=True``), 1 for SumPool2d."""

    kernel: Shape
    stride: Shape
    padding: Shape
    divisor: float

    def apply(self, x):
        """Pool one step's ``[B, C, H, W]`` input: window sums, divided for average pooling."""
        (ph, pw), (sh, sw) = self.padding, self.stride
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        win = sliding_window_view(x, self.kernel, axis=(2, 3))[:, :, ::sh, ::sw]
        y = win.sum(axis=(-2, -1))
        return y if self.divisor == 1 else y / np.asarray(self.divisor, dtype=x.dtype)


# --- stateful ops -----------------------------------------------------------------------------

@dataclass(frozen=True)
class DelayOp(Op):
    """``y[t] = x[t - d]`` per element (zeros before the first input), ``d`` in steps."""

    steps: np.ndarray  # int, one per flattened element

    def state_size(self, batch: int) -> int:
        """The history buffer: (longest delay + 1) x batch x elements, held twice while a step shifts it."""
        return 2 * (int(self.steps.max(initial=0)) + 1) * batch * int(np.prod(self.in_shape, dtype=np.int64))

    def init_state(self, batch, dtype):
        """A zero history buffer deep enough for the longest delay, so early steps read zeros."""
        n = int(np.prod(self.in_shape, dtype=np.int64))
        return (np.zeros((int(self.steps.max(initial=0)) + 1, batch, n), dtype=dtype),)

    def step(self, state, x):
        """Push this step's input into the history and read each element at its own delay."""
        (buffer,) = state
        b = x.shape[0]
        buffer = np.concatenate([x.reshape(1, b, -1), buffer[:-1]], axis=0)  # buffer[k] = x[t-k]
        y = buffer[self.steps, :, np.arange(self.steps.size)].T  # [B, N]
        return (buffer,), y.reshape((b,) + self.out_shape)


@dataclass(frozen=True)
class _VoltageOp(Op):
    """Neurons with one state variable ``v`` starting at 0."""

    state_names: ClassVar[tuple[str, ...]] = ("v",)

    def init_state(self, batch, dtype):
        return (np.zeros((batch,) + self.in_shape, dtype=dtype),)


@dataclass(frozen=True)
class IntegratorOp(_VoltageOp):
    """NIR ``I``: ``v += gain*x``; outputs ``v``."""

    gain: np.ndarray

    def step(self, state, x):
        """Accumulate the input into ``v`` and emit ``v`` itself (an analogue readout, no spikes)."""
        v = dynamics.integrator_step(state[0], x, gain=self.gain)
        return (v,), v


@dataclass(frozen=True)
class IFOp(_VoltageOp):
    """NIR ``IF``: integrate-and-fire without leak, the neuron of the NIR paper's sinabs-style CNN."""

    gain: np.ndarray
    threshold: np.ndarray
    v_reset: np.ndarray
    spiking: ClassVar[bool] = True

    def step(self, state, x):
        """Integrate, fire and reset in one step; emits the spikes."""
        v, z = dynamics.if_step(state[0], x, self.threshold, v_reset=self.v_reset, gain=self.gain)
        return (v,), z


@dataclass(frozen=True)
class LIOp(_VoltageOp):
    """NIR ``LI``: a leaky integrator without threshold, the analogue readout whose voltage is the output."""

    decay: np.ndarray
    gain: np.ndarray
    bias: np.ndarray

    def step(self, state, x):
        """Leak, add the weighted input and bias; emits the voltage."""
        v = dynamics.li_step(state[0], x, self.decay, gain=self.gain, bias=self.bias)
        return (v,), v


@dataclass(frozen=True)
class LIFOp(_VoltageOp):
    """NIR ``LIF``: leaky integrate-and-fire, discretised by ``taaf.dynamics`` so it matches the trained model."""

    decay: np.ndarray
    gain: np.ndarray
    bias: np.ndarray
    threshold: np.ndarray
    v_reset: np.ndarray
    spiking: ClassVar[bool] = True

    def step(self, state, x):
        """Leak, integrate, fire on ``v > threshold`` and reset in the same step; emits the spikes."""
        v, z = dynamics.lif_step(state[0], x, self.decay, self.threshold, v_reset=self.v_reset,
                                 gain=self.gain, bias=self.bias)
        return (v,), z


@dataclass(frozen=True)
class _CubaOp(Op):
    """Current-based neurons: state ``(i, v)``, both starting at 0."""

    syn_decay: np.ndarray
    syn_gain: np.ndarray
    decay: np.ndarray
    gain: np.ndarray
    bias: np.ndarray
    state_names: ClassVar[tuple[str, ...]] = ("i", "v")

    def init_state(self, batch, dtype):
        zeros = np.zeros((batch,) + self.in_shape, dtype=dtype)
        return zeros, zeros.copy()


@dataclass(frozen=True)
class CubaLIOp(_CubaOp):
    """NIR ``CubaLI``: synaptic current feeding a leaky integrator, the readout of current-based networks."""

    def step(self, state, x):
        """Update the current first, then the voltage with the new current; emits the voltage."""
        i, v = dynamics.cuba_li_step(state[0], state[1], x, self.syn_decay, self.syn_gain,
                                     self.decay, gain=self.gain, bias=self.bias)
        return (i, v), v


@dataclass(frozen=True)
class CubaLIFOp(_CubaOp):
    """NIR ``CubaLIF``: current-based LIF (snnTorch ``Synaptic``); a synaptic filter smooths the input first."""

    threshold: np.ndarray
    v_reset: np.ndarray
    spiking: ClassVar[bool] = True

    def step(self, state, x):
        """Update the current, then the voltage with the new current, fire and reset; emits spikes."""
        i, v, z = dynamics.cuba_lif_step(state[0], state[1], x, self.syn_decay, self.syn_gain,
                                         self.decay, self.threshold, v_reset=self.v_reset,
                                         gain=self.gain, bias=self.bias)
        return (i, v), z
