"""Frame-sized buffers reused inside the process instead of handed back to the kernel after each frame.

glibc's malloc serves blocks above its mmap threshold (128 KiB, raised on the fly only up to the
largest block freed so far in that arena) with fresh pages and gives them back on free, and it trims
its heaps as soon as 128 KiB sit free at their top. Every frame allocates a few such blocks (the
network's float32 input and output, the uint8 picture, the blend's maps) on several threads, so each
frame faulted in megabytes of new zeroed pages: ~1,800 page faults a 360p frame and a tenth of the
stylize threads' CPU in the kernel. With both thresholds above a frame's size freed blocks are
reused: 10-17 % more frames a second for ~80 MB more resident memory (docs/BENCHMARKS.md, "Frame
buffers kept"). Other C libraries are left alone, and so is a process whose environment already
tunes glibc's malloc (``MALLOC_*_`` or ``GLIBC_TUNABLES``).
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 64 << 20  # above a 1440p float32 frame (44 MB): blocks below it come from the heaps
TRIM_THRESHOLD = 128 << 20  # free memory a heap keeps before it is given back
_applied: bool | None = None


def reuse_frame_buffers() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; True where they were set (glibc only)."""
    global _applied
    if _applied is None:
        _applied = False
        if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc" and not _tuned_by_environment():
            try:
                libc = ctypes.CDLL("libc.so.6")
                _applied = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
                    libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
            except (OSError, AttributeError) as exc:  # no usable libc: the default allocator stays
                log.debug("mallopt unavailable: %s", exc)
    return _applied


def _tuned_by_environment() -> bool:
    """The user set malloc's thresholds (or any of its tunables) for this process: theirs stand."""
    return any(name.startswith("MALLOC_") and name.endswith("_") for name in os.environ) or (
        "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""))
