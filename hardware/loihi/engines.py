"""The array engines of the Loihi emulator: the same code on numpy or on torch.

:class:`~hardware.loihi.emulator.LoihiEmulator` is written once against a handful of array
operations (allocate, cast, matrix product, max, back to numpy) and runs them on one of two
engines:

* ``"numpy"`` (the default): no dependency beyond numpy, single-threaded apart from BLAS, and
  what the tests and the ``loihi-emu`` backends use unless told otherwise;
* ``"torch"``: the same computation on torch tensors, to use every CPU thread (``device="cpu"``)
  or a GPU (``device="cuda"``) for large batches.

Both keep the integer state (``u``, ``v``, messages, activations) in int64 on every device, and
compute ``W @ x`` in floating point only where that is exact (:data:`FLOAT32_EXACT`,
:data:`FLOAT64_EXACT`; torch's reduced-precision float32 matmuls are detected and avoided), so
the engine changes the speed, never the numbers: fixed-point results stay bit-exact on both.

:func:`resolve_engine` picks the engine: explicit arguments, else the environment variables
``TAAF_LOIHI_EMU_ENGINE`` / ``TAAF_LOIHI_EMU_DEVICE`` (how ``taaf simulate`` selects it for the
``loihi-emu`` backends), else numpy.
"""
from __future__ import annotations

import os

import numpy as np

ENGINES = ("numpy", "torch")
ENGINE_ENV = "TAAF_LOIHI_EMU_ENGINE"
DEVICE_ENV = "TAAF_LOIHI_EMU_DEVICE"
FLOAT32_EXACT = 2 ** 24  # every integer of magnitude <= 2^24 is a float32
FLOAT64_EXACT = 2 ** 53


def resolve_engine(engine: str | None = None, device: str | None = None) -> tuple[str, str | None]:
    """``(engine, device)``: the arguments, else ``$TAAF_LOIHI_EMU_ENGINE`` /
    ``$TAAF_LOIHI_EMU_DEVICE``, else numpy (torch: ``cpu``)."""
    engine = engine or os.environ.get(ENGINE_ENV) or "numpy"
    device = device or os.environ.get(DEVICE_ENV) or None
    if engine not in ENGINES:
        raise ValueError(f"unknown emulator engine {engine!r} (choose from {', '.join(ENGINES)})")
    if engine == "numpy" and device not in (None, "cpu"):
        raise ValueError(f"the numpy engine runs on the CPU only, got device {device!r} (use engine='torch')")
    return engine, device


def make_ops(engine: str, device: str | None = None):
    """The array operations of a resolved ``engine`` on ``device``, so the emulator can stay
    agnostic of numpy vs torch (resolve ``engine`` / ``device`` with :func:`resolve_engine`)."""
    return _NumpyOps(device) if engine == "numpy" else _TorchOps(device)


# --- array back ends: the few operations the emulator needs beyond fixed_point's ---------------

class _NumpyOps:
    """The default engine: numpy arrays on the CPU."""

    name = "numpy"
    int64, float32, float64, bool_ = np.int64, np.float32, np.float64, np.bool_

    def __init__(self, device=None):
        self.device = "cpu"

    def asarray(self, a, dtype):
        """``a`` as a contiguous array of ``dtype`` (registers, inputs, weight matrices)."""
        return np.ascontiguousarray(a, dtype=dtype)

    def zeros(self, shape, dtype):
        """A zero-filled array: initial state and recordings."""
        return np.zeros(shape, dtype)

    def astype(self, a, dtype):
        """Cast without copying when already ``dtype``."""
        return a.astype(dtype, copy=False)

    def matmul(self, x, w):
        """``x @ w``: messages times transposed weights."""
        return x @ w

    def absmax(self, a) -> int:
        """Largest magnitude in ``a`` (0 when empty), for the int32-range checks."""
        return int(np.abs(a).max(initial=0))

    def numpy(self, a) -> np.ndarray:
        """``a`` as a numpy array, for the mapper's ``unpack``."""
        return a

    def float32_exact(self) -> bool:
        """True: numpy float32 matmuls are IEEE, so integer sums below 2^24 are exact."""
        return True  # BLAS sgemm: IEEE float32 products and sums

    def int_matmul(self) -> bool:
        """True: numpy has an int64 matrix product, the fallback beyond float64's exact range."""
        return True


class _TorchOps:
    """The torch engine: tensors on ``device`` (``cpu`` for all threads, or ``cuda``)."""

    name = "torch"

    def __init__(self, device=None):
        import torch

        self.torch = torch
        self.device = torch.device(device or "cpu")
        self.int64, self.float32, self.float64, self.bool_ = torch.int64, torch.float32, torch.float64, torch.bool

    def asarray(self, a, dtype):
        """``a`` (numpy or tensor) as a tensor of ``dtype`` on the engine's device."""
        if isinstance(a, self.torch.Tensor):
            return a.to(device=self.device, dtype=dtype)
        a = np.ascontiguousarray(a)
        if not a.flags.writeable:  # torch wants writable memory (the registers are read-only)
            a = a.copy()
        return self.torch.from_numpy(a).to(device=self.device, dtype=dtype)

    def zeros(self, shape, dtype):
        """A zero-filled tensor on the engine's device: initial state and recordings."""
        return self.torch.zeros(shape, dtype=dtype, device=self.device)

    def astype(self, a, dtype):
        """Cast (a no-op when already ``dtype``)."""
        return a.to(dtype)

    def matmul(self, x, w):
        """``x @ w``: messages times transposed weights."""
        return x @ w

    def absmax(self, a) -> int:
        """Largest magnitude in ``a`` (0 when empty), for the int32-range checks."""
        return int(a.abs().max().item()) if a.numel() else 0

    def numpy(self, a) -> np.ndarray:
        """``a`` copied back to a numpy array on the CPU, for the mapper's ``unpack``."""
        return a.cpu().numpy()

    def float32_exact(self) -> bool:
        """False when torch may compute float32 products in TF32 / bf16 (which would round the
        integer sums); float64 is never reduced. Any doubt means float64."""
        torch = self.torch
        backend = torch.backends.cuda.matmul if self.device.type == "cuda" else torch.backends.mkldnn.matmul
        if getattr(backend, "fp32_precision", "none") not in ("none", "ieee"):
            return False
        try:
            if torch.get_float32_matmul_precision() != "highest":
                return False
        except RuntimeError:  # legacy and new precision APIs mixed: torch will not say
            return False
        return not (self.device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32)

    def int_matmul(self) -> bool:
        """Whether int64 matrix products exist on the device (the fallback beyond float64's range)."""
        return self.device.type == "cpu"  # CUDA has no int64 matrix product


__all__ = [
    "DEVICE_ENV",
    "ENGINES",
    "ENGINE_ENV",
    "FLOAT32_EXACT",
    "FLOAT64_EXACT",
    "make_ops",
    "resolve_engine",
]
