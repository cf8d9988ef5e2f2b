"""The process-wide settings of dfdc.device, as the jobs that call them see them."""

from __future__ import annotations

import platform
import resource

import numpy as np
import pytest

from dfdc.device import keep_freed_memory


def _page_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")
def test_a_freed_large_block_is_reused_without_fresh_pages() -> None:
    # 64 MB, as large as ten 1080p frames or a batch's activations: by default glibc maps such a block
    # afresh each time, and every new page faults in (over 500 faults here).
    keep_freed_memory()
    block = np.ones(64 << 20, np.uint8)
    del block
    before = _page_faults()
    block = np.ones(64 << 20, np.uint8)
    faults = _page_faults() - before
    assert int(block.sum()) == 64 << 20
    assert faults < 100  # a few may come from elsewhere (the kernel's NUMA balancing, other threads)
