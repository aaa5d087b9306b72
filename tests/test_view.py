"""``deepcsp view``: the pieces as plain functions, then the page itself in headless Chromium.

Browser tests drive Debian's ``chromium`` over the DevTools protocol (no browser is downloaded)
and skip, with the reason, where it is absent. The page is judged by its pixels: the shape must
cover the middle of the canvas, and colour modes must change its colours.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

SPOT = REPO / "src" / "deepcsp" / "data" / "spot.obj"
WIDTH, HEIGHT = 1100, 700
#: The page's middle, left of the control panel: the initial camera looks at the scene's centre.
REGION = (slice(int(0.3 * HEIGHT), int(0.7 * HEIGHT)), slice(int(0.3 * WIDTH), int(0.6 * WIDTH)))
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--enable-unsafe-swiftshader",
    "--use-angle=swiftshader",
    "--disable-gpu-sandbox",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--mute-audio",
]


# --------------------------------------------------------------------------- browser helpers


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        exe = shutil.which(name)
        if exe:
            return exe
    return None


class Browser:
    """One headless Chromium page driven over the DevTools protocol (websockets, no extra deps)."""

    def __init__(self, exe: str, width: int = WIDTH, height: int = HEIGHT):
        from websockets.sync.client import connect

        self.profile = tempfile.mkdtemp(prefix="deepcsp-chromium-")
        self.proc = subprocess.Popen(
            [
                exe,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={self.profile}",
                "--remote-debugging-port=0",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile) / "DevToolsActivePort"
        end = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > end or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            page = next(t for t in json.load(r) if t["type"] == "page")
        self.ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        self._id = 0
        self.url = ""
        self.events: list[str] = []
        self.call("Page.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def _recv(self, end: float) -> dict:
        msg = json.loads(self.ws.recv(timeout=max(end - time.monotonic(), 0.01)))
        if "method" in msg:
            self.events.append(msg["method"])
        return msg

    def call(self, method: str, timeout: float = 30.0, **params) -> dict:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        end = time.monotonic() + timeout
        while True:
            msg = self._recv(end)
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def goto(self, url: str, timeout: float = 30.0) -> None:
        """Navigate and wait for the page's load event (nothing to do when already there: a
        viser page follows its server's scene, and loading one costs seconds in software GL)."""
        if url == self.url:
            return
        self.url = url
        self.events.clear()
        self.call("Page.navigate", url=url)
        end = time.monotonic() + timeout
        while "Page.loadEventFired" not in self.events:
            self._recv(end)

    def click(self, x: float, y: float) -> None:
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def screenshot(self) -> np.ndarray:
        import imageio.v3 as iio

        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        return iio.imread(io.BytesIO(data))[..., :3]

    def wait_for(self, predicate, timeout: float = 40.0) -> np.ndarray:
        """Screenshots until ``predicate(image)`` holds and the page has settled (two shots in a
        row alike: new scene nodes fade in); the last one is returned either way."""
        end = time.monotonic() + timeout
        last, img = None, self.screenshot()
        while time.monotonic() < end:
            if predicate(img) and last is not None and np.abs(img.astype(int) - last).mean() < 0.2:
                break
            time.sleep(0.2)
            last, img = img, self.screenshot()
        return img

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def shape_mask(img: np.ndarray) -> np.ndarray:
    """Pixels of the region that are not the white background."""
    return (np.abs(img[REGION].astype(int) - 255).sum(-1)) > 60


def shows_shape(img: np.ndarray, fraction: float = 0.03) -> bool:
    return shape_mask(img).mean() > fraction


def save_png(path: Path, img: np.ndarray) -> None:
    import imageio.v3 as iio

    iio.imwrite(path, img)


def _need_viser() -> None:
    pytest.importorskip("viser", reason="the viewer needs viser: pip install 'deepcsp[view]'")


@pytest.fixture(scope="module")
def browser():
    _need_viser()
    exe = _chromium()
    if exe is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium; .ci/run installs it)")
    b = Browser(exe)
    yield b
    b.close()


