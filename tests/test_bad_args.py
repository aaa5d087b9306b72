"""Bad-argument corpus: every option of every subcommand, given bad values, is refused before any
work: exit code 2, one line on stderr naming the option (or the file), no traceback, nothing on
stdout and no file written or changed anywhere.

The cases are generated from the commands' dataclasses (nested configs included), so an option
added later is covered, or the generator fails on a type it does not know. Per type: integers get
zero (unless 0 is a documented value), negative, huge, a fraction and a word; floats zero (same
rule), a large negative, huge, NaN, inf and a word; choices an unknown word; devices unknown ones
(and ``cuda`` without CUDA); output files an unknown suffix, a folder under a regular file, a
missing folder under a regular file and an input of the same command; input files a missing
file, a folder and, where formats are fixed, an unknown suffix; tuples a NaN, a wrong length, a
non-positive item or a reversed range. A few hand-written cases cover options that clash with
each other. Everything runs in-process through ``deepcsp.cli.main.main``.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from pathlib import Path

import numpy as np
import pytest
import torch
import tyro

from deepcsp.cli.main import _WHERE, _one_command, main

#: Subcommands the corpus does not cover, with the reason.
NOT_COVERED = {
    "view": "an interactive server with its own issue; its ViewConfig validates itself",
}

#: Valid command lines: (positional arguments, options); placeholders in capitals are files made
#: by the ``sandbox`` fixture. Every case changes one option (or positional) of one of them.
BASE = {
    "fit": (["MESH"], {"--output": ["OUT/f.safetensors"], "--quiet": [], "--cache": ["None"]}),
    "query": (["FIELD", "POINTS"], {"--output": ["OUT/q.npz"]}),
    "render": (["FIELD"], {"--output": ["OUT/r.png"], "--quiet": [], "--turntable": ["2"]}),
    "mesh": (["FIELD"], {"--output": ["OUT/m.ply"], "--points": ["10"]}),
    "eval": (["MESH", "MESH"], {"--json": ["OUT/e.json"]}),
    "demo": ([], {"--output": ["OUT/demo"]}),
    "prepare": (["MESHDIR"], {"--output": ["OUT/data"], "--quiet": []}),
    "train": (["DATA"], {"--output": ["OUT/run"], "--quiet": []}),
    "reconstruct": (["POINTS"], {"--output": ["OUT/r.ply"], "--quiet": []}),
    "train-local": (
        ["MESHDIR"],
        {"--output": ["OUT/local"], "--train": ["spot.obj"], "--val": ["spot_val.obj"], "--quiet": []},
    ),
}

#: Output options: the suffix of a valid file name, or "/" for a folder.
OUTPUTS = {
    ("fit", "--output"): ".safetensors",
    ("fit", "--cache"): "/",
    ("query", "--output"): ".npz",
    ("render", "--output"): ".png",
    ("render", "--save-rays"): ".npz",
    ("mesh", "--output"): ".ply",
    ("mesh", "--points-output"): ".xyz",
    ("eval", "--json"): ".json",
    ("demo", "--output"): "/",
    ("prepare", "--output"): "/",
    ("train", "--output"): "/",
    ("reconstruct", "--output"): ".ply",
    ("reconstruct", "--field"): ".safetensors",
    ("train-local", "--output"): "/",
}
#: Input options (positional ones by field name): (placeholder of a valid value, fixed suffixes?).
INPUTS = {
    ("fit", "input"): ("MESH", True),
    ("query", "field"): ("FIELD", False),
    ("query", "points"): ("POINTS", False),
    ("render", "field"): ("FIELD", False),
    ("mesh", "field"): ("FIELD", False),
    ("eval", "pred"): ("MESH", False),
    ("eval", "gt"): ("MESH", False),
    ("demo", "--shape"): ("MESH", True),
    ("prepare", "mesh_dir"): ("MESHDIR", None),
    ("train", "data_dir"): ("DATA", None),
    ("reconstruct", "input"): ("POINTS", True),
    ("reconstruct", "--model"): ("FIELD", True),
    ("train-local", "meshes"): ("MESHDIR", None),
}
#: Options for which 0 is a documented, valid value ("command --flag" for one command only).
ZERO_OK = {
    "--points",
    "--topology-resolution",
    "--min-component-faces",
    "--speck-faces",
    "mesh --zip-slits",
    "--turntable",
    "--threads",
    "--seed",
    "--procedural",
    "--time-budget",
    "--config.seed",
    "reconstruct --polish",
    "reconstruct --smooth",
    "reconstruct --clean-smooth",
    "reconstruct --clean-smooth-dense",
    "reconstruct --turned-degrees",
    "reconstruct --rim-spacings",
    "reconstruct --seam-spacings",
    "reconstruct --thin-spacings",
    "--config.threads",
    "--config.max-steps",
    "--config.time-budget",
    "--config.eval-points",
    "--config.checkpoint-every",
    "--config.lr-decay",
    "--config.idempotence-weight",
    "--config.orthogonality-weight",
    "--config.field.n-active",
    "--config.samples.n-near-per-scale",
    "--config.samples.n-uniform",
    "--config.samples.seed",
    "--config.n-near-per-scale",
    "--config.n-uniform",
    "--config.max-seconds",
    "--config.val-count",
    "--config.model.unet-depth",
    "--config.model.knn",
    "--config.model.padding",
    "--config.augment.crop-probability",
    "--config.augment.noise",
    "--render.trace.refine-max",
    "--render.trace.flip-cos",
    "--render.shading.ambient",
    "--render.shading.specular",
    "--dilate",
    "mesh --sharpen",
    "--config.field.sheet-offset",
    "--config.field.refine-factor",
    "--config.field.n-refined",
    "--config.field.n-subvertices",
    "--config.cloud.resolution",
    "--config.cloud.projection-above",
    "--config.cloud.surface.patch-neighbors",
    "--config.cloud.surface.patch-degree",
    "--config.cloud.surface.boundary-density",
    "--config.cloud.surface.offset-radius",
    "--config.cloud.surface.local-patches",
    "--config.cloud.surface.off-surface",
    "--config.cloud.surface.off-surface-floor",
    "--config.cloud.surface.creases",
    "--config.cloud.surface.creases-max-points",
    "--config.cloud.surface.foot-samples",
    "reconstruct --resolution",
    "reconstruct --field-resolution",
    "--surface.patch-neighbors",
    "--surface.patch-degree",
    "--surface.boundary-density",
    "--surface.offset-radius",
    "--surface.local-patches",
    "--surface.off-surface",
    "--surface.off-surface-floor",
    "--surface.creases",
    "--surface.creases-max-points",
    "--surface.foot-samples",
    "--config.data.clean-fraction",
    "--config.data.outlier-fraction",
    "--config.data.offset-fraction",
}
#: Options that take any value of their type (nothing to refuse).
FREE = {"--exclude"}
#: Hand-written cases: (command, positional overrides {index: value or None to drop}, option
#: overrides, text the message must contain; None: a valid combination).
CLASHES = [
    ("fit", {}, {"--output": ["MESH"]}, "--output"),
    ("fit", {}, {"--bogus-option": ["1"]}, "--bogus-option"),
    ("query", {1: "POINTS_NPZ"}, {"--output": ["POINTS_NPZ"]}, "--output"),
    ("query", {1: None}, {}, "Missing"),
    ("render", {}, {"--output": ["OUT/r.gif"], "--turntable": ["0"]}, "--turntable"),
    ("render", {}, {"--look-at": ["0", "0", "0"]}, "--look-at"),
    ("render", {}, {"--eye": ["1", "1", "1"], "--look-at": ["1", "1", "1"]}, "--look-at"),
    ("render", {}, {"--up": ["0", "0", "0"]}, "--up"),
    ("render", {}, {"--turntable": ["3600"], "--width": ["4096"], "--height": ["4096"]}, "--turntable"),
    ("render", {0: "FIELD_PNG"}, {"--output": ["FIELD_PNG"]}, "--output"),
    ("render", {}, {"--output": ["OUT/x.png"], "--save-rays": ["OUT/x_normals.npz"]}, None),
    ("mesh", {}, {"--points": ["0"], "--points-output": ["OUT/p.ply"]}, "--points-output"),
    ("mesh", {}, {"--points-output": ["OUT/m.ply"]}, "--points-output"),
    ("mesh", {}, {"--output": ["FIELD"]}, "--output"),
    ("eval", {0: "MESH_JSON"}, {"--json": ["MESH_JSON"]}, "--json"),
    ("prepare", {}, {"--output": ["MESHDIR"]}, "--output"),
    ("prepare", {0: None}, {"--procedural": ["0"]}, "--procedural"),
    ("train", {}, {"--output": ["DATA"]}, "--output"),
    ("train", {0: "EMPTYDIR"}, {}, "EMPTYDIR"),
    ("reconstruct", {}, {"--output": ["OUT/r.ply"], "--field": ["OUT/r.ply"]}, "--field"),
    ("reconstruct", {}, {"--output": ["POINTS"]}, "--output"),
    ("train-local", {}, {"--val": ["spot.obj"]}, "--val"),
    ("train-local", {}, {"--train": ["missing.obj"]}, "--train"),
]
try:  # an MP4 turntable needs imageio-ffmpeg: refused up front (not after rendering every frame)
    import imageio_ffmpeg  # noqa: F401
except ImportError:
    CLASHES.append(("render", {}, {"--output": ["OUT/t.mp4"]}, "imageio-ffmpeg"))


@dataclasses.dataclass(frozen=True)
class Option:
    command: str
    flag: str  # ``--config.field.resolution``, or the field name of a positional argument
    type: object
    positional: bool


def _strip(t):
    """``(base type, is positional)`` of an annotation (Annotated and Optional removed)."""
    positional = False
    if typing.get_origin(t) is typing.Annotated:
        positional = any(m is tyro.conf.Positional or m == tyro.conf.Positional for m in t.__metadata__)
        t = typing.get_args(t)[0]
    args = typing.get_args(t)
    if type(None) in args and len(args) == 2:
        t = next(a for a in args if a is not type(None))
    return t, positional


def options(command: str) -> list[Option]:
    out = []
    todo = [(_one_command(command), "--")]
    while todo:
        cls, prefix = todo.pop(0)
        hints = typing.get_type_hints(cls, include_extras=True)
        for f in dataclasses.fields(cls):
            t, positional = _strip(hints[f.name])
            if dataclasses.is_dataclass(t):
                todo.append((t, f"{prefix}{f.name.replace('_', '-')}."))
            else:
                out.append(
                    Option(command, f.name if positional else f"{prefix}{f.name.replace('_', '-')}", t, positional)
                )
    return out


def _zero_ok(command: str, flag: str) -> bool:
    return flag in ZERO_OK or f"{command} {flag}" in ZERO_OK


def _ints(flag: str, zero_ok: bool) -> list[str]:
    return ([] if zero_ok else ["0"]) + ["-1", "99999999999999999999", "1.5", "abc"]


def _floats(flag: str, zero_ok: bool) -> list[str]:
    return ([] if zero_ok else ["0"]) + ["-1e9", "1e300", "nan", "inf", "abc"]


def _devices() -> list[str]:
    return ["tpu", "cuda:99", "-1"] + ([] if torch.cuda.is_available() else ["cuda"])


def _path_cases(opt: Option) -> list[tuple[list[str], str]]:
    """``(argument values, text the message names)`` for a path option."""
    key = (opt.command, opt.flag)
    if key in OUTPUTS:
        sfx = OUTPUTS[key]
        name = "x" + ("" if sfx == "/" else sfx)
        cases = [(["AFILE/" + name], opt.flag), (["AFILE/sub/" + name], opt.flag)]
        if sfx == "/":
            cases.append((["AFILE"], opt.flag))
        else:
            cases += [(["OUT/x.bogus"], opt.flag), (["OUT/noext"], opt.flag), ([f"DIRS/d{sfx}"], opt.flag)]
        return cases
    if key in INPUTS:
        _, fixed = INPUTS[key]
        if fixed is None:  # a folder
            return [(["OUT/missing_dir"], "missing_dir"), (["AFILE"], "afile")]
        cases = [(["OUT/missing.obj"], "missing.obj"), (["OUT"], "a folder")]
        if fixed:
            cases.append((["UNKNOWN"], "unknown.abc"))
        return cases
    raise AssertionError(
        f"{opt.command} {opt.flag}: a path option the corpus does not know; add it to OUTPUTS or INPUTS"
    )


def cases_of(opt: Option) -> list[tuple[list[str], str]]:
    t, flag = opt.type, opt.flag
    if flag in FREE:
        return []
    if t is bool:
        return []  # switches: --x / --no-x take no value
    if t is int:
        return [([v], flag) for v in _ints(flag, _zero_ok(opt.command, flag))]
    if t is float:
        return [([v], flag) for v in _floats(flag, _zero_ok(opt.command, flag))]
    if t is str and flag.endswith(".model"):  # a model file named by a string of a config
        return [(["missing.safetensors"], flag), (["AFILE"], flag)]
    if t is str:
        assert flag.endswith("device"), f"{flag}: a string option the corpus does not know"
        return [([v], flag) for v in _devices()]
    if t is Path:
        return _path_cases(opt)
    if typing.get_origin(t) is typing.Literal:
        return [(["bogus"], flag)]
    if typing.get_origin(t) is tuple:
        items = typing.get_args(t)
        if items == (str, ...):
            return [([""], flag)]
        if items and items[-1] is ...:
            bad = ["0", "-1", "abc"] if items[0] is int else ["nan", "-1", "0"]
            return [([v], flag) for v in bad]
        n = len(items)
        if n == 2:  # ranges
            return [(["1", "0.5"], flag), (["nan", "1"], flag), (["-1", "1"], flag)]
        return [(["nan"] + ["0"] * (n - 1), flag), (["1"] * (n - 1), flag), (["abc"] + ["0"] * (n - 1), flag)]
    raise AssertionError(f"{flag}: type {t} has no bad-value generator")


def _corpus() -> list[tuple[str, dict, dict, str]]:
    """``(command, positional overrides, option overrides, needle)`` of every case."""
    out = []
    for command in BASE:
        positional = [o.flag for o in options(command) if o.positional]
        for opt in options(command):
            for values, needle in cases_of(opt):
                if opt.positional:
                    out.append((command, {positional.index(opt.flag): values[0]}, {}, needle))
                else:
                    out.append((command, {}, {opt.flag: values}, needle))
    out += [c for c in CLASHES if c[3] is not None]
    return out


CORPUS = _corpus()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory, tiny_field):
    """Inputs of every command in ``in/``, an empty ``out/`` and a regular file ``afile``."""
    root = tmp_path_factory.mktemp("badargs")
    src = root / "in"
    (src / "meshes").mkdir(parents=True)
    (src / "data" / "records").mkdir(parents=True)
    (src / "data" / "records" / "r.npz").write_bytes(b"")  # list_records globs, nothing reads it
    (src / "empty").mkdir()
    spot = Path(__file__).resolve().parents[1] / "src" / "deepcsp" / "data" / "spot.obj"
    (src / "spot.obj").write_bytes(spot.read_bytes())
    (src / "meshes" / "spot.obj").write_bytes(spot.read_bytes())
    (src / "meshes" / "spot_val.obj").write_bytes(spot.read_bytes())
    (src / "spot.json").write_text("{}")
    (src / "unknown.abc").write_text("x")
    tiny_field.save(src / "f.safetensors")
    (src / "f.png").write_bytes(b"not really a png")
    np.save(src / "p.npy", np.zeros((4, 3)))
    np.savez(src / "p.npz", points=np.zeros((4, 3)))
    (root / "out").mkdir()
    (root / "afile").write_text("a regular file")
    for sfx in {v for v in OUTPUTS.values() if v != "/"}:
        (root / "dirs" / f"d{sfx}").mkdir(parents=True)  # folders named like output files
    subs = {
        "MESH": src / "spot.obj",
        "FIELD": src / "f.safetensors",
        "POINTS": src / "p.npy",
        "POINTS_NPZ": src / "p.npz",
        "MESHDIR": src / "meshes",
        "DATA": src / "data",
        "EMPTYDIR": src / "empty",
        "UNKNOWN": src / "unknown.abc",
        "MESH_JSON": src / "spot.json",
        "FIELD_PNG": src / "f.png",
        "AFILE": root / "afile",
        "OUT": root / "out",
        "DIRS": root / "dirs",
    }
    return root, subs


def _resolve(args: list[str], subs: dict[str, Path]) -> list[str]:
    out = []
    for a in args:
        head, sep, rest = a.partition("/")
        out.append(str(subs[head]) + sep + rest if head in subs else a)
    return out


def _argv(command: str, pos: dict, opts: dict, subs) -> list[str]:
    """The base command line of ``command`` with the case's positionals and options in place."""
    base_pos, base_opts = BASE[command]
    args = [pos.get(i, p) for i, p in enumerate(base_pos) if pos.get(i, p) is not None]
    for flag, values in {**base_opts, **opts}.items():
        args += [flag, *values]
    return [command, *_resolve(args, subs)]


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def test_every_subcommand_is_covered():
    assert set(_WHERE) <= set(BASE) | set(NOT_COVERED), sorted(set(_WHERE) - set(BASE) - set(NOT_COVERED))
    assert len(CORPUS) > 300, len(CORPUS)


