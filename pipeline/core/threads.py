"""Whole-array work in threads: numpy's and scipy.ndimage's large operations release the GIL,
so a stage given two cores can run independent pieces side by side without processes (and
without copying the stack)."""
from __future__ import annotations


def thread_map(work, items, *, workers: int | None = None) -> list:
    """``[work(item) for item in items]``, in up to ``workers`` threads (None: one per item;
    1 or fewer, or a single item: in this thread).  An exception in a piece is raised here."""
    items = list(items)
    workers = len(items) if workers is None else int(workers)
    if workers <= 1 or len(items) <= 1:
        return [work(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(workers, len(items))) as pool:
        return list(pool.map(work, items))
