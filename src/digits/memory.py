"""Keeping the memory a process frees, so that the next batch's arrays need no new pages from the kernel.

A training step allocates and frees arrays of several MiB (a layer's output; Winograd's
tiles: 21 MiB for a 32-channel 3x3 convolution on 26x26 maps at batch 128).  glibc's
malloc gives blocks that large their own mapping and unmaps them on free, or trims the
heap's free top back to the kernel, so every step faulted in fresh zeroed pages again:
about a fifth of a training step of ``cnn_members.cnn2``'s numpy network (sys time 3.0 s
of 13 s in ``benchmarks/cnn_vs_torch.py --profile``), and more of torch's, whose CPU
tensors come from malloc too.  With every block served from the heap and freed memory
kept, each step reuses the last one's pages.  The process then holds its peak memory
until it exits, which a training or prediction run needs anyway.  No result changes.
"""

import ctypes
import functools

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's <malloc.h>
_M_MMAP_MAX = -4


@functools.cache
def keep_freed_memory():
    """Make glibc's malloc serve every block from its heap and keep what is freed; once per process.

    Returns whether it did: False where the C library is not glibc (macOS, musl, Windows),
    which then keeps its own policy.
    """
    try:
        libc = ctypes.CDLL(None)  # the C library this process already uses
    except (OSError, TypeError):  # Windows has no such handle
        return False
    if not hasattr(libc, "gnu_get_libc_version"):
        return False
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
