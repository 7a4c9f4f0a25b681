"""settle_heap() freezes what startup built and collects the young generation less often; run in a
child process, since what it freezes is never collected."""

from __future__ import annotations

import subprocess
import sys

from bridge.ops.heap import GEN0_THRESHOLD, GEN1_THRESHOLD, GEN2_THRESHOLD

CHILD = """
import gc
import bridge.app  # what serve imports
print(gc.get_freeze_count())
from bridge.ops.heap import settle_heap
settle_heap()
print(gc.get_freeze_count(), *gc.get_threshold())
"""


def test_settle_heap_freezes_the_startup_heap_and_raises_the_thresholds():
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120, check=True
    )
    before, after = done.stdout.splitlines()
    frozen, *thresholds = (int(n) for n in after.split())
    assert int(before) == 0
    assert frozen > 10_000  # the modules' objects: out of every collection's reach
    assert thresholds == [GEN0_THRESHOLD, GEN1_THRESHOLD, GEN2_THRESHOLD]
