"""Difficulty floors of a data set: what simple, non-spiking models reach on it.

A benchmark can only tell fusion methods apart if simple models do not saturate it, so every
AV-MNIST-Temporal build reports (test accuracy, hyper-parameters chosen on *validation* only):

- ``audio_probe`` / ``visual_probe``: multinomial logistic regression on the time-flattened
  stream (audio T x F; visual T x 14 x 14, frames 2 x 2 average-pooled), C from a grid.
- ``poe_fusion``: linear late fusion, the product of the two probes' experts (sum of log-probs).
- ``gru``: a small non-spiking temporal model on the same per-step inputs (audio frame and
  pooled visual frame concatenated -> GRU -> linear), epochs chosen on validation.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from taaf.data.base import MultimodalDataset, MultimodalSplit

C_GRID = (0.001, 0.01, 0.1, 1.0)
GRU_HIDDEN = 64
GRU_EPOCHS = 40


@dataclass(frozen=True)
class Floors:
    """Test accuracies of the simple reference models, and the settings validation picked."""

    audio_probe: float
    visual_probe: float
    poe_fusion: float
    gru: float
    audio_c: float
    visual_c: float
    gru_parameters: int
    gru_epoch: int
    seconds: float

    def as_dict(self) -> dict:
        """Plain dict for JSON output and the manifest."""
        return asdict(self)


def pooled_visual(split: MultimodalSplit) -> np.ndarray:
    """The per-step visual input 2 x 2 average-pooled, [N, T, C*(H/2)*(W/2)], computed from the K frames
    (pooling is linear, so it commutes with the schedule's mixing)."""
    img = split.image if split.is_stream else split.image[:, None]
    n, k, c, h, w = img.shape
    pooled = img[..., : h // 2 * 2, : w // 2 * 2].reshape(n, k, c, h // 2, 2, w // 2, 2).mean(axis=(4, 6))
    sched = split.schedule if split.is_stream else np.ones((n, split.n_steps, 1), dtype=np.float32)
    return np.einsum("ntk,nkf->ntf", sched, pooled.reshape(n, k, -1), optimize=True).astype(np.float32)


def _probe(train_x, train_y, val_x, val_y, test_x):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x)
    tr, va, te = (scaler.transform(x) for x in (train_x, val_x, test_x))
    best = None
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=300, tol=1e-3).fit(tr, train_y)
        acc = float((model.predict(va) == val_y).mean())
        if best is None or acc > best[0]:
            best = (acc, c, model)
    _, c, model = best
    return c, model.predict_log_proba(te)


def _gru(data: MultimodalDataset, seed: int) -> tuple[float, int, int]:
    import torch
    from torch import nn

    def inputs(split):
        x = np.concatenate([split.audio, pooled_visual(split)], axis=2)
        return torch.from_numpy(x), torch.from_numpy(split.labels)

    (xtr, ytr), (xva, yva), (xte, yte) = (inputs(data.split(s)) for s in ("train", "val", "test"))
    mean, std = xtr.mean(dim=(0, 1)), xtr.std(dim=(0, 1)) + 1e-6
    xtr, xva, xte = ((x - mean) / std for x in (xtr, xva, xte))
    torch.manual_seed(seed)
    gru = nn.GRU(xtr.shape[2], GRU_HIDDEN, batch_first=True)
    out = nn.Linear(GRU_HIDDEN, len(data.train.class_names))
    params = [*gru.parameters(), *out.parameters()]
    opt = torch.optim.Adam(params, lr=3e-3, weight_decay=1e-4)

    def predict(x):
        with torch.no_grad():
            return out(gru(x)[1][-1]).argmax(-1)

    gen = torch.Generator().manual_seed(seed)
    best = (-1.0, 0, 0.0)
    for epoch in range(1, GRU_EPOCHS + 1):
        order = torch.randperm(len(ytr), generator=gen)
        for b in range(0, len(order), 64):
            idx = order[b:b + 64]
            loss = nn.functional.cross_entropy(out(gru(xtr[idx])[1][-1]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        val = float((predict(xva) == yva).float().mean())
        if val > best[0]:
            best = (val, epoch, float((predict(xte) == yte).float().mean()))
    return best[2], best[1], sum(p.numel() for p in params)


def compute_floors(data: MultimodalDataset, seed: int = 0) -> Floors:
    """Fit the probes and the GRU on ``data``'s train split, choose settings on val, report test accuracy.

    Runs on one thread (BLAS and torch): these models are small, and on a shared machine extra
    threads only spin (measured: 4.5 CPU-minutes instead of about 30 s under a load of 10)."""
    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            return _compute_floors(data, seed)
    finally:
        torch.set_num_threads(threads)


def _compute_floors(data: MultimodalDataset, seed: int) -> Floors:
    start = time.perf_counter()
    tr, va, te = data.train, data.val, data.test
    flat = {s.name: (s.audio.reshape(len(s), -1), pooled_visual(s).reshape(len(s), -1)) for s in (tr, va, te)}
    c_a, log_a = _probe(flat["train"][0], tr.labels, flat["val"][0], va.labels, flat["test"][0])
    c_v, log_v = _probe(flat["train"][1], tr.labels, flat["val"][1], va.labels, flat["test"][1])

    def acc(log_p):
        return float((log_p.argmax(1) == te.labels).mean())

    gru_acc, gru_epoch, gru_params = _gru(data, seed)
    return Floors(audio_probe=acc(log_a), visual_probe=acc(log_v), poe_fusion=acc(log_a + log_v), gru=gru_acc,
                  audio_c=c_a, visual_c=c_v, gru_parameters=gru_params, gru_epoch=gru_epoch,
                  seconds=round(time.perf_counter() - start, 1))
