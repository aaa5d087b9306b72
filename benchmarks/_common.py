"""Shared helpers of the benchmark scripts (not part of the package)."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def meshes_dir() -> Path:
    """The dev meshes: ``$DEEPCSP_MESHES`` when set, else ``../shared/data/meshes`` beside the repo."""
    env = os.environ.get("DEEPCSP_MESHES")
    p = Path(env) if env else REPO.parent / "shared" / "data" / "meshes"
    if not (p / "closed").is_dir():
        raise SystemExit(
            f"benchmark meshes not found in {p}: "
            "set DEEPCSP_MESHES or put them in ../shared/data/meshes beside the repo"
        )
    return p


def all_meshes() -> list[Path]:
    d = meshes_dir()
    return sorted(d.glob("closed/*")) + sorted(d.glob("open/*"))


def machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}, {time.strftime('%Y-%m-%d')}"


def print_table(rows: list[dict], cols: list[str], fmt: dict | None = None) -> str:
    fmt = fmt or {}

    def cell(r, c):
        v = r.get(c, "")
        if isinstance(v, float):
            return fmt.get(c, "{:.4g}").format(v)
        return str(v)

    widths = {c: max(len(c), *(len(cell(r, c)) for r in rows)) if rows else len(c) for c in cols}
    lines = [
        "| " + " | ".join(c.ljust(widths[c]) for c in cols) + " |",
        "|" + "|".join("-" * (widths[c] + 2) for c in cols) + "|",
    ]
    lines += ["| " + " | ".join(cell(r, c).ljust(widths[c]) for c in cols) + " |" for r in rows]
    out = "\n".join(lines)
    print(out, flush=True)
    return out


def write_panel_grid(rows: list, labels, out: Path) -> None:
    """Write a PNG of equal-sized RGB panels: ``rows`` is a list of rows, each a list of ``(H, W, 3)``
    uint8 images, joined by 4-pixel white gaps; the top row's panels carry ``labels``."""
    import numpy as np
    from PIL import Image, ImageDraw

    from deepcsp.render import encode_png

    h, w = rows[0][0].shape[:2]
    sep, gap = np.full((h, 4, 3), 255, np.uint8), None
    lines = []
    for panels in rows:
        line = np.concatenate([x for p in panels for x in (sep, p)][1:], 1)
        gap = np.full((4, line.shape[1], 3), 255, np.uint8)
        lines.append(line)
    img = np.concatenate([x for line in lines for x in (gap, line)][1:], 0)
    for i, text in enumerate(labels):
        panel = Image.fromarray(np.ascontiguousarray(img[:h, i * (w + 4) : i * (w + 4) + w]))
        ImageDraw.Draw(panel).text((8, 6), text, fill=(40, 40, 40))
        img[:h, i * (w + 4) : i * (w + 4) + w] = np.asarray(panel)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(encode_png(img))


def write_mesh_panels(meshes: dict, cameras: list, normalization, out: Path) -> None:
    """Render each of ``meshes`` (label: ``(vertices, faces)``) exactly from each of ``cameras`` (one
    row per camera, the meshes in order, shared ``normalization``) and write the panels to ``out``."""
    from deepcsp.render import render_mesh_exact

    rows = [[render_mesh_exact(v, f, cam, normalization).image for v, f in meshes.values()] for cam in cameras]
    write_panel_grid(rows, list(meshes), out)
    print(f"wrote {out} ({out.stat().st_size // 1024} KB)")


def figure_main(figure, doc: str, default_out: Path) -> None:
    """Command line of a figure script: ``--out`` (default ``default_out``), then ``figure(out)``."""
    import argparse

    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=default_out)
    figure(ap.parse_args().out.resolve())
