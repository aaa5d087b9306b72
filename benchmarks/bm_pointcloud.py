"""Surfaces from point clouds: deepcsp beside open3d's ball pivoting and screened Poisson (issue 12).

Every dev mesh (``../shared/data/meshes`` or ``$DEEPCSP_MESHES``) is sampled to an unoriented cloud
(area-uniform, seeded), perturbed per setting, and reconstructed by each method in its own process
(so seconds and peak memory are its own); the meshes are scored against the exact mesh.

Settings (``--settings``): ``3k``, ``10k``, ``100k`` points; ``-n0.25`` / ``-n0.5``: isotropic
Gaussian noise of 0.25% / 0.5% of the bbox diagonal per coordinate; ``-o1``: 1% more points, uniform
in the bbox (outliers). ``scan4`` / ``scan8``: a simulated range scan instead
(``deepcsp.pipelines.scan.scan_cloud``: 4 or 8 views of 160 x 160 rays around the mesh, points only
where a view sees the surface, denser where it faces the view, each moved along its ray by Gaussian
noise of 0.1% of the diagonal, or ``-n`` that many % instead; not in the default settings). Methods
(``--methods``):

* ``deepcsp``: ``deepcsp.pipelines.reconstruct_cloud`` with its defaults (``deepcsp reconstruct``);
* ``deepcsp-geometric`` / ``deepcsp-learned``: the same with the learned projection never / always
  applied (ablation: the geometric operator, which projects a noisy cloud onto its own point-set surface
  instead; ``$DEEPCSP_LOCAL_MODEL`` names another local model than the shipped one);
* ``global``: the global tri-plane model shipped before (``deepcsp reconstruct --method global``);
* ``bpa``: open3d ball pivoting, normals estimated (30 neighbours) and oriented by
  ``orient_normals_consistent_tangent_plane(30)``, radii 1, 2 and 4 times the mean nearest-neighbour
  distance (``deepcsp.pipelines.peers``, ``pip install 'deepcsp[peers]'``);
* ``poisson``: open3d screened Poisson, same normals, depth 9, vertices of the lowest 5% density
  removed, then faces whose centroid lies more than 3 mean spacings from the input removed (so open
  shapes stay open).

Scores (``deepcsp.geometry.metrics`` conventions, 100k samples per surface): Chamfer-L1 = sum of the
two one-sided mean distances / bbox diagonal (in %), normal consistency (NC), F-score at 0.5% and 1%
of the diagonal, boundary loops (ground truth's in ``gt_loops``), non-manifold and inconsistently
wound edges (``inconsistent``), area / true area, watertight (no boundary edge, no non-manifold
edge), seconds, peak resident memory (MB).

Rows are appended to ``--out`` (JSON lines) and reused on the next run (the last row of a mesh,
setting and method counts) unless ``--fresh [METHOD ...]`` asks to recompute them: the peers are
computed once, ``--fresh deepcsp`` reruns only deepcsp. The summary prints, per
setting, the median over meshes of each method and the targets of issue 12.

Usage::

    python benchmarks/bm_pointcloud.py [--meshes spot tee_sim] [--settings 10k 3k] [--methods deepcsp bpa poisson]
        [--jobs 1] [--out benchmarks/out/pointcloud.jsonl] [--fresh]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, all_meshes, machine, print_table  # noqa: E402

SETTINGS = (
    "3k",
    "10k",
    "100k",
    "3k-n0.25",
    "10k-n0.25",
    "100k-n0.25",
    "3k-n0.5",
    "10k-n0.5",
    "100k-n0.5",
    "10k-o1",
    "10k-n0.5-o1",
)
METHODS = ("deepcsp", "deepcsp-geometric", "deepcsp-learned", "global", "bpa", "poisson")
PEERS = ("bpa", "poisson")


#: A simulated scan's noise along its rays, as a fraction of the diagonal, when its name gives none.
SCAN_NOISE = 0.001
#: A simulated scan's rays per view and side.
SCAN_RESOLUTION = 160


def parse_setting(name: str) -> dict:
    """``'10k-n0.5-o1'`` -> ``{'n': 10000, 'noise': 0.005, 'outliers': 0.01, 'views': 0}`` (fractions of
    the diagonal / of n); ``'scan4'`` -> ``{'n': 0, 'noise': 0.001, 'outliers': 0.0, 'views': 4}``."""
    parts = name.split("-")
    scan = parts[0].startswith("scan")
    try:
        count = int(parts[0][4:]) if scan else int(float(parts[0].rstrip("k")) * 1000)
    except ValueError:
        raise SystemExit(f"unknown setting {name!r}") from None
    out = {
        "n": 0 if scan else count,
        "noise": SCAN_NOISE if scan else 0.0,
        "outliers": 0.0,
        "views": count if scan else 0,
    }
    for p in parts[1:]:
        if p.startswith("n"):
            out["noise"] = float(p[1:]) / 100
        elif p.startswith("o"):
            out["outliers"] = float(p[1:]) / 100
        else:
            raise SystemExit(f"unknown setting part {p!r} in {name!r}")
    return out


def ground_truth(path: Path):
    """The mesh, welded by position (texture seams are not boundaries), and its bbox diagonal."""
    from deepcsp.extract.topology import weld_and_clean
    from deepcsp.io import load_surface

    s = load_surface(path)
    diag = float(np.linalg.norm(s.vertices.max(0) - s.vertices.min(0)))
    v, f = weld_and_clean(s.vertices, s.faces, 1e-9 * diag)
    return v, f, diag


def make_cloud(v: np.ndarray, f: np.ndarray, diag: float, setting: str, seed: int) -> np.ndarray:
    """The setting's cloud of the mesh ``(v, f)``, seeded."""
    from deepcsp.geometry.sampling import sample_surface
    from deepcsp.pipelines.scan import scan_cloud

    s = parse_setting(setting)
    rng = np.random.default_rng(seed)
    if s["views"]:
        pts = scan_cloud(v, f, s["views"], SCAN_RESOLUTION, s["noise"], seed=seed)
    else:
        pts = sample_surface(v, f, s["n"], rng).points
        pts = pts + rng.normal(size=pts.shape) * s["noise"] * diag
    if s["outliers"]:
        lo, hi = v.min(0), v.max(0)
        pad = 0.05 * (hi - lo)
        pts = np.concatenate([pts, rng.uniform(lo - pad, hi + pad, (int(round(s["outliers"] * len(pts))), 3))])
    return pts