@pytest.fixture(scope="module")
def tiny_viewer(tiny_field, tmp_path_factory):
    _need_viser()
    from deepcsp.view import ViewConfig, Viewer, item_from_field

    out = tmp_path_factory.mktemp("view")
    item = item_from_field(tiny_field, "tiny", resolution=64, max_faces=300_000)
    viewer = Viewer([item], ViewConfig(port=0, save_dir=out, slice_resolution=64, trace_size=128))
    yield viewer
    viewer.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- plain functions


def test_import_does_not_need_viser():
    code = "import sys, deepcsp.view, deepcsp.cli.view; assert 'viser' not in sys.modules, 'viser imported eagerly'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_view_sits_between_cli_and_the_layers_it_uses():
    """``deepcsp.view`` uses render / extract / fields / geometry / io; only ``cli`` uses it (the
    import-linter contract says the same; this AST check needs nothing installed)."""
    from test_layers import SRC, _imported_modules, _layer_of

    uses = {_layer_of(m) for path in (SRC / "view").rglob("*.py") for m in _imported_modules(path)}
    assert uses.isdisjoint({"cli", "fit", "train"}) and {"render", "extract"} <= uses
    users = {
        path.relative_to(SRC).parts[0]
        for path in SRC.rglob("*.py")
        if path.relative_to(SRC).parts[0] != "view" and any(_layer_of(m) == "view" for m in _imported_modules(path))
    }
    assert users == {"cli"}, users


