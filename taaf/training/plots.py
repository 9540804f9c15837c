"""PNG plots of training curves and attention: how a user sees imbalance being handled."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from taaf.config import MODALITIES  # noqa: E402
from taaf.data.cache import default_file_mode  # noqa: E402

COLORS = {"fused": "black", "audio": "tab:blue", "visual": "tab:orange"}


def save_figure(fig, path: Path) -> None:
    """Save atomically (temp file + rename) and close."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        Path(tmp).unlink(missing_ok=True)


def plot_training(history: list[dict], path: Path, title: str = "") -> None:
    """Accuracy (val solid, test dashed), loss with the attention entropy, balancing importance
    and coefficients per epoch."""
    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    ax = axes[0, 0]
    for key, color in COLORS.items():
        ax.plot(epochs, [h["val"][key] for h in history], color=color, label=f"{key} (val)")
        ax.plot(epochs, [h["test"][key] for h in history], color=color, ls="--", alpha=0.6, label=f"{key} (test)")
    ax.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1), title="accuracy: fused vs unimodal")
    ax.legend(fontsize=7, ncol=2)
    ax = axes[0, 1]
    ax.plot(epochs, [h["loss"] for h in history], color="black", label="loss")
    ax.set(xlabel="epoch", ylabel="training loss", title="loss and attention entropy")
    if all(h.get("attention_entropy") for h in history):  # histories written before it was logged lack it
        twin = ax.twinx()
        for kind, style in (("temporal", "--"), ("modality", ":")):
            twin.plot(epochs, [h["attention_entropy"][kind] for h in history], color="tab:green", ls=style,
                      label=f"{kind} attention entropy")
        twin.set(ylabel="entropy / log n (1 = uniform)", ylim=(0, 1.05))
        twin.legend(fontsize=7, loc="upper right")
    ax = axes[1, 0]
    for m in MODALITIES:
        ax.plot(epochs, [h["importance"][m] for h in history], color=COLORS[m], label=m)
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set(xlabel="epoch", ylabel="share", ylim=(0, 1), title="modality importance (what drives balancing)")
    ax.legend(fontsize=8)
    ax = axes[1, 1]
    for m in MODALITIES:
        ax.plot(epochs, [h["coefficient"][m] for h in history], color=COLORS[m], label=m)
    ax.set(xlabel="epoch", ylabel="k (mean over steps)", ylim=(0, 1.05), title="modulation coefficients")
    ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def plot_attention(alpha: np.ndarray, beta: np.ndarray, labels: np.ndarray, path: Path, title: str = "") -> None:
    """Mean temporal attention alpha_t and modality attention beta_t over the steps of a split."""
    steps = np.arange(alpha.shape[1])
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    axes[0].plot(steps, alpha.mean(axis=0), color="black", label="mean")
    axes[0].fill_between(steps, *np.percentile(alpha, [10, 90], axis=0), color="grey", alpha=0.3, label="10-90 %")
    axes[0].set(xlabel="time step", ylabel="alpha_t", title="temporal attention")
    axes[0].legend(fontsize=8)
    for i, m in enumerate(MODALITIES):
        axes[1].plot(steps, beta[:, :, i].mean(axis=0), color=COLORS[m], label=m)
    axes[1].set(xlabel="time step", ylabel="beta_t^m", ylim=(0, 1), title="modality attention")
    axes[1].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
