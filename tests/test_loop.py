"""The shared outer loop: divergence is detected, skipped or rolled back, never written."""

import pytest
import torch

from ltdistill.engine.loop import Checkpointer, Learnable, SynthesisState, checkpoint_iteration, optimize
from ltdistill.runtime import processor


def make_state():
    return SynthesisState({"images": Learnable(torch.ones(3, 1, 2, 2), lr=0.1, momentum=0.0)},
                          torch.Generator().manual_seed(0))


def test_nan_loss_or_gradient_skips_the_update_and_counts_it():
    state = make_state()

    def step(it):
        x = state["images"]
        if it == 1:
            (x.sum() * float("nan")).backward()  # NaN gradient
            return 1.0
        if it == 2:
            return float("nan")  # NaN loss
        x.sum().backward()
        return 1.0

    optimize(state, 4, step, progress=False)
    assert state.counters["skipped_nonfinite"] == 2
    assert torch.allclose(state["images"], torch.full((3, 1, 2, 2), 1 - 2 * 0.1))  # only iterations 0 and 3 moved
    assert state.history[2] is not None and state.iteration == 4


def test_an_update_that_overflows_is_rolled_back():
    state = SynthesisState({"images": Learnable(torch.ones(3, 1, 2, 2), lr=10.0, momentum=0.0)},
                           torch.Generator().manual_seed(0))

    def step(it):
        (state["images"].sum() * (3e38 if it == 1 else 1.0)).backward()  # finite gradient, Inf after the step
        return 1.0

    optimize(state, 3, step, progress=False)
    assert state.counters["rolled_back"] == 1  # a step of 10 * 3e38 leaves float32
    assert torch.isfinite(state["images"]).all()
    assert torch.allclose(state["images"], torch.full((3, 1, 2, 2), 1 - 2 * 10.0))


def test_a_skipped_iteration_is_recorded_as_none():
    state = make_state()
    optimize(state, 2, lambda it: None, progress=False)
    assert state.history == [None, None] and state.counters["skipped_threshold"] == 2


def test_checkpoint_iteration_reads_where_a_run_would_resume(tmp_path):
    assert checkpoint_iteration(tmp_path) is None  # no checkpoint
    state = make_state()

    def step(it):
        loss = (state["images"] ** 2).sum()
        loss.backward()
        return loss.item()

    optimize(state, 3, step, Checkpointer(tmp_path, {"a": 1}, every=2), progress=False)
    assert checkpoint_iteration(tmp_path) == 3  # the last iteration is always saved
    (tmp_path / ".checkpoint" / "state.safetensors").write_bytes(b"not a safetensors file")
    assert checkpoint_iteration(tmp_path) is None


def test_a_resumed_momentum_buffer_lives_where_its_tensor_lives():
    """A checkpoint opens on the CPU; on a GPU the optimizer's first step after a resume failed with 'found at least
    two devices' (seen on the H200). The meta device stands in for CUDA here."""
    saved = {"generator": torch.Generator().get_state(), "tensor.images": torch.ones(3, 1, 2, 2),
             "momentum.images": torch.full((3, 1, 2, 2), 0.5, dtype=torch.float64)}
    state = SynthesisState({"images": Learnable(torch.ones(3, 1, 2, 2, device="meta"), lr=0.1, momentum=0.9)},
                           torch.Generator())
    state.load_tensors(saved)
    buffer = state.learnables["images"].optimizer.state[state["images"]]["momentum_buffer"]
    assert buffer.device.type == "meta" and buffer.dtype == torch.float32


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU"))]


@pytest.mark.parametrize("device", DEVICES)
def test_a_run_resumed_from_its_checkpoint_ends_where_an_unbroken_run_ends(tmp_path, device):
    """Momentum makes the resumed steps depend on the saved buffers, so they must come back, on the run's device."""
    def run(iterations, workdir):
        state = SynthesisState({"images": Learnable(torch.ones(4, 3, device=device), lr=0.1, momentum=0.9)},
                               torch.Generator().manual_seed(0))

        def step(it):
            noise = torch.randn(4, 3, generator=state.generator).to(device)
            loss = ((state["images"] - noise) ** 2).sum()
            loss.backward()
            return loss.item()

        optimize(state, iterations, step, Checkpointer(workdir, {"lr": 0.1}, every=5), progress=False)
        return state

    unbroken = run(12, tmp_path / "a")
    run(5, tmp_path / "b")  # stopped after its first checkpoint
    resumed = run(12, tmp_path / "b")
    assert resumed.resumed_from == 5 and resumed["images"].device.type == device
    assert torch.equal(resumed["images"], unbroken["images"]) and resumed.history == unbroken.history


def test_a_run_resumed_on_another_device_records_where_each_stretch_ran(tmp_path, monkeypatch):
    """A GPU's checkpoint finished on the CPU: the artifact must not pass the two devices' costs off as one's."""
    from ltdistill.engine import loop

    def run(iterations):
        state = make_state()

        def step(it):
            (state["images"] ** 2).sum().backward()
            return 1.0

        optimize(state, iterations, step, Checkpointer(tmp_path, {"lr": 0.1}, every=2), progress=False)
        return state

    cpu = loop.device_name(torch.device("cpu"))
    assert cpu.startswith("cpu (") and processor() in cpu  # the CPU is named by its processor
    monkeypatch.setattr(loop, "device_name", lambda device: "cuda (Fake GPU)")
    run(4)
    monkeypatch.undo()
    assert run(6).devices == [[0, "cuda (Fake GPU)"], [4, cpu]]
    assert run(6).devices == [[0, "cuda (Fake GPU)"], [4, cpu]]  # finished: nothing ran, nothing added
    loop.clear_checkpoint(tmp_path)
    run(2)
    assert run(4).devices == [[0, cpu]]  # a resume on the same device is one stretch
    # taken up on another host whose CPU is of the same brand: its iterations are not this processor's
    loop.clear_checkpoint(tmp_path)
    run(2)
    other = "AMD EPYC (family 0, model 0), AVX512"  # a generation no host reports: never this one
    monkeypatch.setattr(loop, "processor", lambda: other)
    assert run(4).devices == [[0, cpu], [2, f"cpu ({other})"]]
