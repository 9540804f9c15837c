"""The training loop for TAAF, concat fusion and OGM-GE, on one device or under torchrun.

One epoch = shuffled mini-batches (seeded), forward, loss, modality balancing, optimizer step;
then fused / audio-only / visual-only accuracy on val and test. The model with the best
*validation* accuracy is the one kept (test is logged, never used for selection).

Balancing per step:
* taaf:   attention importance -> k_m -> learning rate of modality m's parameter group
* ogm-ge / ogm-ge-published: unimodal confidence scores -> k_m -> gradients (+ GE noise), in our
  adaptation or as the official code does it (:mod:`taaf.training.modulation`)
* concat / concat-aux: nothing (k = 1), importance logged as confidence scores for comparison;
  concat-aux adds the per-modality per-step loss at uniform weights (TAAF's auxiliary term
  without attention or balancing: the baseline that isolates what that term alone does)

Distributed: under ``torchrun`` (WORLD_SIZE > 1) each rank takes every world-th sample of the
shuffled order (the < world samples left over are dropped, so all ranks run the same number of
steps), gradients are averaged by DistributedDataParallel, the balancing statistics are
all-reduced so every rank applies the same coefficients (and OGM-GE draws the same noise), the
logged loss / accuracy are summed over ranks, and rank 0 evaluates and writes. The process group
is destroyed on return when ``train`` created it. One step is :func:`train_step`, which the
throughput benchmark times on its own.
"""
from __future__ import annotations

import copy
import gc
import math
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from taaf.progress import progress as progress_bar

from taaf.config import MODALITIES, AudioEncoderConfig, ModelConfig, TrainConfig, VisualEncoderConfig
from taaf.data.base import MultimodalDataset
from taaf.errors import ConfigError, TaafError
from taaf.evaluate import evaluate, schedule_tensor, split_tensors
from taaf.model.network import AVNetwork, build_network
from taaf.training import losses, modulation


@dataclass
class EpochRecord:
    """One epoch's logged metrics: loss, accuracies, balancing statistics and throughput."""

    epoch: int
    loss: float
    train_accuracy: float
    val: dict[str, float]
    test: dict[str, float]
    importance: dict[str, float]  # what drives balancing (attention for taaf, confidence otherwise)
    coefficient: dict[str, float]  # mean k_m applied during the epoch
    seconds: float
    samples_per_second: float
    attention_entropy: dict[str, float] = field(default_factory=dict)  # temporal / modality, 1 = uniform


@dataclass
class TrainResult:
    """The trained model (best-validation weights loaded), its epoch history and which epoch was selected."""

    model: AVNetwork
    history: list[EpochRecord] = field(default_factory=list)
    selected_epoch: int = 0
    diverged_epoch: int | None = None  # the epoch whose loss or weights became non-finite (training stopped there)

    def summary(self) -> dict:
        """Selected epoch with its val and test accuracies, for checkpoint summaries."""
        best = self.history[self.selected_epoch - 1]
        return {"selected_epoch": self.selected_epoch, "val": best.val, "test": best.test}


def model_config_for(data: MultimodalDataset, train: TrainConfig, model: str = "snn", **overrides) -> ModelConfig:
    """The default architecture for a data set's shapes (encoders sized for small inputs).

    ``model`` = snn or ann: the ANN baseline gets the very same layer sizes; time-warp is off
    for it because it has no time axis to warp (the config then says what was built)."""
    split = data.train
    cfg = ModelConfig(
        n_classes=len(split.class_names),
        n_steps=split.n_steps,
        audio=AudioEncoderConfig(in_features=split.audio_features),
        visual=VisualEncoderConfig(in_shape=split.image_shape),
        fusion=train.fusion,
        time_warp=train.method == "taaf" and model == "snn",
        model=model,
    )
    return ModelConfig(**{**asdict_shallow(cfg), **overrides})


def asdict_shallow(cfg) -> dict:
    """A dataclass's fields as a dict without recursing into nested dataclasses (unlike ``asdict``)."""
    return {f: getattr(cfg, f) for f in cfg.__dataclass_fields__}


