"""The chip IR: what every Loihi-family backend, target and counter consumes.

A NIR graph is lowered once (:func:`hardware.ir.lower.lower_graph`) into a :class:`ChipGraph`:
*neuron layers* (the populations a chip holds), *readouts* (the Outputs, recorded from synapse
accumulators or from a layer's spikes) and the *terms* that feed them -- every path of
stateless NIR nodes between two neuron layers composed into one linear map
``matrix @ source[t - delay]``. Each layer and readout carries its latency (hop count from the
Inputs), which fixes the one latency-alignment rule (:meth:`ChipGraph.synaptic_delay`).

Like NIR's primitives (``nir/ir/*.py``) every class here is a small frozen dataclass that
checks itself at construction, so a consumer never re-validates or re-derives it.
No Lava, torch or NIR import: the IR is backend-neutral.
"""
from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hardware.errors import LavaMappingError


BIAS = "__bias__"
"""The constant source: one neuron that sends 1 at every step of every sample (from the Inputs'
step 0 on, like an Input; 0 in the gaps between samples). A term from it, ``matrix`` ``[n, 1]``,
carries a constant that a layer cannot hold in ``bias_mant``: an Affine/Conv bias into a
CubaLIF's current (``u`` accumulates it), or one that only starts later (through a Delay: term
delay ``d``; across a recurrent edge: see :mod:`hardware.ir.lower`). Its size is 1, its latency 0."""


class NeuronKind(str, enum.Enum):
    """The NIR neuron a layer came from; all three map to one Loihi CUBA-LIF compartment."""

    LIF = "LIF"
    IF = "IF"
    CubaLIF = "CubaLIF"


def _size(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _fail(where: str, what: str) -> LavaMappingError:
    return LavaMappingError(f"{where}: {what}")


def _ints(where: str, what: str, value, n: int, minimum: int) -> tuple[int, ...]:
    out = tuple(int(v) for v in value)
    if len(out) != n or any(v < minimum for v in out) or any(int(v) != v for v in value):
        raise _fail(where, f"{what} {tuple(value)!r} must be {n} integers >= {minimum}")
    return out


@dataclass(frozen=True)
class ConvKernel:
    """A term's 2-D convolution kept next to its unrolled matrix, so that counters (valid-position
    dense counts) and native-conv writers need not re-derive it from the matrix.

    PyTorch ``conv2d`` semantics (cross-correlation, zero padding): ``weight`` is
    ``[C_out, C_in / groups, kh, kw]``, ``padding`` is ``((top, bottom), (left, right))``,
    ``in_shape`` is the source's ``(C, H, W)``.
    """

    weight: np.ndarray
    stride: tuple[int, int]
    padding: tuple[tuple[int, int], tuple[int, int]]
    dilation: tuple[int, int]
    groups: int
    in_shape: tuple[int, int, int]

    def __post_init__(self) -> None:
        where = "conv kernel"
        w = np.asarray(self.weight, np.float64)
        if w.ndim != 4 or not np.all(np.isfinite(w)):
            raise _fail(where, f"weight must be 4-D [C_out, C_in/groups, kh, kw] and finite, got shape {w.shape}")
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "stride", _ints(where, "stride", self.stride, 2, 1))
        object.__setattr__(self, "dilation", _ints(where, "dilation", self.dilation, 2, 1))
        pads = tuple(_ints(where, "padding", p, 2, 0) for p in self.padding)
        if len(pads) != 2:
            raise _fail(where, f"padding {self.padding!r} must be ((top, bottom), (left, right))")
        object.__setattr__(self, "padding", pads)
        object.__setattr__(self, "in_shape", _ints(where, "in_shape", self.in_shape, 3, 1))
        groups = int(self.groups)
        if groups < 1 or w.shape[0] % groups or w.shape[1] * groups != self.in_shape[0]:
            raise _fail(where, f"weight {w.shape} with groups={groups} does not fit {self.in_shape[0]} "
                               f"input channels")
        object.__setattr__(self, "groups", groups)
        if min(self.out_shape) < 1:
            raise _fail(where, f"input {self.in_shape} is smaller than the kernel {w.shape[2:]}")

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """``(C_out, H_out, W_out)``: the target's shape (PyTorch's conv2d output formula)."""
        hw = tuple((n + pb + pa - d * (k - 1) - 1) // s + 1
                   for n, (pb, pa), d, k, s in zip(self.in_shape[1:], self.padding, self.dilation,
                                                   self.weight.shape[2:], self.stride))
        return (int(self.weight.shape[0]), *hw)


