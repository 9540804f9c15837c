"""The array engines of the Loihi emulator: the same code on numpy or on torch, exact on both.

:class:`~hardware.loihi.emulator.LoihiEmulator` is written once against a few array operations
(allocate, cast, products, the in-place neuron step of :class:`FixedLif`) and runs them on
``"numpy"`` (the default: BLAS, and the neuron updates in row blocks of the batch on a thread
pool) or ``"torch"`` (the CPU with torch's intra-op threads, or ``device="cuda"``). The engine
changes the speed, never the numbers; fixed-point results are bit-exact on both because:

* products in floating point: every partial sum of ``W @ x``, in whatever order BLAS adds, is
  an integer within the synapse group's bound, so below :data:`FLOAT32_EXACT` /
  :data:`FLOAT64_EXACT` every addition is exact (torch's TF32 / bf16 matmuls are avoided);
* int8 products (:func:`int8_matmul_works`, CPU): spikes are 0/1 and Lava's weights 8-bit
  mantissas (MIXED ones doubled), so ``W = 2^k (W8 + o)`` (:func:`int8_split`); ``torch._int_mm``
  sums ``x @ W8`` in int32 and ``o * rowsum(x)`` is added, exact while ``n_in < 2^22``;
* neurons: ``u`` / ``v`` stay below 2^26 in magnitude (``|a_in| < 2^18``, 24-bit ``u`` / ``v``,
  bias ``< 2^19``), so int32 state is exact; the decay ``sign(x f) (|x f| >> 12)`` is
  ``trunc(x (f / 4096))`` with ``f / 4096`` a float64, a product of at most 43 significant bits
  (exact) cast back to int (truncation toward zero).

Threads (:func:`default_threads`): ``$TAAF_LOIHI_EMU_THREADS`` if set, else the physical cores
this process may use minus the other work the 1-minute load average shows (less this process's
own recent CPU use), at least 1: OpenMP (torch) and BLAS threads spin at every barrier, so one
thread more than the free cores costs several times over. Each run sets torch's thread count
(and, with ``threadpoolctl``, holds the numpy engine's BLAS to 1) and restores them.

:func:`resolve_engine` picks the engine: explicit arguments, else ``$TAAF_LOIHI_EMU_ENGINE`` /
``$TAAF_LOIHI_EMU_DEVICE`` (how ``taaf simulate`` selects it for ``loihi-emu``), else numpy.
"""
from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from hardware.loihi import fixed_point as fp

ENGINES = ("numpy", "torch")
ENGINE_ENV = "TAAF_LOIHI_EMU_ENGINE"
DEVICE_ENV = "TAAF_LOIHI_EMU_DEVICE"
THREADS_ENV = "TAAF_LOIHI_EMU_THREADS"
FLOAT32_EXACT = 2 ** 24  # every integer of magnitude <= 2^24 is a float32
FLOAT64_EXACT = 2 ** 53
V_MAX = fp.UV_MAX - 1  # v saturates at +-(2^23 - 1)


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


def make_ops(engine: str, device: str | None = None, threads: int | None = None):
    """The array operations of a resolved ``engine`` on ``device`` (see :func:`resolve_engine`);
    ``threads``: a fixed thread count, None to decide per run (:func:`default_threads`)."""
    return _NumpyOps(device, threads) if engine == "numpy" else _TorchOps(device, threads)


# --- the thread policy ------------------------------------------------------------------------

def physical_cores() -> int:
    """Physical cores: distinct (package, core) pairs of ``/proc/cpuinfo``, else the CPU count."""
    pairs, package = set(), "0"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = (part.strip() for part in line.partition(":"))
            if key == "physical id":
                package = value
            elif key == "core id":
                pairs.add((package, value))
    return len(pairs) or os.cpu_count() or 1


def available_cores() -> int:
    """Cores this process may run on: ``os.sched_getaffinity``, at most :func:`physical_cores`."""
    try:
        allowed = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        allowed = os.cpu_count() or 1
    return max(1, min(allowed, physical_cores()))


_own = {"wall": time.monotonic(), "cpu": sum(os.times()[:2]), "load": 0.0}
_own_lock = threading.Lock()


def _own_load() -> float:
    """This process's part of the 1-minute load average: its busy CPUs (CPU time over wall time
    between calls) averaged as the kernel averages the load (exponential, 1-minute constant)."""
    with _own_lock:
        wall, cpu = time.monotonic(), sum(os.times()[:2])
        span = wall - _own["wall"]
        if span > 0.05:
            keep = math.exp(-span / 60.0)
            busy = (cpu - _own["cpu"]) / span
            _own.update(wall=wall, cpu=cpu, load=_own["load"] * keep + busy * (1 - keep))
        return _own["load"]