# --- methods, each run in a child process -------------------------------------------------------


def run_deepcsp(points: np.ndarray, projection: str = "auto", **options):
    """deepcsp's default reconstruction of ``points`` (``options``: other ``ReconstructionConfig`` fields)."""
    from deepcsp.fit import FitConfig
    from deepcsp.fit.config import CloudConfig
    from deepcsp.io.surface import surface_from_arrays
    from deepcsp.pipelines import ReconstructionConfig, reconstruct_cloud

    config = ReconstructionConfig(
        fit=FitConfig(
            eval_points=0, cloud=CloudConfig(projection=projection, model=os.environ.get("DEEPCSP_LOCAL_MODEL"))
        ),
        **options,
    )
    rec = reconstruct_cloud(surface_from_arrays(points), config)
    return rec.vertices, rec.faces


def run_global(points: np.ndarray):
    from deepcsp.extract import ExtractConfig, extract_mesh
    from deepcsp.fields.conditional import load_model, shipped_model_path
    from deepcsp.train.reconstruct import ReconstructConfig, reconstruct_points

    loaded = load_model(shipped_model_path())
    rec = reconstruct_points(loaded.model, points, ReconstructConfig(n_dense=0))
    res = extract_mesh(rec.field, ExtractConfig(resolution=256))
    return res.vertices, res.faces


def run_peer(points: np.ndarray, name: str):
    from deepcsp.pipelines.peers import PEERS

    return PEERS[name](points)


RUNNERS = {
    "deepcsp": run_deepcsp,
    "deepcsp-geometric": lambda p: run_deepcsp(p, "off"),
    "deepcsp-learned": lambda p: run_deepcsp(p, "learned"),
    "global": run_global,
    "bpa": lambda p: run_peer(p, "bpa"),
    "poisson": lambda p: run_peer(p, "poisson"),
}