def seed_everything(seed: int) -> None:
    """Seed torch and numpy and ask for deterministic kernels, so a seed reproduces a run on one machine."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


class _Distributed:
    """World size 1 unless launched by torchrun.

    Owns the process group only when it created it: a caller that initialised its own group
    (a test, a notebook) keeps it after ``train`` returns; otherwise ``close`` destroys it so
    torchrun's workers exit without leaked gloo/NCCL state.
    """

    def __init__(self, device: torch.device):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = 0
        self.owns_group = False
        self.device = device
        self._wrapper: torch.nn.Module | None = None
        if self.world > 1:
            if device.type == "cuda" and device.index is None:
                # Every rank on cuda:0 would make NCCL fail; torchrun says which GPU is ours.
                self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
            if not dist.is_initialized():
                dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
                self.owns_group = True
            self.rank = dist.get_rank()

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        return self.sum(t) / self.world if self.world > 1 else t

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            t = t.clone()
            dist.all_reduce(t)
        return t

    def shard(self, order: torch.Tensor) -> torch.Tensor:
        """This rank's every world-th sample of ``order``. The tail that does not divide evenly
        is dropped (a different one each epoch, as the order is reshuffled): ranks with unequal
        shards could run a different number of steps, and DDP would then wait forever for the
        missing rank's gradients."""
        usable = len(order) - len(order) % self.world
        return order[:usable][self.rank::self.world]

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """DDP when distributed, else the model itself.

        * find_unused_parameters=False: every parameter of every method (taaf, concat, ogm-ge,
          with or without time-warp / per-step loss) receives a gradient each step (checked
          by a backward pass per configuration), so the per-step graph search would be pure
          cost; with it, DDP would also re-wrap the HeadOutput dataclass through its pytree
          path, which does not look inside dataclasses.
        * broadcast_buffers=False: the only buffers are constant LIF settings and snnTorch's
          scratch membrane ``mem``, which LIFLayer overwrites at every forward; broadcasting
          them would add a collective per step for nothing.
        """
        if self.world == 1:
            return model
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        self._wrapper = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=device_ids, find_unused_parameters=False, broadcast_buffers=False)
        return self._wrapper

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        """Free the DDP wrapper now, then destroy the group if we created it.

        DDP's reducer holds the process group and sits in reference cycles, so without the
        explicit collect it is freed by some later garbage collection, possibly at interpreter
        exit after the group is gone, where gloo's threads abort the worker ("terminate called
        without an active exception", seen once in CI under load)."""
        if self._wrapper is not None:
            self._wrapper = None
            gc.collect()
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False


@dataclass
class StepStats:
    """What one optimizer step reports to the epoch loop (and to the throughput benchmark)."""

    loss: float  # mean loss of this rank's batch
    correct: int  # fused-head hits in this rank's batch
    importance: torch.Tensor  # [M] on cpu, averaged over ranks: what drove balancing
    coefficient: torch.Tensor  # [M] on cpu, the k_m applied
    entropy: torch.Tensor = field(default_factory=lambda: torch.ones(2))  # temporal, modality attention


def build_model_and_optimizer(model_cfg: ModelConfig, cfg: TrainConfig, device: torch.device
                              ) -> tuple[AVNetwork, dict[str, list[torch.nn.Parameter]], torch.optim.Optimizer]:
    """The model (SNN or ANN, as ``model_cfg.model`` says), its modality parameter groups and an
    optimizer with one group per modality (+ shared), so TAAF can set a learning rate per modality."""
    model = build_network(model_cfg).to(device)
    groups = model.modality_parameters()
    optimizer = _optimizer(cfg, [{"params": groups[name], "name": name} for name in (*MODALITIES, "shared")])
    return model, groups, optimizer


