"""Set operations on integer keys: numpy's ``np.unique`` / ``np.setdiff1d`` against ``deepcsp._arrays``,
on scattered int64 keys each repeated 4 times (like the edges shared by grid cells): keys spread over
2^40 (sorted) and corner keys of a 257^3 grid (marked in a bitmap; ``sort s``: the sort path on them).
Then the edges of a shell of grid cells (``grid.cell_edges``: 12 shifted copies of the cells' keys) by
``unique`` of all the sums against ``shifted_unique`` (merging the copies' sorted runs).

Run:  python benchmarks/bm_arrays.py [--sizes 1000000 4000000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import machine, print_table

from deepcsp import _arrays


def _seconds(fn, *args) -> tuple[float, np.ndarray]:
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[1_000_000, 4_000_000, 24_000_000])
    args = ap.parse_args()
    print(machine())
    rng = np.random.default_rng(0)
    rows = []
    for span, kind in ((2**40, "2^40"), (257**3, "grid 257^3")):
        for n in args.sizes:
            keys = np.repeat(rng.integers(0, span, n // 4), 4)
            rng.shuffle(keys)
            other = keys[: n // 2].copy()
            t_np, a = _seconds(np.unique, keys)
            t_sort, b = _seconds(_arrays.sort_unique, keys)
            t_ours, c = _seconds(_arrays.unique, keys)
            s_np, d = _seconds(np.setdiff1d, keys, other)
            s_ours, e = _seconds(_arrays.setdiff, keys, other)
            assert np.array_equal(a, b) and np.array_equal(a, c) and np.array_equal(d, e)
            rows.append(
                {
                    "keys": f"{n:,}",
                    "range": kind,
                    "np.unique s": f"{t_np:.2f}",
                    "sort s": f"{t_sort:.2f}",
                    "unique s": f"{t_ours:.2f}",
                    "ratio": f"{t_np / t_ours:.0f}x",
                    "np.setdiff1d s": f"{s_np:.2f}",
                    "setdiff s": f"{s_ours:.2f}",
                    "ratio ": f"{s_np / s_ours:.0f}x",
                }
            )
    print_table(rows, list(rows[0]))
    print_table(_shell_edges(rng), ["grid", "cells", "edges", "unique s", "shifted_unique s", "ratio"])


def _shell_edges(rng: np.random.Generator) -> list[dict]:
    """The 12 edge keys of the cells within 3 cells of a sphere (in random order), at two grids."""
    from deepcsp.extract.grid import cell_edge_offsets

    rows = []
    for R in (256, 496):
        ax = np.arange(R)
        ijk = np.stack(np.meshgrid(ax, ax, ax, indexing="ij"), -1).reshape(-1, 3)
        cells = ijk[np.abs(np.linalg.norm(ijk + 0.5 - R / 2, axis=1) - 0.3 * R) < 3.0]
        cells = cells[rng.permutation(len(cells))]
        shifts = cell_edge_offsets(R + 1)
        base = 3 * (cells @ np.array([(R + 1) ** 2, R + 1, 1], dtype=np.int64))
        t_all, a = _seconds(_arrays.unique, base[:, None] + shifts[None])
        t_runs, b = _seconds(_arrays.shifted_unique, base, shifts)
        assert np.array_equal(a, b)
        rows.append(
            {
                "grid": R,
                "cells": f"{len(cells):,}",
                "edges": f"{len(a):,}",
                "unique s": f"{t_all:.2f}",
                "shifted_unique s": f"{t_runs:.2f}",
                "ratio": f"{t_all / t_runs:.1f}x",
            }
        )
    return rows


if __name__ == "__main__":
    main()