@dataclass(frozen=True)
class Term:
    r"""A linear path into a neuron layer or readout: ``matrix @ source[t - delay]``.

    ``matrix`` is ``[n_target, n_source]`` (None: identity); ``delay`` is the sum of the NIR
    ``Delay`` steps on the path, plus one per recurrent edge. Every stateless NIR node between
    two neuron layers (Affine, Linear, Scale, Flatten, Conv, pooling, Delay) is folded into it.

    What counters and writers need besides the weights (set by ``lower_graph``; defaults for
    terms built by hand): ``name`` is the NIR node owning the weights (the last Affine / Linear /
    Conv on the path, ``<node>@tap<d>`` when one source reaches it through several delays ``d``,
    else the node next to the target; unique in a graph); ``conv`` is the path's convolution when
    it is the only weighted op (``matrix`` stays its exact unrolled form); ``bias`` is the
    constant (Affine/Conv bias, carried to the target, before the neuron's gain) that ``name``
    adds, held by one term of that node (None elsewhere). The layer's or readout's own ``bias``
    stays the authority: term biases only attribute it.
    """

    source: str
    delay: int
    matrix: np.ndarray | None
    name: str = ""
    conv: ConvKernel | None = None
    bias: np.ndarray | None = None

    def __post_init__(self) -> None:
        where = f"term {self.name or self.source!r}"
        if isinstance(self.delay, bool) or int(self.delay) != self.delay or self.delay < 0:
            raise _fail(where, f"delay {self.delay!r} must be an integer >= 0")
        object.__setattr__(self, "delay", int(self.delay))
        if self.matrix is not None:
            m = np.asarray(self.matrix, np.float64)
            if m.ndim != 2:
                raise _fail(where, f"matrix must be 2-D, got shape {m.shape}")
            if not np.all(np.isfinite(m)):
                raise _fail(where, "weights must be finite")
            object.__setattr__(self, "matrix", m)
        if not isinstance(self.name, str):
            raise _fail(where, f"name must be a string, got {self.name!r}")
        if self.conv is not None:
            if not isinstance(self.conv, ConvKernel):
                raise _fail(where, f"conv must be a ConvKernel, got {type(self.conv).__name__}")
            shape = (_size(self.conv.out_shape), _size(self.conv.in_shape))
            if self.matrix is None or self.matrix.shape != shape:
                raise _fail(where, f"conv {self.conv.in_shape} -> {self.conv.out_shape} needs a {shape} matrix, "
                                   f"got {None if self.matrix is None else self.matrix.shape}")
        if self.bias is not None:
            b = np.asarray(self.bias, np.float64).reshape(-1)
            if not np.all(np.isfinite(b)) or (self.matrix is not None and b.shape != (self.matrix.shape[0],)):
                raise _fail(where, f"bias must be one finite number per target, got shape {b.shape}")
            object.__setattr__(self, "bias", b)

    def dense(self, n_target: int) -> np.ndarray:
        """The matrix, with the identity spelled out (for consumers that need weights)."""
        return np.eye(n_target) if self.matrix is None else self.matrix


