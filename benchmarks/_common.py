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
