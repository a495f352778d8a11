"""Frame-sized buffers are reused, not faulted in afresh every frame (nstream/memory.py)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

# a 1440p frame as the network's float32 input, allocated and filled 20 times; prints the minor page
# faults of the last 15 (glibc alone never serves blocks above 32 MiB from its heaps: the test is
# deterministic; at 360p its adaptive threshold sometimes learns, sometimes not, as thread timing falls)
FRAMES = """
import resource, sys
import numpy as np
if sys.argv[1] != "default":  # "reuse": the thresholds must be set; "tuned": they must not be
    from nstream.memory import reuse_frame_buffers
    assert reuse_frame_buffers() == (sys.argv[1] == "reuse")
for index in range(20):
    if index == 5:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    planes = np.empty((3, 1440, 2560), np.float32)
    planes.fill(index)
    del planes
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(mode: str, env: dict[str, str] | None = None) -> int:
    done = subprocess.run([sys.executable, "-c", FRAMES, mode], capture_output=True, text=True, check=True,
                          env={**os.environ, **(env or {})})
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the thresholds are glibc's")
def test_frame_buffers_are_reused_instead_of_faulted_in_every_frame():
    default, reused = _page_faults("default"), _page_faults("reuse")
    assert default > 15 * 100  # 44 MB of fresh pages a frame (huge pages where the kernel gives them)
    assert reused * 10 < default, (reused, default)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the thresholds are glibc's")
def test_a_user_tuned_malloc_is_left_as_it_is():
    """MALLOC_TOP_PAD_ (a setting that does not touch the thresholds) stands for the user's own tuning."""
    assert _page_faults("tuned", {"MALLOC_TOP_PAD_": "131072"}) > 15 * 100


def test_reuse_frame_buffers_is_safe_to_call_again():
    from nstream.memory import reuse_frame_buffers

    assert reuse_frame_buffers() == reuse_frame_buffers()
