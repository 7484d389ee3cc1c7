"""The command line's malloc settings (ltdistill/runtime.py): they take on glibc, they are left off when the user
tunes malloc, and with them a freed 64 MiB block is reused instead of faulted in again."""

import platform
import resource

import pytest
import torch

from ltdistill.runtime import USER_TUNING, keep_freed_memory

glibc = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                           reason="mallopt is glibc's")


@pytest.mark.parametrize("name", ["LTDISTILL_MALLOC", *USER_TUNING])
def test_left_alone_when_the_environment_says_so(name):
    assert keep_freed_memory({name: "default"}) is False


@glibc
def test_freed_blocks_are_reused_not_refaulted():
    assert keep_freed_memory({}) is True
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
