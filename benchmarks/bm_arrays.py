"""Set operations on integer keys: numpy's ``np.unique`` / ``np.setdiff1d`` against ``deepcsp._arrays``,
on scattered int64 keys each repeated 4 times (like the edges shared by grid cells): keys spread over
2^40 (sorted) and corner keys of a 257^3 grid (marked in a bitmap; ``sort s``: the sort path on them).

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


if __name__ == "__main__":
    main()
