"""Under torchrun (2 CPU processes, gloo) the heavy commands split their work and give the one-process result:
experts split over the ranks make the same buffer, evaluation runs split over the ranks the same JSON."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ltdistill.errors import BadInput

CLI = str(Path(sys.executable).parent / "ltdistill")


def torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def one_process(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_experts_split_over_two_ranks_make_the_one_process_buffer(tmp_path):
    common = ["experts", "--dataset", "digits", "--imbalance", "10", "--num-experts", "3", "--epochs", "2",
              "--width", "4", "--no-progress"]
    ranks = torchrun(*common, "--out", "two", cwd=tmp_path)
    assert ranks.returncode == 0, ranks.stderr
    assert ranks.stdout.count("3 standard trajectories") == 1  # rank 0 alone prints
    assert one_process(*common, "--out", "one", cwd=tmp_path).returncode == 0
    for i in range(3):
        one, two = (load_file(tmp_path / d / f"standard_{i:03d}.safetensors")["trajectory"] for d in ("one", "two"))
        assert torch.equal(one, two)
    assert json.loads((tmp_path / "one" / "index.json").read_text()) == \
        json.loads((tmp_path / "two" / "index.json").read_text())


def test_evaluation_runs_split_over_two_ranks_give_the_one_process_json(tmp_path):
    assert one_process("distill", "--method", "random", "--dataset", "digits", "--imbalance", "10", "--ipc", "3",
                       "--out", "set", cwd=tmp_path).returncode == 0
    common = ["evaluate", "set", "--runs", "3", "--epochs", "2", "--no-progress"]
    ranks = torchrun(*common, "--json", "two.json", cwd=tmp_path)
    assert ranks.returncode == 0, ranks.stderr
    assert one_process(*common, "--json", "one.json", cwd=tmp_path).returncode == 0
    one, two = (json.loads((tmp_path / f).read_text()) for f in ("one.json", "two.json"))
    assert one["per_run"] == two["per_run"] and one["balanced_acc"] == two["balanced_acc"]
    assert len(one["per_run"]) == 3



def test_the_full_set_reference_trains_data_parallel_over_two_ranks_to_the_one_process_json(tmp_path):
    """evaluate --full: every rank trains every run on its rows of each batch (a BatchNorm ConvNet here), rank 0
    keeps the runs; the scores are the one-process ones, and a rerun reads the kept runs back on every rank."""
    common = ["evaluate", "--full", "--dataset", "digits", "--imbalance", "10", "--model", "convnet_bn", "--epochs",
              "2", "--runs", "2", "--runs-dir", "kept", "--no-progress"]
    ranks = torchrun(*common, "--json", "two.json", cwd=tmp_path)
    assert ranks.returncode == 0, ranks.stderr
    assert one_process(*common[:-3], "--no-progress", "--json", "one.json", cwd=tmp_path).returncode == 0
    one, two = (json.loads((tmp_path / f).read_text()) for f in ("one.json", "two.json"))
    for a, b in zip(one["per_run"], two["per_run"], strict=True):
        assert a["balanced_acc"] == pytest.approx(b["balanced_acc"], abs=0.01)
        assert a["per_class_acc"] == pytest.approx(b["per_class_acc"], abs=0.05)
    assert len(list((tmp_path / "kept").glob("run-seed*.json"))) == 2
    again = torchrun(*common, "--json", "again.json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "again.json").read_text())["runs_read_back"] == 2

def test_a_command_that_does_not_split_its_work_says_so_under_torchrun(tmp_path):
    ranks = torchrun("distill", "--method", "random", "--dataset", "digits", "--imbalance", "10", "--ipc", "2",
                     "--out", "set", cwd=tmp_path)
    assert ranks.returncode != 0 and "distill --method random does not split its work over processes" in ranks.stderr
    assert not (tmp_path / "set").exists()


@pytest.mark.parametrize("method, extra", [("dm", []), ("dc", ["--set", "outer_loop=2", "--set", "inner_loop=1"]),
                                           ("dm", ["--set", "model='convnet_bn'"])])  # BN: every class on each rank
def test_random_network_matching_split_over_two_ranks_by_class_makes_the_one_process_set(tmp_path, method, extra):
    """Every rank draws every class's images and augmentation, computes its own classes, and the image gradients
    are summed before every image step (DC: then every rank trains the same network on the same set): the same set
    as one process, to float rounding (the sum runs in another order)."""
    common = ["distill", "--method", method, "--dataset", "digits", "--imbalance", "10", "--ipc", "2", "--set",
              "iterations=3", "--set", "width=4", "--set", "checkpoint_every=2", "--no-progress", *extra]
    ranks = torchrun(*common, "--out", "two", cwd=tmp_path)
    assert ranks.returncode == 0, ranks.stderr
    assert one_process(*common, "--out", "one", cwd=tmp_path).returncode == 0
    one, two = (load_file(tmp_path / d / "synthetic.safetensors")["images"] for d in ("one", "two"))
    assert torch.allclose(one, two, atol=1e-5) and not torch.equal(one, torch.zeros_like(one))
    losses = [json.loads((tmp_path / d / "meta.json").read_text())["loss_history"] for d in ("one", "two")]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


def test_a_run_stopped_in_one_process_resumes_under_two_ranks_to_the_one_process_result(tmp_path, monkeypatch):
    """Resuming with another world size: a DM run killed after its checkpoint (in this process) finishes under
    torchrun as the uninterrupted run; evaluation runs kept by one process are read back by two ranks, which train
    only the one missing."""
    from ltdistill import methods
    from ltdistill.data.longtail import load_longtail
    from ltdistill.engine import loop

    optimize = loop.optimize

    class Crash(Exception):
        pass

    def dying(state, iterations, step, *args, **kwargs):
        done = []

        def step_until_killed(*a, **k):
            done.append(1)
            if len(done) > 2:
                raise Crash
            return step(*a, **k)
        return optimize(state, iterations, step_until_killed, *args, **kwargs)

    monkeypatch.setattr(loop, "optimize", dying)
    with pytest.raises(Crash):
        methods.create("dm", protocol="cpu", iterations=4, width=4, checkpoint_every=2).distill(
            load_longtail("digits", 10), 2, seed=0, progress=False, workdir=tmp_path / "part")
    common = ["distill", "--method", "dm", "--dataset", "digits", "--imbalance", "10", "--ipc", "2", "--set",
              "iterations=4", "--set", "width=4", "--set", "checkpoint_every=2", "--no-progress"]
    ranks = torchrun(*common, "--out", "part", cwd=tmp_path)
    assert ranks.returncode == 0, ranks.stderr
    assert one_process(*common, "--out", "whole", cwd=tmp_path).returncode == 0
    part, whole = (json.loads((tmp_path / d / "meta.json").read_text()) for d in ("part", "whole"))
    assert part["resumed_from"] == 2
    images = [load_file(tmp_path / d / "synthetic.safetensors")["images"] for d in ("part", "whole")]
    assert torch.allclose(images[0], images[1], atol=1e-6)

    evaluate = ["evaluate", "whole", "--epochs", "2", "--runs-dir", "kept", "--no-progress"]
    assert one_process(*evaluate, "--runs", "2", "--json", "first.json", cwd=tmp_path).returncode == 0
    ranks = torchrun(*evaluate, "--runs", "3", "--json", "more.json", cwd=tmp_path)
    assert ranks.returncode == 0, ranks.stderr
    first, more = (json.loads((tmp_path / f).read_text()) for f in ("first.json", "more.json"))
    assert more["runs_read_back"] == 2 and more["per_run"][:2] == first["per_run"] and len(more["per_run"]) == 3



def test_a_killed_rank_ends_the_launch_with_its_name_and_the_rerun_resumes_to_the_one_process_set(tmp_path):
    """Rank 1 of a DM distillation is killed once a checkpoint exists: torchrun stops rank 0 too (no hang) and
    names the rank that failed and its signal; the same command then resumes from the checkpoint and makes the set
    one uninterrupted process makes."""
    import signal
    import time

    common = ["distill", "--method", "dm", "--dataset", "digits", "--imbalance", "10", "--ipc", "2", "--set",
              "iterations=400", "--set", "width=4", "--set", "checkpoint_every=5", "--no-progress"]
    launch = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                               CLI, *common, "--out", "two"], cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 120
    while not list((tmp_path / "two" / ".checkpoint").glob("*")) and time.time() < deadline:
        time.sleep(0.05)
    victims = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _rank_of(p, launch.pid) == 1]
    assert len(victims) == 1, "rank 1 not found"
    os.kill(victims[0], signal.SIGKILL)
    _, err = launch.communicate(timeout=120)
    assert launch.returncode != 0
    assert "rank      : 1" in err and "SIGKILL" in err
    assert not (tmp_path / "two" / "synthetic.safetensors").exists()
    ranks = torchrun(*common, "--out", "two", cwd=tmp_path)
    assert ranks.returncode == 0, ranks.stderr
    assert json.loads((tmp_path / "two" / "meta.json").read_text())["resumed_from"] > 0
    assert one_process(*common, "--out", "one", cwd=tmp_path).returncode == 0
    one, two = (load_file(tmp_path / d / "synthetic.safetensors")["images"] for d in ("one", "two"))
    assert torch.allclose(one, two, atol=1e-5)


def _rank_of(proc: Path, launcher: int) -> int | None:
    """The RANK of a worker process that `launcher` (torchrun) started, or None for any other process."""
    try:
        parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        environ = (proc / "environ").read_bytes().split(b"\0")
    except (OSError, ValueError, IndexError):
        return None
    ranks = [int(v.split(b"=", 1)[1]) for v in environ if v.startswith(b"RANK=")]
    return ranks[0] if parent == launcher and ranks else None

def test_a_suite_run_with_nproc_launches_the_splitting_commands_under_torchrun_with_the_one_process_results(
        tmp_path):
    from ltdistill.bench import run_suite
    from ltdistill.bench.commands import launched
    from ltdistill.bench.suite import CLI as BENCH_CLI

    suite = tmp_path / "tiny.toml"
    suite.write_text('description = "test"\nprotocol = "cpu"\nruns = 1\nepochs = 2\neval_models = ["convnet"]\n'
                     'ddranking = false\nfull = false\n[data]\ndataset = "digits"\nimbalance = [10]\nipc = [2]\n'
                     '[[method]]\nname = "dm"\nset = ["iterations=2", "width=4"]\n'
                     '[experts.standard]\nnum = 2\nepochs = 2\n[[method]]\nname = "mtt"\nexperts = "standard"\n'
                     'set = ["iterations=1", "syn_steps=2", "expert_epochs=1", "max_start_epoch=1"]\n')
    for out, nproc in (("one", 1), ("two", 2)):
        run_suite(str(suite), tmp_path / out, progress=False, nproc=nproc, figures=False)
    log = (tmp_path / "two" / "log.txt").read_text()
    assert log.count("torch.distributed.run") == 5  # DM's and MTT's distill and evaluation, and MTT's experts
    for name in ("dm_digits_b10_ipc2_s0", "mtt_digits_b10_ipc2_s0"):
        one, two = (json.loads((tmp_path / d / "results" / f"{name}.json").read_text()) for d in ("one", "two"))
        assert one["balanced_acc"]["mean"] == pytest.approx(two["balanced_acc"]["mean"], abs=0.02)
        assert one["key"] == two["key"]
        # the timings say they were made by two processes: not one process's costs
        assert (one["host"]["processes"], two["host"]["processes"]) == (1, 2)
        assert (one["distill"]["host"]["processes"], two["distill"]["host"]["processes"]) == (1, 2)
    assert "experts_processes" not in one and two["experts_processes"] == 2 and two["experts_seconds"] > 0
    assert launched([*BENCH_CLI, "distill", "--method", "random"], 2) == [*BENCH_CLI, "distill", "--method", "random"]


def test_every_command_of_the_shipped_suites_reaches_the_ranks_of_a_torchrun_launch(tmp_path):
    """torchrun parses the whole line with abbreviations on: `--num 8` (for --num-experts) began two of its options
    and ended every `bench --nproc` expert buffer before a rank started. Each command the shipped suites plan goes
    to the ranks unchanged, and one that would not is refused before it runs."""
    import torch.distributed.run as torchrun

    from ltdistill.bench.commands import launched
    from ltdistill.bench.suite import CLI as BENCH_CLI
    from ltdistill.bench.suite import load_suite, plan

    launches = 0
    for path in sorted((Path(__file__).parent.parent / "benchmarks" / "suites").glob("*.toml")):
        cells, experts = plan(load_suite(path), tmp_path, ["--device", "cpu", "--no-progress"])
        commands = [e.command for e in experts.values()]
        commands += [c for cell in cells for c in (cell.distill, *cell.evals.values()) if c]
        for cmd in commands:
            split = launched(cmd, 2)
            if split != cmd:
                launches += 1
                ours = cmd[len(BENCH_CLI):]
                assert torchrun.parse_args(split[3:]).training_script_args == ours, (path, ours)
    assert launches > 100  # expert buffers, trajectory distillations, evaluations
    with pytest.raises(BadInput, match="ambiguous option: --num could match --numa-binding"):
        launched([*BENCH_CLI, "experts", "--dataset", "digits", "--num", "8"], 2)


@pytest.mark.parametrize("method, kind, extra", [
    ("mtt", [], ["--set", "syn_steps=3", "--set", "expert_epochs=1", "--set", "max_start_epoch=1"]),
    ("ltdd", ["--decoupled", "--cls-epochs", "1"],
     ["--set", "n_rep=2", "--set", "n_cls=2", "--set", "t_rep=1", "--set", "t_rep_max=1", "--set", "t_cls=1",
      "--set", "t_cls_max=1", "--set", "expert_epochs=1"])], ids=["mtt-full-bptt", "ltdd-tesla"])
def test_trajectory_matching_split_over_two_ranks_makes_the_one_process_set(tmp_path, method, kind, extra):
    """Every rank draws every minibatch, trajectory and augmentation, computes its rows of each minibatch, and the
    student's step gradients are summed over the ranks (differentiably for MTT's full unroll; LTDD's
    constant-memory gradient sums them without a graph); each rank backpropagates 1/size of the matching loss and
    the images', labels' and lr's gradients are summed: the one-process set to float rounding."""
    experts = ["experts", "--dataset", "digits", "--imbalance", "10", "--num-experts", "2", "--epochs", "2",
               "--width", "4", "--no-progress", "--out", "buffer", *kind]
    assert one_process(*experts, cwd=tmp_path).returncode == 0
    common = ["distill", "--method", method, "--dataset", "digits", "--imbalance", "10", "--ipc", "2", "--experts",
              "buffer", "--set", "iterations=3", "--set", "checkpoint_every=2", "--no-progress", *extra]
    ranks = torchrun(*common, "--out", "two", cwd=tmp_path)
    assert ranks.returncode == 0, ranks.stderr
    assert one_process(*common, "--out", "one", cwd=tmp_path).returncode == 0
    sets = [load_file(tmp_path / d / "synthetic.safetensors") for d in ("one", "two")]
    for key in sets[0]:  # rounding relative to the largest value: MTT's image steps (lr_img 1000) reach tens, and
        scale = max(1.0, sets[0][key].abs().max().item())  # the CPU's kernels (AVX2, AVX-512) round differently
        assert torch.allclose(sets[0][key], sets[1][key], atol=1e-5 * scale, rtol=1e-4), key
    losses = [json.loads((tmp_path / d / "meta.json").read_text())["loss_history"] for d in ("one", "two")]
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)


