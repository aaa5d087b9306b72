"""Training throughput (shapes/s) of ``deepcsp train`` with 1 process and with 2 processes
(``torchrun --nproc_per_node=2``, gloo on CPU), same effective batch and model.

Usage::

    python benchmarks/bm_train_throughput.py DATA_DIR [--steps 12] [--knn 8]

Throughput is measured by the training loop over its own optimizer steps (data loading of the
records at start-up excluded; augmentation, forward, backward, all-reduce and optimizer included).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile


def run(cmd: list[str]) -> float:
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    m = re.search(r"samples/s\s+([0-9.eE+-]+)", out)
    if not m:
        raise RuntimeError(out)
    return float(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--knn", type=int, default=8)
    args = ap.parse_args()
    common = [
        "train",
        args.data_dir,
        "--quiet",
        "--config.max-steps",
        str(args.steps),
        "--config.batch",
        "8",
        "--config.n-query",
        "1024",
        "--config.model.plane-resolution",
        "32",
        "--config.model.knn",
        str(args.knn),
        "--config.val-count",
        "0",
    ]
    rows = []
    for label, launcher, threads in (
        ("1 process, 1 thread", [sys.executable, "-m", "deepcsp"], 1),
        ("1 process, 2 threads", [sys.executable, "-m", "deepcsp"], 2),
        (
            "2 processes (torchrun, gloo), 1 thread each",
            [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "-m", "deepcsp"],
            1,
        ),
    ):
        run_dir = tempfile.mkdtemp(prefix="bm_tp_")
        try:
            sps = run(launcher + common + ["-o", run_dir, "--config.threads", str(threads)])
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
        rows.append((label, sps))
        print(f"{label:45s} {sps:.2f} shapes/s ({sps * 1024:.0f} queries/s)", flush=True)
    print()
    print("| launch | shapes/s | queries/s |")
    print("|---|---|---|")
    for label, sps in rows:
        print(f"| {label} | {sps:.2f} | {sps * 1024:.0f} |")


if __name__ == "__main__":
    main()
