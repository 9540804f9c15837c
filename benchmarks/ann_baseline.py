"""The ANN baseline, measured: accuracy, MACs, ONNX CPU latency / throughput, GPU energy.

    python -m benchmarks.ann_baseline --ann runs/ann/model.pt
    python -m benchmarks.ann_baseline --train-epochs 12 --out runs/ann   # trains one first
    python -m benchmarks.ann_baseline ... --json ann_baseline.json

The baseline is :class:`taaf.model.ann.AVANNNet` (the SNN's layers, ReLU, no time dimension),
trained by ``taaf train --model ann`` with the same ``train()`` loop, data, method and budget
(epochs, batch size, learning rate) as the SNN. Without ``--ann`` (or when the file is absent)
one is trained with the SNN's defaults: AV-Digits, T = 16, TAAF, 12 epochs.

What each number is:

* MACs per inference (counted, not measured): ``torch.utils.flop_counter.FlopCounterMode``
  over one forward pass, divided by 2 and by the batch. FlopCounterMode counts matrix products
  (mm / addmm / bmm: 2*M*N*K) and convolutions (2 * output elements * C_in/groups * k*k); it
  does not count bias additions, ReLU, the mean over time, softmaxes or the weighted sum of the
  head, so MACs = multiply-accumulates of the Linear and Conv2d layers only (the definition used
  for ANN/SNN comparisons).
* ONNX CPU latency (measured): the exported model.onnx in onnxruntime's CPU provider, batch 1,
  the median over >= 50 single runs after warm-up. Throughput: batch 256, samples / median run.
  Inputs are real test-split samples (tiled when the split is smaller than the batch).
* GPU energy per inference (measured, CUDA + NVML only): NVML's total-energy counter (mJ since
  driver load) read around a window of >= 2 s of back-to-back inference after warm-up; the idle
  power, measured first over its own >= 2 s window with the model resident, is subtracted, so
  the figure is the energy the inference itself costs: ((E_end - E_start) - P_idle * t) / n
  for n samples. Without a GPU (or NVML, or a GPU whose counter is unsupported) it is reported
  as not measured, with the reason.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

#: Clock and sleep used by the energy measurement; module attributes so tests can drive them.
_now = time.perf_counter
_sleep = time.sleep

NO_CUDA = "no GPU lent to this run: no CUDA device (torch.cuda.is_available() is False)"
NO_NVML = "nvidia-ml-py not installed"
NO_COUNTER = "NVML energy counter not supported on this GPU"


# --------------------------------------------------------------------------- results

@dataclass(frozen=True)
class MacCount:
    """Multiply-accumulates of one inference (one sample), as FlopCounterMode counts them."""

    macs: int  # per sample
    flops: int  # FlopCounterMode's total for the whole example batch
    batch: int
    by_op: dict[str, int]  # MACs per sample per aten op (mm, addmm, convolution, ...)
    counted: str = "Linear and Conv2d multiply-accumulates (FLOPs / 2); no bias, activation or softmax"

    def as_dict(self) -> dict[str, Any]:
        """All fields as a JSON-able dict, for the --json report."""
        return asdict(self)


@dataclass(frozen=True)
class OnnxTiming:
    """onnxruntime CPU timing of one batch size (median over ``runs`` after warm-up)."""

    batch: int
    runs: int
    median_ms: float
    min_ms: float
    p90_ms: float
    samples_per_second: float  # batch / median run time
    threads: int | None  # intra-op threads (None: onnxruntime's default)

    def as_dict(self) -> dict[str, Any]:
        """All fields as a JSON-able dict, for the --json report."""
        return asdict(self)


@dataclass(frozen=True)
class EnergyResult:
    """GPU energy per inference (one sample), idle power subtracted; or why it was not measured."""

    batch: int
    measured: bool
    reason: str = ""
    joules_per_inference: float | None = None  # net of idle
    gross_joules_per_inference: float | None = None  # including the idle share
    idle_watts: float | None = None
    active_watts: float | None = None
    seconds: float | None = None  # length of the measured window
    inferences: int | None = None  # samples in the window (batches * batch)
    device: str = ""

    def as_dict(self) -> dict[str, Any]:
        """All fields as a JSON-able dict, for the --json report."""
        return asdict(self)


@dataclass(frozen=True)
class BaselineReport:
    """Everything ``main`` prints: counted ("estimated") and measured numbers kept apart."""

    checkpoint: str
    dataset: str
    preset: str
    n_steps: int
    method: str
    epochs: int
    test_accuracy: dict[str, float]  # fused / audio / visual, measured
    macs: MacCount  # counted
    params: int  # counted
    onnx_max_abs_diff: float  # ONNX vs PyTorch logits on a test batch
    latency: OnnxTiming  # measured, batch 1
    throughput: OnnxTiming  # measured, large batch
    energy: tuple[EnergyResult, ...]  # measured or not, batch 1 and large batch
    machine: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        """The whole report as nested JSON-able dicts, as --json writes it."""
        return asdict(self)


# --------------------------------------------------------------------------- MACs

def count_macs(model: nn.Module, example_inputs: tuple[torch.Tensor, ...]) -> MacCount:
    """MACs per sample of ``model(*example_inputs)`` (batch-first inputs), see the module doc."""
    batch = int(example_inputs[0].shape[0])
    counter = FlopCounterMode(display=False)
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        with torch.no_grad(), counter:
            model(*example_inputs)
    finally:
        model.train(was_training)
    flops = int(counter.get_total_flops())
    per_op = counter.get_flop_counts().get("Global", {})
    by_op = {getattr(op, "__name__", str(op)): int(n) // 2 // batch for op, n in per_op.items()}
    return MacCount(macs=flops // 2 // batch, flops=flops, batch=batch, by_op=by_op)


def parameter_count(model: nn.Module) -> int:
    """Number of parameters of ``model`` (counted), reported next to the MACs."""
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------- ONNX timing

def batch_of(array: np.ndarray, batch: int) -> np.ndarray:
    """The first ``batch`` samples, tiled when there are fewer: timing needs full batches."""
    return np.ascontiguousarray(np.take(array, np.arange(batch) % len(array), axis=0), dtype=np.float32)


def time_onnx(onnx_bytes: bytes, inputs: dict[str, np.ndarray], batch: int, runs: int = 50,
              warmup: int = 10, threads: int | None = None) -> OnnxTiming:
    """Time ``runs`` single ``session.run`` calls on a batch of ``batch`` samples (CPU provider).

    Batch 1 gives latency (median ms), a large batch throughput (samples/s); the median is
    reported because a shared machine adds occasional long outliers.
    """
    from export.ann_onnx import OUTPUTS, ort_session

    if runs < 1 or batch < 1:
        raise ValueError("runs and batch must be positive")
    session = ort_session(onnx_bytes, threads)
    feeds = {name: batch_of(inputs[name], batch) for name in (i.name for i in session.get_inputs())}
    for _ in range(warmup):
        session.run(list(OUTPUTS), feeds)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(list(OUTPUTS), feeds)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return OnnxTiming(batch=batch, runs=runs, median_ms=1e3 * median, min_ms=1e3 * min(times),
                      p90_ms=1e3 * float(np.percentile(times, 90)), samples_per_second=batch / median,
                      threads=threads)


# --------------------------------------------------------------------------- GPU energy

def net_energy_per_inference(start_mj: float, end_mj: float, seconds: float, inferences: int,
                             idle_watts: float) -> float:
    """Joules per inference above idle: ((E_end - E_start) - P_idle * t) / n, counter in mJ."""
    return ((end_mj - start_mj) / 1e3 - idle_watts * seconds) / inferences


def _nvml_handle(pynvml, device: torch.device):
    """The NVML handle of torch's ``device``: by UUID (right under CUDA_VISIBLE_DEVICES, where
    torch's index and NVML's differ), else by index."""
    try:
        uuid = str(torch.cuda.get_device_properties(device).uuid)
    except (RuntimeError, AssertionError, AttributeError, ValueError):  # no real CUDA device (tests), old torch
        uuid = ""
    for candidate in (uuid, f"GPU-{uuid}") if uuid else ():
        try:
            return pynvml.nvmlDeviceGetHandleByUUID(candidate)
        except pynvml.NVMLError:
            continue
    return pynvml.nvmlDeviceGetHandleByIndex(device.index or 0)


def _example_batch(model: nn.Module, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    cfg = model.config
    g = torch.Generator().manual_seed(0)
    return (torch.randn(batch, cfg.n_steps, cfg.audio.in_features, generator=g),
            torch.rand(batch, *cfg.visual.in_shape, generator=g))


def measure_gpu_energy(model: nn.Module, batch: int, min_seconds: float = 2.0,
                       inputs: tuple[torch.Tensor, ...] | None = None, device: str | torch.device | None = None,
                       warmup: int = 20, settle_seconds: float = 0.5) -> EnergyResult:
    """GPU energy per inference (J per sample) of ``model`` at ``batch``, idle power subtracted.

    Order: model and inputs moved to the GPU; a short settle; idle window (nothing running) of
    ``min_seconds``; ``warmup`` inferences; then inference repeated (synchronising after each,
    so the window holds only finished work) until ``min_seconds`` have passed. Two seconds is
    well above the counter's update interval, so its granularity is a small error.
    """
    if not torch.cuda.is_available():
        return EnergyResult(batch=batch, measured=False, reason=NO_CUDA)
    try:
        import pynvml
    except ImportError:
        return EnergyResult(batch=batch, measured=False, reason=NO_NVML)
    device = torch.device(device) if device is not None else torch.device("cuda", torch.cuda.current_device())
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return EnergyResult(batch=batch, measured=False, reason=f"NVML could not start ({exc})")
    try:
        handle = _nvml_handle(pynvml, device)
        try:
            pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        except pynvml.NVMLError_NotSupported:
            return EnergyResult(batch=batch, measured=False, reason=NO_COUNTER)
        name = pynvml.nvmlDeviceGetName(handle)
        name = name.decode() if isinstance(name, bytes) else str(name)

        def energy_mj() -> float:
            return float(pynvml.nvmlDeviceGetTotalEnergyConsumption(handle))

        net = copy.deepcopy(model).to(device).eval()
        x = tuple(t.to(device) for t in (inputs if inputs is not None else _example_batch(model, batch)))
        torch.cuda.synchronize(device)
        _sleep(settle_seconds)
        e0, t0 = energy_mj(), _now()
        _sleep(min_seconds)
        e1, t1 = energy_mj(), _now()
        idle_watts = (e1 - e0) / 1e3 / (t1 - t0)
        with torch.inference_mode():
            for _ in range(warmup):
                net(*x)
            torch.cuda.synchronize(device)
            runs, e0, t0 = 0, energy_mj(), _now()
            while True:
                net(*x)
                torch.cuda.synchronize(device)
                runs += 1
                if _now() - t0 >= min_seconds:
                    break
            e1, t1 = energy_mj(), _now()
        seconds, n = t1 - t0, runs * batch
        return EnergyResult(
            batch=batch, measured=True,
            joules_per_inference=net_energy_per_inference(e0, e1, seconds, n, idle_watts),
            gross_joules_per_inference=(e1 - e0) / 1e3 / n,
            idle_watts=idle_watts, active_watts=(e1 - e0) / 1e3 / seconds,
            seconds=seconds, inferences=n, device=name,
        )
    finally:
        pynvml.nvmlShutdown()


# --------------------------------------------------------------------------- the table

def _trained_ann(args) -> Path:
    """``--ann`` when given, else a fresh ANN trained like the SNN (same data and budget)."""
    if args.ann:
        return Path(args.ann)  # load_checkpoint names a missing or foreign file
    from taaf.config import TrainConfig
    from taaf.data import PRESETS, DataSpec, load_dataset
    from taaf.training.trainer import model_config_for
    from taaf.workflow import CHECKPOINT_NAME, train_and_save

    from taaf.paths import check_output_dir

    out = check_output_dir(args.out)  # train_and_save replaces it as a whole
    spec = DataSpec(n_steps=args.steps, preset=args.preset, degradation=PRESETS[args.preset])
    cfg = TrainConfig(method=args.method, epochs=args.train_epochs, seed=args.seed)
    data = load_dataset(spec)
    print(f"training an ANN baseline: {args.method}, {args.train_epochs} epochs, AV-Digits T = {args.steps} -> {out}")
    train_and_save(data, spec, cfg, model_config_for(data, cfg, model="ann"), out, progress=False)
    return out / CHECKPOINT_NAME


def run_baseline(checkpoint: Path, large_batch: int = 256, runs: int = 50, threads: int | None = None,
                 energy_seconds: float = 2.0) -> BaselineReport:
    """Measure an ANN checkpoint (see the module doc for what every number is)."""
    import onnxruntime

    from export.ann_onnx import ann_onnx, run_ann_onnx
    from taaf.checkpoint import load_checkpoint
    from taaf.data import load_dataset
    from taaf.errors import TaafError
    from taaf.evaluate import predict

    ckpt = load_checkpoint(checkpoint)
    if ckpt.model_config.model != "ann":
        raise TaafError(f"{checkpoint} is a {ckpt.model_config.model} checkpoint, not an ANN baseline")
    model = ckpt.model.eval()
    split = load_dataset(ckpt.data_spec).test
    accuracy = predict(model, split).accuracies().as_dict()
    macs = count_macs(model, (torch.from_numpy(split.audio[:1]), torch.from_numpy(split.image[:1])))
    onnx_bytes = ann_onnx(model)
    audio, image = batch_of(split.audio, 64), batch_of(split.image, 64)
    with torch.no_grad():
        reference = model(torch.from_numpy(audio), torch.from_numpy(image)).logits.numpy()
    diff = float(np.abs(run_ann_onnx(onnx_bytes, audio, image) - reference).max())
    feeds = {"audio": split.audio, "image": split.image}
    return BaselineReport(
        checkpoint=str(checkpoint), dataset=ckpt.data_spec.dataset, preset=ckpt.data_spec.preset,
        n_steps=ckpt.model_config.n_steps, method=ckpt.train_config.method, epochs=ckpt.train_config.epochs,
        test_accuracy=accuracy, macs=macs, params=parameter_count(model), onnx_max_abs_diff=diff,
        latency=time_onnx(onnx_bytes, feeds, 1, runs=runs, threads=threads),
        throughput=time_onnx(onnx_bytes, feeds, large_batch, runs=runs, threads=threads),
        energy=tuple(measure_gpu_energy(model, b, min_seconds=energy_seconds) for b in (1, large_batch)),
        machine={"cpu": platform.processor() or platform.machine(), "cores": str(os.cpu_count()),
                 "onnxruntime": onnxruntime.__version__, "torch": torch.__version__,
                 "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else "none"},
    )


def format_table(r: BaselineReport) -> str:
    """Rows: quantity | estimated (counted, not run) | measured."""
    acc = r.test_accuracy
    rows = [
        ("test accuracy fused / audio / visual", "-", f"{acc['fused']:.3f} / {acc['audio']:.3f} / {acc['visual']:.3f}"),
        ("MACs per inference (FlopCounterMode / 2)", f"{r.macs.macs:,}", "-"),
        ("parameters", f"{r.params:,}", "-"),
        ("ONNX CPU latency, batch 1 (median ms)", "-", f"{r.latency.median_ms:.3f}"),
        (f"ONNX CPU throughput, batch {r.throughput.batch} (samples/s)", "-",
         f"{r.throughput.samples_per_second:,.0f}"),
    ]
    for e in r.energy:
        value = f"{e.joules_per_inference:.3e}" if e.measured else f"not measured: {e.reason}"
        rows.append((f"GPU energy per inference, batch {e.batch} (J)", "-", value))
    w0, w1 = max(len(q) for q, _, _ in rows), max(12, *(len(c) for _, c, _ in rows))
    lines = [f"{'quantity':<{w0}}  {'estimated':>{w1}}  measured", "-" * (w0 + w1 + 14)]
    lines += [f"{q:<{w0}}  {c:>{w1}}  {m}" for q, c, m in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: train or load the ANN baseline, measure it and print (and optionally save) the report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ann", default="", help="an ANN checkpoint (taaf train --model ann); trained when absent")
    parser.add_argument("--train-epochs", type=int, default=12, help="epochs when training one (the SNN default)")
    parser.add_argument("--out", default="runs/ann", help="where a freshly trained ANN is written")
    parser.add_argument("--method", default="taaf", choices=("taaf", "concat", "ogm-ge"))
    parser.add_argument("--steps", type=int, default=16, help="T of the data (the ANN averages over it)")
    parser.add_argument("--preset", default="audio-dominant")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=256, help="the throughput / energy batch")
    parser.add_argument("--runs", type=int, default=50, help="timed onnxruntime runs per batch size (>= 50)")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: its own)")
    parser.add_argument("--energy-seconds", type=float, default=2.0, help="idle and active window length (>= 2)")
    parser.add_argument("--json", default="", help="also write the report as JSON here")
    args = parser.parse_args(argv)
    from taaf.errors import TaafError

    torch.manual_seed(args.seed)
    try:
        report = run_baseline(_trained_ann(args), args.batch, args.runs, args.threads, args.energy_seconds)
    except TaafError as exc:
        print(f"ann_baseline: error: {exc}", file=sys.stderr)
        return 2
    print(f"ANN baseline {report.checkpoint}: {report.method}, {report.epochs} epochs, {report.dataset} "
          f"({report.preset}), T = {report.n_steps} averaged; machine {report.machine}")
    print(f"ONNX vs PyTorch max |logit difference| {report.onnx_max_abs_diff:.2e}; onnxruntime threads "
          f"{report.latency.threads or 'default'}, {report.latency.runs} runs per batch size")
    print()
    print(format_table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report.as_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
