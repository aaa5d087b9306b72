"""The ``deepcsp`` commands on the CPU and on a CUDA GPU, same inputs: seconds and agreement.

On the bundled T-shirt (``tee_sim.obj``): ``fit`` (one field per device), then with the CPU's field
``query`` (1M points in the box), ``render`` (512x512), ``mesh`` (resolution 256) and ``reconstruct``
of a 10,000-point cloud of the shirt, each run once per device as a user would (a new process:
seconds include start-up and file I/O). Agreement: the two fields' closest points at the same
points, the query outputs, the renders' pixels and the meshes' Chamfer-L1 (``deepcsp eval``).
Without CUDA only the CPU column is filled.

Run:  python benchmarks/bm_device.py [--out DIR] [--json F]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import machine, print_table
from PIL import Image

from deepcsp.geometry.sampling import sample_surface
from deepcsp.io import load_surface

TEE = Path(__file__).resolve().parents[1] / "src" / "deepcsp" / "data" / "tee_sim.obj"


def deepcsp(*args: str) -> float | str:
    """Run ``python -m deepcsp ARGS``: its wall seconds, or the last line of its error output."""
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "deepcsp", *args], capture_output=True, text=True)
    if out.returncode != 0:
        return "failed: " + ((out.stderr.strip().splitlines() or ["?"])[-1])[:200]
    return time.perf_counter() - t


def step_commands(work: Path, dev: str) -> dict[str, list[str]]:
    """Each step's arguments on ``dev``; all but ``fit`` read the CPU's field."""
    d, field = work / dev, str(work / "cpu" / "field.safetensors")
    return {
        "fit": ["fit", str(TEE), "-o", str(d / "field.safetensors"), "--config.device", dev, "--quiet"],
        "query 1M": ["query", field, str(work / "pts.npy"), "-o", str(d / "q.npz"), "--device", dev],
        "render 512": ["render", field, "-o", str(d / "r.png"), "--device", dev],
        "mesh 256": ["mesh", field, "-o", str(d / "m.ply"), "--device", dev],
        "reconstruct 10k": [
            "reconstruct",
            str(work / "cloud.npy"),
            "-o",
            str(d / "rec.ply"),
            "--device",
            dev,
            "--quiet",
        ],
    }


def agreement(work: Path, diag: float) -> dict[str, str]:
    """How far the CUDA outputs lie from the CPU's, per step (only steps both devices finished)."""
    cpu, gpu = work / "cpu", work / "cuda"

    def gaps(a: Path, b: Path) -> np.ndarray:
        """Distances between two query outputs' closest points, over the diagonal."""
        return np.linalg.norm(np.load(a)["closest_points"] - np.load(b)["closest_points"], axis=1) / diag

    def chamfer(name: str) -> str:
        res = deepcsp("eval", str(cpu / name), str(gpu / name), "--json", str(work / "eval.json"))
        if isinstance(res, str):
            return res
        cd = 100 * json.loads((work / "eval.json").read_text())["chamfer_l1_rel"]
        return f"Chamfer-L1 between the two meshes {cd:.2g}%"

    out = {}
    if (gpu / "field.safetensors").exists():
        res = deepcsp("query", str(gpu / "field.safetensors"), str(work / "pts.npy"), "-o", str(work / "q_gpu.npz"))
        if isinstance(res, str):
            out["fit"] = res
        else:
            fit_gap = 100 * gaps(cpu / "q.npz", work / "q_gpu.npz").max()
            out["fit"] = f"closest points of the two fields within {fit_gap:.2g}% of the diagonal (max over 1M points)"
    if (gpu / "q.npz").exists():
        d = gaps(cpu / "q.npz", gpu / "q.npz")
        out["query 1M"] = (
            f"outputs within {100 * d.max():.2g}% of the diagonal (max); {int((d > 1e-4).sum())} points "
            f"more than 0.01% apart, p99.9 {100 * np.quantile(d, 0.999):.2g}%"
        )
    if (gpu / "r.png").exists():
        a, b = (np.asarray(Image.open(x / "r.png")).astype(int) for x in (cpu, gpu))
        out["render 512"] = (
            f"{100 * float((np.abs(a - b).max(-1) > 2).mean()):.2f}% of pixels differ by more than 2/255"
        )
    for step, name in (("mesh 256", "m.ply"), ("reconstruct 10k", "rec.ply")):
        if (gpu / name).exists():
            out[step] = chamfer(name)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="keep the outputs here (default: a temporary folder)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(machine(), "| devices:", ", ".join(devices), torch.cuda.get_device_name(0) if len(devices) > 1 else "")
    work = args.out or Path(tempfile.mkdtemp(prefix="bm_device_"))
    truth = load_surface(TEE)
    rng = np.random.default_rng(0)
    lo, hi = truth.vertices.min(0), truth.vertices.max(0)
    diag = float(np.linalg.norm(hi - lo))
    for dev in devices:
        (work / dev).mkdir(parents=True, exist_ok=True)
    np.save(work / "pts.npy", rng.uniform(lo - 0.05 * diag, hi + 0.05 * diag, (1_000_000, 3)))
    np.save(work / "cloud.npy", sample_surface(truth.vertices, truth.faces, 10_000, rng).points)
    seconds = {(step, dev): deepcsp(*cmd) for dev in devices for step, cmd in step_commands(work, dev).items()}
    agree = agreement(work, diag) if "cuda" in devices else {}
    rows = []
    for step in step_commands(work, "cpu"):
        row = {"step": step, "cpu s": _fmt(seconds[step, "cpu"])}
        if "cuda" in devices:
            c, g = seconds[step, "cpu"], seconds[step, "cuda"]
            row |= {
                "cuda s": _fmt(g),
                "cpu / cuda": f"{c / g:.2f}" if not isinstance(c, str) and not isinstance(g, str) else "-",
            }
            row["cuda against cpu"] = agree.get(step, "-")
        rows.append(row)
    print_table(rows, list(rows[0]))
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": machine(), "devices": devices, "rows": rows}, indent=1))


def _fmt(x: float | str) -> str:
    return x if isinstance(x, str) else f"{x:.1f}"


if __name__ == "__main__":
    main()
