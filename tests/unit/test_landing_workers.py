"""The worker pool that lands large files and pulls: results in order, and once its workers are up
they take every item (the loading process lands items itself only while they start)."""
import os
import time

from assets.ingestion import ods


def where_landed(spec, item, ctx):
    return item, os.getpid()


def slowly_where_landed(spec, item, ctx):
    time.sleep(0.02)
    return item, os.getpid()


def test_a_ready_pool_lands_every_item_in_its_workers_and_results_keep_their_order():
    pool = ods._start_workers(2)
    assert ods._ready.wait(60), "the pool's workers did not start"
    assert ods._pool is pool
    results = list(ods._landed_in_order(where_landed, None, None, iter(range(12)), 2, size=lambda item: 1,
                                        parallel_after=8))
    assert [item for item, _ in results] == list(range(12))
    assert os.getpid() not in {pid for _, pid in results}


def test_a_cold_pool_leaves_the_first_items_here_and_still_keeps_the_order():
    if ods._pool is not None:
        ods._pool.shutdown(wait=True)
    ods._pool, ods._pool_size = None, 0
    results = list(ods._landed_in_order(where_landed, None, None, iter(range(40)), 2, size=lambda item: 1,
                                        parallel_after=3))
    assert [item for item, _ in results] == list(range(40))
    assert results[0][1] == os.getpid()  # landed while the workers start
    assert any(pid != os.getpid() for _, pid in results)


def test_a_starting_pool_leaves_items_here_until_its_workers_are_up_however_many():
    if ods._pool is not None:
        ods._pool.shutdown(wait=True)
    ods._pool, ods._pool_size = None, 0
    ods._start_workers(2)  # as a large file's load does before it reads the file
    results = list(ods._landed_in_order(slowly_where_landed, None, None, iter(range(400)), 2, size=lambda item: 1,
                                        parallel_after=None))
    assert [item for item, _ in results] == list(range(400))
    here = [item for item, pid in results if pid == os.getpid()]
    assert here and here == list(range(len(here)))  # the first ones, while the workers started
    assert len(here) < 400  # and the workers took over once up
