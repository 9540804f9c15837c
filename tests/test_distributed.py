"""Training under torchrun (DistributedDataParallel, gloo on CPU) and run-to-run determinism.

The torchrun tests launch two real worker processes through ``torch.distributed.run`` exactly as
a user would (``torchrun --nproc_per_node=2 -m taaf.cli train ...``), so they cover the process
group set-up and tear-down, the DDP wrapper, the all-reduced balancing statistics and the
"only rank 0 writes" contract. T = 4 and one epoch keep each launch to ~10 s on two cores.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from taaf.config import TrainConfig
from taaf.data import DataSpec
from taaf.paths import MARKER
from taaf.workflow import train_and_save

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 300
TIMING_FIELDS = {"seconds", "samples_per_second"}


def _env() -> dict[str, str]:
    """One intra-op thread per rank: two ranks x two threads would oversubscribe two cores."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    """``--standalone``: torchrun binds its rendezvous store to a free port itself, so two runs
    at once (xdist, a second checkout) cannot race for a port picked here and released."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    return subprocess.run(cmd, check=False, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=TIMEOUT_S)


@pytest.mark.slow
@pytest.mark.parametrize("fusion", ["taaf", "ogm-ge"])
def test_torchrun_two_ranks_trains_and_rank0_writes_once(fusion, tmp_path):
    out = tmp_path / "run"
    run = _torchrun("-m", "taaf.cli", "train", "--dataset", "av-digits", "--fusion", fusion,
                    "--epochs", "1", "--steps", "4", "--out", str(out))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]

    # Only rank 0 evaluates and reports: one epoch line, not one per rank.
    epoch_lines = [line for line in run.stdout.splitlines() if line.startswith("epoch   1")]
    assert len(epoch_lines) == 1, run.stdout
    expected = {MARKER, "model.pt", "metrics.json", "training_curves.png"} | ({"attention.png"} if fusion == "taaf" else set())
    assert {p.name for p in out.iterdir()} == expected  # no second copy, no leftover temp files

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == fusion and metrics["selected_epoch"] == 1
    assert len(metrics["epochs"]) == 1
    epoch = metrics["epochs"][0]
    assert 0.0 <= epoch["train_accuracy"] <= 1.0 and epoch["loss"] > 0
    assert epoch["val"]["fused"] > 0.2  # one epoch over both shards beats chance (0.1)

    report = subprocess.run([sys.executable, "-m", "taaf.cli", "eval", str(out / "model.pt"), "--json"],
                            check=False, cwd=REPO, env=_env(), capture_output=True, text=True,
                            timeout=TIMEOUT_S)
    assert report.returncode == 0, report.stderr
    result = json.loads(report.stdout)
    assert result["method"] == fusion and result["samples"] == 600 and result["steps"] == 4
    assert result["fused"] == pytest.approx(epoch["test"]["fused"])


REPLICA_SCRIPT = textwrap.dedent("""
    import gc
    import sys
    from dataclasses import replace

    import torch
    import torch.distributed as dist
    from taaf.config import TrainConfig
    from taaf.data import DataSpec, load_dataset
    from taaf.training.trainer import train

    dist.init_process_group("gloo")  # ours: train() must leave it alive
    rank = dist.get_rank()
    data = load_dataset(DataSpec(n_steps=4))
    # 1793 = 2 * 28 * 32 + 1: split naively, rank 0 would get 897 samples (29 steps of 32) and
    # rank 1 896 (28 steps), and DDP would wait forever for rank 1's 29th gradient.
    data = replace(data, train=data.train.subset(slice(0, 1793)))
    # modulation_warmup=0: balance (OGM-GE: scale gradients, add GE noise) from the first step.
    cfg = TrainConfig(method=sys.argv[1], epochs=1, batch_size=64, modulation_warmup=0)
    result = train(data, cfg, progress=False)
    assert dist.is_initialized(), "train() destroyed a process group it did not create"
    assert bool(result.history) == (rank == 0), "only rank 0 keeps a history (and writes)"
    flat = torch.cat([p.detach().flatten() for p in result.model.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, flat)
    assert all(torch.equal(gathered[0], g) for g in gathered), "replicas drifted apart"
    del result, gathered  # nothing that touched the group outlives it (gloo aborts a late free at exit)
    gc.collect()
    dist.barrier()  # neither rank tears gloo down while the other is still in the gather
    dist.destroy_process_group()
""")


