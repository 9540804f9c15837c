"""The training loop for TAAF, concat fusion and OGM-GE, on one device or under torchrun.

One epoch = shuffled mini-batches (seeded), forward, loss, modality balancing, optimizer step;
then fused / audio-only / visual-only accuracy on val and test. The model with the best
*validation* accuracy is the one kept (test is logged, never used for selection).

Balancing per step:
* taaf:   attention importance -> k_m -> learning rate of modality m's parameter group
* ogm-ge: unimodal confidence scores -> k_m -> modality m's gradients (+ GE noise)
* concat: nothing (k = 1), importance logged as confidence scores for comparison

Distributed: under ``torchrun`` (WORLD_SIZE > 1) each rank takes every world-th sample of the
shuffled order, gradients are averaged by DistributedDataParallel, the balancing statistics are
all-reduced so every rank applies the same coefficients, and rank 0 evaluates and writes.
"""
from __future__ import annotations

import copy
import os
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from taaf.config import MODALITIES, AudioEncoderConfig, ModelConfig, TrainConfig, VisualEncoderConfig
from taaf.data.base import MultimodalDataset
from taaf.evaluate import evaluate, split_tensors
from taaf.model.network import AVSpikingNet
from taaf.training import losses, modulation


@dataclass
class EpochRecord:
    epoch: int
    loss: float
    train_accuracy: float
    val: dict[str, float]
    test: dict[str, float]
    importance: dict[str, float]  # what drives balancing (attention for taaf, confidence otherwise)
    coefficient: dict[str, float]  # mean k_m applied during the epoch
    seconds: float
    samples_per_second: float


@dataclass
class TrainResult:
    model: AVSpikingNet
    history: list[EpochRecord] = field(default_factory=list)
    selected_epoch: int = 0

    def summary(self) -> dict:
        best = self.history[self.selected_epoch - 1]
        return {"selected_epoch": self.selected_epoch, "val": best.val, "test": best.test}


def model_config_for(data: MultimodalDataset, train: TrainConfig, **overrides) -> ModelConfig:
    """The default architecture for a data set's shapes (encoders sized for small inputs)."""
    split = data.train
    cfg = ModelConfig(
        n_classes=len(split.class_names),
        n_steps=split.n_steps,
        audio=AudioEncoderConfig(in_features=split.audio_features),
        visual=VisualEncoderConfig(in_shape=split.image_shape),
        fusion=train.fusion,
        time_warp=train.method == "taaf",
    )
    return ModelConfig(**{**asdict_shallow(cfg), **overrides})


def asdict_shallow(cfg) -> dict:
    return {f: getattr(cfg, f) for f in cfg.__dataclass_fields__}


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


class _Distributed:
    """World size 1 unless launched by torchrun."""

    def __init__(self, device: torch.device):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = 0
        if self.world > 1:
            if not dist.is_initialized():
                dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            self.rank = dist.get_rank()

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            t = t.clone()
            dist.all_reduce(t)
            t /= self.world
        return t

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def train(data: MultimodalDataset, cfg: TrainConfig, model_cfg: ModelConfig | None = None,
          device: str | torch.device = "cpu", progress: bool = True) -> TrainResult:
    device = torch.device(device)
    seed_everything(cfg.seed)
    world = _Distributed(device)
    model_cfg = model_cfg or model_config_for(data, cfg)
    model = AVSpikingNet(model_cfg).to(device)
    groups = model.modality_parameters()
    optimizer = _optimizer(cfg, [{"params": groups[name], "name": name} for name in (*MODALITIES, "shared")])
    trainable = model
    if world.world > 1:
        trainable = torch.nn.parallel.DistributedDataParallel(model)

    audio, image, labels = split_tensors(data.train, device)
    n = len(labels)
    order_gen = torch.Generator().manual_seed(cfg.seed)
    noise_gen = torch.Generator().manual_seed(cfg.seed + 1)
    result = TrainResult(model=model)
    best_val, best_state = -1.0, None

    for epoch in range(1, cfg.epochs + 1):
        start = time.perf_counter()
        order = torch.randperm(n, generator=order_gen)[world.rank::world.world].to(device)
        per_rank = max(1, cfg.batch_size // world.world)
        batches = range(0, len(order), per_rank)
        sums = {"loss": 0.0, "correct": 0.0, "seen": 0, "imp": torch.zeros(2), "k": torch.zeros(2), "steps": 0}
        bar = tqdm(batches, desc=f"epoch {epoch}/{cfg.epochs} [{cfg.method}]", leave=False,
                   disable=not (progress and world.is_main and sys.stderr.isatty()))
        model.train()
        for b in bar:
            idx = order[b:b + per_rank]
            y = labels[idx]
            out = trainable(audio[idx], image[idx])
            if cfg.method == "taaf":
                loss = losses.taaf_loss(out, y, cfg.step_loss_weight)
                importance = world.mean(modulation.attention_importance(out.alpha, out.beta))
                k = modulation.taaf_coefficients(importance, cfg.gamma, cfg.min_coefficient) if cfg.modulate_lr else torch.ones(2)
            else:
                loss = losses.fused_loss(out, y)
                importance = world.mean(modulation.confidence_scores([out.audio_logits, out.visual_logits], y))
                k = modulation.ogm_ge_coefficients(importance, cfg.ogm_alpha) if cfg.method == "ogm-ge" else torch.ones(2)
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
            optimizer.step()
            sums["loss"] += float(loss.detach()) * len(idx)
            sums["correct"] += float((out.logits.argmax(-1) == y).sum())
            sums["seen"] += len(idx)
            sums["imp"] += importance.cpu()
            sums["k"] += k
            sums["steps"] += 1
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}", k_a=f"{float(k[0]):.2f}", k_v=f"{float(k[1]):.2f}")
        elapsed = time.perf_counter() - start
        if world.is_main:
            val, test = evaluate(model, data.val), evaluate(model, data.test)
            steps = max(sums["steps"], 1)
            imp = sums["imp"] / steps
            imp = imp / imp.sum()
            record = EpochRecord(
                epoch=epoch,
                loss=sums["loss"] / max(sums["seen"], 1),
                train_accuracy=sums["correct"] / max(sums["seen"], 1),
                val=val.as_dict(), test=test.as_dict(),
                importance={m: float(imp[i]) for i, m in enumerate(MODALITIES)},
                coefficient={m: float(sums["k"][i] / steps) for i, m in enumerate(MODALITIES)},
                seconds=elapsed,
                samples_per_second=sums["seen"] * world.world / elapsed,
            )
            result.history.append(record)
            if progress:
                tqdm.write(
                    f"epoch {epoch:3d}  loss {record.loss:.3f}  val fused {val.fused:.3f} audio {val.audio:.3f} "
                    f"visual {val.visual:.3f}  k_a {record.coefficient['audio']:.2f} "
                    f"k_v {record.coefficient['visual']:.2f}  {record.samples_per_second:.0f} samples/s"
                )
            if val.fused > best_val:
                best_val, best_state = val.fused, copy.deepcopy(model.state_dict())
                result.selected_epoch = epoch
        world.barrier()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return result


def _optimizer(cfg: TrainConfig, param_groups: list[dict]) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(param_groups, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(param_groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def history_as_json(history: list[EpochRecord]) -> list[dict]:
    return [asdict(r) for r in history]
