"""Source pages read ahead in a thread come out as the plain loop would see them."""
import threading
import time

import pytest

from assets.ingestion.store import ReadAhead


def test_items_come_out_in_order_and_at_most_depth_ahead():
    read = []

    def pages():
        for i in range(20):
            read.append(i)
            yield i

    with ReadAhead(pages(), depth=3) as ahead:
        first = next(ahead)
        time.sleep(0.2)
        assert first == 0 and len(read) <= 1 + 3 + 1  # the one taken, the queue, one waiting for room
        assert [first, *ahead] == list(range(20))
        assert list(ahead) == []


def test_a_failure_comes_after_the_items_read_before_it():
    class SourceDown(RuntimeError):
        pass

    def pages():
        yield "p1"
        yield "p2"
        raise SourceDown("page 3: 503")

    got = []
    with pytest.raises(SourceDown, match="page 3"):
        with ReadAhead(pages()) as ahead:
            for page in ahead:
                got.append(page)
    assert got == ["p1", "p2"]


def test_leaving_early_stops_the_reader_and_closes_the_source():
    closed = threading.Event()
    read = []

    def pages():
        try:
            for i in range(1000):
                read.append(i)
                yield i
        finally:
            closed.set()

    with pytest.raises(ValueError):
        with ReadAhead(pages(), depth=2) as ahead:
            next(ahead)
            raise ValueError("writing failed")
    assert closed.wait(2)
    assert len(read) < 10


def test_reading_happens_in_another_thread_while_the_consumer_waits():
    threads = set()

    def pages():
        for i in range(3):
            threads.add(threading.get_ident())
            yield i

    with ReadAhead(pages()) as ahead:
        time.sleep(0.1)  # the consumer is busy (waiting on DuckDB or a worker): the pages arrive meanwhile
        assert ahead._queue.qsize() >= 3
        assert list(ahead) == [0, 1, 2]
    assert threads and threading.get_ident() not in threads
