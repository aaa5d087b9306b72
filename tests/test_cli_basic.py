"""CLI skeleton: ``--help`` lists the commands, ``deepcsp eval`` prints a table and writes JSON,
and every bad input ends in one line on stderr with exit code 2 and no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import BAD_DIR
from test_io import EXPECTED

from deepcsp.cli.main import main

METRICS = ("chamfer_l1", "chamfer_l2", "pred_to_gt", "gt_to_pred", "hausdorff", "normal_consistency", "fscore")


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "default"}  # warnings would show up on stderr
    return subprocess.run(
        [sys.executable, "-m", "deepcsp", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_help_lists_the_subcommands():
    p = _run("--help")
    assert p.returncode == 0, p.stderr
    for name in ("fit", "query", "render", "mesh", "eval", "demo"):
        assert name in p.stdout
    assert "Traceback" not in p.stderr


def test_eval_prints_a_table_and_writes_json(bundled_spot, bundled_tee, tmp_path, capsys):
    from deepcsp.geometry.metrics import compare_surfaces
    from deepcsp.io import load_surface

    pred, gt = bundled_spot, bundled_tee
    out = tmp_path / "sub" / "metrics.json"
    rc = main(["eval", str(pred), str(gt), "--samples", "5000", "--json", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    lines = captured.out.strip().splitlines()
    assert lines[0] == "spot.obj vs tee_sim.obj"
    for key in METRICS:
        assert any(line.split()[0] == key for line in lines[1:]), key
    data = json.loads(out.read_text())
    assert data["pred"] == str(pred) and data["gt"] == str(gt) and data["n_samples"] == 5000
    p, g = load_surface(pred), load_surface(gt)
    want = compare_surfaces(p.vertices, p.faces, g.vertices, g.faces, n_samples=5000).to_dict()
    for key in METRICS:
        assert data[key] == pytest.approx(want[key], rel=1e-12), key
    # the table shows the same numbers (6 significant digits)
    row = next(line for line in lines if line.split()[0] == "chamfer_l1")
    assert float(row.split()[1]) == pytest.approx(want["chamfer_l1"], rel=1e-5)


@pytest.mark.parametrize("which", ["pred", "gt"])
def test_eval_bad_corpus_one_line_exit_2(bundled_spot, capsys, which):
    good = str(bundled_spot)
    names = sorted(EXPECTED)
    for name in names:
        bad = str(BAD_DIR / name)
        args = ["eval", bad, good] if which == "pred" else ["eval", good, bad]
        rc = main(args + ["--samples", "100"])
        err = capsys.readouterr().err
        assert rc == 2, (name, err)
        assert err.count("\n") == 1 and err.startswith("deepcsp: error: "), (name, err)
        assert bad in err and "Traceback" not in err


def test_eval_missing_file_via_subprocess(tmp_path, bundled_spot):
    missing = tmp_path / "missing.obj"
    p = _run("eval", str(missing), str(bundled_spot))
    assert p.returncode == 2
    assert p.stderr == f"deepcsp: error: {missing}: file not found\n"
    assert p.stdout == ""


def test_eval_bad_file_via_subprocess(bundled_spot):
    bad = BAD_DIR / "truncated.glb"
    p = _run("eval", str(bundled_spot), str(bad))
    assert p.returncode == 2
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"deepcsp: error: {bad}: ")
    assert "Traceback" not in p.stderr


def test_help_into_a_closed_pipe_ends_quietly():
    """``deepcsp reconstruct --help | head -2``: the reader has gone before the help is written;
    no traceback, the exit status a shell gives a command a pipe stopped."""
    p = subprocess.Popen(
        [sys.executable, "-m", "deepcsp", "reconstruct", "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    p.stdout.close()  # before the interpreter has even started
    err = p.stderr.read().decode()
    assert p.wait() == 141, err
    assert err == ""


def test_a_warning_of_deepcsp_is_one_line(tmp_path, capsys):
    """A mesh far from the origin saved as STL (32-bit floats) under the CLI's warning display: one
    line on stderr, like an error, not Python's two-line warning with its source."""
    import warnings

    import trimesh

    from deepcsp.cli.main import _one_line_warnings
    from deepcsp.io import save_mesh

    ball = trimesh.creation.icosphere(subdivisions=1, radius=20.0)
    with warnings.catch_warnings():  # puts the filters and the display back afterwards
        warnings.simplefilter("always")
        _one_line_warnings()
        save_mesh(tmp_path / "scan.stl", ball.vertices + [512_000.0, 4_100_000.0, 0.0], ball.faces)
        warnings.warn("not ours", RuntimeWarning)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("deepcsp: warning: ") and "scan.stl: .stl holds 32-bit floats" in err[0], err
    assert not any(e.startswith("deepcsp:") and "not ours" in e for e in err)  # others as Python shows them


def test_eval_starts_without_torch(tmp_path):
    """``deepcsp eval`` imports only its own command: no torch at start-up."""
    code = (
        "import sys\n"
        "from deepcsp.cli.main import main\n"
        f"rc = main(['eval', {str(tmp_path / 'a.obj')!r}, {str(tmp_path / 'b.obj')!r}])\n"
        "assert rc == 2, rc\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("flag", [["--samples", "0"], ["--tau", "-1"]])
def test_eval_bad_options_one_line(bundled_spot, capsys, flag):
    good = str(bundled_spot)
    assert main(["eval", good, good, *flag]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("deepcsp: error: --")


def test_a_task_first_reported_after_its_first_chunk_gets_no_rate_from_it(capsys):
    """The bar starts when the first ``done`` arrives: that chunk took no time on the bar's clock,
    so it must not count in the rate (a 10,000-point projection read "268435456.00it/s")."""
    import re
    import time

    from deepcsp.cli._common import progress_printer

    with progress_printer("deepcsp test") as progress:
        progress({"task": "points", "done": 8192, "total": 10000})
        time.sleep(0.2)
        progress({"task": "points", "done": 10000, "total": 10000})
    rates = [float(r) for r in re.findall(r"([0-9.]+)it/s", capsys.readouterr().err)]
    assert rates and max(rates) < 1808 / 0.15, rates  # 1,808 points in at least 0.2 s