def child(job: dict) -> None:
    """Run one method on one cloud; write the mesh and print ``{"seconds", "peak_mb"}`` as JSON
    (peak resident memory of this process: ``VmHWM``, which, unlike ``ru_maxrss``, starts afresh at exec)."""
    points = np.load(job["cloud"])
    if job.get("threads"):
        import torch

        torch.set_num_threads(job["threads"])
    t0 = time.perf_counter()
    v, f = RUNNERS[job["method"]](points)
    seconds = time.perf_counter() - t0
    np.savez(job["mesh"], vertices=np.asarray(v, np.float64), faces=np.asarray(f, np.int64))
    status = Path("/proc/self/status").read_text() if Path("/proc/self/status").exists() else ""
    hwm = [line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")]
    peak_mb = float(hwm[0]) / 1024.0 if hwm else float("nan")
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb}))


# --- scoring ----------------------------------------------------------------------------------


def check_methods(methods: list[str]) -> None:
    """Exit with a message naming the methods not in ``METHODS``."""
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise SystemExit(f"unknown methods {sorted(unknown)}; expected some of {METHODS}")


def table_row(s: dict) -> dict:
    """The columns the small studies print from a :func:`score`: Chamfer-L1 %, NC, loops (the
    truth's after the slash), area ratio."""
    return {
        "CD-L1 %": float(s["cd_l1"]),
        "NC": float(s["nc"]),
        "loops": f"{s['loops']}/{s['gt_loops']}",
        "area": float(s["area_ratio"]),
    }


def score(v: np.ndarray, f: np.ndarray, gv: np.ndarray, gf: np.ndarray, diag: float, n: int = 100_000) -> dict:
    """Metrics of mesh ``(v, f)`` against the ground truth (see the module docstring)."""
    from deepcsp.extract.topology import mesh_stats, weld_and_clean
    from deepcsp.geometry.closest import MeshOracle
    from deepcsp.geometry.metrics import fscore
    from deepcsp.geometry.sampling import sample_surface

    gst = mesh_stats(gv, gf)
    row = {"gt_loops": gst.n_boundary_loops}
    if len(f) == 0:
        return {
            **row,
            "cd_l1": float("nan"),
            "nc": float("nan"),
            "f_05": 0.0,
            "f_1": 0.0,
            "loops": 0,
            "nonmanifold": 0,
            "inconsistent": 0,
            "area_ratio": 0.0,
            "watertight": False,
            "faces": 0,
        }
    v, f = weld_and_clean(np.asarray(v, np.float64), np.asarray(f, np.int64), 1e-9 * diag)
    rng = np.random.default_rng(0)
    ps, gs = sample_surface(v, f, n, rng), sample_surface(gv, gf, n, rng)
    go, po = MeshOracle(gv, gf), MeshOracle(v, f)
    a, b = go.query(ps.points), po.query(gs.points)
    nc = 0.5 * (
        np.abs((ps.normals * go.face_normals()[a.face_ids]).sum(1)).mean()
        + np.abs((gs.normals * po.face_normals()[b.face_ids]).sum(1)).mean()
    )
    st = mesh_stats(v, f)
    return {
        **row,
        "cd_l1": 100.0 * (a.distances.mean() + b.distances.mean()) / diag,
        "nc": float(nc),
        "f_05": fscore(a.distances, b.distances, 0.005 * diag),
        "f_1": fscore(a.distances, b.distances, 0.01 * diag),
        "loops": st.n_boundary_loops,
        "nonmanifold": st.n_nonmanifold_edges,
        "inconsistent": st.n_inconsistent_edges,
        "area_ratio": st.area / gst.area,
        "watertight": st.n_boundary_edges == 0 and st.n_nonmanifold_edges == 0,
        "faces": st.n_faces,
    }


