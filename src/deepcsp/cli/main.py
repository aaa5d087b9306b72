"""``deepcsp`` entry point: typed subcommands (tyro); bad input ends in one line, exit code 2."""

from __future__ import annotations

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
    try:  # reconstruction lands with its issue; absent modules are simply not listed
        from deepcsp.cli.train import PrepareCommand, ReconstructCommand, TrainCommand

        cmds.update({"prepare": PrepareCommand, "train": TrainCommand, "reconstruct": ReconstructCommand})
    except ImportError:
        pass
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
    "reconstruct": ("deepcsp.cli.train", "ReconstructCommand"),
}


def _one_command(name: str) -> type | None:
    import importlib

    if name not in _WHERE:
        return None
    module, cls = _WHERE[name]
    try:
        return getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError):
        return None


def main(argv: list[str] | None = None) -> int:
    import tyro

    args = list(argv if argv is not None else sys.argv[1:])
    try:
        one = _one_command(args[0]) if args else None
        if one is not None:
            cmd = tyro.cli(one, args=args[1:], prog=f"deepcsp {args[0]}")
        else:
            cmd = tyro.extras.subcommand_cli_from_dict(
                _commands(),
                args=args,
                prog="deepcsp",
                description="Neural closest surface-point (CSP) fields for open and closed surfaces.",
            )
        run: Callable[[], int | None] = cmd.run
        return int(run() or 0)
    except DeepCSPError as exc:
        print(f"deepcsp: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("deepcsp: interrupted (the last checkpoint is kept; rerun the same command to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