@pytest.mark.slow
def test_torchrun_ogm_ge_replicas_stay_identical(tmp_path):
    """OGM-GE modulates (and adds GE noise to) gradients after DDP's all-reduce; the noise comes
    from a generator seeded identically on every rank, so the two replicas must end bit-equal.
    The training split has an odd size, so this also checks that both ranks run the same number
    of steps (else the run hangs and the launch times out)."""
    script = tmp_path / "replicas.py"
    script.write_text(REPLICA_SCRIPT)
    run = _torchrun(str(script), "ogm-ge")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]


def _epochs_without_timing(out: Path) -> list[dict]:
    epochs = json.loads((out / "metrics.json").read_text())["epochs"]
    return [{k: v for k, v in e.items() if k not in TIMING_FIELDS} for e in epochs]


@pytest.mark.parametrize("method", ["taaf", "ogm-ge"])
def test_same_seed_twice_gives_identical_metrics(method, av_digits_t4, small_model_config, tmp_path):
    """One process, same seed, same machine: every metrics.json epoch field but the timings matches."""
    spec = DataSpec(n_steps=4)
    cfg = TrainConfig(method=method, epochs=1, seed=5)
    model_cfg = replace(small_model_config, fusion=cfg.fusion, time_warp=method == "taaf")
    runs = []
    for name in ("a", "b"):
        train_and_save(av_digits_t4, spec, cfg, model_cfg, tmp_path / name, progress=False)
        runs.append(_epochs_without_timing(tmp_path / name))
    assert len(runs[0]) == 1
    assert runs[0] == runs[1]


DIVERGE_SCRIPT = textwrap.dedent("""
    import gc
    import sys
    from dataclasses import replace

    import torch.distributed as dist
    from taaf.config import TrainConfig
    from taaf.data import DataSpec, load_dataset
    from taaf.training import losses, trainer

    good_steps = int(sys.argv[1])  # loss calls per rank before the loss turns NaN
    real, calls = losses.taaf_loss, [0]

    def nan_later(*args, **kwargs):
        calls[0] += 1
        value = real(*args, **kwargs)
        return value * float("nan") if calls[0] > good_steps else value

    losses.taaf_loss = nan_later
    dist.init_process_group("gloo")
    data = load_dataset(DataSpec(n_steps=4))
    data = replace(data, train=data.train.subset(slice(0, 256)))  # 128 per rank: 4 steps of 32
    try:
        result = trainer.train(data, TrainConfig(epochs=4, batch_size=64), progress=False)
        print(f"rank {dist.get_rank()} kept {result.selected_epoch} diverged {result.diverged_epoch}", flush=True)
        del result
    except trainer.TrainingDiverged:
        print(f"rank {dist.get_rank()} raised", flush=True)
    gc.collect()
    dist.barrier()  # both ranks got here: neither hangs in a collective the other skipped
    dist.destroy_process_group()
""")


@pytest.mark.slow
@pytest.mark.parametrize("good_steps, expected", [(4, {"rank 0 kept 1 diverged 2", "rank 1 kept 0 diverged 2"}),
                                                  (0, {"rank 0 raised", "rank 1 raised"})])
def test_torchrun_ranks_stop_together_when_training_diverges(good_steps, expected, tmp_path):
    """A NaN loss in epoch 2 stops both ranks after that epoch (rank 0 keeps epoch 1); in epoch 1
    both raise TrainingDiverged. A rank deciding alone would leave the other in a collective."""
    script = tmp_path / "diverge.py"
    script.write_text(DIVERGE_SCRIPT)
    run = _torchrun(str(script), str(good_steps))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    assert {line for line in run.stdout.splitlines() if line.startswith("rank ")} == expected