def run_one(mesh_path: Path, setting: str, method: str, seed: int, timeout: float, threads: int = 0) -> dict:
    gv, gf, diag = ground_truth(mesh_path)
    cloud = make_cloud(gv, gf, diag, setting, seed)
    with tempfile.TemporaryDirectory() as tmp:
        job = {
            "cloud": str(Path(tmp) / "cloud.npy"),
            "mesh": str(Path(tmp) / "mesh.npz"),
            "method": method,
            "threads": threads,
        }
        np.save(job["cloud"], cloud)
        env = dict(os.environ, PYTHONPATH=str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
        try:
            out = subprocess.run(
                [sys.executable, __file__, "--child", json.dumps(job)],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
            )
        except subprocess.TimeoutExpired:
            return {"error": f"timeout after {timeout:.0f} s"}
        if out.returncode != 0:
            return {"error": (out.stderr.strip().splitlines() or ["?"])[-1][:300]}
        info = json.loads(out.stdout.strip().splitlines()[-1])
        m = np.load(job["mesh"])
        return {**info, **score(m["vertices"], m["faces"], gv, gf, diag)}


# --- summary ----------------------------------------------------------------------------------


def summarize(rows: list[dict], settings: list[str], methods: list[str]) -> None:
    by = {(r["mesh"], r["setting"], r["method"]): r for r in rows if "error" not in r}
    meshes = sorted({r["mesh"] for r in rows})
    table = []
    for s in settings:
        for m in methods:
            rs = [by[(mesh, s, m)] for mesh in meshes if (mesh, s, m) in by]
            if not rs:
                continue
            med = lambda k: float(np.median([r[k] for r in rs]))  # noqa: E731
            table.append(
                {
                    "setting": s,
                    "method": m,
                    "meshes": len(rs),
                    "CD-L1 %": med("cd_l1"),
                    "NC": med("nc"),
                    "F@0.5%": med("f_05"),
                    "F@1%": med("f_1"),
                    "seconds": med("seconds"),
                    "peak MB": float(np.max([r["peak_mb"] for r in rs])),
                }
            )
    print(f"\n## Medians over meshes ({machine()})\n")
    print_table(
        table,
        ["setting", "method", "meshes", "CD-L1 %", "NC", "F@0.5%", "F@1%", "seconds", "peak MB"],
        {
            "CD-L1 %": "{:.4f}",
            "NC": "{:.4f}",
            "F@0.5%": "{:.4f}",
            "F@1%": "{:.4f}",
            "seconds": "{:.1f}",
            "peak MB": "{:.0f}",
        },
    )
    targets = []
    for s in settings:
        for m in [m for m in methods if m not in PEERS]:
            both = [mesh for mesh in meshes if all((mesh, s, x) in by for x in (m, *PEERS))]
            if not both:
                continue
            ours = [by[(mesh, s, m)] for mesh in both]
            best_peer_cd = {mesh: min(by[(mesh, s, p)]["cd_l1"] for p in PEERS) for mesh in both}
            peer_meds = {p: float(np.median([by[(mesh, s, p)]["cd_l1"] for mesh in both])) for p in PEERS}
            better = min(peer_meds, key=peer_meds.get)
            nc_peer = float(np.median([by[(mesh, s, better)]["nc"] for mesh in both]))
            ratios = np.array([o["cd_l1"] / best_peer_cd[mesh] for o, mesh in zip(ours, both)])
            open_rows = [o for o in ours if o["gt_loops"] > 0]
            closed_rows = [o for o in ours if o["gt_loops"] == 0]
            n_area_ok = sum(0.9 <= o["area_ratio"] <= 1.1 for o in open_rows)
            n_loops_ok = sum(o["gt_loops"] / 2 <= o["loops"] <= 2 * o["gt_loops"] for o in open_rows)
            poisson_s = float(np.median([by[(mesh, s, "poisson")]["seconds"] for mesh in both]))
            targets.append(
                {
                    "setting": s,
                    "method": m,
                    "meshes": len(both),
                    "CD / better peer": float(np.median([o["cd_l1"] for o in ours])) / peer_meds[better],
                    "better peer": better,
                    "NC - peer NC": float(np.median([o["nc"] for o in ours])) - nc_peer,
                    "worst mesh CD / best peer": float(ratios.max()),
                    "worst mesh": both[int(ratios.argmax())],
                    "open: area in 0.9-1.1": f"{n_area_ok}/{len(open_rows)}",
                    "open: loops within 2x": f"{n_loops_ok}/{len(open_rows)}",
                    "closed: watertight": f"{sum(o['watertight'] for o in closed_rows)}/{len(closed_rows)}",
                    "non-manifold edges": int(sum(o["nonmanifold"] for o in ours)),
                    "seconds / Poisson": float(np.median([o["seconds"] for o in ours])) / poisson_s,
                }
            )
    if targets:
        print("\n## Targets of issue 12 (CD / better peer <= 0.8, NC - peer NC >= 0, worst mesh <= 1.25)\n")
        print_table(
            targets,
            list(targets[0].keys()),
            {
                "CD / better peer": "{:.3f}",
                "NC - peer NC": "{:+.4f}",
                "worst mesh CD / best peer": "{:.2f}",
                "seconds / Poisson": "{:.2f}",
            },
        )
    ablation = [row for s in settings if (row := _ablation(by, meshes, s)) is not None]
    if ablation:
        print("\n## Learned projection (deepcsp) against the geometric operator (deepcsp-geometric), CD ratio\n")
        print_table(ablation, list(ablation[0].keys()))


def _ablation(by: dict, meshes: list[str], setting: str) -> dict | None:
    """``deepcsp`` against ``deepcsp-geometric`` on one setting's clouds: CD-L1 ratios (median,
    range, wins) and NC gains, apart for the meshes the local model never saw (the evaluation
    split of ``deepcsp train-local``) and those it was trained or selected on."""
    from deepcsp.cli.train_local import EVAL_MESHES

    unseen = {m.rsplit(".", 1)[0] for m in EVAL_MESHES}
    both = [m for m in meshes if (m, setting, "deepcsp") in by and (m, setting, "deepcsp-geometric") in by]
    if not both:
        return None
    ratio = {m: by[(m, setting, "deepcsp")]["cd_l1"] / by[(m, setting, "deepcsp-geometric")]["cd_l1"] for m in both}
    gain = {m: by[(m, setting, "deepcsp")]["nc"] - by[(m, setting, "deepcsp-geometric")]["nc"] for m in both}

    def part(names: list[str]) -> tuple[str, str]:
        if not names:
            return "-", "-"
        r = np.array([ratio[m] for m in names])
        text = f"{np.median(r):.3f} ({r.min():.2f}-{r.max():.2f}), lower on {int((r < 1).sum())}/{len(r)}"
        return text, f"{np.median([gain[m] for m in names]):+.4f}"

    seen = [m for m in both if m not in unseen]
    (cd_unseen, nc_unseen), (cd_seen, nc_seen) = part([m for m in both if m in unseen]), part(seen)
    return {
        "setting": setting,
        "meshes": len(both),
        "learned differs": sum(ratio[m] != 1.0 for m in both),
        "CD ratio, unseen meshes": cd_unseen,
        "NC gain, unseen": nc_unseen,
        "CD ratio, train/val meshes": cd_seen,
        "NC gain, train/val": nc_seen,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--meshes", nargs="*", default=None, help="mesh names (stems) to use; default all 24")
    ap.add_argument("--settings", nargs="*", default=list(SETTINGS))
    ap.add_argument("--methods", nargs="*", default=["deepcsp", "bpa", "poisson"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=1200.0)
    ap.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads in deepcsp's process (0: torch's default; 1 on a shared machine)",
    )
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / "pointcloud.jsonl")
    ap.add_argument(
        "--fresh", nargs="*", default=None, help="recompute rows already in --out: of these methods (all without names)"
    )
    ap.add_argument("--summary-only", action="store_true")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        return child(json.loads(args.child))
    for s in args.settings:
        parse_setting(s)
    check_methods(args.methods)
    paths = [p for p in all_meshes() if args.meshes is None or p.stem in args.meshes]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if args.out.exists():
        for line in args.out.read_text().splitlines():
            r = json.loads(line)
            done[(r["mesh"], r["setting"], r["method"], r["seed"])] = r
    if not args.summary_only:
        for s in args.settings:  # setting by setting: a partial run has whole settings
            for path in paths:
                name = f"{path.parent.name}/{path.stem}"
                for m in args.methods:
                    key = (name, s, m, args.seed)
                    fresh = args.fresh is not None and (not args.fresh or m in args.fresh)
                    if key in done and not fresh:
                        continue
                    r = {
                        "mesh": name,
                        "setting": s,
                        "method": m,
                        "seed": args.seed,
                        **run_one(path, s, m, args.seed, args.timeout, args.threads),
                    }
                    done[key] = r
                    with open(args.out, "a") as fh:
                        fh.write(json.dumps(r) + "\n")
                    brief = {
                        k: (round(v, 4) if isinstance(v, float) else v)
                        for k, v in r.items()
                        if k not in ("mesh", "setting", "method", "seed")
                    }
                    print(f"{name} {s} {m}: {brief}", flush=True)
    names = {f"{p.parent.name}/{p.stem}" for p in paths}
    rows = [r for r in done.values() if r["mesh"] in names and r["seed"] == args.seed]
    summarize(rows, args.settings, [m for m in METHODS if m in args.methods])


if __name__ == "__main__":
    main()
