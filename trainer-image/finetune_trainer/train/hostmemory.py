"""Host memory of a training process: tensors freed during a step go back to the kernel.

glibc's malloc gives each block above its mmap threshold (128 KiB at start) a mapping of its own and unmaps it
when it is freed, but it raises the threshold to the size of every such block freed, up to 32 MiB ("dynamic
threshold"). A training step frees many blocks of parameter size (gradients, activations; under FSDP also each
gathered layer, its unsharded gradients and gloo's copies of both), so after the first step every tensor up to
32 MiB comes from the heap of the thread that allocates it (the main thread, autograd's, gloo's workers) and stays
resident once freed, fragmented across those heaps: on CPU ranks the resident set's high-water mark crept up step
after step, by up to ~0.8 GB per rank above what was live (bench/trainer/RESULTS.md, FSDP vs DDP).

Setting the threshold explicitly (`mallopt(M_MMAP_THRESHOLD)`, which also turns the dynamic adjustment off)
keeps every block of `MMAP_THRESHOLD_BYTES` or more a mapping of its own, returned when freed, so the resident set
follows what is live. Smaller blocks (a row's activations at CPU sequence lengths, Python objects) keep glibc's
fast heap. The cost is a mapping and its page faults per large allocation. On GPUs the step's tensors live in
CUDA's own caching allocator, untouched by this; the host copy rank 0 loads for sharded loading is returned too.

A pod environment that sets `MALLOC_MMAP_THRESHOLD_` itself (glibc's own variable) is left as it chose.
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping

# glibc's malloc.h: `#define M_MMAP_THRESHOLD -3`.
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 1 << 20
GLIBC_ENV = "MALLOC_MMAP_THRESHOLD_"


def return_freed_tensors(environ: Mapping[str, str]) -> bool:
    """Fix glibc's mmap threshold at `MMAP_THRESHOLD_BYTES` for this process; whether it was set.

    False where the C library is not glibc (musl has no `mallopt`) or the environment already sets it.
    """
    if GLIBC_ENV in environ:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):
        return False