def default_threads() -> int:
    """Threads for one run: ``$TAAF_LOIHI_EMU_THREADS`` when set, else :func:`available_cores`
    minus the rounded load of other processes (the 1-minute load average less :func:`_own_load`),
    at least 1."""
    env = os.environ.get(THREADS_ENV)
    if env:
        return max(1, int(env))
    cores, load = available_cores(), os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(cores, cores - int(max(0.0, load - _own_load()) + 0.5)))


@contextlib.contextmanager
def _torch_threads(threads: int | None):
    """``torch.set_num_threads(threads)`` inside the block (None: unchanged)."""
    import torch

    old = torch.get_num_threads()
    if threads and threads != old:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)


_cache: dict = {}


@contextlib.contextmanager
def _blas_threads(threads: int):
    """BLAS limited to ``threads`` inside the block, where ``threadpoolctl`` is installed."""
    if "blas" not in _cache:
        try:
            from threadpoolctl import ThreadpoolController

            _cache["blas"] = ThreadpoolController()
        except ImportError:  # optional: BLAS then keeps its own thread count
            _cache["blas"] = None
    if _cache["blas"] is None:
        yield
    else:
        with _cache["blas"].limit(limits=threads, user_api="blas"):
            yield


def int8_matmul_works() -> bool:
    """Whether ``torch._int_mm`` (int8 x int8 -> int32) exists on the CPU and is exact (probed once)."""
    if "int8" not in _cache:
        try:
            import torch

            rng = np.random.default_rng(0)
            x, w = rng.integers(0, 2, (33, 19)), rng.integers(-128, 128, (19, 7))
            got = torch._int_mm(torch.from_numpy(x.astype(np.int8)), torch.from_numpy(w.astype(np.int8)))
            _cache["int8"] = got.dtype == torch.int32 and np.array_equal(got.numpy(), x @ w)
        except (AttributeError, RuntimeError, TypeError):
            _cache["int8"] = False
    return _cache["int8"]


def int8_split(w: np.ndarray) -> tuple[np.ndarray, int, int] | None:
    """``w = 2^k (w8 + offset)`` with ``w8`` int8, for ``w`` = ``W^T`` [n_in, n_out] (Lava's weights
    are 8-bit mantissas, MIXED ones doubled), or None when ``w`` spans more than 256 values or
    the int32 sums could overflow."""
    w = np.asarray(w, np.int64)
    nonzero = w[w != 0]
    k = int(np.bitwise_and(nonzero, -nonzero).min()).bit_length() - 1 if nonzero.size else 0
    w = w >> k
    lo, hi = int(w.min(initial=0)), int(w.max(initial=0))
    offset = 0 if -128 <= lo and hi <= 127 else lo + 128  # |offset| <= 383
    if hi - lo > 255 or 512 * w.shape[0] >= fp.INT32_LIMIT:  # int32 sums over n_in = w.shape[0]
        return None
    return (w - offset).astype(np.int8), offset, k


# --- the neuron step ------------------------------------------------------------------------------

@dataclass(frozen=True)
class FixedLif:
    """One layer's fixed-point LIF for :meth:`step`: decay factors ``cu = (4096 - du - 1) / 4096``
    (0: ``u`` is this step's activation alone) and ``cv = (4096 - dv) / 4096``, ``bias`` =
    ``bias_mant << bias_exp`` (int32, None when all zero), ``vth`` the effective threshold;
    ``wrap`` / ``clip`` False only where static bounds prove ``u`` never wraps / ``v`` never
    saturates (skipping them then changes nothing)."""

    cu: float
    cv: float
    bias: object
    vth: int
    wrap: bool
    clip: bool

    def step(self, ops, u, v, d, spikes, folded: bool) -> None:
        """One step in place on int32 ``u``, ``v`` [rows, n]: ``d`` is ``a_in << 6`` or, ``folded``
        (``cu == 0``), ``u`` itself: ``wrap(a_in << 6)``; spikes go to the bool ``spikes``.
        The results of :func:`~hardware.loihi.fixed_point.lif_fixed_step`, whose ``wrap_u`` /
        ``clip_v`` it calls."""
        if folded:
            x = d
        else:
            if self.cu == 0:
                ops.copy(u, d)
            else:
                ops.decay(u, self.cu)
                u += d
            if self.wrap:
                ops.copy(u, fp.wrap_u(u))
            x = u
        ops.decay(v, self.cv)
        v += x
        if self.bias is not None:
            v += self.bias
        if self.clip:
            ops.copy(v, fp.clip_v(v))
        ops.spike_and_reset(v, self.vth, spikes)


