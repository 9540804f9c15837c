"""One study run: train a variant, then measure what the results table and the plots need.

:func:`run_job` is a pure function of (config, job, device): it writes nothing, so the runner
can execute it in worker processes and decide where results go. Test accuracy is read from the
model the trainer kept (best validation epoch); the test split is never looked at to choose
anything.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from benchmarks.metrics import count_torch
from benchmarks.study.protocol import Job, StudyConfig, model_config
from taaf.config import ATTENTION_FUSIONS, MODALITIES
from taaf.data import load_dataset
from taaf.evaluate import predict
from taaf.training.trainer import model_config_for, train

SCHEMA = "taaf-study-run/2"  # 2: epochs_to_target (absolute), per-sample correctness, stopped_epoch


@dataclass(frozen=True)
class Attention:
    """alpha [N, T] and beta [N, T, M] of the first N test samples (TAAF variants only)."""

    labels: list[int]
    predicted: list[int]
    alpha: list[list[float]]
    beta: list[list[list[float]]]


@dataclass(frozen=True)
class RunResult:
    """Everything the study keeps of one run (accuracies, convergence, SynOps, history, attention); saved as
    JSON per job."""

    variant: str
    setting: str
    seed: int
    steps: int
    test: dict[str, float]  # fused / audio / visual accuracy of the kept model
    val: dict[str, float]
    selected_epoch: int
    epochs_to_target: int | None  # first epoch whose val fused accuracy reached the study's absolute target
    stopped_epoch: int  # the last epoch trained and evaluated (early stopping ends runs before the cap)
    correct: str  # fused test predictions of the kept model, one '1' / '0' per sample (paired bootstrap)
    synops: float  # per inference on the test split (NeuroBench effective ACs + MACs, chip only)
    effective_acs: float
    effective_macs: float
    firing_rate: float  # spikes / (neurons x steps) over every spiking layer
    train_seconds: float
    device: str
    history: list[dict[str, Any]]  # per epoch: val, test, importance, coefficient, loss
    attention: Attention | None = None
    lr: float = 0.0  # the learning rate it trained with
    trial: bool = False  # a tuning trial (its lr was the job's own)
    diverged_epoch: int | None = None  # loss or weights non-finite there: training stopped (stopped_epoch before it)

    @property
    def job(self) -> Job:
        """The job this result belongs to, to match saved results against the protocol."""
        return Job(self.variant, self.setting, self.seed, self.steps, self.lr if self.trial else None)

    def as_dict(self) -> dict[str, Any]:
        """The result as a JSON-able dict tagged with its schema, as written to the run file."""
        return {"schema": SCHEMA, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunResult":
        """Rebuild a result from :meth:`as_dict` output; a record of another schema raises ValueError."""
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} record (schema {data.get('schema')!r})")
        fields = {k: v for k, v in data.items() if k != "schema"}
        att = fields.get("attention")
        fields["attention"] = Attention(**att) if att else None
        return cls(**fields)


def epochs_to_target(curve: list[float], target: float) -> int | None:
    """First (1-based) epoch whose value reaches the absolute ``target``; None if none does.

    Absolute, so that it is comparable across methods: a fraction of each run's own final
    accuracy rewards a method for ending low."""
    for epoch, value in enumerate(curve, start=1):
        if value >= target:
            return epoch
    return None


def run_job(cfg: StudyConfig, job: Job, device: str = "cpu") -> RunResult:
    """Train ``job``'s variant and measure accuracies, convergence, SynOps and attention; writes nothing."""
    data = load_dataset(cfg.data_spec(job.setting, job.steps))
    train_cfg = cfg.train_config(job)
    model_cfg = model_config(model_config_for(data, train_cfg), job)
    start = time.perf_counter()
    result = train(data, train_cfg, model_cfg, device=device, progress=False)
    seconds = time.perf_counter() - start
    model = result.model.cpu().eval()
    kept = result.history[result.selected_epoch - 1]
    curve = [e.val["fused"] for e in result.history]

    n = min(cfg.synops_samples, len(data.test))
    head = data.test.subset(slice(0, n))
    counts = count_torch(model, head.audio, head.chip_visual())
    test_preds = predict(model, data.test)

    attention = None
    if model_cfg.fusion in ATTENTION_FUSIONS and job.seed == cfg.seeds[0] and cfg.attention_samples > 0:
        k = min(cfg.attention_samples, len(data.test))
        preds = predict(model, data.test.subset(slice(0, k)))
        attention = Attention(labels=preds.labels.tolist(), predicted=preds.fused.tolist(),
                              alpha=_rounded(preds.alpha), beta=_rounded(preds.beta))
    return RunResult(
        variant=job.variant, setting=job.setting, seed=job.seed, steps=job.steps,
        test=dict(kept.test), val=dict(kept.val), selected_epoch=result.selected_epoch,
        epochs_to_target=epochs_to_target(curve, cfg.convergence_target), stopped_epoch=len(result.history),
        correct="".join("1" if ok else "0" for ok in test_preds.fused == test_preds.labels),
        synops=float(counts.synops), effective_acs=float(counts.effective_acs),
        effective_macs=float(counts.effective_macs), firing_rate=1.0 - float(counts.activation_sparsity),
        train_seconds=seconds, device=str(device),
        history=[{"epoch": e.epoch, "loss": e.loss, "val": e.val, "test": e.test,
                  "importance": {m: e.importance[m] for m in MODALITIES},
                  "coefficient": {m: e.coefficient[m] for m in MODALITIES},
                  "attention_entropy": dict(e.attention_entropy)} for e in result.history],
        attention=attention, lr=train_cfg.lr, trial=job.lr is not None, diverged_epoch=result.diverged_epoch,
    )


def _rounded(array: np.ndarray) -> list:
    return np.round(np.asarray(array, dtype=np.float64), 5).tolist()
