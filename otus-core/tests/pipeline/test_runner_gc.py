"""The run loop tunes the cyclic garbage collector while it runs and restores it afterwards."""

from __future__ import annotations

import gc
from types import SimpleNamespace

from otus._pipeline.runner import GC_GEN0_THRESHOLD, Runner, tuned_gc


def test_gc_is_tuned_during_the_loop_and_restored_after(fakes: SimpleNamespace) -> None:
    seen: list[tuple[tuple[int, int, int], int]] = []

    def observe(n: int) -> bool:
        seen.append((gc.get_threshold(), gc.get_freeze_count()))
        return False

    before = gc.get_threshold()
    gc.freeze()
    gc.unfreeze()  # CPython 3.12 reports a stale non-zero count until the first unfreeze
    assert gc.get_freeze_count() == 0
    capturer = fakes.ListCapturer([fakes.sip_batch(2), fakes.sip_batch(1)])
    parser = fakes.CountingParser(fail=observe)
    pipeline = fakes.make_pipeline(capturer, [parser], [], [fakes.CollectingReporter()])

    result = Runner(pipeline).run()

    assert result.status == "completed"
    assert len(seen) == 2
    for threshold, frozen in seen:
        assert threshold[0] == max(before[0], GC_GEN0_THRESHOLD)
        assert threshold[1:] == before[1:]
        assert frozen > 0  # start-up objects moved to the permanent generation
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_overlapping_runs_restore_only_when_the_last_one_ends() -> None:
    before = gc.get_threshold()
    outer = tuned_gc()
    inner = tuned_gc()
    outer.__enter__()
    inner.__enter__()
    outer.__exit__(None, None, None)  # threads end in any order
    assert gc.get_threshold()[0] == max(before[0], GC_GEN0_THRESHOLD)
    assert gc.get_freeze_count() > 0
    inner.__exit__(None, None, None)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