class _PassedChecks(Exception):
    """A case got through a command's checks (it would have started work)."""


def _ids(case) -> str:
    command, pos, opts, _ = case
    return " ".join([command, *(f"<{i}>={v}" for i, v in pos.items()), *(" ".join([k, *v]) for k, v in opts.items())])


@pytest.mark.parametrize("command, pos, opts, needle", CORPUS, ids=[_ids(c) for c in CORPUS])
def test_bad_argument_is_refused_before_any_work(sandbox, capsys, monkeypatch, command, pos, opts, needle):
    root, subs = sandbox
    monkeypatch.chdir(subs["OUT"])  # default output names would land here
    cls = _one_command(command)
    checked = cls.check

    def check_then_stop(self):
        checked(self)
        raise _PassedChecks(f"deepcsp {command}: the checks accepted this case; it would have run")

    monkeypatch.setattr(cls, "check", check_then_stop)
    before = _snapshot(root)
    argv = _argv(command, pos, opts, subs)
    rc = main(argv)
    captured = capsys.readouterr()
    err = captured.err
    assert rc == 2, (argv, err, captured.out)
    assert err.startswith("deepcsp: error: ") and err.count("\n") == 1, (argv, err)
    assert "Traceback" not in err
    assert (str(subs[needle]) if needle in subs else needle) in err, (argv, err)
    assert captured.out == "", (argv, captured.out)
    assert _snapshot(root) == before, (argv, "files changed")