@dataclass(frozen=True)
class NeuronLayer:
    r"""One population of current-based LIF neurons (one Lava ``LIF`` process, one netx layer).

    Per step, with ``a`` the summed terms: ``u = (1 - du) u + gain * a``,
    ``v = (1 - dv) v + u + bias``, spike where ``v > threshold``, then ``v = 0``.
    ``gain`` (per neuron) is folded into the synaptic weights by every mapping; ``bias``
    includes ``gain x`` the constants (Affine/Conv biases) upstream. ``latency`` is the
    longest hop count from the Inputs (:meth:`ChipGraph.synaptic_delay`).
    """

    name: str
    kind: NeuronKind
    shape: tuple[int, ...]
    dv: float
    du: float
    threshold: float
    gain: np.ndarray
    bias: np.ndarray
    terms: tuple[Term, ...]
    latency: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", NeuronKind(self.kind))
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        n = self.size
        for what in ("dv", "du", "threshold"):
            value = float(getattr(self, what))
            if not np.isfinite(value):
                raise _fail(f"node {self.name!r}", f"{what} = {value} must be finite")
            object.__setattr__(self, what, value)
        if not (0.0 <= self.dv <= 1.0 and 0.0 <= self.du <= 1.0):
            raise _fail(f"node {self.name!r}", f"decays must lie in [0, 1] (dv = {self.dv}, du = {self.du}): "
                                               f"is dt larger than tau?")
        for what in ("gain", "bias"):
            a = np.asarray(getattr(self, what), np.float64).reshape(-1)
            if a.shape != (n,) or not np.all(np.isfinite(a)):
                raise _fail(f"node {self.name!r}", f"{what} must be {n} finite numbers, got shape {a.shape}")
            object.__setattr__(self, what, a)
        if self.latency < 1:
            raise _fail(f"node {self.name!r}", f"latency {self.latency} must be >= 1")

    @property
    def size(self) -> int:
        """Number of neurons (the product of ``shape``)."""
        return _size(self.shape)


@dataclass(frozen=True)
class Population:
    """A NIR neuron node held as several neuron layers, one per distinct ``(dv, du, threshold)``
    (a Lava LIF process shares them; gains and biases stay per neuron). Neuron ``j`` of layer
    ``parts[k]`` is neuron ``index[k][j]`` of the node (flattened in C order); terms from the node
    are split by the same columns. Results are reassembled under ``name`` by :meth:`gather`."""

    name: str
    shape: tuple[int, ...]
    parts: tuple[str, ...]
    index: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        index = tuple(np.asarray(i, np.int64).reshape(-1) for i in self.index)
        object.__setattr__(self, "index", index)
        flat = np.sort(np.concatenate(index)) if index else np.zeros(0, np.int64)
        if len(index) != len(self.parts) or not np.array_equal(flat, np.arange(_size(self.shape))):
            raise _fail(f"node {self.name!r}", f"the parts' indices must be a permutation of its "
                                               f"{_size(self.shape)} neurons")

    def gather(self, values: Sequence[np.ndarray]) -> np.ndarray:
        """One array ``[..., n_k]`` per part -> ``[..., *shape]`` in the node's own neuron order."""
        values = [np.asarray(v) for v in values]
        out = np.zeros(values[0].shape[:-1] + (_size(self.shape),), np.result_type(*values))
        for idx, v in zip(self.index, values):
            out[..., idx] = v
        return out.reshape(out.shape[:-1] + self.shape)

    def take(self, values: np.ndarray) -> dict[str, np.ndarray]:
        """The inverse of :meth:`gather`: ``[..., *shape]`` -> ``{part: [..., n_k]}`` (e.g. a
        reference run's spikes of the node, per chip layer)."""
        flat = np.asarray(values).reshape(np.shape(values)[:np.ndim(values) - len(self.shape)] + (-1,))
        return {p: flat[..., idx] for p, idx in zip(self.parts, self.index)}


@dataclass(frozen=True)
class Readout:
    """An Output: ``sum(terms) + bias`` read from synapse accumulators (the host adds ``bias``),
    or, when ``direct`` names a layer or Input, that source recorded as it is. ``host``, when
    set, is the stateful reference op (NIR LI, CubaLI or I: ``init_state(batch, dtype)``,
    ``step(state, x)``) of a non-spiking output layer, which the host runs over that value."""

    name: str
    shape: tuple[int, ...]
    terms: tuple[Term, ...]
    bias: np.ndarray
    latency: int
    direct: str | None = None
    host: object | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        b = np.asarray(self.bias, np.float64).reshape(-1)
        if b.shape != (self.size,) or not np.all(np.isfinite(b)):
            raise _fail(f"output {self.name!r}", f"bias must be {self.size} finite numbers")
        object.__setattr__(self, "bias", b)

    @property
    def size(self) -> int:
        """Number of values read out per step."""
        return _size(self.shape)


