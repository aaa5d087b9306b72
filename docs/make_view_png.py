"""Regenerate ``docs/view.png``: ``deepcsp view`` on the demo's outputs, captured in headless Chromium.

    .venv/bin/python docs/make_view_png.py      # runs ``deepcsp demo`` into a temporary folder first (~1 min)

Uses the DevTools driver of ``tests/test_view.py`` (Debian's chromium, nothing downloaded).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def main() -> None:
    from PIL import Image
    from test_view import Browser, _chromium

    from deepcsp.cli.view import ViewCommand
    from deepcsp.view import ViewConfig, Viewer

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "demo_out"
        subprocess.run([sys.executable, "-m", "deepcsp", "demo", "-o", str(out)], check=True)
        shirt = REPO / "src" / "deepcsp" / "data" / "tee_sim.obj"
        cmd = ViewCommand(paths=(out / "field.safetensors", out / "mesh.ply"), reference=shirt, view=ViewConfig(port=0, slice="z"))
        items, reference = cmd._load()
        with Viewer(items, cmd.view, reference) as viewer:
            browser = Browser(_chromium(), 1400, 780)
            try:
                browser.goto(viewer.url)
                browser.wait_for(lambda im: True)
                browser.click(288, 81)  # close "Software WebGL rendering detected"
                img = browser.wait_for(lambda im: (np.abs(im[200:600, 300:900].astype(int) - 255).sum(-1) > 60).mean() > 0.2)
            finally:
                browser.close()
    img = img[:, 380:]  # the empty left of the page
    pic = Image.fromarray(img).quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    pic.save(REPO / "docs" / "view.png", optimize=True)
    print(f"wrote docs/view.png ({(REPO / 'docs' / 'view.png').stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