@pytest.mark.parametrize("method", ["sre2l", "unilevel"])
def test_recovery_split_over_two_ranks_by_group_makes_the_one_process_set(tmp_path, method):
    """The ranks train the observer together (data-parallel: its weights are the one-process ones to float
    rounding, which Adam's first, sign-like steps carry into a few pixels), each recovers its share of the IPC groups
    (independent batches with their own statistics and the same augmentation draws) and gathers the rest: the
    one-process images, the loss of every iteration summed."""
    common = ["distill", "--method", method, "--dataset", "digits", "--imbalance", "10", "--ipc", "2", "--set",
              "epochs=1", "--set", "iterations=3", "--set", "width=4", "--no-progress"]
    ranks = torchrun(*common, "--out", "two", cwd=tmp_path)
    assert ranks.returncode == 0, ranks.stderr
    assert one_process(*common, "--out", "one", cwd=tmp_path).returncode == 0
    sets = [load_file(tmp_path / d / "synthetic.safetensors") for d in ("one", "two")]
    assert torch.allclose(sets[0]["images"], sets[1]["images"], atol=1e-3)
    assert ((sets[0]["images"] - sets[1]["images"]).abs() > 1e-5).float().mean() < 0.01
    metas = [json.loads((tmp_path / d / "meta.json").read_text()) for d in ("one", "two")]
    assert metas[1]["ranks"] == 2 and metas[0]["loss_history"] == pytest.approx(metas[1]["loss_history"], rel=1e-5)


