import gc

from minis3.meta.gcfreeze import Freezer


def test_freezes_first_then_only_after_growth():
    f = Freezer(every=100)
    try:
        assert f.maybe(10) and f.freezes == 1 and gc.get_freeze_count() > 0
        assert not f.maybe(109)
        assert f.maybe(110) and f.freezes == 2
    finally:
        gc.unfreeze()


def test_cyclic_garbage_is_collected_before_a_freeze_not_frozen():
    import weakref

    class Node:
        pass
    a, b = Node(), Node()
    a.other, b.other = b, a                  # a cycle only the cyclic collector can free
    ref = weakref.ref(a)
    del a, b
    try:
        Freezer(every=1).maybe(1)
        assert ref() is None
    finally:
        gc.unfreeze()


def test_a_server_process_freezes_start_up_and_collects_young_objects_less_often():
    """rpc/process.tune_gc, run in a fresh interpreter (it changes the whole process)."""
    import subprocess
    import sys
    code = ("import gc; from minis3.rpc.process import GC_YOUNG_THRESHOLD, tune_gc; "
            "before = gc.get_threshold(); tune_gc(); after = gc.get_threshold(); "
            "print(before[0], after[0] == GC_YOUNG_THRESHOLD, after[1:] == before[1:], gc.get_freeze_count() > 1000)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["700", "True", "True", "True"]