def test_corpus_base_commands_pass_the_checks(sandbox, monkeypatch):
    """The base command lines (and the valid hand-written combinations) pass every check, so each
    refusal above comes from the one thing its case changed."""
    root, subs = sandbox
    monkeypatch.chdir(subs["OUT"])
    before = _snapshot(root)
    valid = [(c, {}, {}) for c in BASE] + [(c, p, o) for c, p, o, needle in CLASHES if needle is None]
    for command, pos, opts in valid:
        cmd = tyro.cli(_one_command(command), args=_argv(command, pos, opts, subs)[1:])
        cmd.check()
    assert _snapshot(root) == before, "checks must not write anything"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write into any folder")
def test_unwritable_output_folder_is_refused(sandbox, capsys, tmp_path):
    root, subs = sandbox
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert main(["mesh", str(subs["FIELD"]), "-o", str(locked / "m.ply")]) == 2
        assert main(["prepare", "-o", str(locked / "sub" / "data"), "--procedural", "1"]) == 2
    finally:
        locked.chmod(0o755)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all("is not writable" in e for e in err), err


def _reconstruction(v):
    from deepcsp.pipelines import ReconstructionConfig

    return ReconstructionConfig(mesh_resolution=v)


def _point_set(v):
    from deepcsp.geometry.pointset import PointSetConfig

    return PointSetConfig(patch_neighbors=v)


def _cloud(v):
    from deepcsp.fit.config import CloudConfig

    return CloudConfig(resolution=v)


@pytest.mark.parametrize(
    "make, name, minimum",
    [
        (_reconstruction, "ReconstructionConfig.mesh_resolution", 8),
        (_point_set, "PointSetConfig.patch_neighbors", 6),
        (_cloud, "CloudConfig.resolution", 8),
    ],
)
def test_automatic_or_at_least_settings(make, name, minimum):
    """0 (automatic) or at least ``minimum``: one helper, one message, for every such setting."""
    from deepcsp._validate import OptionError

    make(0)
    make(minimum)
    with pytest.raises(OptionError, match=rf"must be 0 \(automatic\) or at least {minimum}, got {minimum - 1}") as err:
        make(minimum - 1)
    assert name in str(err.value)
    with pytest.raises(OptionError, match="must be an integer"):
        make(-1)