def _train_tiny(rank: int, size: int, port: int, folder: str, data_parallel: bool) -> None:
    """One rank of a data-parallel training (or the one process, size 1): a BatchNorm ConvNet on 37 random images
    in batches of 8 under DSA (a last batch of 5 split unevenly), then 33 images (a last batch of 1, fewer rows than
    ranks), the state kept in folder/rank<r>.pt."""
    import torch.distributed as dist

    from ltdistill import models
    from ltdistill.train import TrainConfig, train_model

    if size > 1:
        os.environ.update(RANK=str(rank), WORLD_SIZE=str(size))  # what torchrun sets
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=size)
    torch.set_num_threads(1)  # rounding depends on the thread count, and training on noise amplifies it
    try:
        torch.manual_seed(0)
        net = models.create("convnet_bn", channels=1, num_classes=3, im_size=(8, 8), width=4, depth=2)
        data = torch.Generator().manual_seed(1)
        for n in (37, 33):
            images, labels = torch.randn(n, 1, 8, 8, generator=data), torch.randint(0, 3, (n,), generator=data)
            train_model(net, images, labels, TrainConfig(epochs=2, lr=0.01, batch_size=8),
                        generator=torch.Generator().manual_seed(2), data_parallel=data_parallel)
        torch.save(net.state_dict(), Path(folder) / f"rank{rank}.pt")
    finally:
        if size > 1:
            dist.destroy_process_group()