def test_missing_viser_is_one_clear_error(monkeypatch, capsys):
    from deepcsp.cli.main import main

    monkeypatch.setitem(sys.modules, "viser", None)  # import viser now raises ImportError
    assert main(["view", str(SPOT), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'deepcsp[view]'" in err and len(err.strip().splitlines()) == 1


def test_bad_options_name_the_flag(capsys):
    from deepcsp.cli.main import main

    assert main(["view", str(SPOT), "--max-faces", "5"]) == 2
    assert "--max-faces" in capsys.readouterr().err
    assert main(["view", str(REPO / "nope.obj")]) == 2
    assert "nope.obj" in capsys.readouterr().err


def test_decimation_and_subsampling_keep_to_the_limits(rng):
    import trimesh

    pytest.importorskip(
        "fast_simplification", reason="decimation needs fast-simplification: pip install 'deepcsp[view]'"
    )
    from deepcsp.view import decimate_mesh, subsample_points

    sphere = trimesh.creation.icosphere(subdivisions=5)  # 20480 faces
    d = decimate_mesh(sphere.vertices, sphere.faces, 2000)
    assert d.reduced and d.n_in == 20480 and 1500 <= d.n_shown <= 2200 and len(d.faces) == d.n_shown
    assert np.abs(np.linalg.norm(d.vertices, axis=1) - 1.0).max() < 0.05  # still the sphere
    same = decimate_mesh(sphere.vertices, sphere.faces, 30000)
    assert not same.reduced and same.n_shown == 20480
    pts = rng.normal(size=(5000, 3))
    s = subsample_points(pts, 1000, seed=1)
    assert s.n_shown == 1000 == len(np.unique(s.kept)) and np.array_equal(s.vertices, pts[s.kept])
    assert np.array_equal(subsample_points(pts, 1000, seed=1).kept, s.kept)


def test_counts_are_shown_for_decimated_inputs():
    import trimesh

    pytest.importorskip(
        "fast_simplification", reason="decimation needs fast-simplification: pip install 'deepcsp[view]'"
    )
    from deepcsp.io.surface import surface_from_arrays
    from deepcsp.view import item_from_surface

    sphere = trimesh.creation.icosphere(subdivisions=4)
    item = item_from_surface(
        surface_from_arrays(sphere.vertices, sphere.faces, "ball.obj"), "ball.obj", max_faces=1000, max_points=100
    )
    assert item.counts().startswith("5,120 faces (shown: ") and "decimated" in item.counts()


def test_field_mesh_is_cached_beside_the_field_and_never_over_an_input(tiny_field, tmp_path):
    from deepcsp.view.items import cache_path_for, field_display_mesh

    path = tmp_path / "tiny.safetensors"
    tiny_field.save(path)
    first = field_display_mesh(tiny_field, path, 48)
    cache = cache_path_for(path)
    assert not first.from_cache and first.cache == cache and cache.exists()
    assert not list(tmp_path.glob("*.tmp*"))  # atomic: no temporary left behind
    again = field_display_mesh(tiny_field, path, 48)
    assert again.from_cache and np.array_equal(again.faces, first.faces) and np.allclose(again.vertices, first.vertices)
    other = field_display_mesh(tiny_field, path, 40)  # another resolution: extracted again
    assert not other.from_cache
    before = cache.read_bytes()
    protected = field_display_mesh(tiny_field, path, 56, protect=frozenset({cache.resolve()}))
    assert protected.cache is None and cache.read_bytes() == before  # an input is never overwritten
    cache.write_bytes(b"truncated")
    assert not field_display_mesh(tiny_field, path, 48).from_cache  # a broken cache is rebuilt


def test_iso_lines_lie_on_their_distance_level():
    from deepcsp.view import distance_slice

    class Sphere:  # unsigned distance to the unit sphere
        def distances(self, p):
            return np.abs(np.linalg.norm(p, axis=1) - 1.0)

    bounds = np.array([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
    sl = distance_slice(Sphere(), bounds, "z", 0.0, resolution=200, n_iso=4, vmax=0.5)
    assert sl.distances.shape == (sl.grid.height, sl.grid.width) and sl.image.shape == sl.distances.shape + (3,)
    assert np.allclose(sl.levels, [0.1, 0.2, 0.3, 0.4])
    ends = sl.segments.reshape(-1, 3)
    assert np.allclose(ends[:, 2], 0.0)
    d = Sphere().distances(ends)
    nearest = sl.levels[np.abs(d[:, None] - sl.levels[None]).argmin(1)]
    pixel = float(np.linalg.norm(sl.grid.du))
    assert np.abs(d - nearest).max() < pixel  # within a pixel of its level
    # pixel (i, j) is at origin + (j + 0.5) du + (i + 0.5) dv: the image's top row is +y
    assert np.allclose(sl.grid.points[0], sl.grid.origin + 0.5 * sl.grid.du + 0.5 * sl.grid.dv)
    assert sl.grid.points[0][1] > sl.grid.points[-1][1] and sl.grid.points[0][0] < sl.grid.points[-1][0]


def test_rotation_puts_the_image_on_the_slice_plane():
    from deepcsp.view.camera import quaternion_matrix
    from deepcsp.view.slices import _PLANE_AXES, AXES, image_wxyz, rotation_wxyz, slice_grid

    for axis in AXES:
        iu, iv = _PLANE_AXES[axis]
        u, v, n = np.eye(3)[iu], np.eye(3)[iv], np.eye(3)[AXES.index(axis)]
        m = quaternion_matrix(rotation_wxyz(u, v))
        assert np.allclose(m[:, 0], u) and np.allclose(m[:, 1], v) and np.allclose(m[:, 2], n)
        # images: columns along local +x, rows down local +y
        m = quaternion_matrix(image_wxyz(slice_grid(np.array([[0.0] * 3, [1.0] * 3]), axis, 0.5, 8)))
        assert np.allclose(m[:, 0], u) and np.allclose(m[:, 1], -v)


def test_browser_camera_becomes_a_deepcsp_camera():
    from deepcsp.geometry.normalize import Normalization
    from deepcsp.view.camera import viewer_camera

    # OpenCV pose at (0, 0, 3) looking down -z with +y up: rotation diag(1, -1, -1) = quaternion (0, 1, 0, 0)
    nz = Normalization(center=(1.0, 0.0, 0.0), scale=0.5)
    cam = viewer_camera((1.0, 0.0, 3.0), (0.0, 1.0, 0.0, 0.0), np.radians(40.0), 2.0, 200, nz, offset=(0.0, 0.0, 1.0))
    assert (cam.width, cam.height) == (200, 100) and cam.fov == pytest.approx(40.0)
    assert np.allclose(cam.eye, [0.0, 0.0, 1.0])  # (1, 0, 3) - offset, then normalised
    right, up, fwd = cam.basis()
    assert np.allclose(fwd, [0, 0, -1]) and np.allclose(up, [0, 1, 0]) and np.allclose(right, [1, 0, 0])


def test_colours():
    from deepcsp.view.colors import colorbar_image, normal_colors, robust_range, scalar_colors, srgb_to_linear

    assert normal_colors(np.array([[0.0, 0.0, 1.0]])).tolist() == [[128, 128, 255]]
    c = scalar_colors(np.array([0.0, 1.0, 2.0, np.nan]), 0.0, 1.0, "viridis")
    assert np.array_equal(c[1], c[2]) and not np.array_equal(c[0], c[1]) and c[3].tolist() == [128, 128, 128]
    assert robust_range(np.array([-3.0, 1.0, 2.0]), symmetric=True, percentile=100) == (-3.0, 3.0)
    assert colorbar_image("viridis", 64, 4).shape == (4, 64, 3)
    assert srgb_to_linear(np.array([0, 255, 188])).tolist() == [0, 255, 128]  # 188 / 255 sRGB is 0.503 linear


def test_mesh_curvature_of_a_sphere():
    import trimesh

    from deepcsp.view.server import mesh_mean_curvature

    s = trimesh.creation.icosphere(subdivisions=4, radius=2.0)
    np.testing.assert_allclose(mesh_mean_curvature(s.vertices, s.faces), 0.5, rtol=0.05)
    np.testing.assert_allclose(mesh_mean_curvature(s.vertices, s.faces[:, ::-1]), -0.5, rtol=0.05)  # inward winding


def test_layout_side_by_side():
    from deepcsp.view.items import layout_offsets

    boxes = [np.array([[0.0, 0, 0], [1, 1, 1]]), np.array([[5.0, 0, 0], [7, 1, 1]])]
    a, b = layout_offsets(boxes, "row", gap=0.5)
    assert np.allclose(a, 0) and np.allclose(b, [1 + 0.5 * 2 - 5, 0, 0])
    assert all(np.allclose(o, 0) for o in layout_offsets(boxes, "overlay"))


# --------------------------------------------------------------------------- the viewer's Python API


def test_global_shift_only_for_scenes_far_from_their_size():
    from deepcsp.view.items import global_shift

    near = [np.array([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]), np.array([[5.0, 0.0, 0.0], [7.0, 2.0, 2.0]])]
    assert np.array_equal(global_shift(near), np.zeros(3))
    utm = [np.array([[512_300.0, 4_100_100.0, 230.0], [512_390.0, 4_100_150.0, 260.0]])]
    np.testing.assert_array_equal(global_shift(utm), [-512_300.0, -4_100_100.0, -200.0])  # 107 m across: whole 100s


def test_a_georeferenced_scene_is_drawn_near_the_origin_and_probed_in_its_own_coordinates(tmp_path, rng, monkeypatch):
    """A mesh and a cloud at a UTM northing of 4.1e6 m: what goes to the page (32-bit floats, which
    step by 0.5 m there) lies within the scene's size of the origin; the probe reads and reports
    input coordinates."""
    _need_viser()
    import trimesh

    import deepcsp.view.server as server
    from deepcsp.io.surface import surface_from_arrays
    from deepcsp.view import ViewConfig, Viewer
    from deepcsp.view.items import item_from_surface

    centre = np.array([512_345.6, 4_100_123.4, 250.0])
    ball = trimesh.creation.icosphere(subdivisions=3, radius=20.0)
    cloud = rng.normal(size=(500, 3))
    cloud = 20.0 * cloud / np.linalg.norm(cloud, axis=1, keepdims=True) + centre
    drawn = []
    real_glb = server.mesh_glb
    monkeypatch.setattr(server, "mesh_glb", lambda v, f, c: drawn.append(np.asarray(v)) or real_glb(v, f, c))
    items = [
        item_from_surface(surface_from_arrays(ball.vertices + centre, ball.faces), "mesh", 300_000, 500_000),
        item_from_surface(surface_from_arrays(cloud), "cloud", 300_000, 500_000),
    ]
    viewer = Viewer(items, ViewConfig(port=0, save_dir=tmp_path, slice_resolution=32, trace_size=64))
    try:
        viewer.set_color_mode("normal")
        assert drawn and np.abs(drawn[-1]).max() < 200.0  # two 40 m balls side by side, not 4.1e6
        points = viewer.server.scene.get_handle_by_name("/inputs/1/points").points
        assert np.abs(points).max() < 200.0
        assert np.abs(viewer.scene_bounds).max() < 200.0
        p = centre + [0.0, 0.0, 30.0]
        res = viewer.set_probe(p)
        np.testing.assert_allclose(res.closest_point, centre + [0.0, 0.0, 20.0], atol=0.05)  # input coordinates
        np.testing.assert_allclose(viewer._control.position, p + viewer.items[0].offset, atol=1e-4)
        assert np.abs(viewer._control.position).max() < 200.0
    finally:
        viewer.stop()


def test_probe_reports_the_fields_closest_point(tiny_viewer, tiny_field, rng):
    viewer = tiny_viewer
    lo, hi = viewer.items[0].bounds
    for p in lo + rng.uniform(-0.1, 1.1, (5, 3)) * (hi - lo):
        res = viewer.set_probe(p)
        q = tiny_field.query(p[None])
        np.testing.assert_allclose(res.closest_point, q.closest_points[0], rtol=0, atol=1e-12)
        assert res.distance == pytest.approx(float(q.distances[0]), abs=1e-12)
        assert np.linalg.norm(res.normal) == pytest.approx(1.0)
        # what the page draws follows: the gizmo at the probe, the red mark on the closest point
        np.testing.assert_allclose(viewer._control.position, p + viewer.items[0].offset, atol=1e-5)
        mark = viewer.server.scene.get_handle_by_name("/probe_marks/closest")
        np.testing.assert_allclose(mark.position, res.closest_point + viewer.items[0].offset, atol=1e-5)
        assert f"{res.distance:.6g}" in viewer._gui_probe_md.content


def test_reference_colours_and_metrics(tiny_field, bundled_tee):
    _need_viser()
    from deepcsp.geometry.closest import MeshOracle
    from deepcsp.io import load_surface
    from deepcsp.view import ViewConfig, Viewer, item_from_field

    ref = load_surface(bundled_tee)
    item = item_from_field(tiny_field, "tiny", resolution=48, max_faces=300_000)
    with Viewer([item], ViewConfig(port=0, metric_samples=2000), reference=ref) as viewer:
        assert viewer.color_mode == "reference" and viewer.color_range.vmax > 0
        err = viewer._surface_values(0, "reference")
        np.testing.assert_allclose(err, MeshOracle(ref.vertices, ref.faces).query(item.display.vertices).distances)
        m = viewer.metrics[0]
        assert m.chamfer_l1_rel < 0.01 and m.fscore > 0.9
        assert "Chamfer-L1" in viewer._metrics_markdown()


def test_point_clouds_probe_slice_and_refuse_tracing(rng, monkeypatch):
    _need_viser()
    import deepcsp.view.server as server
    from deepcsp.errors import DeepCSPError
    from deepcsp.io.surface import surface_from_arrays
    from deepcsp.view import ViewConfig, Viewer, item_from_surface

    pts = rng.normal(size=(3000, 3))
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    cloud = item_from_surface(surface_from_arrays(pts, None, "ball.npy"), "ball.npy", max_faces=1000, max_points=1000)
    assert cloud.kind == "cloud" and cloud.counts() == "3,000 points (shown: 1,000, subsampled)"
    monkeypatch.setattr(server, "SLICE_CLOUD_POINTS", 500)
    with Viewer([cloud], ViewConfig(port=0, slice_resolution=40, iso_lines=3)) as viewer:
        res = viewer.set_probe([0.0, 0.0, 2.0])
        nearest = pts[np.argmin(np.linalg.norm(pts - [0, 0, 2], axis=1))]
        np.testing.assert_allclose(res.closest_point, nearest)  # exact: the nearest of all 3000 points
        np.testing.assert_allclose(res.normal, (res.point - nearest) / res.distance)
        sl = viewer.set_slice("z", 0.5)
        assert "to 500 of the 3,000 points" in viewer._gui_slice_md.content
        full = cloud.field.distances(sl.grid.points).reshape(sl.distances.shape)
        assert (sl.distances >= full - 1e-12).all() and np.median(sl.distances - full) < 0.1
        with pytest.raises(DeepCSPError, match="no surface to trace"):
            viewer.trace_view(camera=None)


# --------------------------------------------------------------------------- in the browser


def test_view_command_serves_the_shape_and_stops_on_ctrl_c(browser, tmp_path):
    port = _free_port()
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "deepcsp", "view", str(SPOT), "--port", str(port), "--save-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url, lines = None, []
        while url is None and time.monotonic() - t0 < 60:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("open http://"):
                url = line.split()[1]
        assert url == f"http://127.0.0.1:{port}/", "".join(lines)
        browser.goto(url)
        img = browser.wait_for(shows_shape)
        save_png(tmp_path / "view_spot.png", img)
        assert shows_shape(img), f"no shape in the middle of the page ({shape_mask(img).mean():.3f} covered)"
        assert not shows_shape(np.full_like(img, 255))  # the check itself can fail
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0, out
        assert "deepcsp view: stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_colour_modes_show_different_colours(browser, tiny_viewer, tmp_path):
    viewer = tiny_viewer
    viewer.set_slice(None)
    viewer.set_color_mode("normal")
    browser.goto(viewer.url)
    normal = browser.wait_for(shows_shape)
    assert shows_shape(normal), "the field's mesh is not in the middle of the page"
    shots = {"normal": normal}
    for mode in ("curvature", "plain"):
        viewer.set_color_mode(mode)
        previous = shots[list(shots)[-1]]
        shots[mode] = browser.wait_for(lambda im: np.abs(im[REGION].astype(int) - previous[REGION]).mean() > 2.0)
    for mode, img in shots.items():
        save_png(tmp_path / f"view_{mode}.png", img)
    masks = {m: shape_mask(im) for m, im in shots.items()}
    for a, b in (("normal", "curvature"), ("curvature", "plain"), ("normal", "plain")):
        both = masks[a] & masks[b]
        assert both.mean() > 0.03 and (masks[a] ^ masks[b]).mean() < 0.5 * both.mean(), "the shape moved between modes"
        diff = np.abs(shots[a][REGION][both].astype(int) - shots[b][REGION][both].astype(int)).sum(-1)
        assert np.median(diff) > 20, f"{a} and {b} look the same on the shape (median difference {np.median(diff)})"

    # plain mode is one colour, shaded: low saturation; normal mode is colourful
    def saturation(im, mask):
        px = im[REGION][mask].astype(float)
        return float(np.median(px.max(1) - px.min(1)))

    assert saturation(shots["normal"], masks["normal"]) > saturation(shots["plain"], masks["plain"]) + 10


def test_slice_trace_and_screenshot_in_the_page(browser, tiny_viewer, tmp_path):
    from deepcsp.view.camera import viewer_camera

    viewer = tiny_viewer
    browser.goto(viewer.url)
    client = viewer.wait_for_client(30)
    before = browser.wait_for(shows_shape)
    sl = viewer.set_slice("z", 0.5)
    assert len(sl.segments) > 0
    with_slice = browser.wait_for(lambda im: (shape_mask(im) & ~shape_mask(before)).mean() > 0.02)
    save_png(tmp_path / "view_slice.png", with_slice)
    assert (shape_mask(with_slice) & ~shape_mask(before)).mean() > 0.02, "the slice did not appear around the shape"

    # The slice is drawn where it is: its pixels, projected with the page's own camera, have the
    # colours the slice computed there (and not those of the image flipped).
    viewer.set_visible(0, False)
    bare = browser.wait_for(lambda im: np.abs(im.astype(int) - with_slice).mean() > 0.5)
    save_png(tmp_path / "view_slice_alone.png", bare)
    c = client.camera
    cam = viewer_camera(c.position, c.wxyz, c.fov, bare.shape[1] / bare.shape[0], max(bare.shape[:2]))
    assert (cam.width, cam.height) == (bare.shape[1], bare.shape[0])
    g = sl.grid
    ij = np.stack(np.meshgrid(np.arange(4, g.height - 4, 3), np.arange(4, g.width - 4, 3), indexing="ij"), -1).reshape(
        -1, 2
    )
    colrow = cam.project(g.points[ij[:, 0] * g.width + ij[:, 1]] + viewer.items[0].offset)
    ok = (colrow[:, 0] > 330) & (colrow[:, 0] < 0.6 * WIDTH) & (colrow[:, 1] > 170) & (colrow[:, 1] < HEIGHT - 10)
    assert ok.sum() > 100
    page = bare[colrow[ok, 1].astype(int), colrow[ok, 0].astype(int)].astype(int)
    diff = np.abs(page - sl.image[ij[ok, 0], ij[ok, 1]]).sum(1)
    flipped = np.abs(page - sl.image[g.height - 1 - ij[ok, 0], ij[ok, 1]]).sum(1)
    assert np.median(diff) < 40 and np.median(flipped) > 2 * np.median(diff) + 20, (np.median(diff), np.median(flipped))
    viewer.set_visible(0, True)
    viewer.set_slice(None)

    # The probe moved through the Python API shows in the page: a red mark appears where the
    # field's closest point projects (on the side of the shape facing the camera).
    it = viewer.items[0]
    center = it.bounds.mean(0)
    toward_eye = np.asarray(c.position) - it.offset - center
    before_move = browser.wait_for(lambda im: True)
    res = viewer.set_probe(center + 0.45 * toward_eye)
    assert np.allclose(res.closest_point, viewer.items[0].field.query(res.point[None]).closest_points[0])
    col, row = cam.project((res.closest_point + it.offset)[None])[0].astype(int)
    near = (slice(row - 8, row + 9), slice(col - 8, col + 9))

    def red_near(im):
        px = im[near].astype(int)
        return int(((px[..., 0] > 150) & (px[..., 1] < 90) & (px[..., 2] < 90)).sum())

    moved = browser.wait_for(lambda im: red_near(im) > red_near(before_move) + 10)
    save_png(tmp_path / "view_probe.png", moved)
    assert red_near(moved) > red_near(before_move) + 10, "the closest-point mark is not where the field puts it"

    traced = viewer.trace_view(client)  # the "Sphere-trace this view" button
    assert traced.path is not None and traced.path.exists() and traced.path.parent == viewer.config.save_dir
    hit = traced.result.hit
    assert hit.mean() > 0.02, "the traced view missed the shape"
    rows, cols = np.nonzero(hit)
    h, w = hit.shape
    assert abs(rows.mean() / h - 0.5) < 0.2 and abs(cols.mean() / w - 0.5) < 0.2  # framed as in the page

    shot = viewer.save_screenshot(client)  # the "Save screenshot" button
    import imageio.v3 as iio

    img = iio.imread(shot)
    assert img.shape[:2] == (client.camera.image_height, client.camera.image_width)
    assert (np.abs(img[..., :3].astype(int) - 255).sum(-1) > 30).mean() > 0.01, "the saved screenshot is blank"
    again = viewer.save_screenshot(client)
    assert again != shot and shot.exists()  # a fresh name, never over the last one
