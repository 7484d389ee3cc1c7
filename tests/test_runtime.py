"""The command line's malloc settings (ltdistill/runtime.py): they take on glibc, they are left off when the user
tunes malloc, and with them a freed 64 MiB block is reused instead of faulted in again."""

import resource

import pytest
import torch

from ltdistill.runtime import USER_TUNING, cpu_generation, host, keep_freed_memory, on_glibc, proc_field, read_cpuinfo

glibc = pytest.mark.skipif(not on_glibc(), reason="mallopt is glibc's")


@pytest.mark.parametrize("name", ["LTDISTILL_MALLOC", *USER_TUNING])
def test_left_alone_when_the_environment_says_so(name):
    assert keep_freed_memory({name: "default"}) is False


@glibc
def test_freed_blocks_are_reused_not_refaulted():
    assert keep_freed_memory({}) is True and host()["malloc"] == "freed memory kept (ltdistill)"
    numel = 16 << 20  # 64 MiB of float32, far above glibc's default mmap threshold
    for _ in range(10):  # warm-up: aligned requests a little larger than the freed block take fresh heap at first
        torch.ones(numel)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        torch.ones(numel)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    pages_per_block = numel * 4 // resource.getpagesize()
    # glibc's defaults would map and fault all 10 blocks anew (10 x 16384 faults)
    assert faults < 2 * pages_per_block


def test_timings_carry_the_host_they_ran_on():
    """A wall time depends on threads and malloc settings; artifacts and evaluations record them beside it."""
    from ltdistill import methods
    from ltdistill.data.longtail import load_longtail
    from ltdistill.evaluate import EvalConfig, evaluate_synthetic
    from ltdistill.report.tables import device_label

    data = load_longtail("digits", imbalance_factor=10)
    synthetic = methods.create("random").distill(data, ipc=1, progress=False)
    result = evaluate_synthetic(synthetic, data, EvalConfig(epochs=1, runs=1, model_options=(("width", 8),)),
                                progress=False)
    for recorded in (synthetic.meta["host"], result["host"]):
        assert recorded["threads"] == torch.get_num_threads() and recorded["torch"] == torch.__version__
        assert recorded["malloc"] in ("freed memory kept (ltdistill)", "as the environment sets it")
        assert recorded["cpu_kernels"] == torch.backends.cpu.get_cpu_capability()  # what the last digits depend on
        assert recorded["cpu_generation"] == cpu_generation(read_cpuinfo())
    threads = torch.get_num_threads()
    assert device_label(result) == f"cpu, {threads} thread" + "s" * (threads != 1)  # the tables' device column
    assert device_label({**result, "device": "cuda"}) == "cuda"
    assert recorded["processes"] == 1


def test_a_timing_made_by_several_torchrun_processes_says_so(monkeypatch):
    # torchrun's ranks each run one thread: their wall time is not a one-thread timing, and the tables say whose
    from ltdistill.report.tables import device_label
    from ltdistill.runtime import host

    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    recorded = host()
    assert recorded["processes"] == 2
    threads = recorded["threads"]
    assert device_label({"device": "cpu", "host": recorded}) == (
        f"cpu, 2 processes x {threads} thread" + "s" * (threads != 1))
    assert device_label({"device": "cuda", "host": recorded}) == "cuda, 2 processes"


def test_the_processor_is_named_by_family_and_model_not_only_its_brand():
    # two processors a hypervisor both calls "AMD EPYC": only the numbers tell them apart
    zen4 = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\n"
    zen5 = zen4.replace(": 25", ": 26").replace(": 17", ": 2")
    assert proc_field("model name", zen4) == proc_field("model name", zen5) == "AMD EPYC"
    assert cpu_generation(zen4) == "family 25, model 17" and cpu_generation(zen5) == "family 26, model 2"
    assert cpu_generation("model name\t: AMD EPYC\n") is None  # no numbers reported: none made up


def test_a_buffer_trained_by_other_processes_than_its_row_says_how_many():
    # a one-process cell on a buffer two torchrun processes made: its experts seconds are their wall time together
    from ltdistill.report.tables import _models_seconds

    one_process = {"host": {"threads": 1}, "experts_seconds": 1352.1}
    assert _models_seconds(one_process, {}) == "1352"
    assert _models_seconds({**one_process, "experts_processes": 2}, {}) == "1352 (2 processes)"
    # made under the same --nproc as the row: the device column already names the processes
    two_processes = {"host": {"threads": 1, "processes": 2}, "experts_seconds": 1352.1, "experts_processes": 2}
    assert _models_seconds(two_processes, {}) == "1352"
    assert _models_seconds({"host": {"threads": 1}}, {"models_seconds": 12.4}) == "12"
    assert _models_seconds({}, {}) == "-"
