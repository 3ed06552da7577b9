"""Connected components of a boolean grid (4-connectivity), in numpy alone.

Site screening needs one label per contiguous candidate area to add up the cells behind it.
scipy is not a dependency, and polygonising then rasterising back is slow for areas with many
holes, so this labels runs of cells: each row's runs of True cells, runs that overlap in
neighbouring rows joined with a vectorised union-find (hook to the smaller root, then
compress paths).
"""

from __future__ import annotations

import numpy as np


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """(labels, count): labels 1..count for the 4-connected components of mask, 0 elsewhere.

    Components are numbered in row-major order of their first cell.
    """
    height, width = mask.shape
    labels = np.zeros(mask.shape, dtype=np.int32)
    rows, starts, ends = _runs(mask)
    if rows.size == 0:
        return labels, 0
    left, right = _touching_runs(rows, starts, ends, width)
    roots = _union(rows.size, left, right)
    # Number components by their first run (runs are in row-major order).
    unique_roots, first_run, run_component = np.unique(roots, return_index=True,
                                                       return_inverse=True)
    order = np.argsort(first_run)
    renumber = np.empty(unique_roots.size, dtype=np.int32)
    renumber[order] = np.arange(1, unique_roots.size + 1, dtype=np.int32)
    per_cell = np.repeat(renumber[run_component], ends - starts)
    labels[mask] = per_cell  # mask's True cells are in row-major order, as the runs are
    return labels, int(unique_roots.size)


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row, first column and end column (exclusive) of every run of True cells."""
    height, width = mask.shape
    padded = np.zeros((height, width + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    steps = np.diff(padded, axis=1)  # +1 where a run starts, -1 one past where it ends
    start_rows, starts = np.nonzero(steps == 1)
    _, ends = np.nonzero(steps == -1)
    return start_rows.astype(np.int64), starts.astype(np.int64), ends.astype(np.int64)


def _touching_runs(rows: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                   width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of runs in consecutive rows that share at least one column."""
    stride = width + 1
    start_keys = rows * stride + starts  # sorted: runs are in row-major order
    end_keys = rows * stride + ends
    # Run b in the next row touches run a when b.end > a.start and b.start < a.end.
    first = np.searchsorted(end_keys, start_keys + stride, side="right")
    stop = np.searchsorted(start_keys, end_keys + stride, side="left")
    counts = np.maximum(stop - first, 0)
    left = np.repeat(np.arange(rows.size), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    right = np.repeat(first, counts) + offsets
    return left, right


def _union(count: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The root (smallest member) of each node's set, joining every (left, right) pair."""
    parent = np.arange(count)
    if left.size == 0:
        return parent
    while True:
        a, b = parent[left], parent[right]
        low = np.minimum(a, b)
        hooked = parent.copy()
        np.minimum.at(hooked, a, low)
        np.minimum.at(hooked, b, low)
        while True:  # path compression: point every node at its root
            jumped = hooked[hooked]
            if np.array_equal(jumped, hooked):
                break
            hooked = jumped
        if np.array_equal(hooked, parent):
            return parent
        parent = hooked
