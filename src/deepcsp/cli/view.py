"""``deepcsp view PATH [PATH ...]``: look at fields, meshes and point clouds in the browser."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as _field
from pathlib import Path
from typing import Annotated

import tyro

from deepcsp.view.config import ViewConfig


@dataclass
class ViewCommand:
    """Serve an interactive viewer (viser) of field files, meshes and point clouds: colour by
    normal, mean curvature or distance to --reference; probe closest points; distance slices;
    sphere-trace the current view; save screenshots. Stops on Ctrl-C. Needs
    ``pip install 'deepcsp[view]'``."""

    paths: Annotated[tuple[Path, ...], tyro.conf.Positional]
    """Field files (.safetensors), meshes (.obj .ply .off .stl .glb) or point clouds (.ply .xyz
    .npy .npz .las .laz); several are shown side by side."""
    reference: Path | None = None
    """Ground-truth mesh or cloud in the same coordinates: per-vertex distance colours, Chamfer and
    F-score figures."""
    view: Annotated[ViewConfig, tyro.conf.arg(name="", prefix_name=False)] = _field(default_factory=ViewConfig)
    """Viewer settings."""

    def _load(self):
        from deepcsp.cli._common import echo, need_file
        from deepcsp.io import load_surface
        from deepcsp.view.items import load_item

        paths = [need_file(p, "input") for p in self.paths]
        protect = frozenset(
            p.resolve() for p in paths + ([need_file(self.reference, "reference")] if self.reference else [])
        )
        items = []
        for p in paths:
            echo(f"loading {p} ...")
            items.append(
                load_item(
                    p,
                    self.view.mesh_resolution,
                    self.view.max_faces,
                    self.view.max_points,
                    protect,
                    self.view.device,
                    self.view.seed,
                )
            )
            if items[-1].note:
                echo(f"  {items[-1].note}")
        reference = load_surface(self.reference) if self.reference is not None else None
        return items, reference

    def run(self) -> int:
        import signal
        import time

        from deepcsp.cli._common import echo, table
        from deepcsp.errors import DeepCSPError
        from deepcsp.view.server import Viewer, _import_viser

        if not self.paths:
            raise DeepCSPError("give at least one field, mesh or point cloud to view")
        try:
            self.view.validate()
        except ValueError as exc:
            raise DeepCSPError(str(exc)) from None
        if not Path(self.view.save_dir).is_dir():
            raise DeepCSPError("--save-dir is not a folder", self.view.save_dir)
        for p in self.paths + ((self.reference,) if self.reference is not None else ()):
            if not Path(p).exists():
                raise DeepCSPError("file not found", p)
        _import_viser()  # fail before the slow loading when viser is missing
        items, reference = self._load()
        viewer = Viewer(items, self.view, reference)

        def on_term(*_args):
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, on_term)
        # Ctrl-C stops the server even when this process was started with SIGINT ignored (a
        # background job of a non-interactive shell, e.g. `nohup .ci/run &`): Python then installs
        # no KeyboardInterrupt handler of its own
        previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            echo(table([(it.name, it.counts()) for it in items], "deepcsp view"))
            echo(f"open {viewer.url} in a browser (Ctrl-C stops)")
            while True:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, previous_int)
            stopped = _stop_within(viewer, seconds=5.0)
        echo(
            "deepcsp view: stopped"
            if stopped
            else "deepcsp view: stopped (the server did not shut down within 5 s; exiting anyway)"
        )
        if not stopped:  # a server thread still waits on a browser connection: nothing is left to save
            import os
            import sys

            sys.stdout.flush()
            os._exit(0)
        return 0


def _stop_within(viewer, seconds: float) -> bool:
    """Stop the viewer's server in a daemon thread; whether it finished within ``seconds`` (a
    connected browser can keep viser's shutdown waiting: measured once in a fresh CI venv)."""
    import threading

    t = threading.Thread(target=viewer.stop, daemon=True)
    t.start()
    t.join(seconds)
    return not t.is_alive()
