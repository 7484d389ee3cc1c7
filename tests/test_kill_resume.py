"""Crash safety through the real CLI: a distillation killed with SIGKILL after a checkpoint, then rerun with the
same arguments, ends bit-identical to an uninterrupted run (CPU, same seed)."""

import json
import os
import signal
import subprocess
import sys
import time

import torch

from ltdistill.synthetic import SyntheticSet

CLI = [sys.executable, "-m", "ltdistill.cli"]


def distill_args(experts, out):
    return [*CLI, "distill", "--method", "mtt", "--dataset", "digits", "--imbalance", "10", "--ipc", "2",
            "--experts", str(experts), "--iterations", "40", "--set", "syn_steps=3", "--set", "max_start_epoch=1",
            "--set", "expert_epochs=2", "--set", "checkpoint_every=4", "--out", str(out), "--no-progress"]


def test_sigkill_mid_distillation_then_rerun_equals_uninterrupted(tmp_path):
    experts = tmp_path / "experts"
    subprocess.run([*CLI, "experts", "--dataset", "digits", "--imbalance", "10", "--num", "2", "--epochs", "3",
                    "--width", "4", "--out", str(experts), "--no-progress"], check=True, capture_output=True)
    subprocess.run(distill_args(experts, tmp_path / "whole"), check=True, capture_output=True)

    victim = subprocess.Popen(distill_args(experts, tmp_path / "killed"), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "killed" / ".checkpoint" / "state.safetensors"
    deadline = time.time() + 120
    while not checkpoint.exists() and victim.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (tmp_path / "killed" / "meta.json").exists()

    rerun = subprocess.run(distill_args(experts, tmp_path / "killed"), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    whole, resumed = SyntheticSet.load(tmp_path / "whole"), SyntheticSet.load(tmp_path / "killed")
    assert torch.equal(whole.images, resumed.images) and whole.lr == resumed.lr
    history = json.loads((tmp_path / "killed" / "meta.json").read_text())["loss_history"]
    assert history == whole.meta["loss_history"] and len(history) == 40