def train_step(trainable: torch.nn.Module, optimizer: torch.optim.Optimizer,
               groups: dict[str, list[torch.nn.Parameter]], audio: torch.Tensor, image: torch.Tensor,
               labels: torch.Tensor, cfg: TrainConfig, world: _Distributed | None = None,
               noise_gen: torch.Generator | None = None, balance: bool = True,
               schedule: torch.Tensor | None = None) -> StepStats:
    """One forward / loss / balancing / optimizer step on one batch.

    ``trainable`` is the model or its DDP wrapper; ``groups`` are the *unwrapped* model's
    modality parameters. Under DDP, ``backward`` has already averaged the gradients when the
    OGM-GE modulation runs, and ``noise_gen`` is seeded identically on every rank, so every
    rank adds the same GE noise and the replicas stay equal. ``schedule`` is the batch's visual
    stream schedule (None for static images).
    """
    out = trainable(audio, image) if schedule is None else trainable(audio, image, schedule)
    if cfg.method in ("taaf", "concat-aux"):  # concat's head has uniform alpha: the plain mean over steps
        loss = losses.taaf_loss(out, labels, cfg.step_loss_weight,
                                cfg.attention_entropy_weight if cfg.method == "taaf" else 0.0)
    else:
        loss = losses.fused_loss(out, labels)
    if cfg.spike_rate_weight:
        loss = loss + cfg.spike_rate_weight * out.spike_rate
    if cfg.method == "taaf":
        importance = modulation.attention_importance(out.alpha, out.beta)
    else:
        importance = modulation.confidence_scores([out.audio_logits, out.visual_logits], labels)
    if world is not None:
        importance = world.mean(importance)
    ogm = cfg.method in ("ogm-ge", "ogm-ge-published")
    if not balance:
        k = torch.ones(2)
    elif cfg.method == "taaf":
        k = modulation.taaf_coefficients(importance, cfg.gamma, cfg.min_coefficient) if cfg.modulate_lr else torch.ones(2)
    else:
        k = modulation.ogm_ge_coefficients(importance, cfg.ogm_alpha) if ogm else torch.ones(2)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    k = k.cpu()
    for group in optimizer.param_groups:
        m = group["name"]
        scale = float(k[MODALITIES.index(m)]) if (cfg.method == "taaf" and m in MODALITIES) else 1.0
        group["lr"] = cfg.lr * scale
    if cfg.method == "ogm-ge":
        for m_i, m in enumerate(MODALITIES):
            if k[m_i] < 1:
                modulation.modulate_gradients(groups[m], float(k[m_i]), cfg.ge_noise, noise_gen)
    elif cfg.method == "ogm-ge-published" and balance:  # both modalities, every step, as the official code
        kernels = modulation.published_ogm_parameters(getattr(trainable, "module", trainable))
        for m_i, m in enumerate(MODALITIES):
            modulation.modulate_gradients(kernels[m], float(k[m_i]), cfg.ge_noise, noise_gen, noise_after_scaling=True)
    optimizer.step()
    getattr(trainable, "module", trainable).constrain_()  # DDP wraps the model in .module
    return StepStats(loss=float(loss.detach()), correct=int((out.logits.argmax(-1) == labels).sum()),
                     importance=importance.cpu(), coefficient=k,
                     entropy=modulation.attention_entropy(out.alpha, out.beta).cpu())


def train(data: MultimodalDataset, cfg: TrainConfig, model_cfg: ModelConfig | None = None,
          device: str | torch.device = "cpu", progress: bool = True) -> TrainResult:
    """Train a model on ``data`` as ``cfg`` says and return it with the best-validation weights loaded."""
    seed_everything(cfg.seed)
    world = _Distributed(torch.device(device))
    try:
        return _train(data, cfg, model_cfg or model_config_for(data, cfg), world, progress)
    finally:
        world.close()


