"""Convolutions in netx ``.net`` files: the matrix a ``conv`` layer applies, and the shared kernel
behind an integer matrix (so our writer stores a convolution as lava-dl's conv block, once per
kernel, instead of one synapse per output position).

:func:`shared_kernel` reads a candidate kernel off the quantised matrix and accepts it only if
:func:`conv_matrix` of that kernel gives the matrix back exactly, so a written conv block is bit
for bit the program's synapses (else the writer keeps the dense layer). Pooling has no netx
block (lava-dl 0.6 raises on ``pool``): a SumPool in front of a convolution is part of the
composed kernel (e.g. SumPool 2 -> Conv 3x3/pad 1 is one 6x6 kernel with stride 2, pad 2).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hardware.netx.format import NetxLayer


def conv_matrix(layer: NetxLayer, in_shape: tuple[int, ...]) -> np.ndarray:
    """A netx ``conv`` layer as the integer ``[n_out, n_in]`` matrix it applies to the flattened
    ``(C, H, W)`` input (PyTorch's cross-correlation on the file's ``[out, in/groups, kh, kw]``
    weights, which is what netx builds: it flips the kernel for Lava's ``Conv``, which flips it
    back). One shared kernel becomes one entry per valid tap: the emulation's view only; the
    file and the chip keep the kernel (:func:`hardware.netx.format.conv_memory`)."""
    w = np.asarray(layer.weight, np.int64)
    c_out, per_group, kh, kw = w.shape
    c_in, h_in, w_in = (int(v) for v in in_shape)
    _, h_out, w_out = layer.shape
    (sy, sx), (py, px), (dy, dx) = layer.stride or (1, 1), layer.padding or (0, 0), layer.dilation or (1, 1)
    out_per_group = c_out // layer.groups
    m = np.zeros((c_out * h_out * w_out, c_in * h_in * w_in), np.int64)
    oy, ox = np.meshgrid(np.arange(h_out), np.arange(w_out), indexing="ij")
    for o in range(c_out):
        g = o // out_per_group
        for ci in range(per_group):
            c = g * per_group + ci
            for i in range(kh):
                for j in range(kw):
                    y, x = oy * sy - py + i * dy, ox * sx - px + j * dx
                    ok = (y >= 0) & (y < h_in) & (x >= 0) & (x < w_in)
                    rows = (o * h_out + oy[ok]) * w_out + ox[ok]
                    m[rows, (c * h_in + y[ok]) * w_in + x[ok]] += w[o, ci, i, j]
    return m


@dataclass(frozen=True)
class SharedKernel:
    """A matrix's convolution: ``weight`` [out, in, kh, kw] integers, ``stride``, ``padding``
    (symmetric, as netx stores it), dilation 1, one group."""

    weight: np.ndarray
    stride: tuple[int, int]
    padding: tuple[int, int]


def _axis_geometry(support: list[np.ndarray], n_in: int, n_out: int) -> tuple[int, int, int] | None:
    """(kernel, stride, padding) along one axis from the input rows each output row reads."""
    firsts = [int(s.min()) if s.size else None for s in support]
    lasts = [int(s.max()) if s.size else None for s in support]
    spans = [b - a + 1 for a, b in zip(firsts, lasts) if a is not None]
    if not spans:
        return None
    k = max(spans)
    mid = n_out // 2
    if firsts[mid] is None:
        return None
    stride = 1
    if n_out > 1:
        nxt = mid + 1 if mid + 1 < n_out else mid - 1
        if firsts[nxt] is None or firsts[nxt] == firsts[mid]:
            return None
        stride = abs(firsts[nxt] - firsts[mid])
    pad = stride * mid - firsts[mid]
    if pad < 0 or (n_in + 2 * pad - k) // stride + 1 != n_out:
        return None
    return k, stride, pad


def shared_kernel(matrix: np.ndarray, in_shape: tuple[int, int, int],
                  out_shape: tuple[int, int, int]) -> SharedKernel | None:
    """The convolution (dilation 1, one group) whose :func:`conv_matrix` is exactly the integer
    ``matrix`` [prod(out_shape), prod(in_shape)] between ``(C, H, W)`` shapes, or None."""
    m = np.asarray(matrix)
    if m.dtype.kind not in "iu" or len(in_shape) != 3 or len(out_shape) != 3:
        return None
    (c, h, w), (c2, h2, w2) = in_shape, out_shape
    if m.shape != (c2 * h2 * w2, c * h * w):
        return None
    nz = (m.reshape(c2, h2, w2, c, h, w) != 0).any(axis=(0, 3))  # [h2, w2, h, w]
    rows = _axis_geometry([np.flatnonzero(nz[y].any(axis=(0, 2))) for y in range(h2)], h, h2)
    cols = _axis_geometry([np.flatnonzero(nz[:, x].any(axis=(0, 1))) for x in range(w2)], w, w2)
    if rows is None or cols is None:
        return None
    (kh, sy, py), (kw, sx, px) = rows, cols
    kernel = np.zeros((c2, c, kh, kw), np.int64)
    full = m.reshape(c2, h2, w2, c, h, w)
    for i in range(kh):  # each tap from an output position that sees it inside the input
        for j in range(kw):
            ys = [y for y in range(h2) if 0 <= y * sy - py + i < h]
            xs = [x for x in range(w2) if 0 <= x * sx - px + j < w]
            if ys and xs:
                kernel[:, :, i, j] = full[:, ys[0], xs[0], :, ys[0] * sy - py + i, xs[0] * sx - px + j]
    layer = NetxLayer("conv", tuple(out_shape), kernel, stride=(sy, sx), padding=(py, px), dilation=(1, 1))
    if not np.array_equal(conv_matrix(layer, tuple(in_shape)), m):
        return None
    return SharedKernel(kernel, (sy, sx), (py, px))


__all__ = ["SharedKernel", "conv_matrix", "shared_kernel"]
