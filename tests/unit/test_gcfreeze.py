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
