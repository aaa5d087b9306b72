"""Exact closest-point throughput (issue 2): deepcsp's libigl AABB backend (``MeshOracle``), the
optional open3d backend when importable, and point-cloud-utils for comparison.

For each mesh (normalised into the unit cube) two query sets of ``--points`` points:
``near`` = area-weighted surface samples + Gaussian offsets with sigma = 1% of the bbox diagonal,
``uniform`` = uniform in the normalised cube [-0.5, 0.5]^3. Throughput = points / query time
(median of ``--repeats`` runs), also per CPU-second of this process (all its threads), which
shows what the code does when the shared machine is busy; the BVH build is timed separately (pcu builds its tree inside
every call, so its time includes the build). ``max |d - d_igl|`` checks that backends agree.

    python benchmarks/bm_ground_truth.py
    python benchmarks/bm_ground_truth.py --meshes closed/spot.obj --points 20000
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import machine, meshes_dir, print_table

from deepcsp.geometry.closest import MeshOracle
from deepcsp.geometry.sampling import sample_surface
from deepcsp.io import load_surface

DEFAULT_MESHES = ("closed/spot.obj", "closed/armadillo_29k.obj", "closed/nefertiti_100k.obj")


def _median_time(fn, repeats: int):
    """Median wall seconds, median CPU seconds of this process (all threads), last output."""
    times, cpu, out = [], [], None
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return float(np.median(times)), float(np.median(cpu)), out


def _backends():
    """name -> build(v, f) returning query(points) -> distances."""
    out = {}

    def igl_build(v, f):
        o = MeshOracle(v, f)
        return lambda q: o.query(q).distances

    out["deepcsp igl"] = igl_build
    try:
        import open3d  # noqa: F401

        def o3d_build(v, f):
            o = MeshOracle(v, f, backend="open3d")
            return lambda q: o.query(q).distances

        out["deepcsp open3d"] = o3d_build
    except ImportError:
        print("open3d is not installed: its optional backend is not measured")
    try:
        import point_cloud_utils as pcu

        def pcu_build(v, f):
            f32 = f.astype(np.int32)
            return lambda q: pcu.closest_points_on_mesh(q, v, f32)[0]

        out["point-cloud-utils"] = pcu_build
    except ImportError:
        print("point-cloud-utils is not installed: not compared")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--meshes", nargs="+", default=list(DEFAULT_MESHES), help="paths under the dev meshes folder")
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    print(f"machine: {machine()}")
    backends = _backends()
    rows = []
    for name in args.meshes:
        s = load_surface(meshes_dir() / name)
        v, f = s.normalized_vertices, s.faces
        rng = np.random.default_rng(args.seed)
        diag = float(np.linalg.norm(v.max(0) - v.min(0)))
        surf = sample_surface(v, f, args.points, rng).points
        sets = {
            "near": surf + rng.normal(scale=0.01 * diag, size=surf.shape),
            "uniform": rng.uniform(-0.5, 0.5, (args.points, 3)),
        }
        ref = {}
        for bname, build in backends.items():
            t_build, _, query = _median_time(lambda: build(v, f), args.repeats)
            for sname, q in sets.items():
                t, cpu, d = _median_time(lambda: query(q), args.repeats)
                if bname == "deepcsp igl":
                    ref[sname] = d
                dev = float(np.abs(d - ref[sname]).max()) if sname in ref else float("nan")
                rows.append(
                    {
                        "mesh": name.split("/")[-1],
                        "faces": len(f),
                        "backend": bname,
                        "points": sname,
                        "build s": t_build,
                        "query s": t,
                        "points/s": args.points / t,
                        "points/CPU-s": args.points / cpu,
                        "max |d - d_igl|": dev,
                    }
                )
    print()
    print_table(
        rows,
        ["mesh", "faces", "backend", "points", "build s", "query s", "points/s", "points/CPU-s", "max |d - d_igl|"],
        {
            "points/s": "{:,.0f}",
            "points/CPU-s": "{:,.0f}",
            "build s": "{:.3f}",
            "query s": "{:.3f}",
            "max |d - d_igl|": "{:.1e}",
        },
    )


if __name__ == "__main__":
    main()
