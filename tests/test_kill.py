"""``kill -9`` at any moment leaves every output as it was or complete: subprocesses of ``deepcsp
mesh``, ``render --turntable``, ``prepare`` and ``train`` are killed at several points of a run
(timed from a first, complete run) over outputs that already exist, and every file found
afterwards is either the old one or a complete, readable new one; ``deepcsp._atomic`` is also
killed in the middle of writing a large file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

OLD = b"the previous version of this file\n"


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "deepcsp", *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _complete_run(args: list[str], cwd: Path, out: Path) -> list[float]:
    """Run to the end, watching ``out``; returns the kill times: one before the first output
    appears, then four spread from the first write to the last (the last one just before it)."""
    seen: dict[Path, int] = {}
    events: list[float] = []
    t0 = time.perf_counter()
    p = _start(args, cwd)
    while p.poll() is None:
        now = time.perf_counter() - t0
        for q in out.rglob("*") if out.exists() else ():
            try:
                m = q.stat().st_mtime_ns
            except FileNotFoundError:  # a temporary file renamed meanwhile
                continue
            if not q.name.startswith(".") and seen.get(q) != m:
                seen[q] = m
                events.append(now)
        time.sleep(0.005)
    assert p.returncode == 0, p.stderr.read().decode()[-2000:]
    first, last = events[0], events[-1]
    return [0.5 * first, *np.linspace(first, last, 4)[:-1], max(first, last - 0.01)]


def _readable(path: Path) -> None:
    """Raise unless ``path`` is a complete file of its kind."""
    suffix = path.suffix.lower()
    if suffix == ".ply":
        from deepcsp.io import load_surface

        load_surface(path)
    elif suffix in (".png", ".gif"):
        from PIL import Image

        with Image.open(path) as im:
            for frame in range(getattr(im, "n_frames", 1)):
                im.seek(frame)
                im.load()
    elif suffix == ".json":
        json.loads(path.read_text())
    elif suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            for k in z.files:
                z[k]
    elif suffix == ".safetensors":
        from safetensors.numpy import load_file

        load_file(str(path))
    else:
        raise AssertionError(f"no reader for {path}")


def _check_outputs(folder: Path, old: set[Path]) -> int:
    """Every file below ``folder`` is old (``OLD``) or complete; hidden temporary files may stay.
    Returns the number of files replaced by complete new ones."""
    new = 0
    for p in sorted(folder.rglob("*")):
        if p.is_dir() or p.name.startswith("."):
            continue
        data = p.read_bytes()
        if p in old and data == OLD:
            continue
        _readable(p)
        new += 1
    return new


def _kill_runs(
    args: list[str], cwd: Path, out: Path, prefill: list[str], kill_at: list[float], complete: int
) -> list[int]:
    """Run ``args`` killed at each of ``kill_at`` seconds, each time over fresh old outputs
    ``prefill``; returns how many outputs each run had replaced by complete new ones. When every
    run got to write all ``complete`` outputs (the timed run was slowed by a loaded machine), the
    kill times are halved and the runs repeated, at most twice."""
    for scale in (1.0, 0.5, 0.25):
        replaced = [_kill_run(args, cwd, out, prefill, scale * seconds) for seconds in kill_at]
        if min(replaced) < complete:
            break
    return replaced


def _kill_run(args: list[str], cwd: Path, out: Path, prefill: list[str], seconds: float) -> int:
    import shutil

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    old = set()
    for name in prefill:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(OLD)
        old.add(out / name)
    p = _start(args, cwd)
    time.sleep(seconds)
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=60)
    return _check_outputs(out, old)


@pytest.fixture(scope="module")
def field_path(tmp_path_factory, tiny_field) -> Path:
    return tiny_field.save(tmp_path_factory.mktemp("killfield") / "f.safetensors")


def test_kill_mesh(field_path, tmp_path):
    out = tmp_path / "out"
    args = ["mesh", str(field_path), "-o", str(out / "m.ply"), "--resolution", "64", "--points", "20000"]
    out.mkdir()
    kill_at = _complete_run(args, tmp_path, out)
    assert _check_outputs(out, set()) == 2
    replaced = _kill_runs(args, tmp_path, out, ["m.ply", "m_points.ply"], kill_at, complete=2)
    assert min(replaced) < 2, replaced  # some kill landed before the last write


def test_kill_render_turntable(field_path, tmp_path):
    out = tmp_path / "out"
    args = [
        "render",
        str(field_path),
        "-o",
        str(out / "r.png"),
        "--width",
        "96",
        "--height",
        "96",
        "--turntable",
        "6",
        "--quiet",
        "--threads",
        "1",
    ]
    out.mkdir()
    kill_at = _complete_run(args, tmp_path, out)
    assert _check_outputs(out, set()) == 4  # image, normal map, depth map, turntable
    replaced = _kill_runs(args, tmp_path, out, ["r.png", "r_normals.png", "r_depth.png", "r.gif"], kill_at, complete=4)
    assert min(replaced) < 4, replaced  # some kill landed before the last write


PREP = ["--config.n-surface", "400", "--config.n-near-per-scale", "300", "--config.n-uniform", "300"]


def test_kill_prepare(tmp_path):
    out = tmp_path / "data"
    args = ["prepare", "-o", str(out), "--procedural", "6", "--quiet", *PREP]
    kill_at = _complete_run(args, tmp_path, out)
    assert _check_outputs(out, set()) == 7  # six records and the index
    replaced = _kill_runs(args, tmp_path, out, ["index.json"], kill_at, complete=7)
    assert min(replaced) < 7, replaced  # some kill landed before the last write


def test_kill_train(tmp_path):
    data = tmp_path / "data"
    assert (
        subprocess.run(
            [sys.executable, "-m", "deepcsp", "prepare", "-o", str(data), "--procedural", "4", "--quiet", *PREP],
            capture_output=True,
        ).returncode
        == 0
    )
    run = tmp_path / "run"
    args = [
        "train",
        str(data),
        "-o",
        str(run),
        "--quiet",
        "--config.epochs",
        "2",
        "--config.batch",
        "2",
        "--config.val-count",
        "1",
        "--config.n-input",
        "128",
        "--config.n-query",
        "64",
        "--config.checkpoint-every",
        "1",
        "--config.threads",
        "1",
        "--config.model.plane-resolution",
        "8",
        "--config.model.plane-channels",
        "4",
        "--config.model.encoder-hidden",
        "8",
        "--config.model.decoder-hidden",
        "16",
        "--config.model.unet-depth",
        "1",
    ]
    kill_at = _complete_run(args, tmp_path, run)
    assert {p.name for p in run.iterdir()} >= {
        "checkpoint.safetensors",
        "history.json",
        "loss.png",
        "model.safetensors",
    }
    assert _check_outputs(run, set()) == 4
    # an old checkpoint would be resumed, so only the other outputs start as old files; the
    # checkpoint is replaced every step, so late kills land on its renames
    replaced = _kill_runs(args, tmp_path, run, ["history.json", "loss.png", "model.safetensors"], kill_at, complete=4)
    assert min(replaced) < 4, replaced  # some kill landed before the last write


_WRITER = """
import sys
from deepcsp._atomic import write_bytes
write_bytes(sys.argv[1], b"n" * (1 << 30))
"""


def test_kill_in_the_middle_of_an_atomic_write(tmp_path):
    """Killed while the temporary file is being written (it is seen growing), the target keeps its
    old content; the temporary file is all that is left behind."""
    target = tmp_path / "big.bin"
    target.write_bytes(OLD)
    p = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)])
    deadline = time.time() + 60
    tmp = []
    while time.time() < deadline and not tmp:
        tmp = [q for q in tmp_path.iterdir() if q.name.startswith(".big.bin.") and q.stat().st_size > 0]
        time.sleep(0.005)
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=60)
    assert tmp, "the temporary file never appeared"
    assert target.read_bytes() == OLD
    assert all(q.name.startswith(".big.bin.") for q in tmp_path.iterdir() if q != target)
