"""Crash safety through the real CLI: a distillation killed with SIGKILL after a checkpoint, then rerun with the
same arguments, ends bit-identical to an uninterrupted run (CPU, same seed)."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from ltdistill.synthetic import SyntheticSet

CLI = [sys.executable, "-m", "ltdistill.cli"]


@pytest.fixture
def start_victim():
    """Popen in a session of its own; whatever of it is left when the test ends (a failed assertion before the
    kill, or a command that outlived its bench) is killed with its whole process group."""
    started = []

    def start(argv):
        started.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True))
        return started[-1]

    yield start
    for victim in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()


def distill_args(experts, out):
    return [*CLI, "distill", "--method", "mtt", "--dataset", "digits", "--imbalance", "10", "--ipc", "2",
            "--experts", str(experts), "--iterations", "40", "--set", "syn_steps=3", "--set", "max_start_epoch=1",
            "--set", "expert_epochs=2", "--set", "checkpoint_every=4", "--out", str(out), "--no-progress"]


def test_sigkill_mid_distillation_then_rerun_equals_uninterrupted(tmp_path, start_victim):
    experts = tmp_path / "experts"
    subprocess.run([*CLI, "experts", "--dataset", "digits", "--imbalance", "10", "--num", "2", "--epochs", "3",
                    "--width", "4", "--out", str(experts), "--no-progress"], check=True, capture_output=True)
    subprocess.run(distill_args(experts, tmp_path / "whole"), check=True, capture_output=True)

    victim = start_victim(distill_args(experts, tmp_path / "killed"))
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


KILL_SUITE = """
description = "kill-and-resume test"
protocol = "cpu"
runs = 1
epochs = 3
eval_models = ["convnet"]
ddranking = false
full = false
[data]
dataset = "digits"
imbalance = [10]
ipc = [2]
[[method]]
name = "dm"
set = ["iterations=60", "batch_real=64", "checkpoint_every=5"]
"""


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains `text` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            cmdline = open(f"/proc/{entry}/cmdline", "rb").read().decode(errors="replace")
        except (OSError, ValueError):
            continue
        if entry.isdigit() and text in cmdline:
            found.append(int(entry))
    return found


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc; the bench's child-reaping uses PR_SET_PDEATHSIG")
def test_sigkill_mid_bench_then_rerun_equals_uninterrupted(tmp_path, start_victim):
    """Kill -9 `ltdistill bench` while a cell is distilling: its running command dies with it (no orphan writing
    into the cell), and the same command rerun resumes the cell and ends with the uninterrupted run's results."""
    suite = tmp_path / "kill.toml"
    suite.write_text(KILL_SUITE)
    bench = [*CLI, "bench", "--suite", str(suite), "--no-progress", "--no-figures", "--out"]
    subprocess.run([*bench, str(tmp_path / "whole")], check=True, capture_output=True)

    killed = tmp_path / "killed"
    victim = start_victim([*bench, str(killed)])
    deadline = time.time() + 120
    while not list(killed.glob("cells/dm-*/artifact/.checkpoint/state.safetensors")) and time.time() < deadline:
        assert victim.poll() is None, "the suite finished before it could be killed"
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    time.sleep(1.0)
    assert processes_mentioning(str(killed)) == [], "the distill command outlived the killed bench"
    assert not list(killed.glob("results/dm_*.json"))

    subprocess.run([*bench, str(killed)], check=True, capture_output=True)
    for whole in sorted((tmp_path / "whole" / "results").glob("*.json")):
        a, b = json.loads(whole.read_text()), json.loads((killed / "results" / whole.name).read_text())
        assert a["balanced_acc"] == b["balanced_acc"] and a["per_class_acc"] == b["per_class_acc"], whole.name
    resumed_meta = json.loads(next(killed.glob("cells/dm-*/artifact/meta.json")).read_text())
    assert len(resumed_meta["loss_history"]) == 60


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc; the bench's child-reaping uses PR_SET_PDEATHSIG")
def test_sigkill_of_a_bench_running_cells_side_by_side_leaves_no_orphan(tmp_path, start_victim):
    """With --jobs the commands are started from worker threads; a SIGKILLed bench still takes all of them along,
    through its command server."""
    suite = tmp_path / "jobs.toml"
    suite.write_text(KILL_SUITE.replace("iterations=60", "iterations=5000") + '[[method]]\nname = "dm"\n'
                     'label = "dm-again"\nset = ["iterations=5001", "batch_real=64", "checkpoint_every=5"]\n')
    out = tmp_path / "out"
    victim = start_victim([*CLI, "bench", "--suite", str(suite), "--no-progress", "--no-figures", "--jobs", "2",
                          "--out", str(out)])
    deadline = time.time() + 120
    while len(list(out.glob("cells/*/artifact/.checkpoint/state.safetensors"))) < 2 and time.time() < deadline:
        assert victim.poll() is None, "the suite ended before it could be killed"
        time.sleep(0.05)
    # the bench, its command server (bench/warm.py) and the two distill commands forked from it
    assert len(processes_mentioning(str(out))) == 4
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    time.sleep(1.0)
    assert processes_mentioning(str(out)) == [], "a distill command outlived the killed bench"