@dataclass(frozen=True)
class ChipGraph:
    """A NIR graph as a chip holds it: Inputs, neuron layers (in evaluation order), readouts.

    ``gap`` is the largest term delay ``G`` (the steps a batch leaves before each sample so that
    delayed terms never read the previous sample); ``gated`` lists the layers that source a
    delayed term (silenced during the gap); ``split`` maps a NIR neuron node held as several
    layers to its :class:`Population` (the one index map every result is reassembled by).
    Terms may also come from the constant source :data:`BIAS`. Built by
    :func:`hardware.ir.lower.lower_graph`.
    """

    dt: float
    inputs: dict[str, tuple[int, ...]]
    neurons: dict[str, NeuronLayer]
    readouts: dict[str, Readout]
    gap: int
    gated: tuple[str, ...]
    split: dict[str, Population] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [*self.inputs, *self.neurons, *self.readouts, *self.split, BIAS]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise _fail("chip graph", f"duplicate names {dup}")
        if not (np.isfinite(self.dt) and self.dt > 0):
            raise _fail("chip graph", f"dt = {self.dt} must be a positive number")
        for target, terms in [*((n, l.terms) for n, l in self.neurons.items()),
                              *((n, r.terms) for n, r in self.readouts.items())]:
            for t in terms:
                if t.source not in self.inputs and t.source not in self.neurons and t.source != BIAS:
                    raise _fail(f"term {t.source!r} -> {target!r}", "unknown source")
        for name, pop in self.split.items():
            if any(p not in self.neurons or self.neurons[p].size != len(i) for p, i in zip(pop.parts, pop.index)):
                raise _fail(f"node {name!r}", f"its parts {pop.parts} must be neuron layers of their index's size")
        named = [t.name for n in (*self.neurons, *self.readouts) for t in self.terms_into(n) if t.name]
        clash = sorted({n for n in named if named.count(n) > 1 or n in names})
        if clash:
            raise _fail("chip graph", f"term names {clash} are not unique")

    def latency(self, name: str) -> int:
        """``L(name)``: 0 for Inputs, else the longest hop count from the Inputs."""
        if name in self.inputs or name == BIAS:
            return 0
        if name in self.neurons:
            return self.neurons[name].latency
        return self.readouts[name].latency

    def size(self, name: str) -> int:
        """Number of values of an Input, neuron layer or readout."""
        if name in self.inputs:
            return _size(self.inputs[name])
        if name == BIAS:
            return 1
        return (self.neurons.get(name) or self.readouts[name]).size

    def synaptic_delay(self, target: str, term: Term) -> int:
        """Lava synaptic delay ``k = L(target) - L(source) - 1 + d`` of a term: every input
        of ``target`` arrives together (the one latency-alignment rule)."""
        return self.latency(target) - self.latency(term.source) - 1 + term.delay

    @property
    def max_latency(self) -> int:
        """The largest latency of any layer or readout (steps a batch runs past its last sample)."""
        return max([self.latency(n) for n in (*self.neurons, *self.readouts)], default=0)

    def terms_into(self, target: str) -> tuple[Term, ...]:
        """The terms feeding a neuron layer or readout."""
        return (self.neurons.get(target) or self.readouts[target]).terms

    def layers_of(self, name: str) -> tuple[str, ...]:
        """The neuron layers holding node ``name`` (its parts when it is split, else itself), so
        that users may record or read any NIR neuron node by its own name."""
        return self.split[name].parts if name in self.split else (name,)

    @property
    def biased(self) -> bool:
        """Whether any term comes from the constant source :data:`BIAS` (it must then be built)."""
        return any(t.source == BIAS for n in (*self.neurons, *self.readouts) for t in self.terms_into(n))


__all__ = ["BIAS", "ChipGraph", "ConvKernel", "NeuronKind", "NeuronLayer", "Population", "Readout", "Term"]
