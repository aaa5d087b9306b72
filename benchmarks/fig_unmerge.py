"""Close sheets split back into both layers (issue 16): cross-sections of the meshes that
``extract_mesh`` makes from default fitted fields of a sheet folded back on itself (layers 1 cell
apart) and of two open rectangles half a cell apart, with the merged mid-surface alone
(``unmerge_sheets=False``, the behaviour before) and split again (the default), over the input.
A cell is one cell of the default band grid (192 per side of the normalised cube).

Run:  python benchmarks/fig_unmerge.py [--out benchmarks/figures/thin_unmerge.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _common import HERE

from deepcsp.extract import ExtractConfig, extract_mesh
from deepcsp.fit import FitConfig, fit_surface
from deepcsp.geometry import thin_shapes
from deepcsp.io.surface import surface_from_arrays

CASES = (("fold", thin_shapes.folded_sheet, 1.0), ("sheets", thin_shapes.parallel_sheets, 0.5))
STYLES = (("input", "k", 2.5), ("merged mid-surface (before)", "tab:blue", 1.2), ("split (default)", "tab:red", 1.2))


def section(vertices: np.ndarray, faces: np.ndarray, origin: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """``(S, 2, 3)`` the segments where the plane through ``origin`` with ``normal`` cuts the mesh."""
    d = (vertices - origin) @ normal
    tri, dt = vertices[faces], d[faces]
    segments = []
    for i in range(len(faces)):
        pts = []
        for a, b in ((0, 1), (1, 2), (2, 0)):
            if (dt[i, a] < 0) != (dt[i, b] < 0):
                t = dt[i, a] / (dt[i, a] - dt[i, b])
                pts.append(tri[i, a] + t * (tri[i, b] - tri[i, a]))
        if len(pts) == 2:
            segments.append(pts)
    return np.asarray(segments).reshape(-1, 2, 3)


def panel(ax, name: str, make, cells: float) -> None:
    cell = thin_shapes.cell_size()
    v, f = make(cells * cell)
    surf = surface_from_arrays(v, f, f"{name} {cells}")
    field = fit_surface(surf, FitConfig(eval_points=0)).field
    meshes = [(v, f)] + [
        (r.vertices, r.faces) for r in (extract_mesh(field, ExtractConfig(unmerge_sheets=u)) for u in (False, True))
    ]
    centre = v.mean(0)
    axes = np.linalg.svd(v - centre, full_matrices=False)[2]  # length, width, normal
    along = (v - centre) @ axes[0]
    ends = []
    for sign in (1.0, -1.0):  # the end where both layers are (a fold's bend, the sheets' shared rim)
        near = sign * along >= (sign * along).max() - 2 * cell
        ends.append((np.ptp((v[near] - centre) @ axes[2]), sign))
    sign = max(ends)[1]
    axes[0] *= -sign
    lo = ((v - centre) @ axes[0]).min()
    for (mv, mf), (label, colour, width) in zip(meshes, STYLES):
        seg = section(mv, mf, centre, axes[1]) - centre
        x, z = (seg @ axes[0] - lo) / cell, (seg @ axes[2]) / cell
        for k in range(len(seg)):
            ax.plot(x[k], z[k], color=colour, lw=width, label=label if k == 0 else None)
    ax.set_xlim(-1.5, 12)
    ax.set_ylim(-2.0, 2.0)
    ax.set_aspect("equal")
    ax.set_xlabel("cells along the sheet (from its end)")
    ax.set_ylabel("cells across")
    ax.set_title(f"{name}, layers {cells:g} cell apart: cross-section at one end")
    ax.legend(loc="upper right", fontsize=8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=HERE / "figures" / "thin_unmerge.png")
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(CASES), 1, figsize=(9, 3.4 * len(CASES)))
    for ax, (name, make, cells) in zip(axes, CASES):
        panel(ax, name, make, cells)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
