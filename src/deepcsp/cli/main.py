"""``deepcsp`` entry point: typed subcommands (tyro); bad input ends in one line, exit code 2."""

from __future__ import annotations

import os
import sys
from typing import Callable

from deepcsp.errors import DeepCSPError


def _commands() -> dict[str, type]:
    from deepcsp.cli.demo import DemoCommand
    from deepcsp.cli.eval import EvalCommand
    from deepcsp.cli.fit import FitCommand
    from deepcsp.cli.mesh import MeshCommand
    from deepcsp.cli.query import QueryCommand
    from deepcsp.cli.render import RenderCommand
    from deepcsp.cli.view import ViewCommand

    cmds: dict[str, type] = {
        "fit": FitCommand,
        "query": QueryCommand,
        "render": RenderCommand,
        "mesh": MeshCommand,
        "eval": EvalCommand,
        "demo": DemoCommand,
        "view": ViewCommand,
    }
    from deepcsp.cli.reconstruct import ReconstructCommand
    from deepcsp.cli.train import PrepareCommand, TrainCommand
    from deepcsp.cli.train_local import TrainLocalCommand

    cmds.update(
        {
            "prepare": PrepareCommand,
            "train": TrainCommand,
            "reconstruct": ReconstructCommand,
            "train-local": TrainLocalCommand,
        }
    )
    return cmds


#: Where each subcommand lives, so ``deepcsp NAME ...`` imports only that command (``deepcsp eval``
#: then starts without torch); ``deepcsp --help`` still imports them all through ``_commands``.
_WHERE = {
    "fit": ("deepcsp.cli.fit", "FitCommand"),
    "query": ("deepcsp.cli.query", "QueryCommand"),
    "render": ("deepcsp.cli.render", "RenderCommand"),
    "mesh": ("deepcsp.cli.mesh", "MeshCommand"),
    "eval": ("deepcsp.cli.eval", "EvalCommand"),
    "demo": ("deepcsp.cli.demo", "DemoCommand"),
    "view": ("deepcsp.cli.view", "ViewCommand"),
    "prepare": ("deepcsp.cli.train", "PrepareCommand"),
    "train": ("deepcsp.cli.train", "TrainCommand"),
    "reconstruct": ("deepcsp.cli.reconstruct", "ReconstructCommand"),
    "train-local": ("deepcsp.cli.train_local", "TrainLocalCommand"),
}


def _one_command(name: str) -> type | None:
    import importlib

    if name not in _WHERE:
        return None
    module, cls = _WHERE[name]
    return getattr(importlib.import_module(module), cls)  # a broken import of our own is a bug: let it show


def _parse(one: type | None, args: list[str]):
    """Run tyro on ``args``; its boxed parse errors become one :class:`DeepCSPError` line."""
    import contextlib
    import io

    import tyro

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            if one is not None:
                cmd = tyro.cli(one, args=args[1:], prog=f"deepcsp {args[0]}")
            else:
                cmd = tyro.extras.subcommand_cli_from_dict(
                    _commands(),
                    args=args,
                    prog="deepcsp",
                    description="Neural closest surface-point (CSP) fields for open and closed surfaces.",
                )
    except SystemExit as exc:
        text = err.getvalue()
        if exc.code in (0, None):
            sys.stderr.write(text)
            raise
        raise DeepCSPError(_first_message(text) or f"bad arguments (exit {exc.code})") from None
    sys.stderr.write(err.getvalue())  # warnings printed while parsing are not ours to hide
    return cmd


def _first_message(text: str) -> str:
    """The first section of tyro's error box (title skipped, wrapped lines joined), for boxes drawn
    with Unicode or ASCII rules."""
    import re

    title, parts = False, []
    for line in text.splitlines():
        body = line.strip().strip("│|╭╮╰╯").strip(" ─")
        if not body or set(body) <= set("─-+"):
            if parts:
                break
            continue
        if not title:
            title = True
            continue
        parts.append(body)
    return re.sub(r"\[/?bold\]", "", " ".join(parts))


def _flag_of(command: type | None, option: str) -> str | None:
    """The CLI flag that sets config field ``option`` (``FieldConfig.resolution`` ->
    ``--config.field.resolution``) in ``command``, or None when it is not one of its options."""
    import dataclasses
    import typing

    owner, _, field = option.partition(".")
    if command is None or not field:
        return None
    todo = [(command, "--")]
    while todo:
        cls, prefix = todo.pop(0)
        for f in dataclasses.fields(cls):
            t = typing.get_type_hints(cls).get(f.name)
            if isinstance(t, type) and dataclasses.is_dataclass(t):
                sub = f"{prefix}{f.name.replace('_', '-')}."
                if t.__name__ == owner:
                    head, bracket, rest = field.partition("[")
                    return sub + head.replace("_", "-") + bracket + rest
                todo.append((t, sub))
    return None


def _one_line_warnings() -> None:
    """deepcsp's own warnings (:class:`~deepcsp.errors.DeepCSPWarning`) on one line of stderr, as its
    errors are; other libraries' as Python shows them. Installed once: ``main`` runs many times in
    one process under the tests."""
    import warnings

    from deepcsp.errors import DeepCSPWarning

    shown = warnings.showwarning
    if getattr(shown, "one_line", False):
        return

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DeepCSPWarning):
            print(f"deepcsp: warning: {message}", file=sys.stderr if file is None else file)
        else:
            shown(message, category, filename, lineno, file, line)

    show.one_line = True
    warnings.showwarning = show


def main(argv: list[str] | None = None) -> int:
    from deepcsp._validate import OptionError

    _one_line_warnings()
    args = list(argv if argv is not None else sys.argv[1:])
    one = _one_command(args[0]) if args else None
    try:
        cmd = _parse(one, args)
        run: Callable[[], int | None] = cmd.run
        return int(run() or 0)
    except OptionError as exc:
        flag = _flag_of(one, exc.option)
        print(f"deepcsp: error: {exc.renamed(flag) if flag else exc}", file=sys.stderr)
        return 2
    except DeepCSPError as exc:
        print(f"deepcsp: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("deepcsp: interrupted (the last checkpoint is kept; rerun the same command to resume)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `deepcsp ... --help | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the flush at exit would raise again
        return 141  # 128 + SIGPIPE, as a shell reports a command that a pipe stopped


if __name__ == "__main__":
    raise SystemExit(main())