def test_data_parallel_training_over_two_ranks_takes_the_one_process_steps(tmp_path):
    """distributed.BatchSplit: each rank computes its rows of every batch, the share-weighted gradients are summed
    and BatchNorm normalizes by the whole batch, so both ranks end with the model one process trains (weights and
    running statistics), to float rounding; without the split every rank trains alone and the ranks are the same
    model trained twice."""
    import socket

    import torch.multiprocessing as mp

    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    mp.spawn(_train_tiny, args=(2, free_port(), str(tmp_path), True), nprocs=2)
    (tmp_path / "one").mkdir()
    _train_tiny(0, 1, 0, str(tmp_path / "one"), True)
    one = torch.load(tmp_path / "one" / "rank0.pt")
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    for key, value in one.items():
        assert torch.equal(ranks[0][key], ranks[1][key]), key
        assert torch.allclose(ranks[0][key].float(), value.float(), atol=1e-5, rtol=1e-4), key
    assert any("running_var" in key for key in one)
    (tmp_path / "alone").mkdir()
    mp.spawn(_train_tiny, args=(2, free_port(), str(tmp_path / "alone"), False), nprocs=2)
    alone = torch.load(tmp_path / "alone" / "rank0.pt")
    assert all(torch.equal(alone[key], value) for key, value in one.items())