def _train(data: MultimodalDataset, cfg: TrainConfig, model_cfg: ModelConfig, world: _Distributed,
           progress: bool) -> TrainResult:
    device = world.device
    if cfg.spike_rate_weight and model_cfg.model != "snn":
        raise ConfigError("a spike-rate weight needs the spiking model (--model snn): the ANN has no spikes")
    model, groups, optimizer = build_model_and_optimizer(model_cfg, cfg, device)
    trainable = world.wrap(model)

    audio, image, labels = split_tensors(data.train, device)
    schedule = schedule_tensor(data.train, device)
    n = len(labels)
    order_gen = torch.Generator().manual_seed(cfg.seed)
    noise_gen = torch.Generator().manual_seed(cfg.seed + 1)
    result = TrainResult(model=model)
    best_val, best_state = -1.0, None

    for epoch in range(1, cfg.epochs + 1):
        start = time.perf_counter()
        order = world.shard(torch.randperm(n, generator=order_gen)).to(device)
        per_rank = max(1, cfg.batch_size // world.world)
        batches = range(0, len(order), per_rank)
        sums = {"loss": 0.0, "correct": 0.0, "seen": 0, "imp": torch.zeros(2), "k": torch.zeros(2), "steps": 0,
                "entropy": torch.zeros(2)}
        bar = progress_bar(batches, f"epoch {epoch}/{cfg.epochs} [{cfg.method}]", progress and world.is_main)
        model.train()
        for b in bar:
            idx = order[b:b + per_rank]
            step = train_step(trainable, optimizer, groups, audio[idx], image[idx], labels[idx], cfg, world, noise_gen,
                              balance=epoch > cfg.modulation_warmup,
                              schedule=None if schedule is None else schedule[idx])
            sums["loss"] += step.loss * len(idx)
            sums["correct"] += step.correct
            sums["seen"] += len(idx)
            sums["imp"] += step.importance
            sums["k"] += step.coefficient
            sums["entropy"] += step.entropy
            sums["steps"] += 1
            bar.set_postfix(loss=f"{step.loss:.3f}", k_a=f"{float(step.coefficient[0]):.2f}",
                            k_v=f"{float(step.coefficient[1]):.2f}")
        elapsed = time.perf_counter() - start
        # Loss and accuracy over every rank's shard, not just rank 0's (a collective: all ranks).
        loss_sum, correct, seen = world.sum(
            torch.tensor([sums["loss"], sums["correct"], sums["seen"]], dtype=torch.float64, device=device)).tolist()
        # The all-reduced loss and the (replicated) weights are the same on every rank: all ranks
        # take the same decision. The weights catch a last step that broke them after a finite loss.
        if not (math.isfinite(loss_sum) and all(bool(torch.isfinite(p).all()) for p in model.parameters())):
            _stop_diverged(result, cfg, epoch, world.is_main)
            break
        if world.is_main:
            val, test = evaluate(model, data.val), evaluate(model, data.test)
            steps = max(sums["steps"], 1)
            imp = sums["imp"] / steps
            imp = imp / imp.sum()
            record = EpochRecord(
                epoch=epoch,
                loss=loss_sum / max(seen, 1),
                train_accuracy=correct / max(seen, 1),
                val=val.as_dict(), test=test.as_dict(),
                importance={m: float(imp[i]) for i, m in enumerate(MODALITIES)},
                coefficient={m: float(sums["k"][i] / steps) for i, m in enumerate(MODALITIES)},
                seconds=elapsed,
                samples_per_second=seen / elapsed,
                attention_entropy={"temporal": float(sums["entropy"][0] / steps),
                                   "modality": float(sums["entropy"][1] / steps)},
            )
            result.history.append(record)
            if progress:
                tqdm.write(
                    f"epoch {epoch:3d}  loss {record.loss:.3f}  val fused {val.fused:.3f} audio {val.audio:.3f} "
                    f"visual {val.visual:.3f}  k_a {record.coefficient['audio']:.2f} "
                    f"k_v {record.coefficient['visual']:.2f}  H_t {record.attention_entropy['temporal']:.2f} "
                    f"H_m {record.attention_entropy['modality']:.2f}  {record.samples_per_second:.0f} samples/s"
                )
            if val.fused > best_val:
                best_val, best_state = val.fused, copy.deepcopy(model.state_dict())
                result.selected_epoch = epoch
        world.barrier()
        if cfg.patience:  # early stopping: rank 0 decides, every rank takes part in the sum
            stale = world.is_main and epoch - result.selected_epoch >= cfg.patience
            if world.sum(torch.tensor([float(stale)], device=device)).item() > 0:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return result


class TrainingDiverged(TaafError):
    """The loss or the weights became NaN or infinite in the first epoch, before any epoch could
    be kept: the learning rate is too high for this model (a tuning grid's top rate can do this)."""


def _stop_diverged(result: TrainResult, cfg: TrainConfig, epoch: int, is_main: bool) -> None:
    """Stop at a non-finite loss or weights: later epochs would only train NaN weights. From epoch
    2 on, the best epoch so far stays the kept one and ``diverged_epoch`` records the stop; in
    epoch 1 there is no model to return. Decided from ``epoch`` alone, which every rank shares
    (only rank 0 evaluates, so only it knows the kept epoch)."""
    if epoch == 1:
        raise TrainingDiverged(f"training diverged in epoch 1 (non-finite loss or weights) at lr {cfg.lr:g}, "
                               "before any epoch could be kept: use a lower learning rate")
    result.diverged_epoch = epoch
    if is_main:  # shown even without a progress bar: a run that stopped early for this reason must say so
        tqdm.write(f"epoch {epoch:3d}  non-finite loss or weights at lr {cfg.lr:g}: training stopped, "
                   f"keeping epoch {result.selected_epoch}")


def _optimizer(cfg: TrainConfig, param_groups: list[dict]) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(param_groups, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(param_groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def history_as_json(history: list[EpochRecord]) -> list[dict]:
    """Epoch records as JSON-able dicts, for metrics.json."""
    return [asdict(r) for r in history]
