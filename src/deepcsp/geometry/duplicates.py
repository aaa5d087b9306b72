"""Repeated samples of a point cloud, merged.

Scans merged from overlapping passes, clouds taken from a triangle soup's corners and tiles stitched
at their seams repeat samples, exactly or to within a rounding. A repeat adds no surface but halves
the distance to a sample's nearest neighbour, so every rule measured in sample spacings (patch
sizes, the noise, the gaps the hole rules look for) reads such a cloud as denser than it is: 5,000
samples of spot given twice lost 29% of its area to false holes (``benchmarks/bm_duplicates.py``).

    merged = merge_duplicates(points)        # merged.points: one sample for each repeated one
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Two samples closer than this share of the local spacing (:func:`merge_duplicates`) are one
#: sample given twice. Random sampling puts about 6.5 x 0.025^2 = 0.4% of the samples of a surface
#: this close to another: 0.33% of those of the benchmark's clean clouds (median; 3k, 10k, 100k, all
#: 24 meshes), at most 0.53%; none to 0.13% of its noisy clouds (2026-12-07).
NEAR_SHARE = 0.025
#: Near pairs are merged only when more of the samples than this have one (about four times what
#: random sampling gives), so the benchmark's clouds are left as they are.
REPEATED_SHARE = 0.02
#: A cloud found to repeat its samples has those within this share of the local spacing merged: the
#: copies of overlapping scans lie a registration error apart, not a rounding (measured on clouds
#: given twice with the copy shifted, ``benchmarks/bm_duplicates.py``). It also merges the 6.5% of
#: samples random sampling puts that close, moving them by at most a twentieth of a spacing.
MERGE_SHARE = 0.1


@dataclass
class MergedSamples:
    """The distinct samples with repeats merged (``points (M, 3)``), and how many input samples were
    merged into others (``n_repeated``)."""

    points: np.ndarray
    n_repeated: int


def merge_duplicates(
    points: np.ndarray,
    near: float = NEAR_SHARE,
    repeated: float = REPEATED_SHARE,
    merge: float = MERGE_SHARE,
    keep_order: bool = False,
    k: int = 8,
) -> MergedSamples:
    """Samples of ``points : (N, 3)`` repeated exactly, and, when more than ``repeated`` of the
    distinct samples have a neighbour within ``near`` local spacings (more than random sampling
    gives), also those within ``merge`` local spacings, merged into their mean. The local spacing
    here is the median distance to the ``k // 2 + 1``-th to ``k``-th nearest distinct samples: past a
    sample's own few repeats. The distinct samples are sorted as ``np.unique`` sorts them, or with
    ``keep_order`` in the order they first occur (a cloud given twice then gives what it gives once,
    to the bit)."""
    points = np.asarray(points, np.float64)
    distinct, first = np.unique(points, axis=0, return_index=True)
    if keep_order:
        distinct = points[np.sort(first)]
    same = MergedSamples(distinct, len(points) - len(distinct))
    if len(distinct) <= k:
        return same
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    dist, idx = cKDTree(distinct).query(distinct, k=k + 1, workers=-1)
    spacing = np.median(dist[:, k // 2 + 1 :], axis=1)
    apart = dist[:, 1:] / np.minimum(spacing[:, None], spacing[idx[:, 1:]])  # in the pair's smaller spacing
    if (apart[:, 0] <= near).mean() <= repeated:
        return same
    rows, cols = np.nonzero(apart <= merge)
    n = len(distinct)
    graph = coo_matrix((np.ones(len(rows)), (rows, idx[rows, cols + 1])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    counts = np.bincount(label)
    merged = np.stack([np.bincount(label, weights=distinct[:, i]) for i in range(3)], 1) / counts[:, None]
    return MergedSamples(merged, len(points) - len(merged))