def blocks(batch: int, count: int) -> list[slice]:
    """``range(batch)`` in ``count`` (at least 1) contiguous, nearly equal slices."""
    rows = -(-batch // max(count, 1))
    return [slice(r, min(r + rows, batch)) for r in range(0, batch, rows)]


def spikes_float64(spikes: np.ndarray, sample_major: bool) -> np.ndarray:
    """bool [T, B, n] -> float64 [T, B, n] (in memory [B, T, n] when ``sample_major``). One
    thread: the cost is the page faults of the fresh array, which threads only contend for."""
    out = np.empty(spikes.shape[1::-1] + spikes.shape[2:] if sample_major else spikes.shape)
    view = out.swapaxes(0, 1) if sample_major else out
    np.copyto(view, spikes)
    return view


# --- array back ends: the few operations the emulator needs beyond fixed_point's ---------------

class _NumpyOps:
    """The default engine: numpy arrays on the CPU (int8 products through ``torch._int_mm`` on
    the same memory)."""

    name = "numpy"
    int32, int64, float32, float64, bool_ = np.int32, np.int64, np.float32, np.float64, np.bool_

    def __init__(self, device=None, threads: int | None = None):
        self.device = "cpu"
        self.fixed_threads = threads
        self._pool, self._pool_size = None, 0

    def asarray(self, a, dtype):
        """``a`` as a contiguous array of ``dtype`` (registers, inputs, weight matrices)."""
        return np.ascontiguousarray(a, dtype=dtype)

    def zeros(self, shape, dtype):
        """A zero-filled array."""
        return np.zeros(shape, dtype)

    def empty(self, shape, dtype):
        """An uninitialised array (every element is written before it is read)."""
        return np.empty(shape, dtype)

    def astype(self, a, dtype):
        """Cast without copying when already ``dtype``."""
        return a.astype(dtype, copy=False)

    def copy(self, dst, src):
        """``dst[...] = src`` (broadcasting; float -> int truncates toward zero)."""
        np.copyto(dst, src, casting="unsafe")

    def scale_into(self, dst, a, factor: int | float):
        """``dst[...] = a * factor`` (broadcasting), cast to ``dst``'s dtype; ``a`` may be reused."""
        np.multiply(a, factor, out=dst, casting="unsafe")

    def floor_scale(self, a, factor: float):
        """``floor(a * factor)`` in place (float ``a``, ``factor`` a power of two: exact)."""
        np.multiply(a, factor, out=a)
        return np.floor(a, out=a)

    def shift_right(self, a, bits: int):
        """``a >>= bits`` in place (integer ``a``): Lava's floor shift."""
        a >>= bits
        return a

    def decay(self, x, c: float) -> None:
        """``x = trunc(x c)`` in place, computed in float64 (exact, see the module docstring)."""
        if c != 1:
            np.multiply(x, c, out=x, dtype=np.float64, casting="unsafe")

    def spike_and_reset(self, v, vth: int, spikes) -> None:
        """``spikes = v > vth``; ``v = 0`` where it spiked."""
        np.greater(v, vth, out=spikes)
        np.multiply(v, np.logical_not(spikes), out=v)

    def matmul(self, x, w, out=None):
        """``x @ w`` (into ``out`` when given): messages times transposed weights."""
        return np.matmul(x, w, out=out)

    def int8_weights(self, w8: np.ndarray):
        """int8 ``W8^T`` for :meth:`int8_matmul`, or None without an exact int8 product."""
        if not int8_matmul_works():
            return None
        import torch

        return torch.from_numpy(np.ascontiguousarray(w8, np.int8))

    def int8_matmul(self, spikes, w8, offset: int, out):
        """``out = spikes @ (W8 + offset)`` in int32, exactly: ``spikes`` contiguous bool [M, n_in]."""
        import torch

        x = torch.from_numpy(spikes.view(np.int8))
        r = torch._int_mm(x, w8, out=torch.from_numpy(out))
        if offset:
            r += offset * x.sum(1, dtype=torch.int32)[:, None]
        return out

    def absmax(self, a) -> int:
        """Largest magnitude in ``a`` (0 when empty), for the int32-range checks."""
        return int(np.abs(a).max(initial=0))

    def constant_in_time(self, x) -> bool:
        """Whether every step of ``x`` [T, B, n] equals the first (a static image, say)."""
        return x.shape[0] > 1 and bool((x[1:] == x[:1]).all())

    def numpy(self, a) -> np.ndarray:
        """``a`` as a numpy array, for the mapper's ``unpack``."""
        return a

    def float32_exact(self) -> bool:
        """True: numpy float32 matmuls are IEEE, so integer sums below 2^24 are exact."""
        return True

    def int_matmul(self) -> bool:
        """True: numpy has an int64 matrix product, the fallback beyond float64's exact range."""
        return True

    @contextlib.contextmanager
    def running(self, threads: int):
        """One run's context: ``threads`` for torch (int8 products); BLAS held to 1 thread (its
        spinning threads and torch's OpenMP ones, awake at once, slowed small runs 4x)."""
        with _torch_threads(threads), _blas_threads(1):
            yield

    def map(self, fn, items, threads: int) -> None:
        """``fn(item)`` for every item, ``threads`` at a time (numpy releases the GIL; torch shares
        each operation among its own threads instead)."""
        if threads <= 1 or len(items) <= 1 or self.name == "torch":
            for item in items:
                fn(item)
            return
        if self._pool_size != threads:
            if self._pool is not None:
                self._pool.shutdown()
            self._pool, self._pool_size = ThreadPoolExecutor(threads, thread_name_prefix="loihi-emu"), threads
        for _ in self._pool.map(fn, items):
            pass


class _TorchOps(_NumpyOps):
    """The torch engine: tensors on ``device`` (``cpu`` with torch's threads, or ``cuda``)."""

    name = "torch"

    def __init__(self, device=None, threads: int | None = None):
        import torch

        super().__init__(None, threads)
        self.torch, self._factors = torch, {}
        self.device = torch.device(device or "cpu")
        self.int32, self.int64, self.float32, self.float64, self.bool_ = (
            torch.int32, torch.int64, torch.float32, torch.float64, torch.bool)

    def asarray(self, a, dtype):
        """``a`` (numpy or tensor) as a tensor of ``dtype`` on the engine's device."""
        if isinstance(a, self.torch.Tensor):
            return a.to(device=self.device, dtype=dtype)
        a = np.ascontiguousarray(a)
        if not a.flags.writeable:  # torch wants writable memory (the registers are read-only)
            a = a.copy()
        return self.torch.from_numpy(a).to(device=self.device, dtype=dtype)

    def zeros(self, shape, dtype):
        """A zero-filled tensor on the device."""
        return self.torch.zeros(shape, dtype=dtype, device=self.device)

    def empty(self, shape, dtype):
        """An uninitialised tensor on the device."""
        return self.torch.empty(shape, dtype=dtype, device=self.device)

    def astype(self, a, dtype):
        """Cast (a no-op when already ``dtype``)."""
        return a.to(dtype)

    def copy(self, dst, src):
        """``dst[...] = src`` (broadcasting; float -> int truncates toward zero)."""
        dst.copy_(src)

    def scale_into(self, dst, a, factor: int | float):
        """``dst[...] = a * factor`` (broadcasting), cast; ``a`` is scaled in place."""
        dst.copy_(a.mul_(factor))

    def floor_scale(self, a, factor: float):
        """``floor(a * factor)`` in place."""
        return a.mul_(factor).floor_()

    def decay(self, x, c: float) -> None:
        """``x = trunc(x c)`` in place, computed in float64 (the copy back truncates)."""
        if c != 1:
            if c not in self._factors:
                self._factors[c] = self.torch.tensor(c, dtype=self.torch.float64, device=self.device)
            x.copy_(x * self._factors[c])

    def spike_and_reset(self, v, vth: int, spikes) -> None:
        """``spikes = v > vth``; ``v = 0`` where it spiked."""
        self.torch.gt(v, vth, out=spikes)
        v.mul_(spikes.logical_not())

    def int8_weights(self, w8: np.ndarray):
        """int8 ``W8^T`` on the device (CPU only), or None."""
        return super().int8_weights(w8) if self.device.type == "cpu" else None

    def int8_matmul(self, spikes, w8, offset: int, out):
        """``out = spikes @ (W8 + offset)`` in int32, exactly (``torch._int_mm``)."""
        x = spikes.view(self.torch.int8)
        self.torch._int_mm(x, w8, out=out)
        if offset:
            out += offset * x.sum(1, dtype=self.torch.int32)[:, None]
        return out

    def matmul(self, x, w, out=None):
        """``x @ w`` (into ``out`` when given)."""
        return self.torch.matmul(x, w, out=out)

    def absmax(self, a) -> int:
        """Largest magnitude in ``a`` (0 when empty), for the int32-range checks."""
        return int(a.abs().max().item()) if a.numel() else 0

    def constant_in_time(self, x) -> bool:
        """Whether every step of ``x`` [T, B, n] equals the first."""
        return x.shape[0] > 1 and bool((x[1:] == x[:1]).all().item())

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

    @contextlib.contextmanager
    def running(self, threads: int):
        """``torch.set_num_threads(threads)`` for one run on the CPU, restored afterwards."""
        with _torch_threads(threads if self.device.type == "cpu" else None):
            yield


__all__ = [
    "DEVICE_ENV",
    "ENGINES",
    "ENGINE_ENV",
    "FLOAT32_EXACT",
    "FLOAT64_EXACT",
    "FixedLif",
    "THREADS_ENV",
    "V_MAX",
    "available_cores",
    "blocks",
    "default_threads",
    "int8_matmul_works",
    "int8_split",
    "make_ops",
    "physical_cores",
    "resolve_engine",
    "spikes_float64",
]
