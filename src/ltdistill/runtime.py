"""Process-wide settings the command line applies once at start-up: glibc's malloc kept from re-faulting memory.

glibc serves every allocation above its mmap threshold (128 KiB, rising on its own to at most 32 MiB) with fresh
pages from the kernel and unmaps them again on free. Unrolled trajectory matching allocates and frees tens of MiB of
activations at every student step (IPC 50 on 28x28 images: 500 x 32 x 28 x 28 floats = 50 MiB a feature map), so
each step page-faults and zeroes gigabytes anew. benchmarks/tm_speed.py measures it (page faults, seconds per
iteration and peak RSS with glibc's defaults and with the settings below: docs/data/tm-speed/, docs/results.md);
freed memory is kept for reuse, so peak RSS grows. PyTorch's CPU performance guide gives the same remedy as a
swap of allocator (jemalloc or tcmalloc through LD_PRELOAD); glibc's own mallopt does it here with nothing to
install. Results do not change: only where memory comes from does.

Left alone: a non-glibc C library, and a process whose environment already tunes malloc (MALLOC_*_ variables,
GLIBC_TUNABLES, LD_PRELOAD) or sets LTDISTILL_MALLOC=default.
"""

from __future__ import annotations

import ctypes
import math
import os
import platform
from pathlib import Path

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
SETTINGS = {M_MMAP_THRESHOLD: 1 << 30, M_TRIM_THRESHOLD: 1 << 30, M_TOP_PAD: 256 << 20}
USER_TUNING = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES", "LD_PRELOAD")
TUNED = False  # whether keep_freed_memory's settings are in effect in this process


def on_glibc() -> bool:
    """Whether this process runs on Linux with glibc, whose mallopt the settings go through."""
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def keep_freed_memory(environ=os.environ) -> bool:
    """Raise glibc's mmap and trim thresholds so that freed blocks below 1 GiB are reused instead of returned to the
    kernel and faulted in again. True when the settings took effect."""
    global TUNED
    if environ.get("LTDISTILL_MALLOC") == "default" or any(name in environ for name in USER_TUNING):
        return False
    if not on_glibc():
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    TUNED = all(mallopt(param, value) == 1 for param, value in SETTINGS.items()) or TUNED
    return TUNED


def read_cpuinfo() -> str:
    """/proc/cpuinfo's text, empty where there is no such file (off Linux)."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def available_memory_mb() -> float:
    """The memory the kernel says new work can take without swapping (/proc/meminfo's MemAvailable), in MB; infinite
    where it does not say (off Linux)."""
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return math.inf
    kilobytes = (proc_field("MemAvailable", text) or "").split()[:1]  # "MemAvailable:   11983024 kB"
    return int(kilobytes[0]) / 1024 if kilobytes and kilobytes[0].isdigit() else math.inf


def proc_field(field: str, text: str) -> str | None:
    """The first `field` in the "name: value" lines of a /proc file's `text` (read_cpuinfo's: the first processor's;
    /proc/meminfo's), None where it has no such field."""
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == field:
            return value.strip()
    return None


def cpu_generation(text: str) -> str | None:
    """The processor's family and model numbers ("family 26, model 2"), None where Linux does not report them.
    A virtual machine's model name is often only the brand ("AMD EPYC"), and two hosts of that name, both with
    AVX-512, can be generations apart: these numbers tell them apart where a wall time is compared."""
    family, model = proc_field("cpu family", text), proc_field("model", text)
    return None if family is None or model is None else f"family {family}, model {model}"


def processor(record: dict | None = None) -> str:
    """The processor a host record names (runtime.host(); this process's when None), e.g. 'AMD EPYC (family 26,
    model 2), AVX512': brand, generation where recorded, and the instruction set torch's kernels dispatch to."""
    record = host() if record is None else record
    generation, kernels = record.get("cpu_generation"), record.get("cpu_kernels")
    return ((record.get("cpu") or "CPU") + (f" ({generation})" if generation else "")
            + (f", {kernels}" if kernels else ""))


def processes(record: dict | None, key: str = "processes") -> int:
    """The torchrun processes a timing's record names (host()'s `processes`, or a result's `key` such as
    experts_processes): 1 where it names none, or none of a count's kind."""
    count = (record or {}).get(key, 1)
    return count if isinstance(count, int) and not isinstance(count, bool) and count >= 1 else 1


def host() -> dict:
    """What a wall time depends on besides the device, recorded beside every timing (artifact meta, evaluations).
    `cpu_kernels`, the instruction set torch's CPU kernels dispatch to (AVX2, AVX512, ...), is also what the last
    digits of a CPU result depend on: the same seed and code give the same bits on one machine, and may not on a
    processor with another instruction set (the quick suite's DATM and SRe2L cells moved by 0.1-0.25 points
    between two clean-clone runs with the same code for them and the same expert buffer, docs/results.md).
    `cpu` and `cpu_generation` name the processor (None off Linux). `processes`: how many torchrun ranks shared the
    work (1 alone): a timing made by N processes of `threads` threads each is not a one-process timing."""
    import torch

    from ltdistill.distributed import world

    text = read_cpuinfo()
    return {"threads": torch.get_num_threads(), "processes": world().size, "torch": torch.__version__,
            "malloc": "freed memory kept (ltdistill)" if TUNED else "as the environment sets it",
            "cpu": proc_field("model name", text), "cpu_generation": cpu_generation(text),
            "cpu_kernels": torch.backends.cpu.get_cpu_capability()}
