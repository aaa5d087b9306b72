"""Helpers shared by CLI commands (the edge of the system: printing and progress live here)."""

from __future__ import annotations

import sys
from pathlib import Path

from deepcsp.errors import DeepCSPError


def need_file(path: Path, what: str = "input") -> Path:
    path = Path(path)
    if not path.exists():
        raise DeepCSPError(f"{what} file not found", path)
    return path


def echo(msg: str = "") -> None:
    print(msg, file=sys.stdout, flush=True)


def table(rows: list[tuple[str, str]], title: str | None = None) -> str:
    w = max((len(k) for k, _ in rows), default=0)
    lines = [title] if title else []
    lines += [f"  {k.ljust(w)}  {v}" for k, v in rows]
    return "\n".join(lines)


def fmt(x: float) -> str:
    if x != x:  # NaN
        return "n/a"
    return f"{x:.6g}"
