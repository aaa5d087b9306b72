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

    cmds: dict[str, type] = {
        "fit": FitCommand,
        "query": QueryCommand,
        "render": RenderCommand,
        "mesh": MeshCommand,
        "eval": EvalCommand,
        "demo": DemoCommand,
    }
    try:  # reconstruction lands with its issue; absent modules are simply not listed
        from deepcsp.cli.train import PrepareCommand, ReconstructCommand, TrainCommand

        cmds.update({"prepare": PrepareCommand, "train": TrainCommand, "reconstruct": ReconstructCommand})
    except ImportError:
        pass
    return cmds


def main(argv: list[str] | None = None) -> int:
    import tyro

    cmds = _commands()
    try:
        cmd = tyro.extras.subcommand_cli_from_dict(
            cmds,
            args=argv if argv is not None else sys.argv[1:],
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
